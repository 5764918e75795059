package dev.oauthlock;

import java.time.Instant;
import java.util.Optional;

/**
 * An access token: its value, type, expiry and the record generation it came from. An
 * immutable Java copy of the library's token (the native handle is freed at once), so it
 * needs no closing and may be shared between threads. {@link #toString()} shows only the
 * {@link #fingerprint()}, never the token.
 */
public final class AccessToken {
  private final String value;
  private final String tokenType;
  private final String fingerprint;
  private final long expiresAtMs;
  private final long generation;

  private AccessToken(
      String value, String tokenType, String fingerprint, long expiresAtMs, long generation) {
    this.value = value;
    this.tokenType = tokenType;
    this.fingerprint = fingerprint;
    this.expiresAtMs = expiresAtMs;
    this.generation = generation;
  }

  /** Copies a live {@code oauth_lock_token *} (the caller still frees it). */
  static AccessToken read(long token) {
    return new AccessToken(
        Native.string(Native.oauth_lock_token_value(token)),
        Native.string(Native.oauth_lock_token_type(token)),
        Native.string(Native.oauth_lock_token_fingerprint(token)),
        Native.oauth_lock_token_expires_at_ms(token),
        Native.oauth_lock_token_generation(token));
  }

  /** Reads then frees an {@code oauth_lock_token *} the caller owns. */
  static AccessToken take(long token) {
    try {
      return read(token);
    } finally {
      Native.oauth_lock_token_free(token);
    }
  }

  /** The token to send. A secret: never log it (log {@link #fingerprint()}). */
  public String value() {
    return value;
  }

  /** The token type, {@code "Bearer"} unless the provider said otherwise. */
  public String tokenType() {
    return tokenType;
  }

  /** The value of an {@code Authorization} header: {@code "Bearer <token>"}. */
  public String authorization() {
    return tokenType + " " + value;
  }

  /** When it expires; empty when the provider gave no expiry (used until rejected). */
  public Optional<Instant> expiresAt() {
    return expiresAtMs == 0 ? Optional.empty() : Optional.of(Instant.ofEpochMilli(expiresAtMs));
  }

  /** The record generation it came from (rises by one on every write of the record). */
  public long generation() {
    return generation;
  }

  /** The first 8 hex digits of the token's SHA-256: safe to log. */
  public String fingerprint() {
    return fingerprint;
  }

  @Override
  public String toString() {
    return "AccessToken[fingerprint=" + fingerprint + ", type=" + tokenType + ", expiresAt="
        + expiresAt().map(Instant::toString).orElse("none") + ", generation=" + generation + "]";
  }
}
