package dev.oauthlock;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bad input from Java: null arguments, malformed or unknown-field configs, and callback
 * refreshers that answer garbage, a wrong code, nothing, or throw. Each gives its documented
 * code with the key named, and nothing in the store changes.
 */
class BadInputTest {
  @TempDir Path dir;
  Store store;
  byte[] before;

  @BeforeEach
  void start() throws Exception {
    store = Store.open(dir);
    store.save("k", "{\"access_token\":\"at-0\",\"refresh_token\":\"rt-0\",\"expires_in\":0}");
    before = Files.readAllBytes(store.pathOf("k"));
  }

  @AfterEach
  void unchanged() throws Exception {
    assertArrayEquals(before, Files.readAllBytes(store.pathOf("k")));
    store.close();
  }

  static void nullParameter(org.junit.jupiter.api.function.Executable call) {
    ErrorsTest.check(OAuthLockException.NullParameter.class, Code.NULL_PARAMETER, null, null, call);
  }

  @Test
  void nullArguments() {
    nullParameter(() -> Store.open((java.nio.file.Path) null));
    nullParameter(() -> Store.open((String) null));
    nullParameter(() -> store.source(null));
    nullParameter(() -> store.source(null, (SourceOptions) null));
    nullParameter(() -> store.source("k", (OAuth2Config) null));
    nullParameter(() -> store.source("k", (Refresher) null));
    nullParameter(() -> store.save(null, "{}"));
    nullParameter(() -> store.save("k", (String) null));
    nullParameter(() -> store.save("k", (Map<String, ?>) null, false));
    nullParameter(() -> store.clear(null));
    nullParameter(() -> store.status(null));
    nullParameter(() -> store.verify(null));
    nullParameter(() -> store.pathOf(null));
    nullParameter(() -> Event.listen(null));
    nullParameter(() -> SourceOptions.defaults().lockTimeout(null));
    try (TokenSource s = store.source("k")) {
      nullParameter(() -> s.reject((String) null));
      nullParameter(() -> s.reject((AccessToken) null));
      nullParameter(() -> s.accessTokenValidFor(null));
    }
  }

  @Test
  void malformedAndUnknownConfigFields() {
    for (String bad : new String[] {
        "not json",
        "{\"token_url\": \"http://127.0.0.1:1/t\", \"client_id\": \"c\"",
        "{\"token_url\": \"http://127.0.0.1:1/t\", \"client_id\": \"c\", \"colour\": \"blue\"}",
        "{\"token_url\": \"http://127.0.0.1:1/t\"}",
        "{\"token_url\": \"http://127.0.0.1:1/t\", \"client_id\": \"c\", \"body\": \"xml\"}",
        "[]"}) {
      OAuthLockException e = ErrorsTest.check(OAuthLockException.InvalidArgument.class,
          Code.INVALID_ARGUMENT, "k", null, () -> store.source("k", OAuth2Config.fromJson(bad)));
      assertFalse(e.getMessage().isEmpty());
    }
    OAuthLockException unknown = ErrorsTest.check(OAuthLockException.InvalidArgument.class,
        Code.INVALID_ARGUMENT, "k", null, () -> store.source("k",
            OAuth2Config.of("http://127.0.0.1:1/t", "c").with("colour", "blue")));
    assertTrue(unknown.getMessage().contains("colour"), unknown.getMessage());
  }

  /** A callback refresher's answer that fails the refresh with {@code code}. */
  /**
   * The refresher's failure gives `code`. A transient one leaves the tokens and adds only the
   * shared backoff. The record is then put back as it was, so that the next case reaches its
   * refresher too; what the failure wrote is returned.
   */
  Map<String, Object> refreshFails(Code code, Class<? extends OAuthLockException> type,
      Refresher refresher) throws Exception {
    SourceOptions quick = SourceOptions.defaults().refreshTimeout(Duration.ofSeconds(5));
    try (TokenSource s = store.source("k", refresher, quick)) {
      ErrorsTest.check(type, code, "k", store.pathOf("k"), s::accessToken);
    }
    byte[] after = Files.readAllBytes(store.pathOf("k"));
    if (code == Code.TRANSIENT) {
      ErrorsTest.onlyBackoffAdded(before, after, code.toString());
    }
    Files.write(store.pathOf("k"), before);
    return Json.parseObject(new String(after, java.nio.charset.StandardCharsets.UTF_8));
  }

