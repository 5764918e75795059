package dev.oauthlock;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's Java snippet exactly as written: cut from the README's JVM section, run as a
 * single-file program ({@code java Fetch.java}) in its own JVM against the default store
 * ({@code $OAUTH_LOCK_DIR}) holding a {@code demo} login at the mock provider.
 */
class ReadmeTest {
  @TempDir Path dir;

  static String snippet(String lang) throws Exception {
    String readme = Files.readString(MultiProcessTest.repo().resolve("README.md"));
    String region = readme.split("<!-- jvm:begin -->")[1].split("<!-- jvm:end -->")[0];
    Matcher m = Pattern.compile("```" + lang + "\n(.*?)```", Pattern.DOTALL).matcher(region);
    assertTrue(m.find(), "no ```" + lang + " block in the README's JVM section");
    String code = m.group(1);
    assertFalse(m.find(), "more than one ```" + lang + " block");
    return code;
  }

  @Test
  void javaSnippetRunsAsWritten() throws Exception {
    Path src = dir.resolve("Fetch.java");
    Files.writeString(src, snippet("java"));
    Path storeDir = dir.resolve("store");
    String token;
    try (MockProvider mock = MockProvider.start("--lifetime", "1h");
        Store store = Store.open(storeDir)) {
      mock.logIn(store, "demo");
      try (TokenSource s = store.source("demo")) {
        token = s.accessToken().value();
      }
      String cp = Path.of(Store.class.getProtectionDomain().getCodeSource().getLocation().toURI())
          + File.pathSeparator
          + Path.of(com.sun.jna.Native.class.getProtectionDomain().getCodeSource().getLocation()
              .toURI());
      ProcessBuilder pb = new ProcessBuilder(
          Path.of(System.getProperty("java.home"), "bin", "java").toString(),
          "-Djna.library.path=" + MultiProcessTest.libDir(), "-cp", cp, src.toString());
      pb.environment().put("OAUTH_LOCK_DIR", storeDir.toString());
      pb.redirectErrorStream(true);
      Process p = pb.start();
      assertTrue(p.waitFor(120, TimeUnit.SECONDS));
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertEquals(0, p.exitValue(), out);
      assertTrue(out.startsWith("token " + BasicTest.sha256Prefix(token) + " (generation 1) "
          + "expires at "), out);
      assertFalse(out.contains(token), out);
    }
  }
}
