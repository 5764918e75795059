package dev.oauthlock;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.sun.jna.Pointer;
import com.sun.jna.ptr.PointerByReference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every exception is built from the error of the very call that failed (the {@code _e} calls'
 * {@code oauth_lock_error}), never from the thread's last error: a JVM virtual thread may
 * resume on another carrier thread between a native call and the building of its exception,
 * where the carrier's last error is another call's, or none.
 */
class CallErrorTest {
  @TempDir Path dir;
  Store store;

  @BeforeEach
  void open() {
    store = Store.open(dir);
  }

  @AfterEach
  void close() {
    store.close();
  }

  /** The thread-local last error, which the wrapper no longer reads (bound here only). */
  interface LastError extends com.sun.jna.Library {
    LastError C = com.sun.jna.Native.load(Native.LIBRARY, LastError.class);

    int oauth_lock_last_error_json(PointerByReference outJson);

    void oauth_lock_string_free(Pointer s);
  }

  /** The calling thread's last error as JSON, null if its last call succeeded or it made none. */
  static Map<String, Object> lastErrorOfThisThread() {
    PointerByReference out = new PointerByReference();
    assertEquals(0, LastError.C.oauth_lock_last_error_json(out));
    try {
      Object parsed = Json.parse(out.getValue().getString(0, "UTF-8"));
      @SuppressWarnings("unchecked")
      Map<String, Object> m = (Map<String, Object>) parsed;
      return m;
    } finally {
      LastError.C.oauth_lock_string_free(out.getValue());
    }
  }

  static <T extends OAuthLockException> void assertError(
      Class<T> type, Code code, String key, Path path, OAuthLockException e) {
    assertSame(type, e.getClass(), e.toString());
    assertEquals(code, e.code());
    assertEquals(key, e.key().orElse(null), e.getMessage());
    assertEquals(path, e.path().orElse(null), e.getMessage());
    if (key != null) {
      assertTrue(e.getMessage().contains(key), e.getMessage());
    }
  }

  /**
   * A failing call; then, on the same thread, a different failing call before the first
   * one's exception is built; then the first exception built on another thread (where a
   * virtual thread could resume). At that moment this thread's last error is the second
   * call's and the other thread has none, so an exception built from the thread-local last
   * error (the wrapper's old way) would be the wrong call's, or have no key and path. Built
   * from each call's own error, each exception is its call's.
   */
  @Test
  void anExceptionIsItsCallsAfterAnotherCallAndOnAnotherThread() throws Exception {
    long[] out = new long[1];
    long[] firstError = new long[1];
    int first;
    try (TokenSource s = store.source("first")) {
      first = Native.oauth_lock_source_access_token_e(s.address(), out, firstError);
    }
    assertEquals(Code.NEEDS_LOGIN.number(), first);
    assertEquals(0, out[0]); // outputs only on success
    assertNotEquals(0, firstError[0]);

    long[] secondError = new long[1];
    int second = Native.oauth_lock_store_save_e(
        store.address(), Native.cString("second"), Native.cString("not json"), 0, secondError);
    assertEquals(Code.INVALID_ARGUMENT.number(), second);
    assertNotEquals(0, secondError[0]);

    // The thread-local last error is the second call's here, and nothing on another thread.
    assertEquals("second", lastErrorOfThisThread().get("key"));
    ExecutorService other = Executors.newSingleThreadExecutor();
    try {
      assertNull(other.submit(CallErrorTest::lastErrorOfThisThread).get());
      Future<OAuthLockException> built = other.submit(
          () -> assertThrows(OAuthLockException.class,
              () -> OAuthLockException.check(first, firstError)));
      assertError(OAuthLockException.NeedsLogin.class, Code.NEEDS_LOGIN, "first",
          store.pathOf("first"), built.get());
    } finally {
      other.shutdownNow();
    }

    // A third failing call on this thread (no key) before the second exception is built.
    assertThrows(OAuthLockException.InvalidArgument.class, () -> store.pathOf(".third"));
    assertNotEquals("second", lastErrorOfThisThread().get("key"));
    OAuthLockException e = assertThrows(OAuthLockException.class,
        () -> OAuthLockException.check(second, secondError));
    assertError(OAuthLockException.InvalidArgument.class, Code.INVALID_ARGUMENT, "second", null,
        e);
    assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
  }

  /** A success writes no error, and builds no exception. */
  @Test
  void aSuccessHasNoError() {
    long[] out = new long[1];
    long[] error = {42};
    assertEquals(0, Native.oauth_lock_store_path_of_e(
        store.address(), Native.cString("k"), out, error));
    assertEquals(0, error[0]);
    assertTrue(Native.takeString(out[0]).endsWith("k.json"));
    OAuthLockException.check(0, error);
  }

  /** Virtual threads where the JDK has them (21 and later), else a pool of platform threads. */
  static ExecutorService manyThreads() {
    try {
      return (ExecutorService)
          Executors.class.getMethod("newVirtualThreadPerTaskExecutor").invoke(null);
    } catch (ReflectiveOperationException e) {
      return Executors.newFixedThreadPool(16);
    }
  }

  static String key(int i) {
    return "k" + i;
  }

  /**
   * Failing calls on many threads at once (virtual threads on JDK 21+), three kinds mixed,
   * each naming its own key: every exception has the code, key and path of its own call.
   */
  @Test
  void failingCallsOnManyThreadsAtOnceEachGetTheirOwnError() throws Exception {
    int keys = 48;
    int rounds = 8;
    List<TokenSource> sources = new ArrayList<>();
    for (int i = 0; i < keys; i++) {
      switch (i % 3) {
        case 1: // a record that does not parse: Corrupt
          Files.writeString(store.pathOf(key(i)), "{\"format\": 1, \"key\": ");
          break;
        case 2: // a login with a refresh token: a save without one is a Downgrade
          store.save(key(i), "{\"access_token\":\"a\",\"refresh_token\":\"r\"}");
          break;
        default: // no record: NeedsLogin
          break;
      }
      sources.add(store.source(key(i)));
    }
    CountDownLatch go = new CountDownLatch(1);
    ExecutorService pool = manyThreads();
    List<Future<OAuthLockException>> results = new ArrayList<>();
    try {
      for (int t = 0; t < keys * rounds; t++) {
        int i = t % keys;
        results.add(pool.submit(() -> {
          go.await();
          try {
            if (i % 3 == 2) {
              store.save(key(i), "{\"access_token\":\"no-refresh-token\"}");
            } else {
              sources.get(i).accessToken();
            }
          } catch (OAuthLockException e) {
            return e;
          }
          return fail("the call for " + key(i) + " succeeded");
        }));
      }
      go.countDown();
      for (int t = 0; t < results.size(); t++) {
        int i = t % keys;
        OAuthLockException e = results.get(t).get(60, TimeUnit.SECONDS);
        switch (i % 3) {
          case 1:
            assertError(OAuthLockException.Corrupt.class, Code.CORRUPT, key(i),
                store.pathOf(key(i)), e);
            break;
          case 2:
            assertError(OAuthLockException.Downgrade.class, Code.DOWNGRADE, key(i),
                store.pathOf(key(i)), e);
            break;
          default:
            assertError(OAuthLockException.NeedsLogin.class, Code.NEEDS_LOGIN, key(i),
                store.pathOf(key(i)), e);
            break;
        }
      }
    } finally {
      pool.shutdownNow();
      assertTrue(pool.awaitTermination(60, TimeUnit.SECONDS));
      sources.forEach(TokenSource::close);
    }
  }
}
