package dev.oauthlock;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every error code from its cause: the exact exception class and code, the key and path
 * named (in the fields and the message), and the record file byte-for-byte unchanged (for
 * InvalidGrant and Terminal the core marks the record needs_login by design: its tokens stay).
 */
class ErrorsTest {
  @TempDir Path dir;
  MockProvider mock;
  Store store;

  @BeforeEach
  void start() throws Exception {
    mock = MockProvider.start("--lifetime", "1h");
    store = Store.open(dir);
  }

  @AfterEach
  void stop() {
    store.close();
    mock.close();
  }

  /** Runs {@code call}, which must fail with {@code type}, naming {@code key} and {@code path}. */
  static <T extends OAuthLockException> T check(
      Class<T> type, Code code, String key, Path path, Executable call) {
    T e = assertThrows(type, call);
    assertSame(type, e.getClass());
    assertEquals(code, e.code());
    assertEquals(code.designName(), type.getSimpleName());
    if (key != null) {
      assertEquals(key, e.key().orElseThrow(), e.getMessage());
      assertTrue(e.getMessage().contains(key), e.getMessage());
    }
    if (path != null) {
      assertEquals(path, e.path().orElseThrow(), e.getMessage());
      assertTrue(e.getMessage().contains(path.toString()), e.getMessage());
    }
    return e;
  }

  byte[] record(String key) throws Exception {
    return Files.readAllBytes(store.pathOf(key));
  }

  /** A record without what a failed refresh adds: the shared backoff, with that write's stamp. */
  static Map<String, Object> lasting(byte[] record) {
    Map<String, Object> m =
        new java.util.HashMap<>(Json.parseObject(new String(record, StandardCharsets.UTF_8)));
    for (String volatileField : java.util.List.of("generation", "updated_at_ms", "updated_by",
        "backoff")) {
      m.remove(volatileField);
    }
    return m;
  }

  /** A failed refresh changed nothing but the shared backoff (DESIGN.md §4 step 9). */
  static void onlyBackoffAdded(byte[] before, byte[] after, String what) {
    assertEquals(lasting(before), lasting(after), what);
    assertTrue(Json.parseObject(new String(after, StandardCharsets.UTF_8)).get("backoff") != null,
        what + ": a backoff was recorded");
  }

  Map<String, Object> tokens(String key) throws Exception {
    Map<String, Object> r = Json.parseObject(Files.readString(store.pathOf(key)));
    return Map.of("access_token", r.get("access_token"), "refresh_token", r.get("refresh_token"),
        "expires_at_ms", r.get("expires_at_ms"));
  }

  @Test
  void needsLogin() throws Exception {
    try (TokenSource s = store.source("missing")) {
      check(OAuthLockException.NeedsLogin.class, Code.NEEDS_LOGIN, "missing",
          store.pathOf("missing"), s::accessToken);
    }
    assertFalse(Files.exists(store.pathOf("missing")));
    store.save("k", "{\"access_token\":\"at\",\"expires_in\":0}"); // expired, no refresh token
    byte[] before = record("k");
    try (TokenSource s = store.source("k")) {
      check(OAuthLockException.NeedsLogin.class, Code.NEEDS_LOGIN, "k", store.pathOf("k"),
          s::accessToken);
    }
    assertArrayEquals(before, record("k"));
  }

  @Test
  void invalidGrant() throws Exception {
    mock.logIn(store, "k", 0);
    Map<String, Object> before = tokens("k");
    // Someone outside oauth-lock spends the stored refresh token.
    String spend = Json.write(Map.of("grant_type", "refresh_token", "client_id", "oauth-lock-demo",
        "refresh_token", Json.parseObject(Files.readString(store.pathOf("k"))).get("refresh_token")));
    assertEquals(200, MockProvider.send("POST", mock.tokenUrl(), spend, null).statusCode());
    try (TokenSource s = store.source("k")) {
      OAuthLockException e = check(OAuthLockException.InvalidGrant.class, Code.INVALID_GRANT,
          "k", store.pathOf("k"), s::accessToken);
      assertEquals("invalid_grant", e.oauthError().orElseThrow());
    }
    assertEquals(before, tokens("k"));
    assertEquals("needs_login", store.status("k").state());
    byte[] dead = record("k");
    try (TokenSource s = store.source("k")) { // dead is dead once: no second request
      check(OAuthLockException.NeedsLogin.class, Code.NEEDS_LOGIN, "k", store.pathOf("k"),
          s::accessToken);
    }
    assertArrayEquals(dead, record("k"));
    assertEquals(1, mock.stat("invalid_grants"));
  }

  @Test
  void terminal() throws Exception {
    Map<String, Object> cred = mock.login();
    cred.put("expires_in", 0);
    cred.put("refresh", mock.refreshConfig("someone-else"));
    store.save("k", cred, false);
    Map<String, Object> before = tokens("k");
    try (TokenSource s = store.source("k")) {
      OAuthLockException e = check(OAuthLockException.Terminal.class, Code.TERMINAL, "k",
          store.pathOf("k"), s::accessToken);
      assertEquals("invalid_client", e.oauthError().orElseThrow());
      assertFalse(e.retryable());
    }
    assertEquals(before, tokens("k"));
  }

