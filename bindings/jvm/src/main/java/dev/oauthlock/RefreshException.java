package dev.oauthlock;

/**
 * Thrown by a {@link Refresher} to classify why the refresh failed. The code crosses the C
 * ABI as is; the library accepts {@code INVALID_GRANT}, {@code TERMINAL} and {@code
 * TRANSIENT} and treats any other as {@code TRANSIENT}.
 */
public class RefreshException extends Exception {
  private static final long serialVersionUID = 1L;

  private final Code code;
  private final String oauthError;

  /**
   * @param code how the refresh failed
   * @param oauthError the provider's OAuth {@code error} string, e.g. {@code "invalid_client"}
   *     (may be null)
   * @param description a human-readable reason (may be null; never put a token in it)
   */
  public RefreshException(Code code, String oauthError, String description) {
    super(description);
    this.code = code;
    this.oauthError = oauthError;
  }

  /** The provider rejected the refresh token. */
  public static RefreshException invalidGrant(String description) {
    return new RefreshException(Code.INVALID_GRANT, "invalid_grant", description);
  }

  /** Another terminal OAuth error, named by {@code oauthError}. */
  public static RefreshException terminal(String oauthError, String description) {
    return new RefreshException(Code.TERMINAL, oauthError, description);
  }

  /** The provider is unreachable or busy: retry later. */
  public static RefreshException transientFailure(String description) {
    return new RefreshException(Code.TRANSIENT, null, description);
  }

  public Code code() {
    return code;
  }

  public String oauthError() {
    return oauthError;
  }
}
