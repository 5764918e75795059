package dev.oauthlock;

import java.time.Duration;

/**
 * Tuning of a {@link TokenSource} ({@code oauth_lock_source_options}). Start from {@link
 * #defaults()} (DESIGN.md's values, read from the library) and change what you need.
 */
public final class SourceOptions {
  private final long[] ms; // refresh_margin, lock_timeout, refresh_timeout, revalidate

  private SourceOptions(long[] ms) {
    this.ms = ms;
  }

  /** The library's defaults. */
  public static SourceOptions defaults() {
    Native.load();
    long[] ms = new long[4];
    long[] error = new long[1];
    OAuthLockException.check(Native.oauth_lock_source_options_default_e(ms, error), error);
    return new SourceOptions(ms);
  }

  private SourceOptions with(int i, Duration d) {
    if (d == null) {
      throw OAuthLockException.of(Code.NULL_PARAMETER, "the duration is null", null, null, null);
    }
    long[] copy = ms.clone();
    copy[i] = d.toMillis();
    return new SourceOptions(copy);
  }

  /** Refresh this long before expiry (capped at half the token's lifetime). */
  public SourceOptions refreshMargin(Duration d) {
    return with(0, d);
  }

  /** Longest wait for the credential's lock before {@link Code#BUSY}. */
  public SourceOptions lockTimeout(Duration d) {
    return with(1, d);
  }

  /** Longest a refresher may take before {@link Code#TRANSIENT}. */
  public SourceOptions refreshTimeout(Duration d) {
    return with(2, d);
  }

  /** How often the hot path checks the record file for another process's login or logout. */
  public SourceOptions revalidate(Duration d) {
    return with(3, d);
  }

  public Duration refreshMargin() {
    return Duration.ofMillis(ms[0]);
  }

  public Duration lockTimeout() {
    return Duration.ofMillis(ms[1]);
  }

  public Duration refreshTimeout() {
    return Duration.ofMillis(ms[2]);
  }

  public Duration revalidate() {
    return Duration.ofMillis(ms[3]);
  }

  /** The C struct's layout: four {@code uint64_t}, passed by pointer. */
  long[] toNative() {
    return ms.clone();
  }
}
