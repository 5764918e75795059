import dev.oauthlock.AccessToken;
import dev.oauthlock.OAuthLockException;
import dev.oauthlock.Store;
import dev.oauthlock.TokenSource;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * One JVM process of the mixed torture run (tests/torture/test_torture.py): THREADS threads
 * share one TokenSource; each call takes a token, sends it to the mock's /resource and, on a
 * 401, rejects it and retries (a revocation can also catch the token the reject adopted,
 * hence a chain of rejects; see MAX_REJECTS). Prints one JSON line report; exits 1 on any error. SoakMain (the JVM
 * tests' worker) prints no JSON and no latencies, hence this one.
 *
 * <p>Usage: TortureWorker STORE_DIR KEY MOCK_URL SECONDS THREADS
 */
public final class TortureWorker {
  /**
   * A 401 after this many rejects in one call is an error. One revocation can take several: it
   * kills every token issued before it, and a reject answers with a token other than the
   * rejected one (the process's cached one, the file's, or a refresh answered just before the
   * revocation), which may be such a token too; each reject must at least return another one.
   */
  private static final int MAX_REJECTS = 8;
  /** Latency samples kept per thread (reservoir sampling). */
  private static final int SAMPLE = 4000;

  /** What one thread counts. */
  private static final class Tally {
    long calls;
    long ok;
    long unauthorized;
    long rejects;
    /** The most rejects one call needed. */
    int longest;
    long seen;
    final Map<String, Long> errors = new TreeMap<>();
    final List<Long> latencies = new ArrayList<>();

    void latency(long ns) {
      seen++;
      if (latencies.size() < SAMPLE) {
        latencies.add(ns);
      } else {
        long i = ThreadLocalRandom.current().nextLong(seen);
        if (i < SAMPLE) {
          latencies.set((int) i, ns);
        }
      }
    }

    void error(String code, Object detail) {
      if (!errors.containsKey(code)) {
        System.err.println("java pid " + ProcessHandle.current().pid() + ": " + code + ": " + detail);
      }
      errors.merge(code, 1L, Long::sum);
    }
  }

  /** reject() must answer with another token than the one rejected. */
  private static final class RejectReturnedTheRejectedToken extends RuntimeException {
    private static final long serialVersionUID = 1L;

    RejectReturnedTheRejectedToken(String fingerprint) {
      super(fingerprint);
    }
  }

  private TortureWorker() {}

  public static void main(String[] args) throws Exception {
    Path dir = Path.of(args[0]);
    String key = args[1];
    URI resource = URI.create(args[2] + "/resource");
    long deadline = System.nanoTime() + (long) (Double.parseDouble(args[3]) * 1e9);
    int threads = Integer.parseInt(args[4]);
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    List<Tally> tallies = new ArrayList<>();
    try (Store store = Store.open(dir); TokenSource source = store.source(key)) {
      List<Thread> running = new ArrayList<>();
      for (int i = 0; i < threads; i++) {
        Tally t = new Tally();
        tallies.add(t);
        Thread thread = new Thread(() -> loop(source, http, resource, deadline, t));
        thread.start();
        running.add(thread);
      }
      for (Thread thread : running) {
        thread.join();
      }
    }
    Tally all = new Tally();
    for (Tally t : tallies) {
      all.calls += t.calls;
      all.ok += t.ok;
      all.unauthorized += t.unauthorized;
      all.rejects += t.rejects;
      all.longest = Math.max(all.longest, t.longest);
      t.errors.forEach((k, v) -> all.errors.merge(k, v, Long::sum));
      all.latencies.addAll(t.latencies);
    }
    StringBuilder errors = new StringBuilder("{");
    all.errors.forEach((k, v) -> errors.append(errors.length() > 1 ? "," : "")
        .append('"').append(k.replace("\"", "'")).append("\":").append(v));
    errors.append('}');
    StringBuilder latencies = new StringBuilder("[");
    for (int i = 0; i < all.latencies.size(); i++) {
      latencies.append(i > 0 ? "," : "").append(all.latencies.get(i));
    }
    latencies.append(']');
    System.out.printf("{\"lang\":\"java\",\"pid\":%d,\"concurrency\":%d,\"calls\":%d,"
        + "\"resource_ok\":%d,\"resource_unauthorized\":%d,\"rejects\":%d,"
        + "\"max_rejects_per_call\":%d,\"errors\":%s,\"latencies_ns\":%s}%n",
        ProcessHandle.current().pid(), threads, all.calls, all.ok, all.unauthorized, all.rejects,
        all.longest, errors, latencies);
    System.out.flush();
    System.exit(all.calls > 0 && all.errors.isEmpty() ? 0 : 1);
  }

  private static int get(HttpClient http, URI resource, AccessToken token) throws Exception {
    HttpRequest request = HttpRequest.newBuilder(resource)
        .header("Authorization", token.authorization())
        .timeout(Duration.ofSeconds(10))
        .build();
    return http.send(request, HttpResponse.BodyHandlers.discarding()).statusCode();
  }

  private static void loop(TokenSource source, HttpClient http, URI resource, long deadline,
      Tally t) {
    while (System.nanoTime() < deadline) {
      try {
        long started = System.nanoTime();
        AccessToken token;
        try {
          token = source.accessToken();
        } finally {
          t.latency(System.nanoTime() - started);
          t.calls++;
        }
        int status = get(http, resource, token);
        int rejects = 0;
        while (status == 401 && rejects < MAX_REJECTS) {
          t.unauthorized++;
          t.rejects++;
          rejects++;
          t.longest = Math.max(t.longest, rejects);
          AccessToken fresh = source.reject(token);
          if (fresh.value().equals(token.value())) {
            throw new RejectReturnedTheRejectedToken(fresh.fingerprint());
          }
          token = fresh;
          status = get(http, resource, token);
        }
        if (status == 200) {
          t.ok++;
        } else {
          t.error("http_" + status, "/resource after " + rejects + " rejects");
        }
      } catch (OAuthLockException e) {
        t.error(e.code().designName(), e.getMessage());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        t.error("Interrupted", e);
        return;
      } catch (Exception e) {
        t.error(e.getClass().getSimpleName(), e);
      }
      try {
        Thread.sleep(1);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }
}
