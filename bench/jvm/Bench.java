/* The Java figures of docs/BENCHMARKS.md (scripts/bench-jvm), written as JSON for
 * bench/report.py:
 * - hot: TokenSource.accessToken() on a fresh cached token, per call (what a JVM caller pays
 *   per request; the wrapper calls oauth_lock_source_access_token and oauth_lock_token_free),
 *   beside the bare JNA calls underneath it (jna_raw) and one empty JNA call (jna_empty), so
 *   the wrapper's and JNA's shares can be told apart. Per-round means after a JIT warm-up.
 * - cold_read: the first accessToken() of a key in this JVM, the record on disk fresh and
 *   written directly (as another process would), so the JVM has never seen it.
 * - handoff: this thread holds <stem>.lock (flock(2) through JNA: Java's FileChannel.lock is
 *   an fcntl lock, which does not exclude flock) while another thread is blocked in
 *   accessToken() on the expired record; the holder commits a fresh record and releases;
 *   time from the release to the blocked call's return.
 * Figures, not tests: nothing here asserts a time.
 *
 * Usage: java -Djna.library.path=DIR -cp oauth-lock.jar:jna.jar Bench.java STORE_DIR OUT_JSON [quick]
 *        ... Bench.java worker STORE_DIR MOCK_URL KEY THREADS SECONDS
 * The second form is one process of bench/contention.py: THREADS threads take a token and
 * call the mock's /resource with it (HttpURLConnection) until SECONDS have passed, rejecting
 * the token on a 401; prints {"calls": N, "errors": N}. */
import com.sun.jna.NativeLibrary;
import dev.oauthlock.AccessToken;
import dev.oauthlock.Store;
import dev.oauthlock.TokenSource;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.LongSupplier;

public class Bench {
  /** flock(2) and friends from libc, for the hand-off's lock holder. */
  static final class LibC {
    static {
      com.sun.jna.Native.register(LibC.class, NativeLibrary.getInstance("c"));
    }

    static native int open(String path, int flags, int mode);

    static native int flock(int fd, int op);

    static native int close(int fd);
  }

  static final int O_RDWR_CREAT = 02 | 0100;
  static final int LOCK_EX = 2;
  static final int LOCK_UN = 8;

  /** The same C calls as the wrapper, bound directly here (JNA direct mapping). */
  static final class Raw {
    static {
      com.sun.jna.Native.register(Raw.class, NativeLibrary.getInstance("oauth_lock"));
    }

    static native int oauth_lock_source_new(long store, byte[] key, long[] options, long[] out);

    static native int oauth_lock_store_new(byte[] dir, long[] out);

    static native int oauth_lock_source_access_token(long source, long[] out);

    static native void oauth_lock_token_free(long token);

    static native int oauth_lock_last_error_code();
  }

  static long sink;

  /** Per-round mean ns per call of `body` (which makes `calls` calls), after a warm-up. */
  static double[] measure(int rounds, long calls, LongSupplier body) {
    for (int w = 0; w < 5; w++) {
      sink += body.getAsLong(); // warm-up: the JIT compiles the loop and JNA's stubs
    }
    double[] per = new double[rounds];
    for (int r = 0; r < rounds; r++) {
      long t0 = System.nanoTime();
      sink += body.getAsLong();
      per[r] = (System.nanoTime() - t0) / (double) calls;
    }
    return per;
  }

