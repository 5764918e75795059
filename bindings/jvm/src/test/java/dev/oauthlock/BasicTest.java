package dev.oauthlock;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The basic flows against the strict mock provider, with counts read at /stats. */
class BasicTest {
  @TempDir Path dir;
  MockProvider mock;
  Store store;

  @BeforeEach
  void start() throws Exception {
    mock = MockProvider.start("--lifetime", "1h");
    store = Store.open(dir);
  }

  @AfterEach
  void stop() throws Exception {
    store.close();
    mock.close();
  }

  static String sha256Prefix(String s) throws Exception {
    byte[] d = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
    return HexFormat.of().formatHex(d).substring(0, 8);
  }

  @Test
  void savedLoginGivesItsTokenWithoutARefresh() throws Exception {
    Status saved = mock.logIn(store, "k");
    assertEquals(1, saved.generation());
    assertTrue(saved.hasRefreshToken() && saved.hasRefreshConfig() && saved.exists());
    try (TokenSource source = store.source("k")) {
      AccessToken t = source.accessToken();
      assertEquals(200, mock.resource(t.value()));
      assertEquals("Bearer", t.tokenType());
      assertEquals("Bearer " + t.value(), t.authorization());
      assertEquals(1, t.generation());
      assertEquals(sha256Prefix(t.value()), t.fingerprint());
      Instant exp = t.expiresAt().orElseThrow();
      assertTrue(exp.isAfter(Instant.now().plusSeconds(3000)), exp.toString());
      assertFalse(t.toString().contains(t.value()), t.toString());
      assertTrue(t.toString().contains(t.fingerprint()));
      // The same cached token is the same Java object: no strings copied per call.
      assertSame(t, source.accessToken());
    }
    assertEquals(0, mock.stat("refreshes"));
  }

  @Test
  void expiredTokenIsRefreshedOnceWithTheRecordsConfig() throws Exception {
    mock.logIn(store, "k", 0);
    try (TokenSource source = store.source("k")) {
      AccessToken t = source.accessToken();
      assertEquals(2, t.generation());
      assertEquals(200, mock.resource(t.value()));
      assertSame(t, source.accessToken());
    }
    assertEquals(1, mock.stat("refreshes"));
    assertEquals(0, mock.stat("replays"));
    Map<?, ?> updatedBy = (Map<?, ?>) store.status("k").get("updated_by");
    assertEquals("java", updatedBy.get("lang"));
  }

  @Test
  void rejectAfterA401RefreshesOnce() throws Exception {
    mock.logIn(store, "k");
    try (TokenSource source = store.source("k")) {
      AccessToken t = source.accessToken();
      mock.revokeAccess();
      assertEquals(401, mock.resource(t.value()));
      AccessToken fresh = source.reject(t.value());
      assertNotEquals(t.value(), fresh.value());
      assertEquals(200, mock.resource(fresh.value()));
      // A second reject of the same old token adopts the refresh already made.
      assertEquals(fresh.value(), source.reject(t).value());
    }
    assertEquals(1, mock.stat("refreshes"));
  }

  @Test
  void validForVerifyAndOAuth2Config() throws Exception {
    mock.logIn(store, "k");
    OAuth2Config config = OAuth2Config.of(mock.tokenUrl(), "oauth-lock-demo").with("body", "json");
    try (TokenSource source = store.source("k", config)) {
      AccessToken t = source.accessToken();
      assertEquals(1, t.generation());
      AccessToken longer = source.accessTokenValidFor(Duration.ofHours(2)); // 1 h tokens
      assertEquals(2, longer.generation());
      AccessToken verified = source.verify();
      assertEquals(3, verified.generation());
    }
    assertEquals(4, store.verify("k").generation());
    assertEquals(3, mock.stat("refreshes"));
    assertEquals(0, mock.stat("replays"));
  }

