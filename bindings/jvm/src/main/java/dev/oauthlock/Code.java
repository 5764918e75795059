package dev.oauthlock;

/**
 * The error codes of DESIGN.md §5 with the C ABI's stable numbers ({@code oauth_lock_code}),
 * so a Java caller can switch on the same codes as every other language.
 */
public enum Code {
  /** No record, no refresh token, or the record is marked dead. Retry after a login. */
  NEEDS_LOGIN(1, "NeedsLogin"),
  /** The provider rejected the refresh token and no other writer rotated it. Log in again. */
  INVALID_GRANT(2, "InvalidGrant"),
  /** Another terminal OAuth error ({@code invalid_client}, ...). Retry after a fix. */
  TERMINAL(3, "Terminal"),
  /** Network error, timeout, 5xx, 429, a body that is not an OAuth response. Retry later. */
  TRANSIENT(4, "Transient"),
  /** The credential's lock was not obtained in time. Retry later. */
  BUSY(5, "Busy"),
  /** A save was refused because it would drop a refresh token. */
  DOWNGRADE(6, "Downgrade"),
  /** The record does not parse; it is left untouched. */
  CORRUPT(7, "Corrupt"),
  /** The record is of a newer format than this library understands. */
  UNSUPPORTED_FORMAT(8, "UnsupportedFormat"),
  /** A file-system error (path and OS error in the message). */
  IO(9, "Io"),
  /** A bad key, config, credential, option or JSON; the message names which and why. */
  INVALID_ARGUMENT(10, "InvalidArgument"),
  /** A plain-http token URL other than loopback. */
  INSECURE(11, "Insecure"),
  /** A required argument was null; nothing was done. */
  NULL_PARAMETER(100, "NullParameter"),
  /** A bug in oauth-lock (a panic caught at the C boundary); please report the message. */
  PANIC(101, "Panic"),
  /** A number this version does not know (a newer library). */
  UNKNOWN(-1, "Unknown");

  private final int number;
  private final String designName;

  Code(int number, String designName) {
    this.number = number;
    this.designName = designName;
  }

  /** The C ABI's number ({@code OAUTH_LOCK_NEEDS_LOGIN} = 1, ...). */
  public int number() {
    return number;
  }

  /** The name shared by every language (DESIGN.md §5), e.g. {@code "NeedsLogin"}. */
  public String designName() {
    return designName;
  }

  /** Whether retrying later without a change can succeed ({@link #TRANSIENT}, {@link #BUSY}). */
  public boolean retryable() {
    return this == TRANSIENT || this == BUSY;
  }

  /** The code with this C ABI number, or {@link #UNKNOWN}. */
  public static Code of(int number) {
    for (Code c : values()) {
      if (c.number == number) {
        return c;
      }
    }
    return UNKNOWN;
  }
}
