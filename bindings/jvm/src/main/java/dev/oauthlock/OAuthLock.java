package dev.oauthlock;

/** The library as a whole. */
public final class OAuthLock {
  private OAuthLock() {}

  /**
   * The version of the native library in use ({@code oauth_lock_version()}), e.g. {@code
   * "0.1.0"}: the workspace version it was built from, which is also this jar's version (its
   * {@code Implementation-Version}) when the library is the one bundled in the jar.
   */
  public static String version() {
    Native.load();
    return Native.string(Native.oauth_lock_version());
  }
}
