package dev.oauthlock;

import com.sun.jna.Pointer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The JNA callbacks handed to the C ABI. Each is one static instance (so JNA's native stub
 * can never be collected while the library may call it); which Java object a call is for is
 * the {@code userdata} number, looked up in a table. The library's {@code free_userdata}
 * removes the entry once no call can happen any more, which ties each Java refresher's
 * lifetime to the native source (and any refresh still running), not to the Java object.
 */
final class Callbacks {
  private Callbacks() {}

  private static final AtomicLong IDS = new AtomicLong();
  static final Map<Long, Object> LIVE = new ConcurrentHashMap<>();

  static Pointer register(Object target) {
    long id = IDS.incrementAndGet();
    LIVE.put(id, target);
    return new Pointer(id);
  }

  static void unregister(Pointer userdata) {
    LIVE.remove(Pointer.nativeValue(userdata));
  }

  static final Native.FreeCallback FREE = Callbacks::unregister;

  static final Native.RefreshCallback REFRESH =
      (userdata, credentialJson, answer) -> {
        try {
          Refresher r = (Refresher) LIVE.get(Pointer.nativeValue(userdata));
          if (r == null) {
            return fail(answer, Code.TRANSIENT, null, "the Java refresher is gone");
          }
          String json = r.refresh(Native.string(credentialJson));
          if (json != null) {
            // A JSON that does not parse is refused here and the library then fails the
            // refresh as Transient, naming why; returning OK is what the ABI asks for.
            Native.oauth_lock_answer_set_json(answer, Native.cString(json));
          }
          return 0;
        } catch (RefreshException e) {
          Code c = e.code() == null ? Code.TRANSIENT : e.code();
          return fail(answer, c, e.oauthError(), e.getMessage());
        } catch (Throwable t) {
          return fail(answer, Code.TRANSIENT, null, "the Java refresher threw " + t);
        }
      };

  private static int fail(Pointer answer, Code code, String oauthError, String description) {
    Native.oauth_lock_answer_set_error(
        answer, Native.cString(oauthError), Native.cString(description));
    return code.number();
  }

  @SuppressWarnings("unchecked")
  static final Native.EventCallback EVENT =
      (userdata, eventJson) -> {
        try {
          Object l = LIVE.get(Pointer.nativeValue(userdata));
          if (l != null) {
            ((java.util.function.Consumer<Event>) l).accept(Event.parse(Native.string(eventJson)));
          }
        } catch (Throwable ignored) {
          // A listener must not break the decision it observes.
        }
      };
}
