package dev.oauthlock;

/**
 * A callback refresher, for providers the built-in OAuth2 refresher cannot talk to. It runs
 * under the credential's lock, on a library thread (never the caller's), possibly on several
 * threads at once for different keys; it must not use a {@link TokenSource} of the same key.
 */
@FunctionalInterface
public interface Refresher {
  /**
   * Spends the refresh token at the provider.
   *
   * @param credentialJson the credential read under the lock: {@code {"key", "generation",
   *     "access_token", "token_type", "expires_at_ms", "refresh_token", "scope", "id_token",
   *     "extra"}} (absent fields null; parse it with {@link Json#parseObject}). It holds the
   *     refresh token: never log it.
   * @return the new token fields in token-response shape ({@code access_token} required;
   *     {@code expires_in} or {@code expires_at_ms}, {@code refresh_token} (the old one is kept
   *     when omitted), ...), or {@code {"error": ..., "error_description": ...}}. Anything
   *     else fails the refresh as {@link Code#TRANSIENT}, the record unchanged.
   * @throws RefreshException a classified failure ({@code INVALID_GRANT}, {@code TERMINAL},
   *     {@code TRANSIENT}); any other exception is {@link Code#TRANSIENT}.
   */
  String refresh(String credentialJson) throws Exception;
}
