package dev.oauthlock;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.jna.Pointer;
import java.io.File;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Where liboauth_lock comes from: {@code -Djna.library.path} first (the dev build and these
 * tests); else the library a release jar carries at JNA's resource path ({@code
 * linux-x86-64/liboauth_lock.so}), even when the system's library path has another; else the
 * system's library path. Each case in a JVM of its own ({@link LoadedLibraryMain}), with a jar
 * that carries the dev build's library as a release jar carries the release build's.
 */
class LibraryLoadingTest {
  @TempDir Path dir;

  static Path devLibrary() throws Exception {
    return MultiProcessTest.libDir().resolve(System.mapLibraryName(Native.LIBRARY)).toRealPath();
  }

  /** A jar holding only the dev library at {@link Native#RESOURCE}. */
  Path resourceJar() throws Exception {
    Path jar = dir.resolve("native.jar");
    try (OutputStream file = Files.newOutputStream(jar);
        JarOutputStream out = new JarOutputStream(file)) {
      out.putNextEntry(new JarEntry(Native.RESOURCE));
      Files.copy(devLibrary(), out);
      out.closeEntry();
    }
    return jar;
  }

  /** LoadedLibraryMain's two lines: the version, the file the library was mapped from. */
  List<String> run(List<String> jvmOptions, Path extraClasspath, Map<String, String> env)
      throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(jvmOptions);
    cmd.add("-Djna.nosys=true");
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path")
        + (extraClasspath == null ? "" : File.pathSeparator + extraClasspath));
    cmd.add(LoadedLibraryMain.class.getName());
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.environment().remove("LD_LIBRARY_PATH");
    pb.environment().putAll(env);
    Process p = pb.start();
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the JVM hung");
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, p.exitValue(), out);
    List<String> lines = out.lines().toList();
    assertEquals(2, lines.size(), out);
    assertEquals(OAuthLock.version(), lines.get(0));
    return lines;
  }

  @Test
  void theTestsUseTheLibraryOnJnaLibraryPath() throws Exception {
    long address = Pointer.nativeValue(Native.LIB.getFunction("oauth_lock_version"));
    assertEquals(devLibrary().toString(), LoadedLibraryMain.mappedFile(address));
  }

  @Test
  void jnaLibraryPathWinsOverTheJarsLibrary() throws Exception {
    List<String> out = run(List.of("-Djna.library.path=" + MultiProcessTest.libDir()),
        resourceJar(), Map.of());
    assertEquals(devLibrary().toString(), out.get(1));
  }

  @Test
  void withoutJnaLibraryPathTheJarsLibraryWinsOverTheSystemsLibraryPath() throws Exception {
    // LD_LIBRARY_PATH offers the same library under its own name; the jar's copy, extracted
    // by JNA to a file of its own, is the one mapped.
    List<String> out = run(List.of(), resourceJar(),
        Map.of("LD_LIBRARY_PATH", MultiProcessTest.libDir().toString()));
    assertNotEquals(devLibrary().toString(), out.get(1));
    assertTrue(!out.get(1).isEmpty() && !out.get(1).startsWith(MultiProcessTest.repo().toString()),
        out.get(1));
  }

  @Test
  void aJarWithoutTheLibraryFallsBackToTheSystemsLibraryPath() throws Exception {
    List<String> out = run(List.of(), null,
        Map.of("LD_LIBRARY_PATH", MultiProcessTest.libDir().toString()));
    assertEquals(devLibrary().toString(), out.get(1));
  }
}
