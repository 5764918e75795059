/* The Java hot path: TokenSource.accessToken() on a fresh cached token, per call (what a JVM
 * caller pays per request; the wrapper calls oauth_lock_source_access_token and
 * oauth_lock_token_free), beside the bare JNA calls underneath it, so the wrapper's and
 * JNA's shares can be told apart. Median ns per call over rounds after a warm-up long enough
 * for the JIT. A figure, not a test: nothing here asserts a time.
 *
 * Usage: java -Djna.library.path=DIR -cp oauth-lock.jar:jna.jar HotPath.java STORE_DIR [ROUNDS [CALLS]] */
import com.sun.jna.NativeLibrary;
import dev.oauthlock.AccessToken;
import dev.oauthlock.Store;
import dev.oauthlock.TokenSource;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.LongSupplier;

public class HotPath {
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

  /** Median, min and max ns per call of `body` (which makes `calls` calls) over `rounds`. */
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
    Arrays.sort(per);
    return new double[] {per[rounds / 2], per[0], per[rounds - 1]};
  }

  static byte[] c(String s) {
    return (s + "\0").getBytes(java.nio.charset.StandardCharsets.UTF_8);
  }

  public static void main(String[] args) {
    Path dir = Path.of(args[0]);
    int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 15;
    long calls = args.length > 2 ? Long.parseLong(args[2]) : 1_000_000;
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
        double[] empty = measure(rounds, calls, () -> {
          long n = 0;
          for (long i = 0; i < calls; i++) {
            n += Raw.oauth_lock_last_error_code();
          }
          return n;
        });
        // One line per figure for scripts/bench-jvm.
        System.out.printf("java_hot_path_ns %.1f min %.1f max %.1f rounds %d calls %d%n",
            wrapper[0], wrapper[1], wrapper[2], rounds, calls);
        System.out.printf("jna_raw_hot_path_ns %.1f min %.1f max %.1f%n", raw[0], raw[1], raw[2]);
        System.out.printf("jna_empty_call_ns %.1f min %.1f max %.1f sink %d%n", empty[0],
            empty[1], empty[2], sink % 2);
      }
    }
  }
}
