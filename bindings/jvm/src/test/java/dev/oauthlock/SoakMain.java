package dev.oauthlock;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One JVM process of MultiProcessTest (run from the test classpath): THREADS threads share
 * one source for KEY and, until SECONDS have passed, take a token, call the mock's /resource
 * with it, and after a 401 reject it and retry once. Prints its counts; exits 1 on any error.
 *
 * <p>Usage: SoakMain STORE_DIR MOCK_URL KEY THREADS SECONDS
 */
public final class SoakMain {
  private SoakMain() {}

  public static void main(String[] args) throws Exception {
    Path dir = Path.of(args[0]);
    String mock = args[1];
    String key = args[2];
    int threads = Integer.parseInt(args[3]);
    long deadline = System.nanoTime() + (long) (Double.parseDouble(args[4]) * 1e9);
    AtomicLong calls = new AtomicLong();
    AtomicLong ok = new AtomicLong();
    AtomicLong recovered = new AtomicLong();
    AtomicLong errors = new AtomicLong();
    try (Store store = Store.open(dir); TokenSource source = store.source(key)) {
      List<Thread> running = new ArrayList<>();
      for (int i = 0; i < threads; i++) {
        Thread t = new Thread(() -> {
          while (System.nanoTime() < deadline) {
            calls.incrementAndGet();
            try {
              AccessToken token = source.accessToken();
              int status = MockProvider.send("GET", mock + "/resource", null, token.value())
                  .statusCode();
              if (status == 200) {
                ok.incrementAndGet();
              } else if (status == 401) {
                AccessToken again = source.reject(token);
                if (MockProvider.send("GET", mock + "/resource", null, again.value())
                    .statusCode() == 200) {
                  recovered.incrementAndGet();
                } else {
                  errors.incrementAndGet();
                }
              } else {
                errors.incrementAndGet();
              }
            } catch (RuntimeException e) {
              System.err.println("java pid " + ProcessHandle.current().pid() + ": " + e);
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
    System.out.printf("java pid %d: calls %d ok %d recovered %d errors %d%n",
        ProcessHandle.current().pid(), calls.get(), ok.get(), recovered.get(), errors.get());
    System.exit(errors.get() == 0 && calls.get() > 0 ? 0 : 1);
  }
}
