package dev.oauthlock;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A Java callback refresher (a JNA Callback on a library thread) under contention from many
 * Java threads: exactly one refresh per expiry, never two at once, never a spent refresh
 * token presented again.
 */
class CallbackTest {
  @TempDir Path dir;

  /** A provider in Java: rotates the refresh token and refuses a spent one. */
  static final class RotatingProvider implements Refresher {
    final AtomicInteger refreshes = new AtomicInteger();
    final AtomicInteger inFlight = new AtomicInteger();
    final AtomicInteger maxInFlight = new AtomicInteger();
    final AtomicInteger replays = new AtomicInteger();
    final Set<String> spent = ConcurrentHashMap.newKeySet();
    final AtomicLong sleepMs;
    final int lifetimeS;

    RotatingProvider(long sleepMs, int lifetimeS) {
      this.sleepMs = new AtomicLong(sleepMs);
      this.lifetimeS = lifetimeS;
    }

    @Override
    public String refresh(String credentialJson) throws Exception {
      int now = inFlight.incrementAndGet();
      maxInFlight.accumulateAndGet(now, Math::max);
      try {
        String rt = (String) Json.parseObject(credentialJson).get("refresh_token");
        if (!spent.add(rt)) {
          replays.incrementAndGet();
          throw RefreshException.invalidGrant("refresh token replayed");
        }
        Thread.sleep(sleepMs.get());
        int n = refreshes.incrementAndGet();
        return Json.write(Map.of("access_token", "at-" + n, "refresh_token", "rt-" + n,
            "expires_in", lifetimeS));
      } finally {
        inFlight.decrementAndGet();
      }
    }
  }

  @Test
  void manyThreadsOnAnExpiredTokenMakeOneRefresh() throws Exception {
    try (Store store = Store.open(dir)) {
      store.save("k", "{\"access_token\":\"at-0\",\"refresh_token\":\"rt-0\",\"expires_in\":0}");
      RotatingProvider provider = new RotatingProvider(200, 3600);
      int threads = 32;
      CountDownLatch go = new CountDownLatch(1);
      ExecutorService pool = Executors.newFixedThreadPool(threads);
      try (TokenSource source = store.source("k", provider)) {
        List<Future<AccessToken>> got = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
          got.add(pool.submit(() -> {
            go.await();
            return source.accessToken();
          }));
        }
        go.countDown();
        for (Future<AccessToken> f : got) {
          assertEquals("at-1", f.get(30, TimeUnit.SECONDS).value());
        }
      } finally {
        pool.shutdownNow();
      }
      assertEquals(1, provider.refreshes.get());
      assertEquals(2, store.status("k").generation());
    }
  }

  @Test
  void soakWithShortTokensRefreshesOncePerExpiry() throws Exception {
    try (Store store = Store.open(dir)) {
      store.save("k", "{\"access_token\":\"at-0\",\"refresh_token\":\"rt-0\",\"expires_in\":0}");
      long gen0 = store.status("k").generation();
      RotatingProvider provider = new RotatingProvider(20, 1); // 1 s tokens
      int threads = 8;
      long deadline = System.nanoTime() + Duration.ofSeconds(4).toNanos();
      AtomicLong calls = new AtomicLong();
      ExecutorService pool = Executors.newFixedThreadPool(threads);
      // Two sources for the same key in one process share one refresh too.
      try (TokenSource a = store.source("k", provider);
          TokenSource b = store.source("k", provider)) {
        List<Future<?>> running = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
          TokenSource s = i % 2 == 0 ? a : b;
          running.add(pool.submit(() -> {
            while (System.nanoTime() < deadline) {
              AccessToken t = s.accessToken();
              assertTrue(t.expiresAt().orElseThrow().toEpochMilli() > System.currentTimeMillis());
              calls.incrementAndGet();
            }
            return null;
          }));
        }
        for (Future<?> f : running) {
          f.get(60, TimeUnit.SECONDS);
        }
      } finally {
        pool.shutdownNow();
      }
      long rotations = store.status("k").generation() - gen0;
      assertEquals(0, provider.replays.get());
      assertEquals(1, provider.maxInFlight.get());
      assertEquals(rotations, provider.refreshes.get());
      assertTrue(rotations >= 4 && rotations <= 12, "rotations " + rotations);
      assertTrue(calls.get() > 10_000, "calls " + calls.get());
    }
  }

  @Test
  void refresherIsReleasedWhenItsLastSourceIsFreed() throws Exception {
    try (Store store = Store.open(dir)) {
      RotatingProvider provider = new RotatingProvider(0, 60);
      TokenSource s = store.source("k", provider);
      assertTrue(Callbacks.LIVE.containsValue(provider));
      s.close();
      for (int i = 0; i < 100 && Callbacks.LIVE.containsValue(provider); i++) {
        Thread.sleep(10); // free_userdata may run on a library thread
      }
      assertTrue(!Callbacks.LIVE.containsValue(provider));
    }
  }
}