  /** One measurement as a JSON member: the sorted samples and their summary. */
  static String json(String id, String label, double[] samples) {
    double[] s = samples.clone();
    Arrays.sort(s);
    int n = s.length;
    StringBuilder b = new StringBuilder();
    b.append(String.format(java.util.Locale.ROOT,
        "    \"%s\": {\"label\": \"%s\", \"median_ns\": %.1f, \"p99_ns\": %.1f, \"min_ns\": %.1f, "
            + "\"max_ns\": %.1f, \"n\": %d, \"samples_ns\": [",
        id, label, s[n / 2], s[(int) Math.round((n - 1) * 0.99)], s[0], s[n - 1], n));
    for (int i = 0; i < n; i++) {
      b.append(i == 0 ? "" : ", ").append(String.format(java.util.Locale.ROOT, "%.1f", s[i]));
    }
    System.out.printf(java.util.Locale.ROOT, "java %-10s median %12.1f ns  p99 %12.1f ns  (n %d)%n",
        id, s[n / 2], s[(int) Math.round((n - 1) * 0.99)], n);
    return b.append("]}").toString();
  }

  /** A fresh record as another process's commit writes it: temp file, then rename. */
  static void writeRecord(Path path, String key, long generation) throws Exception {
    long now = System.currentTimeMillis();
    Path tmp = Path.of(path + ".bench-tmp");
    java.nio.file.Files.writeString(tmp, String.format(java.util.Locale.ROOT,
        "{\"format\": 1, \"key\": \"%s\", \"generation\": %d, \"access_token\": \"at-%s-%d\", "
            + "\"refresh_token\": \"rt\", \"issued_at_ms\": %d, \"expires_at_ms\": %d}",
        key, generation, key, generation, now, now + 3_600_000));
    java.nio.file.Files.move(tmp, path, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
  }

  static byte[] c(String s) {
    return (s + "\0").getBytes(java.nio.charset.StandardCharsets.UTF_8);
  }

  /** The status of GET url with the bearer token. */
  static int resource(String url, String token) throws java.io.IOException {
    java.net.HttpURLConnection c = (java.net.HttpURLConnection) new java.net.URL(url).openConnection();
    c.setRequestProperty("Authorization", "Bearer " + token);
    int status = c.getResponseCode();
    try (java.io.InputStream body = status < 400 ? c.getInputStream() : c.getErrorStream()) {
      if (body != null) {
        body.readAllBytes();
      }
    }
    return status;
  }

  static void worker(String[] args) throws Exception {
    String url = args[2] + "/resource";
    int threads = Integer.parseInt(args[4]);
    long deadline = System.nanoTime() + (long) (Double.parseDouble(args[5]) * 1e9);
    java.util.concurrent.atomic.AtomicLong calls = new java.util.concurrent.atomic.AtomicLong();
    java.util.concurrent.atomic.AtomicLong errors = new java.util.concurrent.atomic.AtomicLong();
    try (Store store = Store.open(Path.of(args[1])); TokenSource source = store.source(args[3])) {
      java.util.List<Thread> running = new java.util.ArrayList<>();
      for (int i = 0; i < threads; i++) {
        Thread t = new Thread(() -> {
          while (System.nanoTime() < deadline) {
            try {
              AccessToken token = source.accessToken();
              int status = resource(url, token.value());
              if (status == 401) {
                status = resource(url, source.reject(token).value());
              }
              calls.incrementAndGet();
              if (status != 200) {
                errors.incrementAndGet();
              }
            } catch (Exception e) {
              System.err.println("java worker: " + e);
              errors.incrementAndGet();
            }
          }
        });
        t.start();
        running.add(t);
      }
      for (Thread t : running) {
        t.join();
      }
    }
    System.out.printf("{\"calls\": %d, \"errors\": %d}%n", calls.get(), errors.get());
  }

  public static void main(String[] args) throws Exception {
    if (args[0].equals("worker")) {
      worker(args);
      return;
    }
    Path dir = Path.of(args[0]);
    boolean quick = args.length > 2 && args[2].equals("quick");
    int rounds = quick ? 3 : 15;
    long calls = quick ? 100_000 : 1_000_000;
    int coldN = quick ? 40 : 400;
    int handoffN = quick ? 20 : 200;
    java.util.List<String> members = new java.util.ArrayList<>();
    try (Store store = Store.open(dir)) {
      store.save("hot", "{\"access_token\":\"at-hot\",\"refresh_token\":\"rt\",\"expires_in\":3600}");
      try (TokenSource source = store.source("hot")) {
        double[] wrapper = measure(rounds, calls, () -> {
          long n = 0;
          for (long i = 0; i < calls; i++) {
            AccessToken t = source.accessToken();
            n += t.value().length();
          }
          return n;
        });
        members.add(json("hot", "`TokenSource.accessToken()`", wrapper));
        long[] out = new long[1];
        if (Raw.oauth_lock_store_new(c(dir.toString()), out) != 0) {
          throw new IllegalStateException("store");
        }
        long rawStore = out[0];
        if (Raw.oauth_lock_source_new(rawStore, c("hot"), null, out) != 0) {
          throw new IllegalStateException("source");
        }
        long rawSource = out[0];
        double[] raw = measure(rounds, calls, () -> {
          long n = 0;
          long[] tok = new long[1];
          for (long i = 0; i < calls; i++) {
            if (Raw.oauth_lock_source_access_token(rawSource, tok) != 0) {
              throw new IllegalStateException("call");
            }
            n += tok[0] & 1;
            Raw.oauth_lock_token_free(tok[0]);
          }
          return n;
        });
        members.add(json("jna_raw", "the same two C calls bound directly with JNA, no wrapper", raw));
        double[] empty = measure(rounds, calls, () -> {
          long n = 0;
          for (long i = 0; i < calls; i++) {
            n += Raw.oauth_lock_last_error_code();
          }
          return n;
        });
        members.add(json("jna_empty", "one empty JNA call (`oauth_lock_last_error_code()`)", empty));
      }

      double[] cold = new double[coldN];
      for (int i = 0; i < coldN; i++) {
        String key = "cold-" + i;
        writeRecord(store.pathOf(key), key, 1);
        try (TokenSource s = store.source(key)) {
          long t0 = System.nanoTime();
          sink += s.accessToken().value().length();
          cold[i] = System.nanoTime() - t0;
        }
      }
      members.add(json("cold_read", "first `accessToken()` of a fresh record", cold));

      double[] handoff = new double[handoffN];
      for (int i = 0; i < handoffN; i++) {
        String key = "handoff-" + i;
        store.save(key, "{\"access_token\":\"old\",\"refresh_token\":\"rt\",\"expires_in\":0}");
        Path record = store.pathOf(key);
        String lock = record.toString().replaceFirst("\\.json$", ".lock");
        int fd = LibC.open(lock, O_RDWR_CREAT, 0600);
        if (fd < 0 || LibC.flock(fd, LOCK_EX) != 0) {
          throw new IllegalStateException("flock " + lock);
        }
        try (TokenSource s = store.source(key)) {
          long[] returned = new long[1];
          Thread waiter = new Thread(() -> {
            sink += s.accessToken().value().length();
            returned[0] = System.nanoTime();
          });
          waiter.start();
          Thread.sleep(20); // ample for the waiter to block in flock
          writeRecord(record, key, 1000);
          long released = System.nanoTime();
          LibC.flock(fd, LOCK_UN);
          waiter.join();
          handoff[i] = returned[0] - released;
        } finally {
          LibC.close(fd);
        }
      }
      members.add(json("handoff", "release → blocked `accessToken()` returns", handoff));
    }
    String doc = String.format(java.util.Locale.ROOT,
        "{%n  \"lang\": \"java\",%n  \"quick\": %s,%n  \"recorded_at_ms\": %d,%n"
            + "  \"versions\": {\"java\": \"%s\", \"jna\": \"%s\"},%n  \"measurements\": {%n%s%n  },%n"
            + "  \"sink\": %d%n}%n",
        quick, System.currentTimeMillis(), System.getProperty("java.runtime.version"),
        com.sun.jna.Native.VERSION, String.join(",\n", members), sink % 2);
    java.nio.file.Files.writeString(Path.of(args[1]), doc);
  }
}
