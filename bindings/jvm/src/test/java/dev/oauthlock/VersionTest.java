package dev.oauthlock;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.nio.file.Files;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** One version everywhere: the workspace's (Cargo.toml), the pom's, the native library's. */
class VersionTest {
  /** {@code [workspace.package] version} of the workspace's Cargo.toml. */
  static String workspaceVersion() throws Exception {
    String toml = Files.readString(MultiProcessTest.repo().resolve("Cargo.toml"));
    Matcher m = Pattern.compile(
        "(?ms)^\\[workspace\\.package\\]$(?:(?!^\\[).)*?^version\\s*=\\s*\"([^\"]+)\"")
        .matcher(toml);
    if (!m.find()) {
      throw new AssertionError("no [workspace.package] version in Cargo.toml");
    }
    return m.group(1);
  }

  @Test
  void theNativeLibraryIsOfTheWorkspaceVersion() throws Exception {
    assertEquals(workspaceVersion(), OAuthLock.version());
  }

  @Test
  void thePomIsOfTheWorkspaceVersion() throws Exception {
    String pom = System.getProperty("oauthlock.pomVersion");
    assertNotNull(pom, "surefire passes the pom's version as oauthlock.pomVersion");
    assertEquals(workspaceVersion(), pom);
  }

  @Test
  void theJarManifestIfAnySaysTheSameVersion() throws Exception {
    // Null when the classes come from target/classes (mvn test); the jar's manifest has it.
    String manifest = OAuthLock.class.getPackage().getImplementationVersion();
    if (manifest != null) {
      assertEquals(workspaceVersion(), manifest);
    }
  }
}