  @Test
  void transientFromFailuresAndMalformedAnswers() throws Exception {
    for (String flag : new String[] {"--fail-every", "--malformed-every"}) {
      try (MockProvider failing = MockProvider.start("--lifetime", "1h", flag, "1")) {
        failing.logIn(store, "k", 0);
        byte[] before = record("k");
        try (TokenSource s = store.source("k")) {
          OAuthLockException e = check(OAuthLockException.Transient.class, Code.TRANSIENT, "k",
              store.pathOf("k"), s::accessToken);
          assertTrue(e.retryable());
        }
        onlyBackoffAdded(before, record("k"), flag);
      }
    }
  }

  /** libc's flock(2), the lock the core takes on {@code <key>.lock}, held from the test. */
  interface LibC extends com.sun.jna.Library {
    LibC C = com.sun.jna.Native.load("c", LibC.class);

    int open(String path, int flags, int mode);

    int flock(int fd, int operation);

    int close(int fd);
  }

  @Test
  void busyWhileTheLockIsHeld() throws Exception {
    mock.logIn(store, "k", 0);
    byte[] before = record("k");
    Path lock = store.pathOf("k").resolveSibling("k.lock");
    int fd = LibC.C.open(lock.toString(), 02 | 0100, 0600); // O_RDWR | O_CREAT
    assertTrue(fd >= 0);
    try {
      assertEquals(0, LibC.C.flock(fd, 2)); // LOCK_EX
      try (TokenSource s = store.source("k",
          SourceOptions.defaults().lockTimeout(Duration.ofMillis(200)))) {
        OAuthLockException e = check(OAuthLockException.Busy.class, Code.BUSY, "k", lock,
            s::accessToken);
        assertTrue(e.retryable());
      }
    } finally {
      LibC.C.close(fd);
    }
    assertArrayEquals(before, record("k"));
    assertEquals(0, mock.stat("token_requests"));
  }

  @Test
  void downgrade() throws Exception {
    mock.logIn(store, "k");
    byte[] before = record("k");
    check(OAuthLockException.Downgrade.class, Code.DOWNGRADE, "k", store.pathOf("k"),
        () -> store.save("k", "{\"access_token\":\"no-refresh-token\"}"));
    assertArrayEquals(before, record("k"));
  }

  @Test
  void corrupt() throws Exception {
    byte[] garbage = "{\"format\": 1, \"key\": \"k\", \"generation\": ".getBytes();
    Files.write(store.pathOf("k"), garbage);
    try (TokenSource s = store.source("k")) {
      check(OAuthLockException.Corrupt.class, Code.CORRUPT, "k", store.pathOf("k"),
          s::accessToken);
    }
    assertArrayEquals(garbage, record("k"));
    assertInstanceOf(Map.class, store.status("k").get("problem"));
  }

  @Test
  void unsupportedFormat() throws Exception {
    byte[] future =
        "{\"format\": 2, \"key\": \"later\", \"generation\": 1, \"access_token\": \"at\"}".getBytes();
    Files.write(store.pathOf("later"), future);
    try (TokenSource s = store.source("later")) {
      check(OAuthLockException.UnsupportedFormat.class, Code.UNSUPPORTED_FORMAT, "later",
          store.pathOf("later"), s::accessToken);
    }
    check(OAuthLockException.UnsupportedFormat.class, Code.UNSUPPORTED_FORMAT, "later",
        store.pathOf("later"), () -> store.verify("later"));
    assertArrayEquals(future, record("later"));
  }

  @Test
  void io() throws Exception {
    Files.createDirectory(store.pathOf("k")); // the record is a directory
    try (TokenSource s = store.source("k")) {
      check(OAuthLockException.Io.class, Code.IO, "k", store.pathOf("k"), s::accessToken);
    }
    assertTrue(Files.isDirectory(store.pathOf("k")));
    Path aFile = dir.resolve("a-file");
    Files.writeString(aFile, "x");
    check(OAuthLockException.Io.class, Code.IO, null, null, () -> Store.open(aFile));
    assertEquals("x", Files.readString(aFile));
  }

  @Test
  void invalidArgument() throws Exception {
    for (String bad : new String[] {"", ".hidden", "..", "x".repeat(65), "tab\tkey", "é"}) {
      check(OAuthLockException.InvalidArgument.class, Code.INVALID_ARGUMENT, null, null,
          () -> store.source(bad));
    }
    mock.logIn(store, "k");
    byte[] before = record("k");
    String token = "\"access_token\":\"a\",\"refresh_token\":\"r\"";
    for (String bad : new String[] {
        "{" + token + ",\"refresh\":{\"token_url\":\"" + mock.tokenUrl() + "\",\"client_id\":\"c\",\"nope\":1}}",
        "{" + token + ",\"refresh\":{\"token_url\":\"" + mock.tokenUrl() + "\"}}",
        "{" + token + ",\"expires_in\":\"soon\"}",
        "{\"token_type\":\"Bearer\"}",
        "{" + token,
        "[]",
        "not json"}) {
      check(OAuthLockException.InvalidArgument.class, Code.INVALID_ARGUMENT, "k", null,
          () -> store.save("k", bad));
    }
    assertArrayEquals(before, record("k"));
  }

  @Test
  void insecure() throws Exception {
    mock.logIn(store, "k");
    byte[] before = record("k");
    OAuth2Config plain = OAuth2Config.of("http://auth.example.com/oauth/token", "my-app");
    check(OAuthLockException.Insecure.class, Code.INSECURE, "k", store.pathOf("k"),
        () -> store.save("k", "{\"access_token\":\"a\",\"refresh_token\":\"r\",\"refresh\":"
            + plain.json() + "}"));
    check(OAuthLockException.Insecure.class, Code.INSECURE, "k", null,
        () -> store.source("k", plain));
    assertArrayEquals(before, record("k"));
  }
}
