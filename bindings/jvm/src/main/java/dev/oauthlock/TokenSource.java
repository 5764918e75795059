package dev.oauthlock;

import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Hands out a valid access token for one key, refreshing it at most once per expiry across
 * every thread and process on the machine. Use one source from any number of threads at
 * once; {@link #close()} it when no thread uses it any more (closing twice is fine).
 */
public final class TokenSource implements AutoCloseable {
  /** The last token handed out with its native handle, which this source keeps alive. */
  private record Last(long address, AccessToken token) {}

  /** Frees the source and the kept token handle; the cleaner's action, so no back-reference. */
  private static final class Resources implements Runnable {
    final NativeHandle source;
    final AtomicReference<Last> last = new AtomicReference<>();

    Resources(long address) {
      source = new NativeHandle(address, Native::oauth_lock_source_free);
    }

    @Override
    public void run() {
      source.run();
      Last l = last.getAndSet(null);
      if (l != null) {
        Native.oauth_lock_token_free(l.address);
      }
    }
  }

  private final Resources resources;
  private final Cleaner.Cleanable cleanable;
  private final String key;

  TokenSource(long address, String key) {
    this.resources = new Resources(address);
    this.cleanable = NativeHandle.CLEANER.register(this, resources);
    this.key = key;
  }

  /** The native source's address (for the tests of the C calls). */
  long address() {
    return resources.source.get("TokenSource");
  }

  /** The credential's key. */
  public String key() {
    return key;
  }

  /**
   * A valid access token: the cached one while it is fresh (no lock, no system call), else
   * one refresh shared by every thread and process that needs it at the same moment.
   */
  public AccessToken accessToken() {
    long[] out = new long[1];
    long[] error = new long[1];
    try {
      OAuthLockException.check(Native.oauth_lock_source_access_token_e(
          resources.source.get("TokenSource"), out, error), error);
      return adopt(out[0]);
    } finally {
      Reference.reachabilityFence(this);
    }
  }

  /** A token valid for at least {@code atLeast} more (refreshing early if needed). */
  public AccessToken accessTokenValidFor(Duration atLeast) {
    if (atLeast == null) {
      throw OAuthLockException.of(Code.NULL_PARAMETER, "the duration is null", key, null, null);
    }
    long[] out = new long[1];
    long[] error = new long[1];
    try {
      OAuthLockException.check(Native.oauth_lock_source_access_token_valid_for_e(
          resources.source.get("TokenSource"), atLeast.toMillis(), out, error), error);
      return adopt(out[0]);
    } finally {
      Reference.reachabilityFence(this);
    }
  }

  /**
   * After an HTTP 401 with {@code rejectedToken} (the value that was sent): a different valid
   * token, from another thread's or process's refresh or from one shared refresh.
   */
  public AccessToken reject(String rejectedToken) {
    long[] out = new long[1];
    long[] error = new long[1];
    try {
      OAuthLockException.check(Native.oauth_lock_source_reject_e(
          resources.source.get("TokenSource"), Native.cString(rejectedToken), out, error), error);
      return adopt(out[0]);
    } finally {
      Reference.reachabilityFence(this);
    }
  }

  /** As {@link #reject(String)} with the token itself. */
  public AccessToken reject(AccessToken rejected) {
    return reject(rejected == null ? null : rejected.value());
  }

  /** Forces one refresh, proving the refresh token works (it rotates it). */
  public AccessToken verify() {
    long[] out = new long[1];
    long[] error = new long[1];
    try {
      OAuthLockException.check(
          Native.oauth_lock_source_verify_e(resources.source.get("TokenSource"), out, error),
          error);
      return adopt(out[0]);
    } finally {
      Reference.reachabilityFence(this);
    }
  }

  /**
   * Turns a token handle this thread owns into an {@link AccessToken}. The library hands out
   * the same handle while the cached token is unchanged, so an address equal to the kept
   * one is the same token: free the new reference and reuse the Java copy (no strings read).
   * This is sound because the kept handle is freed only after it is replaced: while it is
   * still kept, no other token can live at its address.
   */
  private AccessToken adopt(long address) {
    Last last = resources.last.get();
    if (last != null && last.address == address) {
      Native.oauth_lock_token_free(address);
      return last.token;
    }
    AccessToken token;
    try {
      token = AccessToken.read(address);
    } catch (RuntimeException | Error e) {
      Native.oauth_lock_token_free(address);
      throw e;
    }
    if (resources.last.compareAndSet(last, new Last(address, token))) {
      if (last != null) {
        Native.oauth_lock_token_free(last.address);
      }
    } else {
      Native.oauth_lock_token_free(address);
    }
    return token;
  }

  /**
   * Frees the native source (a refresh already running finishes and is committed). Must not
   * race with calls on this source from other threads, as in C.
   */
  @Override
  public void close() {
    cleanable.clean();
  }

  @Override
  public String toString() {
    return "TokenSource[" + key + "]";
  }
}
