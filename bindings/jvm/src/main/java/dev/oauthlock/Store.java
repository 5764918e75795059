package dev.oauthlock;

import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A store: a directory of credentials shared by every process that opens it, in any
 * language. Safe to use from any number of threads at once; {@link #close()} it when done
 * (sources made from it stay valid). All calls block (for a lock, the network, a refresher).
 *
 * <pre>{@code
 * try (Store store = Store.openDefault(); TokenSource source = store.source("demo")) {
 *   String header = source.accessToken().authorization();
 * }
 * }</pre>
 */
public final class Store implements AutoCloseable {
  private final NativeHandle handle;
  private final Cleaner.Cleanable cleanable;

  private Store(long address) {
    this.handle = new NativeHandle(address, Native::oauth_lock_store_free);
    this.cleanable = NativeHandle.CLEANER.register(this, handle);
  }

  /** Opens (creating with mode 0700 if missing) the store in {@code dir}. */
  public static Store open(Path dir) {
    if (dir == null) {
      throw OAuthLockException.of(
          Code.NULL_PARAMETER, "the store directory is null (use Store.openDefault())", null,
          null, null);
    }
    return open(Native.cString(dir.toString()));
  }

  /**
   * Opens the store at {@code location}: a directory (created with mode 0700 if missing) or a
   * {@code postgresql://user@host:port/database} URL (DESIGN.md §10; the password from the URL
   * or {@code PGPASSWORD}, never shown in a message). The string goes to the core as it is.
   */
  public static Store open(String location) {
    if (location == null) {
      throw OAuthLockException.of(
          Code.NULL_PARAMETER, "the store location is null (use Store.openDefault())", null,
          null, null);
    }
    return open(Native.cString(location));
  }

  /**
   * Opens the default store: {@code $OAUTH_LOCK_STORE}, else {@code $OAUTH_LOCK_DIR}, else
   * {@code $XDG_STATE_HOME/oauth-lock} ({@code ~/.local/state/oauth-lock}).
   */
  public static Store openDefault() {
    return open((byte[]) null);
  }

  private static Store open(byte[] dir) {
    Native.load();
    long[] out = new long[1];
    long[] error = new long[1];
    OAuthLockException.check(Native.oauth_lock_store_new_e(dir, out, error), error);
    return new Store(out[0]);
  }

  long address() {
    return handle.get("Store");
  }

  /** The store's directory (canonical path). */
  public Path dir() {
    long[] out = new long[1];
    long[] error = new long[1];
    try {
      OAuthLockException.check(Native.oauth_lock_store_dir_e(address(), out, error), error);
      return Path.of(Native.takeString(out[0]));
    } finally {
      Reference.reachabilityFence(this);
    }
  }

  /** The record file of {@code key}, whether or not it exists. */
  public Path pathOf(String key) {
    long[] out = new long[1];
    long[] error = new long[1];
    try {
      OAuthLockException.check(
          Native.oauth_lock_store_path_of_e(address(), Native.cString(key), out, error), error);
      return Path.of(Native.takeString(out[0]));
    } finally {
      Reference.reachabilityFence(this);
    }
  }

  /**
   * A source for {@code key} refreshed with the record's own {@code refresh} config (saved
   * with the login), so any process can refresh it knowing only the key. The record need
   * not exist yet.
   */
  public TokenSource source(String key) {
    return source(key, (SourceOptions) null);
  }

  /** As {@link #source(String)}, tuned by {@code options}. */
  public TokenSource source(String key, SourceOptions options) {
    long[] out = new long[1];
    long[] error = new long[1];
    try {
      OAuthLockException.check(Native.oauth_lock_source_new_e(
          address(), Native.cString(key), opts(options), out, error), error);
      return new TokenSource(out[0], key);
    } finally {
      Reference.reachabilityFence(this);
    }
  }

  /** A source for {@code key} refreshed by the built-in OAuth2 refresher with {@code config}. */
  public TokenSource source(String key, OAuth2Config config) {
    return source(key, config, null);
  }

  /** As {@link #source(String, OAuth2Config)}, tuned by {@code options}. */
  public TokenSource source(String key, OAuth2Config config, SourceOptions options) {
    long[] out = new long[1];
    long[] error = new long[1];
    try {
      OAuthLockException.check(Native.oauth_lock_source_new_oauth2_e(
          address(), Native.cString(key), config == null ? null : Native.cString(config.json()),
          opts(options), out, error), error);
      return new TokenSource(out[0], key);
    } finally {
      Reference.reachabilityFence(this);
    }
  }

  /** A source for {@code key} refreshed by a Java {@link Refresher}. */
  public TokenSource source(String key, Refresher refresher) {
    return source(key, refresher, null);
  }

  /** As {@link #source(String, Refresher)}, tuned by {@code options}. */
  public TokenSource source(String key, Refresher refresher, SourceOptions options) {
    if (refresher == null) {
      throw OAuthLockException.of(Code.NULL_PARAMETER, "the refresher is null", key, null, null);
    }
    long[] out = new long[1];
    long[] error = new long[1];
    com.sun.jna.Pointer userdata = Callbacks.register(refresher);
    try {
      int rc = Native.oauth_lock_source_new_callback_e(
          address(), Native.cString(key), Callbacks.REFRESH, userdata, Callbacks.FREE,
          opts(options), out, error);
      if (rc != 0) {
        Callbacks.unregister(userdata); // on failure the caller still owns userdata
        throw OAuthLockException.of(rc, error[0]);
      }
      return new TokenSource(out[0], key);
    } finally {
      Reference.reachabilityFence(this);
    }
  }

  /**
   * Stores a login for {@code key}: {@code credentialJson} in token-response shape ({@code
   * access_token}, {@code refresh_token}, {@code expires_in} or {@code expires_at_ms}, ...)
   * with an optional {@code refresh} object (the {@link OAuth2Config} fields) and {@code
   * mirror}. Unless {@code allowDowngrade}, replacing a credential that has a refresh token
   * with one that has none fails with {@link Code#DOWNGRADE}. Returns the new status.
   */
  public Status save(String key, String credentialJson, boolean allowDowngrade) {
    long[] error = new long[1];
    try {
      OAuthLockException.check(Native.oauth_lock_store_save_e(
          address(), Native.cString(key), Native.cString(credentialJson), allowDowngrade ? 1 : 0,
          error), error);
    } finally {
      Reference.reachabilityFence(this);
    }
    return status(key);
  }

  /** {@link #save(String, String, boolean)} without allowing a downgrade. */
  public Status save(String key, String credentialJson) {
    return save(key, credentialJson, false);
  }

  /** {@link #save(String, String, boolean)} with the credential as a map (written as JSON). */
  public Status save(String key, Map<String, ?> credential, boolean allowDowngrade) {
    return save(key, credential == null ? null : Json.write(credential), allowDowngrade);
  }

  /** Removes the credential (a logout); whether there was one. */
  public boolean clear(String key) {
    byte[] existed = new byte[1];
    long[] error = new long[1];
    try {
      OAuthLockException.check(
          Native.oauth_lock_store_clear_e(address(), Native.cString(key), existed, error), error);
      return existed[0] != 0;
    } finally {
      Reference.reachabilityFence(this);
    }
  }

  /** What is known about {@code key}, without locking or refreshing. */
  public Status status(String key) {
    long[] out = new long[1];
    long[] error = new long[1];
    try {
      OAuthLockException.check(
          Native.oauth_lock_store_status_e(address(), Native.cString(key), out, error), error);
      return Status.parse(Native.takeString(out[0]));
    } finally {
      Reference.reachabilityFence(this);
    }
  }

  /** The status of every credential in the store, ordered by key. */
  public List<Status> list() {
    long[] out = new long[1];
    long[] error = new long[1];
    String json;
    try {
      OAuthLockException.check(Native.oauth_lock_store_list_e(address(), out, error), error);
      json = Native.takeString(out[0]);
    } finally {
      Reference.reachabilityFence(this);
    }
    List<Status> all = new ArrayList<>();
    for (Object o : (List<?>) Json.parse(json)) {
      @SuppressWarnings("unchecked")
      Map<String, Object> m = (Map<String, Object>) o;
      all.add(new Status(m, Json.write(m)));
    }
    return all;
  }

  /** Forces one refresh with the record's own config, proving the refresh token works. */
  public AccessToken verify(String key) {
    long[] out = new long[1];
    long[] error = new long[1];
    try {
      OAuthLockException.check(
          Native.oauth_lock_store_verify_e(address(), Native.cString(key), out, error), error);
      return AccessToken.take(out[0]);
    } finally {
      Reference.reachabilityFence(this);
    }
  }

  /** Frees the native store; sources made from it stay valid. Closing twice is fine. */
  @Override
  public void close() {
    cleanable.clean();
  }

  @Override
  public String toString() {
    return "Store[" + dir() + "]";
  }

  private static long[] opts(SourceOptions options) {
    return options == null ? null : options.toNative();
  }
}
