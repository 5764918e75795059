package dev.oauthlock;

import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * A failed oauth-lock call: the {@link Code}, the key and the record's path where there is
 * one, and the library's message (which names them, never a token). One nested subclass per
 * code, so callers may catch {@code OAuthLockException.NeedsLogin} or switch on {@link
 * #code()}.
 */
public class OAuthLockException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final Code code;
  private final String key;
  private final String path;
  private final String oauthError;

  OAuthLockException(Code code, String message, String key, String path, String oauthError) {
    super(message);
    this.code = code;
    this.key = key;
    this.path = path;
    this.oauthError = oauthError;
  }

  /** The error code (DESIGN.md §5, or the C ABI's own {@code NULL_PARAMETER}/{@code PANIC}). */
  public Code code() {
    return code;
  }

  /** The credential's key, when the call was about one. */
  public Optional<String> key() {
    return Optional.ofNullable(key);
  }

  /** The record's path (or the lock file's, for {@code BUSY}), when there is one. */
  public Optional<Path> path() {
    return Optional.ofNullable(path).map(Path::of);
  }

  /** The provider's OAuth {@code error} string (e.g. {@code "invalid_client"}), if any. */
  public Optional<String> oauthError() {
    return Optional.ofNullable(oauthError);
  }

  /** Whether retrying later without a change can succeed. */
  public boolean retryable() {
    return code.retryable();
  }

  /**
   * Throws the exception of a failed {@code _e} call: {@code rc} is the code it returned and
   * {@code error[0]} the {@code oauth_lock_error *} it wrote to its {@code out_error}, which
   * this frees. Does nothing when {@code rc} is 0 (the call then wrote NULL).
   */
  static void check(int rc, long[] error) {
    if (rc != 0) {
      throw of(rc, error[0]);
    }
  }

  /**
   * The exception of the call that returned {@code rc} and wrote {@code error} (an {@code
   * oauth_lock_error *}, freed here). Built only from that error, so it is the failed call's
   * own even when this runs on another thread than the call, or after other calls on the same
   * thread: never from the thread's last error, which a virtual thread could read on another
   * carrier thread than the call's.
   */
  static OAuthLockException of(int rc, long error) {
    if (error == 0) { // the library always writes one on failure: not expected
      return of(Code.of(rc), "oauth-lock call failed with code " + rc + " (no error)", null,
          null, null);
    }
    int code;
    String json;
    try {
      code = Native.oauth_lock_error_code(error);
      json = Native.string(Native.oauth_lock_error_json(error));
    } finally {
      Native.oauth_lock_error_free(error);
    }
    Object parsed = json == null ? null : Json.parse(json);
    if (!(parsed instanceof Map)) {
      return of(Code.of(code), "oauth-lock call failed with code " + code, null, null, null);
    }
    Map<?, ?> e = (Map<?, ?>) parsed;
    return of(
        Code.of(code),
        (String) e.get("message"),
        (String) e.get("key"),
        (String) e.get("path"),
        (String) e.get("oauth_error"));
  }

  static OAuthLockException of(
      Code code, String message, String key, String path, String oauthError) {
    switch (code) {
      case NEEDS_LOGIN:
        return new NeedsLogin(message, key, path, oauthError);
      case INVALID_GRANT:
        return new InvalidGrant(message, key, path, oauthError);
      case TERMINAL:
        return new Terminal(message, key, path, oauthError);
      case TRANSIENT:
        return new Transient(message, key, path, oauthError);
      case BUSY:
        return new Busy(message, key, path, oauthError);
      case DOWNGRADE:
        return new Downgrade(message, key, path, oauthError);
      case CORRUPT:
        return new Corrupt(message, key, path, oauthError);
      case UNSUPPORTED_FORMAT:
        return new UnsupportedFormat(message, key, path, oauthError);
      case IO:
        return new Io(message, key, path, oauthError);
      case INVALID_ARGUMENT:
        return new InvalidArgument(message, key, path, oauthError);
      case INSECURE:
        return new Insecure(message, key, path, oauthError);
      case NULL_PARAMETER:
        return new NullParameter(message, key, path, oauthError);
      default:
        return new OAuthLockException(code, message, key, path, oauthError);
    }
  }

  /** {@link Code#NEEDS_LOGIN}. */
  public static final class NeedsLogin extends OAuthLockException {
    private static final long serialVersionUID = 1L;

    NeedsLogin(String m, String k, String p, String o) {
      super(Code.NEEDS_LOGIN, m, k, p, o);
    }
  }

  /** {@link Code#INVALID_GRANT}. */
  public static final class InvalidGrant extends OAuthLockException {
    private static final long serialVersionUID = 1L;

    InvalidGrant(String m, String k, String p, String o) {
      super(Code.INVALID_GRANT, m, k, p, o);
    }
  }

  /** {@link Code#TERMINAL}. */
  public static final class Terminal extends OAuthLockException {
    private static final long serialVersionUID = 1L;

    Terminal(String m, String k, String p, String o) {
      super(Code.TERMINAL, m, k, p, o);
    }
  }

  /** {@link Code#TRANSIENT}. */
  public static final class Transient extends OAuthLockException {
    private static final long serialVersionUID = 1L;

    Transient(String m, String k, String p, String o) {
      super(Code.TRANSIENT, m, k, p, o);
    }
  }

  /** {@link Code#BUSY}. */
  public static final class Busy extends OAuthLockException {
    private static final long serialVersionUID = 1L;

    Busy(String m, String k, String p, String o) {
      super(Code.BUSY, m, k, p, o);
    }
  }

  /** {@link Code#DOWNGRADE}. */
  public static final class Downgrade extends OAuthLockException {
    private static final long serialVersionUID = 1L;

    Downgrade(String m, String k, String p, String o) {
      super(Code.DOWNGRADE, m, k, p, o);
    }
  }

  /** {@link Code#CORRUPT}. */
  public static final class Corrupt extends OAuthLockException {
    private static final long serialVersionUID = 1L;

    Corrupt(String m, String k, String p, String o) {
      super(Code.CORRUPT, m, k, p, o);
    }
  }

  /** {@link Code#UNSUPPORTED_FORMAT}. */
  public static final class UnsupportedFormat extends OAuthLockException {
    private static final long serialVersionUID = 1L;

    UnsupportedFormat(String m, String k, String p, String o) {
      super(Code.UNSUPPORTED_FORMAT, m, k, p, o);
    }
  }

  /** {@link Code#IO}. */
  public static final class Io extends OAuthLockException {
    private static final long serialVersionUID = 1L;

    Io(String m, String k, String p, String o) {
      super(Code.IO, m, k, p, o);
    }
  }

  /** {@link Code#INVALID_ARGUMENT}. */
  public static final class InvalidArgument extends OAuthLockException {
    private static final long serialVersionUID = 1L;

    InvalidArgument(String m, String k, String p, String o) {
      super(Code.INVALID_ARGUMENT, m, k, p, o);
    }
  }

  /** {@link Code#INSECURE}. */
  public static final class Insecure extends OAuthLockException {
    private static final long serialVersionUID = 1L;

    Insecure(String m, String k, String p, String o) {
      super(Code.INSECURE, m, k, p, o);
    }
  }

  /** {@link Code#NULL_PARAMETER}: a required argument was null. */
  public static final class NullParameter extends OAuthLockException {
    private static final long serialVersionUID = 1L;

    NullParameter(String m, String k, String p, String o) {
      super(Code.NULL_PARAMETER, m, k, p, o);
    }
  }
}
