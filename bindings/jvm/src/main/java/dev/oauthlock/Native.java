package dev.oauthlock;

import com.sun.jna.Callback;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import java.nio.charset.StandardCharsets;

/**
 * The C ABI of {@code include/oauth_lock.h}, bound with JNA direct mapping (the fastest JNA
 * call path). Handles ({@code oauth_lock_store *}, {@code oauth_lock_source *}, {@code
 * oauth_lock_token *}) cross as {@code long} addresses and out-pointers as one-element
 * {@code long[]} arrays, so the hot path allocates no native memory; this needs a 64-bit JVM.
 * Strings go in as NUL-terminated UTF-8 {@code byte[]} (never the platform charset).
 */
final class Native {
  private Native() {}

  static final String LIBRARY = "oauth_lock";

  static {
    if (com.sun.jna.Native.POINTER_SIZE != 8) {
      throw new UnsatisfiedLinkError("oauth-lock's JVM binding needs a 64-bit JVM");
    }
    com.sun.jna.Native.register(Native.class, NativeLibrary.getInstance(LIBRARY));
    // Must precede the first store: the records this process writes say "java".
    oauth_lock_set_client_lang(cString("java"));
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

  static native int oauth_lock_last_error_code();

  static native int oauth_lock_last_error_json(long[] outJson);

  static native void oauth_lock_string_free(long s);

  static native int oauth_lock_store_new(byte[] dir, long[] outStore);

  static native void oauth_lock_store_free(long store);

  static native int oauth_lock_store_dir(long store, long[] outDir);

  static native int oauth_lock_store_path_of(long store, byte[] key, long[] outPath);

  static native int oauth_lock_store_save(long store, byte[] key, byte[] credentialJson, int flags);

  static native int oauth_lock_store_clear(long store, byte[] key, byte[] outExisted);

  static native int oauth_lock_store_status(long store, byte[] key, long[] outJson);

  static native int oauth_lock_store_list(long store, long[] outJson);

  static native int oauth_lock_store_verify(long store, byte[] key, long[] outToken);

  static native int oauth_lock_source_options_default(long[] outOptions);

  static native int oauth_lock_source_new(long store, byte[] key, long[] options, long[] outSource);

  static native int oauth_lock_source_new_oauth2(
      long store, byte[] key, byte[] configJson, long[] options, long[] outSource);

  static native int oauth_lock_source_new_callback(
      long store,
      byte[] key,
      RefreshCallback callback,
      Pointer userdata,
      FreeCallback freeUserdata,
      long[] options,
      long[] outSource);

  static native void oauth_lock_source_free(long source);

  static native int oauth_lock_source_access_token(long source, long[] outToken);

  static native int oauth_lock_source_access_token_valid_for(
      long source, long atLeastMs, long[] outToken);

  static native int oauth_lock_source_reject(long source, byte[] rejectedToken, long[] outToken);

  static native int oauth_lock_source_verify(long source, long[] outToken);

  static native void oauth_lock_token_free(long token);

  static native Pointer oauth_lock_token_value(long token);

  static native Pointer oauth_lock_token_type(long token);

  static native Pointer oauth_lock_token_fingerprint(long token);

  static native long oauth_lock_token_expires_at_ms(long token);

  static native long oauth_lock_token_generation(long token);

  static native int oauth_lock_answer_set_json(Pointer answer, byte[] json);

  static native int oauth_lock_answer_set_error(Pointer answer, byte[] oauthError, byte[] description);

  static native int oauth_lock_add_event_listener(
      EventCallback callback, Pointer userdata, FreeCallback freeUserdata, long[] outId);

  static native int oauth_lock_remove_event_listener(long id);
}
