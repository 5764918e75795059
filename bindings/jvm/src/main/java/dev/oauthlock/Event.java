package dev.oauthlock;

import java.util.Map;
import java.util.function.Consumer;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One decision of the library (DESIGN.md §8): {@code refreshed}, {@code adopted}, {@code
 * lock_waited}, {@code refresh_deferred}, {@code invalid_grant}, {@code race_recovered},
 * {@code needs_login}, {@code downgrade_refused}, {@code login_without_refresh_token}. Tokens
 * appear only as fingerprints.
 *
 * @param event the event's name
 * @param level {@code "info"} or {@code "warn"}
 * @param key the credential's key
 * @param path the credential's record file (which store it belongs to)
 * @param message a human-readable sentence
 * @param fields the event's details
 * @param json the whole event as JSON
 */
public record Event(
    String event, String level, String key, String path, String message,
    Map<String, Object> fields, String json) {

  /** A registered listener; {@link #close()} stops it (twice is fine). */
  public interface Subscription extends AutoCloseable {
    @Override
    void close();
  }

  @SuppressWarnings("unchecked")
  static Event parse(String json) {
    Map<String, Object> m = Json.parseObject(json);
    Object f = m.get("fields");
    return new Event(
        (String) m.get("event"),
        (String) m.get("level"),
        (String) m.get("key"),
        (String) m.get("path"),
        (String) m.get("message"),
        f instanceof Map ? (Map<String, Object>) f : Map.of(),
        json);
  }

  /**
   * Calls {@code listener} with every event of this process from now on, on whatever thread
   * made the decision (possibly several at once, sometimes under a credential's lock):
   * return quickly and do not call oauth-lock from it. Close the result to stop.
   */
  public static Subscription listen(Consumer<Event> listener) {
    if (listener == null) {
      throw OAuthLockException.of(Code.NULL_PARAMETER, "the listener is null", null, null, null);
    }
    Native.load();
    com.sun.jna.Pointer userdata = Callbacks.register(listener);
    long[] id = new long[1];
    long[] error = new long[1];
    int rc = Native.oauth_lock_add_event_listener_e(
        Callbacks.EVENT, userdata, Callbacks.FREE, id, error);
    if (rc != 0) {
      Callbacks.unregister(userdata); // on failure the caller still owns userdata
      throw OAuthLockException.of(rc, error[0]);
    }
    java.util.concurrent.atomic.AtomicBoolean open = new java.util.concurrent.atomic.AtomicBoolean(true);
    return () -> {
      if (open.getAndSet(false)) {
        Native.oauth_lock_remove_event_listener(id[0]);
      }
    };
  }

  /** Routes every event to the {@code java.util.logging} logger {@code "oauth_lock"}. */
  public static Subscription logToJavaLogging() {
    Logger log = Logger.getLogger("oauth_lock");
    return listen(
        e -> log.log("warn".equals(e.level()) ? Level.WARNING : Level.INFO,
            e.event() + " " + e.key() + ": " + e.message()));
  }
}
