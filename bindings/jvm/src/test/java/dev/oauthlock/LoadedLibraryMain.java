package dev.oauthlock;

import com.sun.jna.Pointer;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Run by LibraryLoadingTest in a JVM of its own: loads liboauth_lock as {@link Native} does and
 * prints the library's version, then the file the process mapped it from (the mapping of
 * /proc/self/maps that holds {@code oauth_lock_version}).
 */
public final class LoadedLibraryMain {
  private LoadedLibraryMain() {}

  public static void main(String[] args) throws Exception {
    System.out.println(OAuthLock.version());
    long address = Pointer.nativeValue(Native.LIB.getFunction("oauth_lock_version"));
    System.out.println(mappedFile(address));
  }

  /** The file /proc/self/maps gives for the mapping that contains {@code address}. */
  static String mappedFile(long address) throws Exception {
    for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
      String[] f = line.trim().split("\\s+", 6);
      String[] range = f[0].split("-");
      long lo = Long.parseUnsignedLong(range[0], 16);
      long hi = Long.parseUnsignedLong(range[1], 16);
      if (Long.compareUnsigned(address, lo) >= 0 && Long.compareUnsigned(address, hi) < 0) {
        return f.length == 6 ? f[5] : "";
      }
    }
    return "";
  }
}