  @Test
  void callbackAnsweringGarbageIsTransient() throws Exception {
    refreshFails(Code.TRANSIENT, OAuthLockException.Transient.class, c -> "not json at all");
    refreshFails(Code.TRANSIENT, OAuthLockException.Transient.class, c -> "{\"foo\": 1}");
    refreshFails(Code.TRANSIENT, OAuthLockException.Transient.class, c -> "[1, 2]");
    refreshFails(Code.TRANSIENT, OAuthLockException.Transient.class, c -> null);
    refreshFails(Code.TRANSIENT, OAuthLockException.Transient.class,
        c -> "{\"access_token\": 42}");
  }

  @Test
  void callbackThrowingOrGivingAWrongCodeIsTransient() throws Exception {
    refreshFails(Code.TRANSIENT, OAuthLockException.Transient.class, c -> {
      throw new IllegalStateException("provider SDK blew up");
    });
    for (Code wrong : new Code[] {Code.BUSY, Code.NEEDS_LOGIN, Code.PANIC, Code.UNKNOWN}) {
      refreshFails(Code.TRANSIENT, OAuthLockException.Transient.class, c -> {
        throw new RefreshException(wrong, null, "a code a refresher may not return");
      });
    }
    refreshFails(Code.TRANSIENT, OAuthLockException.Transient.class, c -> {
      throw RefreshException.transientFailure("provider down");
    });
  }

  /**
   * A callback that answers after refresh_timeout: the caller gets Transient at the timeout,
   * but the refresh keeps the lock until the callback returns and commits its late answer
   * (DESIGN.md §4 step 6), so a caller that asks meanwhile waits and gets it, sending nothing.
   */
  @Test
  void callbackAnsweringLateIsTransientForTheCallerAndItsAnswerIsCommitted() throws Exception {
    SourceOptions quick = SourceOptions.defaults().refreshTimeout(Duration.ofMillis(300));
    try (TokenSource s = store.source("k", c -> {
      Thread.sleep(1000);
      return "{\"access_token\": \"late\", \"expires_in\": 60}";
    }, quick)) {
      ErrorsTest.check(OAuthLockException.Transient.class, Code.TRANSIENT, "k", null,
          s::accessToken);
      // No refresher and no refresh config: had it to refresh, this would be InvalidArgument.
      try (TokenSource other = store.source("k")) {
        assertEquals("late", other.accessToken().value());
      }
    }
    assertEquals("late", Json.parseObject(Files.readString(store.pathOf("k"))).get("access_token"));
    before = Files.readAllBytes(store.pathOf("k"));
  }

  /**
   * A refusal of the refresh token marks the record needs_login; a refusal of the client is
   * recorded in last_error, and the credential stays ok. The tokens stay either way.
   */
  @Test
  void callbackClassifiedFailures() throws Exception {
    Map<String, Object> tokens = tokens();
    Map<String, Object> client = refreshFails(Code.TERMINAL, OAuthLockException.Terminal.class,
        c -> {
          throw RefreshException.terminal("invalid_client", "client disabled");
        });
    assertEquals("ok", client.get("state"));
    assertEquals("invalid_client", ((Map<?, ?>) client.get("last_error")).get("code"));
    assertEquals(tokens, Map.of("a", client.get("access_token"), "r", client.get("refresh_token")));
    Map<String, Object> dead = refreshFails(Code.INVALID_GRANT,
        OAuthLockException.InvalidGrant.class,
        c -> "{\"error\": \"invalid_grant\", \"error_description\": \"spent\"}");
    assertEquals("needs_login", dead.get("state"));
    assertEquals(tokens, Map.of("a", dead.get("access_token"), "r", dead.get("refresh_token")));
  }

  Map<String, Object> tokens() throws Exception {
    Map<String, Object> r = Json.parseObject(Files.readString(store.pathOf("k")));
    return Map.of("a", r.get("access_token"), "r", r.get("refresh_token"));
  }

  @Test
  void callbackReceivesTheCredentialAndItsAnswerIsCommitted() throws Exception {
    String[] seen = new String[1];
    try (TokenSource s = store.source("k", c -> {
      seen[0] = c;
      return "{\"access_token\": \"at-1\", \"refresh_token\": \"rt-1\", \"expires_in\": 600}";
    })) {
      AccessToken t = s.accessToken();
      assertEquals("at-1", t.value());
      assertEquals(2, t.generation());
    }
    Map<String, Object> cred = Json.parseObject(seen[0]);
    assertEquals("k", cred.get("key"));
    assertEquals("rt-0", cred.get("refresh_token"));
    assertEquals(1L, cred.get("generation"));
    before = Files.readAllBytes(store.pathOf("k"));
  }
}
