package dev.oauthlock;

import java.lang.ref.Cleaner;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;

/**
 * One native handle and how to free it: the cleanup action of a {@link Cleaner} (so a handle
 * that was never closed is still freed once unreachable) that runs at most once, which makes
 * a double close safe. It holds no reference to its owner, as a cleaner action must not.
 */
final class NativeHandle implements Runnable {
  static final Cleaner CLEANER = Cleaner.create();

  private final AtomicLong address;
  private final LongConsumer free;

  NativeHandle(long address, LongConsumer free) {
    this.address = new AtomicLong(address);
    this.free = free;
  }

  /** The live address; {@link IllegalStateException} once closed. */
  long get(String what) {
    long a = address.get();
    if (a == 0) {
      throw new IllegalStateException("this " + what + " is closed");
    }
    return a;
  }

  @Override
  public void run() {
    long a = address.getAndSet(0);
    if (a != 0) {
      free.accept(a);
    }
  }
}
