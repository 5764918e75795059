import dev.oauthlock.AccessToken;
import dev.oauthlock.Code;
import dev.oauthlock.OAuthLock;
import dev.oauthlock.OAuthLockException;
import dev.oauthlock.Store;
import dev.oauthlock.TokenSource;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;

/**
 * scripts/test-package-jvm's user program, compiled beside the README's Fetch.java against the
 * packaged jar (never the repository's build) and run with no library path:
 *
 * <pre>
 *   PackageCheck check MOCK_URL VERSION   the checks below, each printed "ok   ..." or
 *                                         "FAIL ...: why"; exits 1 if any failed
 *   PackageCheck fingerprint KEY          prints the fingerprint of KEY's current token
 * </pre>
 *
 * <p>The checks, in the default store ($OAUTH_LOCK_DIR): the library is the jar's own (no
 * jna.library.path, no LD_LIBRARY_PATH, no liboauth_lock.so file mapped) and of VERSION, as the
 * jar's manifest says; a login at the mock provider saved as "demo"; the README's Fetch prints
 * that token's fingerprint; /resource accepts the token; after POST /admin/revoke-access it
 * answers 401, reject() gives a different token of the next generation that /resource accepts;
 * a missing credential is OAuthLockException.NeedsLogin. Never prints a token.
 */
public final class PackageCheck {
  private PackageCheck() {}

  static final HttpClient HTTP =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
  static int failed;

  static void check(String label, boolean ok, String why) {
    if (ok) {
      System.out.println("ok   " + label);
    } else {
      failed++;
      System.out.println("FAIL " + label + ": " + why);
    }
  }

  static HttpResponse<String> send(String method, String url, String bearer) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url))
        .timeout(Duration.ofSeconds(30))
        .method(method, "POST".equals(method)
            ? HttpRequest.BodyPublishers.ofString("{}") : HttpRequest.BodyPublishers.noBody())
        .header("Content-Type", "application/json");
    if (bearer != null) {
      b.header("Authorization", bearer);
    }
    return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  static String sha256Prefix(String s) throws Exception {
    byte[] d = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
    return HexFormat.of().formatHex(d).substring(0, 8);
  }

  /** The README's Fetch.main, its standard output captured. */
  static String runFetch() throws Exception {
    PrintStream out = System.out;
    ByteArrayOutputStream buffer = new ByteArrayOutputStream();
    System.setOut(new PrintStream(buffer, true, StandardCharsets.UTF_8));
    try {
      Fetch.main(new String[0]);
    } finally {
      System.setOut(out);
    }
    return buffer.toString(StandardCharsets.UTF_8);
  }

  /** What to print of an output that may hold a token: only an output that does not. */
  static String shown(String output, String... tokens) {
    for (String t : tokens) {
      if (output.contains(t)) {
        return "(the output holds a token: not shown)";
      }
    }
    return output.isEmpty() ? "(nothing)" : output.strip();
  }

  public static void main(String[] args) throws Exception {
    if (args.length == 2 && args[0].equals("fingerprint")) {
      try (Store store = Store.openDefault(); TokenSource source = store.source(args[1])) {
        System.out.println(source.accessToken().fingerprint());
      }
      return;
    }
    if (args.length != 3 || !args[0].equals("check")) {
      System.err.println("usage: PackageCheck check MOCK_URL VERSION | fingerprint KEY");
      System.exit(2);
    }
    String mock = args[1];
    String version = args[2];

    String libraryPath = System.getProperty("jna.library.path");
    String ldLibraryPath = System.getenv("LD_LIBRARY_PATH");
    check("no jna.library.path, no LD_LIBRARY_PATH",
        libraryPath == null && (ldLibraryPath == null || ldLibraryPath.isEmpty()),
        "jna.library.path=" + libraryPath + " LD_LIBRARY_PATH=" + ldLibraryPath);
    check("OAuthLock.version() is " + version, version.equals(OAuthLock.version()),
        OAuthLock.version());
    String manifest = OAuthLock.class.getPackage().getImplementationVersion();
    check("the jar's Implementation-Version is " + version, version.equals(manifest),
        String.valueOf(manifest));
    // Loaded: from the jar's linux-x86-64/liboauth_lock.so, which JNA extracts to a file of
    // its own name; so no liboauth_lock.so of the system's or a build's is mapped.
    List<String> mapped = Files.readAllLines(Path.of("/proc/self/maps")).stream()
        .filter(l -> l.contains("liboauth_lock")).toList();
    check("the library is the jar's (no liboauth_lock.so file mapped)", mapped.isEmpty(),
        String.join("; ", mapped));

    try (Store store = Store.openDefault()) {
      HttpResponse<String> login = send("POST", mock + "/login", null);
      String body = login.body().strip();
      check("POST /login", login.statusCode() == 200 && body.endsWith("}"),
          "HTTP " + login.statusCode());
      // The token response plus the record's own refresh config (token URL, client id).
      String credential = body.substring(0, body.length() - 1)
          + ", \"refresh\": {\"token_url\": \"" + mock + "/oauth/token\", "
          + "\"client_id\": \"oauth-lock-demo\"}}";
      check("save demo", store.save("demo", credential, false).generation() == 1, "");

      try (TokenSource source = store.source("demo")) {
        AccessToken t1 = source.accessToken();
        String printed = runFetch();
        String expected = "token " + sha256Prefix(t1.value()) + " (generation 1) expires at ";
        check("README Fetch.java prints the token's fingerprint, not the token",
            printed.startsWith(expected) && !printed.contains(t1.value()),
            "expected '" + expected + "...', got " + shown(printed, t1.value()));
        check("GET /resource with the token: 200",
            send("GET", mock + "/resource", t1.authorization()).statusCode() == 200, "");

        send("POST", mock + "/admin/revoke-access", null);
        int revoked = send("GET", mock + "/resource", t1.authorization()).statusCode();
        check("after POST /admin/revoke-access: 401", revoked == 401, "HTTP " + revoked);
        AccessToken t2 = source.reject(t1);
        check("reject() gives a different token of the next generation",
            !t2.value().equals(t1.value()) && t2.generation() == t1.generation() + 1,
            "generation " + t1.generation() + " -> " + t2.generation()
                + (t2.value().equals(t1.value()) ? ", the same token" : ""));
        int again = send("GET", mock + "/resource", t2.authorization()).statusCode();
        check("GET /resource with the new token: 200", again == 200, "HTTP " + again);
      }

      try (TokenSource nobody = store.source("nobody")) {
        AccessToken t = nobody.accessToken();
        check("a missing credential throws", false, "got a token of generation " + t.generation());
      } catch (OAuthLockException e) {
        check("a missing credential is OAuthLockException.NeedsLogin (NEEDS_LOGIN, key nobody)",
            e.getClass() == OAuthLockException.NeedsLogin.class && e.code() == Code.NEEDS_LOGIN
                && e.key().orElse("").equals("nobody"),
            e.getClass().getName() + " " + e.code() + " key " + e.key());
      }
    } catch (OAuthLockException e) {
      check("no unexpected OAuthLockException", false, e.code() + ": " + e.getMessage());
    }

    // scripts/test-package-jvm counts the lines; the exit status says whether all passed.
    System.exit(failed == 0 ? 0 : 1);
  }
}
