package dev.oauthlock;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Several JVM processes at once next to a C process, all on one store and one credential
 * against the strict mock provider with 1 s tokens (it rotates on every refresh and revokes
 * the family on any replay). Asserted at /stats: 0 replays, 0 revoked families, 0
 * invalid_grant, and exactly one refresh per rotation committed to the record.
 */
class MultiProcessTest {
  static final int JVMS = 3;
  static final int THREADS = 4;
  static final int SECONDS = 10;

  @TempDir Path dir;

  static Path repo() {
    return Path.of(System.getProperty("oauthlock.repo", "../..")).toAbsolutePath().normalize();
  }

  static Path libDir() {
    return Path.of(System.getProperty("jna.library.path")).toAbsolutePath();
  }

  /** Compiles the C side (against the committed header and the cargo-built library). */
  Path compileCLoop() throws Exception {
    Path exe = dir.resolve("multiprocess");
    Process cc = new ProcessBuilder("cc", "-std=c11", "-Wall", "-Wextra", "-pthread", "-O1",
        "-I" + repo().resolve("include"), "-I" + repo().resolve("tests/c"),
        repo().resolve("tests/c/multiprocess.c").toString(),
        "-L" + libDir(), "-loauth_lock", "-Wl,-rpath," + libDir(), "-o", exe.toString())
        .inheritIO().start();
    assertEquals(0, cc.waitFor(), "cc failed");
    return exe;
  }

  @Test
  void jvmsAndACProcessShareOneCredential() throws Exception {
    Path exe = compileCLoop();
    Path storeDir = dir.resolve("store");
    try (MockProvider mock = MockProvider.start("--lifetime", "1s");
        Store store = Store.open(storeDir)) {
      mock.logIn(store, "soak");
      long gen0 = store.status("soak").generation();
      String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
      List<Process> procs = new ArrayList<>();
      for (int i = 0; i < JVMS; i++) {
        procs.add(new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
            "-Djna.library.path=" + libDir(), "-Djna.nosys=true", SoakMain.class.getName(),
            storeDir.toString(), mock.url, "soak", "" + THREADS, "" + SECONDS)
            .redirectError(ProcessBuilder.Redirect.INHERIT).start());
      }
      procs.add(new ProcessBuilder(exe.toString(), "--client", storeDir.toString(), mock.url,
          "" + THREADS, "" + SECONDS).redirectError(ProcessBuilder.Redirect.INHERIT).start());
      List<String> lines = new ArrayList<>();
      for (Process p : procs) {
        assertTrue(p.waitFor(SECONDS + 60, TimeUnit.SECONDS), "a process hung");
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        lines.add(out);
        assertEquals(0, p.exitValue(), out);
      }
      long rotations = store.status("soak").generation() - gen0;
      Map<String, Object> stats = mock.stats();
      String summary = String.join("\n", lines) + "\nprovider: " + Json.write(stats)
          + "\nrotations: " + rotations;
      System.out.println(summary.replace("\n", "\n  "));
      assertEquals(0L, stats.get("replays"), summary);
      assertEquals(0L, stats.get("revoked_families"), summary);
      assertEquals(0L, stats.get("invalid_grants"), summary);
      assertEquals(rotations, ((Number) stats.get("refreshes")).longValue(), summary);
      assertTrue(rotations >= SECONDS - 2, summary); // 1 s tokens: about one a second
      assertEquals(JVMS + 1, lines.stream().filter(l -> l.matches(".*calls [1-9]\\d* .*")).count(),
          summary);
      assertTrue(lines.stream().anyMatch(l -> l.startsWith("c pid")), summary);
    }
  }
}
