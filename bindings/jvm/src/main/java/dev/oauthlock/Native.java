package dev.oauthlock;

import com.sun.jna.Callback;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Platform;
import com.sun.jna.Pointer;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * The C ABI of {@code include/oauth_lock.h}, bound with JNA direct mapping (the fastest JNA
 * call path). Handles ({@code oauth_lock_store *}, {@code oauth_lock_source *}, {@code
 * oauth_lock_token *}) cross as {@code long} addresses and out-pointers as one-element
 * {@code long[]} arrays, so the hot path allocates no native memory; this needs a 64-bit JVM.
 * Strings go in as NUL-terminated UTF-8 {@code byte[]} (never the platform charset).
 *
 * <p>Every fallible call whose failure becomes an exception is bound as its {@code _e} twin,
 * whose last argument receives the {@code oauth_lock_error *} of that very call: the
 * exception is built from it (see {@link OAuthLockException#check}), never from the thread's
 * last error, which a virtual thread could read on another carrier thread than the call's.
 */
final class Native {
  private Native() {}

  static final String LIBRARY = "oauth_lock";

  /**
   * The resource path of the library bundled in a release jar ({@code
   * linux-x86-64/liboauth_lock.so}: JNA's prefix for this platform), where JNA's own search
   * would look last. (Before the static block, which reads it.)
   */
  static final String RESOURCE =
      Platform.RESOURCE_PREFIX + "/" + System.mapLibraryName(LIBRARY);

  /** The loaded library (see {@link #library()}). */
  static final NativeLibrary LIB;

  static {
    if (com.sun.jna.Native.POINTER_SIZE != 8) {
      throw new UnsatisfiedLinkError("oauth-lock's JVM binding needs a 64-bit JVM");
    }
    LIB = library();
    com.sun.jna.Native.register(Native.class, LIB);
    // Must precede the first store: the records this process writes say "java".
    oauth_lock_set_client_lang(cString("java"));
  }

  /**
   * {@code liboauth_lock}: where {@code -Djna.library.path} is set (the dev build and its
   * tests), JNA's search, which tries that path first. Otherwise the library bundled in this
   * jar at {@link #RESOURCE}, extracted by JNA, so that the Java code and the library are
   * always of one release and a {@code liboauth_lock.so} of another version elsewhere on the
   * system's library path is not picked up. A jar without it (the dev jar) falls back to JNA's
   * search: the system's library path ({@code LD_LIBRARY_PATH}, ...).
   */
  private static NativeLibrary library() {
    String path = System.getProperty("jna.library.path");
    ClassLoader loader = Native.class.getClassLoader();
    boolean bundled = loader != null && loader.getResource(RESOURCE) != null;
    if ((path == null || path.isEmpty()) && bundled) {
      File file;
      try {
        file = com.sun.jna.Native.extractFromResourcePath(LIBRARY, loader);
      } catch (IOException e) {
        UnsatisfiedLinkError error =
            new UnsatisfiedLinkError("cannot extract " + RESOURCE + " from the jar: " + e);
        error.initCause(e);
        throw error;
      }
      return NativeLibrary.getInstance(file.getAbsolutePath());
    }
    return NativeLibrary.getInstance(LIBRARY);
  }

  /** Forces loading (and the client language) before any other call. */
  static void load() {}

  /** {@code oauth_lock_refresh_callback}. */
  interface RefreshCallback extends Callback {
    int invoke(Pointer userdata, Pointer credentialJson, Pointer answer);
  }

  /** {@code oauth_lock_event_callback}. */
  interface EventCallback extends Callback {
    void invoke(Pointer userdata, Pointer eventJson);
  }

  /** {@code oauth_lock_userdata_free_callback}. */
  interface FreeCallback extends Callback {
    void invoke(Pointer userdata);
  }

  static byte[] cString(String s) {
    if (s == null) {
      return null;
    }
    byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
    byte[] out = new byte[utf8.length + 1];
    System.arraycopy(utf8, 0, out, 0, utf8.length);
    return out;
  }

  static String string(Pointer p) {
    return p == null ? null : p.getString(0, "UTF-8");
  }

  static String string(long address) {
    return address == 0 ? null : string(new Pointer(address));
  }

  /** Reads and frees a string the library returned through {@code char **}. */
  static String takeString(long address) {
    try {
      return string(address);
    } finally {
      oauth_lock_string_free(address);
    }
  }

  static native Pointer oauth_lock_version();

  static native Pointer oauth_lock_code_name(int code);

  static native int oauth_lock_set_client_lang(byte[] lang);

  static native int oauth_lock_error_code(long error);

  static native Pointer oauth_lock_error_json(long error);

  static native void oauth_lock_error_free(long error);

  static native void oauth_lock_string_free(long s);

  static native int oauth_lock_store_new_e(byte[] dir, long[] outStore, long[] outError);

  static native void oauth_lock_store_free(long store);

  static native int oauth_lock_store_dir_e(long store, long[] outDir, long[] outError);

  static native int oauth_lock_store_path_of_e(
      long store, byte[] key, long[] outPath, long[] outError);

  static native int oauth_lock_store_save_e(
      long store, byte[] key, byte[] credentialJson, int flags, long[] outError);

  static native int oauth_lock_store_clear_e(
      long store, byte[] key, byte[] outExisted, long[] outError);

  static native int oauth_lock_store_status_e(
      long store, byte[] key, long[] outJson, long[] outError);

  static native int oauth_lock_store_list_e(long store, long[] outJson, long[] outError);

  static native int oauth_lock_store_verify_e(
      long store, byte[] key, long[] outToken, long[] outError);

  static native int oauth_lock_source_options_default_e(long[] outOptions, long[] outError);

  static native int oauth_lock_source_new_e(
      long store, byte[] key, long[] options, long[] outSource, long[] outError);

  static native int oauth_lock_source_new_oauth2_e(
      long store, byte[] key, byte[] configJson, long[] options, long[] outSource,
      long[] outError);

  static native int oauth_lock_source_new_callback_e(
      long store,
      byte[] key,
      RefreshCallback callback,
      Pointer userdata,
      FreeCallback freeUserdata,
      long[] options,
      long[] outSource,
      long[] outError);

  static native void oauth_lock_source_free(long source);

  static native int oauth_lock_source_access_token_e(
      long source, long[] outToken, long[] outError);

  static native int oauth_lock_source_access_token_valid_for_e(
      long source, long atLeastMs, long[] outToken, long[] outError);

  static native int oauth_lock_source_reject_e(
      long source, byte[] rejectedToken, long[] outToken, long[] outError);

  static native int oauth_lock_source_verify_e(long source, long[] outToken, long[] outError);

  static native void oauth_lock_token_free(long token);

  static native Pointer oauth_lock_token_value(long token);

  static native Pointer oauth_lock_token_type(long token);

  static native Pointer oauth_lock_token_fingerprint(long token);

  static native long oauth_lock_token_expires_at_ms(long token);

  static native long oauth_lock_token_generation(long token);

  static native int oauth_lock_answer_set_json(Pointer answer, byte[] json);

  static native int oauth_lock_answer_set_error(Pointer answer, byte[] oauthError, byte[] description);

  static native int oauth_lock_add_event_listener_e(
      EventCallback callback, Pointer userdata, FreeCallback freeUserdata, long[] outId,
      long[] outError);

  static native int oauth_lock_remove_event_listener(long id);
}
