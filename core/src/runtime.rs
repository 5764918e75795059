//! Per-process machinery that must be rebuilt in a child after `fork()`: the tokio runtime
//! the flights run on, the HTTP client, the fork epoch, and who we are (for `updated_by`).

use crate::record::UpdatedBy;
use arc_swap::ArcSwapOption;
use once_cell::sync::OnceCell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bumped in the child of every `fork()`; whatever was built under an older epoch belongs to
/// the parent (its threads do not exist here) and is rebuilt.
pub(crate) static FORK_EPOCH: AtomicU64 = AtomicU64::new(0);

static LANG: OnceCell<String> = OnceCell::new();

/// Names the language of the process for the `updated_by` field (`"python"`, `"node"`,
/// ...). Bindings call it once at load; the first call wins. Default `"rust"`.
pub fn set_client_lang(lang: &str) {
    let _ = LANG.set(lang.to_owned());
}

pub(crate) fn updated_by() -> UpdatedBy {
    UpdatedBy {
        pid: std::process::id(),
        lang: LANG.get().map(String::as_str).unwrap_or("rust").to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// Wall-clock Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(ms_i64)
        .unwrap_or(0)
}

/// A duration in whole milliseconds as an `i64`, saturating: a huge margin or timeout (say
/// `Duration::MAX`) must never wrap to a negative number.
pub(crate) fn ms_i64(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The current fork epoch.
pub(crate) fn epoch() -> u64 {
    FORK_EPOCH.load(Ordering::Acquire)
}

pub(crate) struct Process {
    pub epoch: u64,
    pub runtime: tokio::runtime::Runtime,
    pub http: reqwest::Client,
}

static PROCESS: ArcSwapOption<Process> = ArcSwapOption::const_empty();
/// Held by the thread building this side of the fork's runtime. A flag, not a mutex, so that
/// the fork handler can release it for a builder that does not exist in the child.
static BUILDING: AtomicBool = AtomicBool::new(false);

/// Releases [`BUILDING`] when the build ends (or panics).
struct Building;

impl Building {
    fn acquire() -> Building {
        while BUILDING
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            std::thread::yield_now();
        }
        Building
    }
}

impl Drop for Building {
    fn drop(&mut self) {
        BUILDING.store(false, Ordering::Release);
    }
}

/// The runtime and client of this process (of this side of the last fork).
pub(crate) fn process() -> Arc<Process> {
    install_fork_handler();
    let epoch = epoch();
    if let Some(p) = PROCESS.load_full().filter(|p| p.epoch == epoch) {
        return p;
    }
    let _building = Building::acquire();
    if let Some(p) = PROCESS.load_full().filter(|p| p.epoch == epoch) {
        return p;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("oauth-lock")
        .enable_all()
        .build()
        .expect("oauth-lock: cannot start its runtime threads");
    let http = reqwest::Client::builder()
        .user_agent(concat!("oauth-lock/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("oauth-lock: cannot build its HTTP client");
    let fresh = Arc::new(Process {
        epoch,
        runtime,
        http,
    });
    if let Some(old) = PROCESS.swap(Some(fresh.clone())) {
        if old.epoch != epoch {
            // The parent's runtime: its threads are gone, so dropping it would wait forever.
            std::mem::forget(old);
        }
    }
    fresh
}

/// A process-wide value of one side of a fork. A child makes one of its own (its epoch) and
/// never touches the parent's: a mutex in it that a parent's thread held at the fork would
/// never be released, and the parent's threads it may count on do not exist in the child.
pub(crate) struct ForkSide<T> {
    pub epoch: u64,
    pub state: T,
}

impl<T> std::ops::Deref for ForkSide<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.state
    }
}

/// This epoch's value in `slot`, made (by `make`) by the first caller after a fork or at start.
pub(crate) fn this_side<T>(
    slot: &ArcSwapOption<ForkSide<T>>,
    make: impl Fn() -> T,
) -> Arc<ForkSide<T>> {
    let epoch = epoch();
    loop {
        if let Some(side) = slot.load_full().filter(|s| s.epoch == epoch) {
            return side;
        }
        let previous = slot.rcu(|current| match current {
            Some(side) if side.epoch == epoch => Some(side.clone()),
            _ => Some(Arc::new(ForkSide {
                epoch,
                state: make(),
            })),
        });
        if let Some(parents) = previous.filter(|s| s.epoch != epoch) {
            // Copied by the fork in whatever state the parent's threads left it: never dropped
            // (nor locked) here; its lock descriptors were closed by the fork handler.
            std::mem::forget(parents);
        }
    }
}

/// Runs `fut` to completion from a thread that may or may not be inside a tokio runtime.
pub(crate) fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    let process = process();
    if tokio::runtime::Handle::try_current().is_ok() {
        // block_on inside a runtime panics; a scoped thread is outside any runtime.
        std::thread::scope(|s| {
            s.spawn(|| on_callers_thread(|| process.runtime.block_on(fut)))
                .join()
                .expect("oauth-lock: blocking call panicked")
        })
    } else {
        on_callers_thread(|| process.runtime.block_on(fut))
    }
}

thread_local! {
    /// This thread is in [`block_on`]: what it polls is a blocking call's own work, which may
    /// block it (no other task runs on it meanwhile).
    static CALLERS_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn on_callers_thread<T>(f: impl FnOnce() -> T) -> T {
    /// Puts the flag back, on a panic too.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            CALLERS_THREAD.set(self.0);
        }
    }
    let _restore = Restore(CALLERS_THREAD.replace(true));
    f()
}

/// Whether the current thread is a blocking caller's own ([`block_on`]'s), which a wait may
/// block; a runtime worker is not (an async task, or a blocking caller's work handed over to
/// the runtime, runs there).
pub(crate) fn is_callers_thread() -> bool {
    CALLERS_THREAD.get()
}

pub(crate) fn install_fork_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The handler does only async-signal-safe work (atomics and close(2)), as a child
        // handler must; a no-op where there is no fork.
        crate::sys::at_fork_child(after_fork_in_child);
    });
}

extern "C" fn after_fork_in_child() {
    // Only async-signal-safe work here: atomics and close(2). State guarded by locks is kept
    // per epoch, so nothing a parent's thread held at the fork is ever waited for.
    FORK_EPOCH.fetch_add(1, Ordering::AcqRel);
    crate::lock::close_inherited_lock_fds();
    crate::backend::postgres::close_inherited_sockets();
    BUILDING.store(false, Ordering::Release);
}