  @Test
  void statusListClearAndPaths() throws Exception {
    assertEquals(dir.toRealPath(), store.dir());
    assertEquals(dir.toRealPath().resolve("k.json"), store.pathOf("k"));
    Status none = store.status("k");
    assertFalse(none.exists());
    assertEquals(0, none.generation());
    mock.logIn(store, "k");
    mock.logIn(store, "a");
    List<Status> all = store.list();
    assertEquals(List.of("a", "k"), all.stream().map(Status::key).toList());
    Status k = all.get(1);
    assertEquals(store.pathOf("k"), k.path());
    assertEquals("ok", k.state());
    assertTrue(k.hasAccessToken());
    assertTrue(k.expiresAt().isPresent());
    assertFalse(k.json().contains((String) Json.parseObject(Files.readString(k.path()))
        .get("access_token")));
    assertTrue(store.clear("k"));
    assertFalse(store.clear("k"));
    assertFalse(Files.exists(store.pathOf("k")));
    try (TokenSource s = store.source("k")) {
      assertThrows(OAuthLockException.NeedsLogin.class, s::accessToken);
    }
  }

  @Test
  void saveWithAndWithoutDowngrade() {
    store.save("k", "{\"access_token\":\"at\",\"refresh_token\":\"rt\",\"expires_in\":600}");
    assertThrows(OAuthLockException.Downgrade.class,
        () -> store.save("k", "{\"access_token\":\"only\"}"));
    Status s = store.save("k", "{\"access_token\":\"only\"}", true);
    assertFalse(s.hasRefreshToken());
    try (TokenSource source = store.source("k")) {
      AccessToken t = source.accessToken();
      assertEquals("only", t.value());
      assertTrue(t.expiresAt().isEmpty());
    }
  }

  @Test
  void closingTwiceIsSafeAndAClosedHandleSaysSo() {
    Store other = Store.open(dir);
    TokenSource s = other.source("k");
    other.close();
    other.close();
    assertThrows(IllegalStateException.class, () -> other.status("k"));
    // Sources outlive their store.
    assertThrows(OAuthLockException.NeedsLogin.class, s::accessToken);
    s.close();
    s.close();
    assertThrows(IllegalStateException.class, s::accessToken);
  }

  @Test
  void unclosedHandlesAreFreedByTheCleaner() throws Exception {
    Refresher marker = c -> null;
    for (int i = 0; i < 200; i++) {
      Store.open(dir).source("k", marker); // neither is closed
    }
    // The native source calls free_userdata when freed, which drops the Java refresher.
    for (int i = 0; i < 200 && Callbacks.LIVE.containsValue(marker); i++) {
      System.gc();
      Thread.sleep(20);
    }
    assertFalse(Callbacks.LIVE.containsValue(marker), "the cleaner did not free the sources");
  }

  @Test
  void eventsReachAListenerAndJavaLogging() throws Exception {
    List<Event> seen = new CopyOnWriteArrayList<>();
    mock.logIn(store, "k", 0);
    Event.Subscription sub = Event.listen(seen::add);
    Event.Subscription log = Event.logToJavaLogging();
    try (TokenSource source = store.source("k")) {
      source.accessToken();
    } finally {
      sub.close();
      sub.close();
      log.close();
    }
    List<String> names = new ArrayList<>();
    for (Event e : seen) {
      names.add(e.event());
      assertEquals("k", e.key());
      assertEquals(store.pathOf("k").toString(), e.path());
      assertTrue(e.json().startsWith("{"));
    }
    assertTrue(names.contains("refreshed"), names.toString());
    int before = seen.size();
    store.verify("k");
    assertEquals(before, seen.size()); // removed listeners hear nothing
  }

  @Test
  void versionAndCodes() {
    Native.load();
    assertTrue(Native.string(Native.oauth_lock_version()).matches("\\d+\\.\\d+\\.\\d+.*"));
    for (Code c : Code.values()) {
      assertEquals(c.designName(), Native.string(Native.oauth_lock_code_name(c.number())));
      assertSame(c, Code.of(c.number()));
    }
    assertEquals(Code.UNKNOWN, Code.of(42));
    assertTrue(Code.BUSY.retryable() && Code.TRANSIENT.retryable() && !Code.CORRUPT.retryable());
  }
}
