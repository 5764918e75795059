package dev.oauthlock;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The fleet store from Java (DESIGN.md §10): {@code Store.open(String)} hands a postgresql://
 * URL to the core as it is. A smoke run against the server scripts/pg-cluster starts
 * ({@code OAUTH_LOCK_TEST_PG_URL}); under CI=true a missing server fails, never skips.
 */
class FleetTest {
  static String pgUrl() {
    String url = System.getenv("OAUTH_LOCK_TEST_PG_URL");
    if (url == null || url.isEmpty()) {
      if ("true".equals(System.getenv("CI"))) {
        fail("CI=true and OAUTH_LOCK_TEST_PG_URL is unset: scripts/pg-cluster starts one");
      }
      Assumptions.abort("OAUTH_LOCK_TEST_PG_URL is unset");
    }
    return url + "&schema=jvm_" + ProcessHandle.current().pid();
  }

  @Test
  void aPostgresqlLocationStoresAndServesTokens() {
    try (Store store = Store.open(pgUrl())) {
      store.save(
          "jvm:fleet",
          "{\"access_token\":\"at-jvm\",\"refresh_token\":\"rt-jvm\",\"expires_in\":3600}");
      assertEquals("at-jvm", store.source("jvm:fleet").accessToken().value());
      assertTrue(store.clear("jvm:fleet"));
      assertFalse(store.clear("jvm:fleet"));
    }
  }

  @Test
  void aBadUrlIsInvalidArgumentWithoutThePassword() {
    OAuthLockException e =
        assertThrows(
            OAuthLockException.InvalidArgument.class,
            () -> Store.open("postgresql://u:hunter2@127.0.0.1/d?sslmode=sometimes"));
    assertTrue(e.getMessage().contains("sslmode"), e.getMessage());
    assertFalse(e.getMessage().contains("hunter2"), e.getMessage());
  }
}
