//! The cross-process lock on `<stem>.lock`: an exclusive `flock` (fs4; `LockFileEx` over the
//! whole file on Windows) whose wait blocks in the kernel on a dedicated thread, so a waiter
//! wakes the moment the holder releases, with a deadline that gives `Busy`. Also the fork
//! hygiene of DESIGN.md §4 (Unix; `sys` says where there is none).
//!
//! Windows: the same design. The timeout is the queue's, not the kernel call's: the one
//! waiter thread of a path stays blocked in `LockFileEx` past a caller's deadline and hands
//! the lock to the next caller or releases it at once, as on Unix, so no thread is abandoned
//! per timed-out call (an overlapped `LockFileEx` cancelled with `CancelIoEx` would end even
//! that one wait; not needed for the bound). The shared wait (`wait_released`) is a shared
//! `LockFileEx` region, which the exclusive holder's region blocks exactly as `LOCK_SH` is.
//!
//! Waiting is bounded: a process has at most one waiter thread (and one extra descriptor) per
//! lock path. Callers that find the lock held join that path's queue; when the waiter thread
//! gets the lock it hands it to the first caller still waiting, then (if others wait) blocks
//! again with a fresh descriptor behind it, or, if every caller gave up, unlocks at once. So a
//! holder that never lets go (stopped, say) costs one thread and one descriptor, however many
//! calls give up `Busy` meanwhile.

use crate::error::{Context, Error, Result};
use crate::runtime::{this_side, ForkSide};
use arc_swap::ArcSwapOption;
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How many lock acquisitions found the lock held and blocked in the kernel (diagnostics).
static BLOCKED_WAITS: AtomicU64 = AtomicU64::new(0);

/// Number of lock acquisitions in this process that had to block in the kernel.
pub fn blocked_waits() -> u64 {
    BLOCKED_WAITS.load(Ordering::Relaxed)
}

/// Exclusive locks this process obtained (counters that tests assert on, not times).
static EXCLUSIVE_ACQUIRED: AtomicU64 = AtomicU64::new(0);
/// Waits for a holder's release on the shared lock (DESIGN.md §4 step 2.3).
static SHARED_WAITS: AtomicU64 = AtomicU64::new(0);

/// Callbacks run at a release by the thread that saw it ([`wait_released`]'s `on_release`).
static ON_RELEASE_RUNS: AtomicU64 = AtomicU64::new(0);

/// How many `on_release` callbacks this process ran at a holder's release.
pub fn on_release_runs() -> u64 {
    ON_RELEASE_RUNS.load(Ordering::Relaxed)
}

/// How many times this process obtained an exclusive lock.
pub fn exclusive_acquisitions() -> u64 {
    EXCLUSIVE_ACQUIRED.load(Ordering::Relaxed)
}

/// How many of this process's shared waits saw the release on the caller's own thread (a
/// blocking call's, on Linux: [`wait_released_watching`]) rather than on a waiter thread.
pub fn own_thread_releases() -> u64 {
    OWN_THREAD_RELEASES.load(Ordering::Relaxed)
}

/// How many of this process's shared waits saw the release through the close that ends a
/// hold (a holder's beacon, or every descriptor of a holder that died), not at a periodic
/// recheck of the lock; always 0 where there is no close watch (not Linux).
pub fn releases_seen_at_close() -> u64 {
    #[cfg(target_os = "linux")]
    return SEEN_AT_CLOSE.load(Ordering::Relaxed);
    #[cfg(not(target_os = "linux"))]
    0
}

/// How many times this process found a lock held and waited for its release on the shared
/// lock (every such waiter wakes at once when the holder releases).
pub fn shared_waits() -> u64 {
    SHARED_WAITS.load(Ordering::Relaxed)
}

/// Open lock descriptors, so that a forked child can close the ones it inherited: one per
/// lock waited on, two per lock held on Linux (the lock's and its beacon), so 256 locks.
const SLOTS: usize = if cfg!(target_os = "linux") { 512 } else { 256 };
static OPEN_FDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];

fn register(fd: i32) -> Option<usize> {
    (0..SLOTS).find(|&i| {
        OPEN_FDS[i]
            .compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    })
}

/// In a fresh child: drop our reference to every lock the parent held or was waiting for.
/// Closing (not unlocking) leaves the parent's lock intact and lets it die with the parent.
pub(crate) fn close_inherited_lock_fds() {
    for slot in &OPEN_FDS {
        let fd = slot.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // `fd` was registered by a `LockFile` that owned it, and the swap took it out of
            // the table, so it is closed once. Its `File` (in the parent's memory) is never
            // closed again here: a `LockFile` dropped in the child sees another fork epoch
            // and forgets its `File`, and the parent's waiter table is never dropped in the child.
            crate::sys::close_fd(fd);
        }
    }
}

/// An open lock file, registered for the fork handler.
struct LockFile {
    file: Option<File>,
    /// Its place in the fork handler's table (`None` where there is no fork).
    slot: Option<usize>,
    /// The fork epoch it was opened in: a later one is a child's, which must not touch it.
    /// An atomic load, where the process id would be a `getpid` system call on every drop
    /// (each woken waiter drops one).
    epoch: u64,
    /// Locked through this descriptor, so unlocked before it closes (not a beacon, nor a
    /// contender's whose try failed).
    locks: bool,
}

impl LockFile {
    /// Opens (creating, 0600) the lock file to lock it. Fails (`Io`) when the descriptor
    /// table of the fork handler is full rather than leave a descriptor a forked child would
    /// not close. On Linux read-only: a contender that finds the lock held closes this
    /// descriptor again, and that close must not wake the waiters' close watches (a holder
    /// signals its release through its [`LockFile::beacon`]).
    fn open(path: &Path) -> Result<LockFile> {
        let mut options = OpenOptions::new();
        #[cfg(target_os = "linux")]
        crate::sys::private_file_read_only(&mut options, 0o600);
        #[cfg(not(target_os = "linux"))]
        crate::sys::private_file(
            options.read(true).write(true).create(true).truncate(false),
            0o600,
        );
        LockFile::open_with(path, &options, true)
    }

    /// Opens the (existing) lock file for reading only: a shared waiter's, whose close must
    /// not look like a holder's release to the other waiters' close watches.
    #[cfg(target_os = "linux")]
    fn open_read_only(path: &Path) -> Result<LockFile> {
        LockFile::open_with(
            path,
            crate::sys::private_file(OpenOptions::new().read(true), 0o600),
            true,
        )
    }

    /// A holder's write-only descriptor on the lock file, opened once it holds the lock and
    /// closed just after its unlock: that close (`IN_CLOSE_WRITE`) is what wakes the waiters'
    /// close watches, and only a holder makes one.
    #[cfg(target_os = "linux")]
    fn beacon(path: &Path) -> Result<LockFile> {
        LockFile::open_with(
            path,
            crate::sys::private_file(OpenOptions::new().write(true), 0o600),
            false,
        )
    }

    fn open_with(path: &Path, options: &OpenOptions, locks: bool) -> Result<LockFile> {
        // A child forked while this descriptor is open must close its copy.
        crate::runtime::install_fork_handler();
        let file = options
            .open(path)
            .map_err(|e| Error::io("opening the lock file", path, &e))?;
        // `None` where there is no fork (nothing to track).
        let slot = crate::sys::fork_fd(&file).map(register);
        if let Some(None) = slot {
            let open = OPEN_FDS
                .iter()
                .filter(|s| s.load(Ordering::Relaxed) >= 0)
                .count();
            let e = std::io::Error::other(format!(
                "this process already has {open} lock-file descriptors open, the most it can \
                 track (one per lock it waits on, two per lock it holds; a forked child must \
                 close every one it inherits): release some locks before taking another"
            ));
            return Err(Error::io("opening the lock file", path, &e));
        }
        Ok(LockFile {
            file: Some(file),
            slot: slot.flatten(),
            epoch: crate::runtime::epoch(),
            locks,
        })
    }

    fn file(&self) -> &File {
        self.file.as_ref().expect("open until dropped")
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let file = self.file.take().expect("dropped once");
        if self.epoch != crate::runtime::epoch() {
            // Inherited across fork: the fork handler already closed this descriptor and
            // freed its slot, which may hold one of this process's own descriptors by now.
            std::mem::forget(file);
            return;
        }
        if let Some(slot) = self.slot {
            OPEN_FDS[slot].store(-1, Ordering::Release);
        }
        // Unlock explicitly: a forked child might still share this open file description.
        if self.locks {
            let _ = fs4::FileExt::unlock(&file);
        }
    }
}

/// A held exclusive lock; released (explicitly, then closed) on drop.
pub struct LockGuard {
    // Dropped in this order: the unlock, then the beacon's close that tells the waiters.
    _file: LockFile,
    #[cfg(target_os = "linux")]
    _beacon: LockFile,
    /// How long the acquisition waited.
    pub waited: Duration,
}

impl LockGuard {
    /// The guard of a lock just taken through `file` (counted; on Linux with its beacon).
    /// Fails, letting the lock go, if the lock file cannot be opened for writing (a read-only
    /// store): the holder could not write the record either, so it must not go on to spend
    /// the refresh token.
    fn new(file: LockFile, path: &Path, waited: Duration) -> Result<LockGuard> {
        #[cfg(target_os = "linux")]
        let beacon = LockFile::beacon(path)?;
        #[cfg(not(target_os = "linux"))]
        let _ = path;
        EXCLUSIVE_ACQUIRED.fetch_add(1, Ordering::Relaxed);
        Ok(LockGuard {
            _file: file,
            #[cfg(target_os = "linux")]
            _beacon: beacon,
            waited,
        })
    }
}

/// The callers of one lock path that wait in this process, and its one waiter thread.
struct Queue {
    /// Signalled when the lock is handed over or the wait failed (waited on with the table's
    /// mutex).
    cv: Arc<Condvar>,
    /// Tickets of the callers still waiting, first come first served.
    tickets: VecDeque<u64>,
    /// The lock, taken by the waiter thread for the caller holding this ticket.
    handoff: Option<(u64, LockFile)>,
    /// Callers whose wait failed, with the error.
    failed: Vec<(u64, Error)>,
    /// The waiter thread runs (blocked in `flock`, or about to be).
    waiter: bool,
    /// Waiter threads started for this queue (tests check that callers share one).
    #[cfg(test)]
    threads_started: usize,
}

impl Queue {
    fn new() -> Queue {
        Queue {
            cv: Arc::new(Condvar::new()),
            tickets: VecDeque::new(),
            handoff: None,
            failed: Vec::new(),
            waiter: false,
            #[cfg(test)]
            threads_started: 0,
        }
    }

    fn idle(&self) -> bool {
        self.tickets.is_empty() && self.handoff.is_none() && self.failed.is_empty() && !self.waiter
    }

    /// Every caller still waiting gets `err`.
    fn fail_all(&mut self, err: &Error) {
        let failed = self.tickets.drain(..).map(|t| (t, err.clone()));
        self.failed.extend(failed);
        self.cv.notify_all();
    }
}

struct Waiting {
    next_ticket: u64,
    queues: HashMap<PathBuf, Queue>,
}

impl Waiting {
    fn enqueue(&mut self, path: &Path) -> (u64, &mut Queue) {
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        let queue = self
            .queues
            .entry(path.to_owned())
            .or_insert_with(Queue::new);
        queue.tickets.push_back(ticket);
        BLOCKED_WAITS.fetch_add(1, Ordering::Relaxed);
        (ticket, queue)
    }

    fn remove_if_idle(&mut self, path: &Path) {
        if self.queues.get(path).is_some_and(Queue::idle) {
            self.queues.remove(path);
        }
    }
}

/// The wait queues of one side of a fork.
type Waits = ForkSide<Mutex<Waiting>>;

static WAITS: ArcSwapOption<Waits> = ArcSwapOption::const_empty();

/// This epoch's wait table.
fn waits() -> Arc<Waits> {
    this_side(&WAITS, || {
        Mutex::new(Waiting {
            next_ticket: 0,
            queues: HashMap::new(),
        })
    })
}

/// A poisoned mutex only means a panic elsewhere; the queues it guards stay consistent.
fn lock_state(waits: &Waits) -> MutexGuard<'_, Waiting> {
    waits.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The error of a wait for `path`'s lock that timed out.
fn busy(path: &Path, started: Instant) -> Error {
    Error::Busy {
        ctx: Context {
            key: None,
            path: Some(PathBuf::from(path)),
        },
        waited_ms: started.elapsed().as_millis() as u64,
        foreign: None,
    }
}

/// Takes the exclusive lock on `path`, waiting at most `timeout`.
pub fn lock_exclusive(path: &Path, timeout: Duration) -> Result<LockGuard> {
    let started = Instant::now();
    // Far enough for any timeout a caller means; `Duration::MAX` must not overflow.
    let deadline = started
        .checked_add(timeout)
        .unwrap_or(started + Duration::from_secs(100 * 365 * 24 * 3600));
    crate::runtime::install_fork_handler();
    let waits = waits();
    {
        // The path has a waiter thread already: join its queue, with no descriptor of our own.
        let mut state = lock_state(&waits);
        if state.queues.get(path).is_some_and(|q| q.waiter) {
            let (ticket, _) = state.enqueue(path);
            return wait_for_handoff(state, path, ticket, started, deadline);
        }
    }
    let lf = LockFile::open(path)?;
    match fs4::FileExt::try_lock(lf.file()) {
        Ok(()) => return LockGuard::new(lf, path, Duration::ZERO),
        Err(fs4::TryLockError::Error(e)) => return Err(Error::io("locking", path, &e)),
        Err(fs4::TryLockError::WouldBlock) => {}
    }
    let mut state = lock_state(&waits);
    let (ticket, queue) = state.enqueue(path);
    if queue.waiter {
        // Another caller started the waiter meanwhile: ours is not needed.
        drop(lf);
    } else {
        queue.waiter = true;
        #[cfg(test)]
        {
            queue.threads_started += 1;
        }
        let (theirs, owned) = (waits.clone(), path.to_owned());
        let spawned = std::thread::Builder::new()
            .name("oauth-lock-wait".into())
            .spawn(move || wait_in_kernel(&theirs, &owned, lf));
        if let Err(e) = spawned {
            queue.waiter = false;
            queue.tickets.retain(|&t| t != ticket);
            let err = Error::io("starting the lock-wait thread", path, &e);
            // Callers that joined in between are failed too: nobody else would serve them.
            queue.fail_all(&err);
            state.remove_if_idle(path);
            return Err(err);
        }
    }
    wait_for_handoff(state, path, ticket, started, deadline)
}

/// The waiter thread of `path`: blocks in `flock` with `lf`, hands the lock to the first
/// caller still waiting (or unlocks at once if all gave up), and goes on with a fresh
/// descriptor while callers remain.
fn wait_in_kernel(waits: &Waits, path: &Path, mut lf: LockFile) {
    loop {
        let locked = fs4::FileExt::lock(lf.file());
        let mut state = lock_state(waits);
        let queue = state
            .queues
            .get_mut(path)
            .expect("a queue lives as long as its waiter thread");
        match locked {
            Ok(()) => match queue.tickets.pop_front() {
                Some(ticket) => {
                    // The previous hand-off was taken: its holder released the lock since.
                    debug_assert!(queue.handoff.is_none());
                    queue.handoff = Some((ticket, lf));
                    queue.cv.notify_all();
                }
                // Every caller gave up: release at once (LockFile's drop unlocks), and say so
                // to the close watches as a holder's beacon would.
                None => {
                    drop(lf);
                    #[cfg(target_os = "linux")]
                    drop(LockFile::beacon(path));
                }
            },
            Err(e) => {
                drop(lf);
                queue.fail_all(&Error::io("locking", path, &e));
            }
        }
        if queue.tickets.is_empty() {
            queue.waiter = false;
            state.remove_if_idle(path);
            return;
        }
        // Callers still wait behind the one just served: block again, on a fresh descriptor
        // (opened without the table's mutex held).
        drop(state);
        let next = LockFile::open(path);
        let mut state = lock_state(waits);
        let queue = state
            .queues
            .get_mut(path)
            .expect("a queue lives as long as its waiter thread");
        match next {
            Ok(next) if !queue.tickets.is_empty() => lf = next,
            outcome => {
                if let Err(err) = outcome {
                    queue.fail_all(&err);
                }
                queue.waiter = false;
                state.remove_if_idle(path);
                return;
            }
        }
    }
}

/// Waits (on the queue's condition variable, with the table's mutex) until the waiter
/// thread hands `ticket` the lock, the wait fails, or `deadline` passes (`Busy`).
fn wait_for_handoff(
    mut state: MutexGuard<'_, Waiting>,
    path: &Path,
    ticket: u64,
    started: Instant,
    deadline: Instant,
) -> Result<LockGuard> {
    loop {
        let queue = state
            .queues
            .get_mut(path)
            .expect("a waiting ticket keeps its queue");
        if queue.handoff.as_ref().is_some_and(|(t, _)| *t == ticket) {
            let (_, file) = queue.handoff.take().expect("checked");
            state.remove_if_idle(path);
            drop(state);
            return LockGuard::new(file, path, started.elapsed());
        }
        if let Some(i) = queue.failed.iter().position(|(t, _)| *t == ticket) {
            let (_, err) = queue.failed.swap_remove(i);
            state.remove_if_idle(path);
            return Err(err);
        }
        let now = Instant::now();
        if now >= deadline {
            // Give up our place; the waiter thread serves the others, or unlocks at once.
            queue.tickets.retain(|&t| t != ticket);
            state.remove_if_idle(path);
            return Err(busy(path, started));
        }
        let cv = queue.cv.clone();
        state = cv
            .wait_timeout(state, deadline - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

/// Takes the exclusive lock on `path` if it is free; `None` when another holds it.
pub fn try_lock_exclusive(path: &Path) -> Result<Option<LockGuard>> {
    crate::runtime::install_fork_handler();
    let mut lf = LockFile::open(path)?;
    match fs4::FileExt::try_lock(lf.file()) {
        Ok(()) => LockGuard::new(lf, path, Duration::ZERO).map(Some),
        Err(fs4::TryLockError::WouldBlock) => {
            // It holds nothing: closed without an unlock (a system call each contender saves).
            lf.locks = false;
            Ok(None)
        }
        Err(fs4::TryLockError::Error(e)) => Err(Error::io("locking", path, &e)),
    }
}

/// Work to do the moment a holder releases, on the thread that saw the release, before the
/// waiting tasks wake: the protocol's re-read and adopt, so a waiting caller is answered with
/// no tokio worker in between (one thread wake less per waiting process).
pub type OnRelease = Box<dyn FnOnce() + Send>;

/// The callers of one path waiting for its holder's release, and their one shared waiter.
struct Release {
    /// Wakes the waiting tasks, with no thread between.
    notify: Arc<tokio::sync::Notify>,
    /// Releases seen so far; a caller returns once it moves past the value it found.
    round: u64,
    /// The shared waiter is blocked in `flock(LOCK_SH)` (or about to be).
    waiter: bool,
    /// The last failure of the shared waiter, by the round it ended.
    failed: Option<(u64, Error)>,
    /// What the callers still waiting asked to run at the release, by caller.
    on_release: Vec<(u64, OnRelease)>,
}

impl Release {
    fn new() -> Release {
        Release {
            notify: Arc::new(tokio::sync::Notify::new()),
            round: 0,
            waiter: false,
            failed: None,
            on_release: Vec::new(),
        }
    }
}

/// The release waits of one side of a fork, by lock path.
type Releases = ForkSide<Mutex<HashMap<PathBuf, Release>>>;

static RELEASES: ArcSwapOption<Releases> = ArcSwapOption::const_empty();
static NEXT_CALLER: AtomicU64 = AtomicU64::new(1);

/// This epoch's table of release waits.
fn releases() -> Arc<Releases> {
    this_side(&RELEASES, Default::default)
}

/// Waits until no process holds `path` exclusively, at most `timeout` (`Busy`); returns at
/// once, with zero, when it is free (and then `on_release` is not run). The wait is a shared
/// `flock` that the holder's exclusive lock blocks, so every waiter of every process wakes
/// the moment the holder releases, and the caller takes nothing: it re-reads, and takes the
/// exclusive lock only if it must (DESIGN.md §4 step 2.3).
///
/// In a process, one thread of the core's blocking pool (kept alive between uses, so nothing
/// is started or torn down per wait) blocks in the kernel per path; at the release it runs
/// every caller's `on_release`, then wakes their tasks. A caller that times out withdraws
/// its `on_release` and leaves that one thread blocked until the holder releases (one thread
/// and one descriptor per path, however many give up), as for [`lock_exclusive`].
pub async fn wait_released(
    path: &Path,
    timeout: Duration,
    on_release: Option<OnRelease>,
) -> Result<Duration> {
    let started = Instant::now();
    crate::runtime::install_fork_handler();
    let table = releases();
    let caller = NEXT_CALLER.fetch_add(1, Ordering::Relaxed);
    let (notify, mine) = {
        let mut state = table.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.get(path).is_some_and(|r| r.waiter) {
            drop(state);
            let lf = LockFile::open(path)?;
            match fs4::FileExt::try_lock_shared(lf.file()) {
                // Nobody holds it exclusively: nothing to wait for.
                Ok(()) => return Ok(Duration::ZERO),
                Err(fs4::TryLockError::Error(e)) => return Err(Error::io("locking", path, &e)),
                Err(fs4::TryLockError::WouldBlock) => {}
            }
            state = table.state.lock().unwrap_or_else(PoisonError::into_inner);
            let release = state.entry(path.to_owned()).or_insert_with(Release::new);
            if !release.waiter {
                release.waiter = true;
                let (theirs, owned) = (table.clone(), path.to_owned());
                crate::runtime::process()
                    .runtime
                    .spawn_blocking(move || wait_shared_in_kernel(&theirs, &owned, lf));
            }
        }
        SHARED_WAITS.fetch_add(1, Ordering::Relaxed);
        let release = state.get_mut(path).expect("made above");
        if let Some(f) = on_release {
            release.on_release.push((caller, f));
        }
        (release.notify.clone(), release.round)
    };
    let deadline =
        tokio::time::Instant::now() + timeout.min(Duration::from_secs(100 * 365 * 24 * 3600));
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let timed_out = {
            let mut state = table.state.lock().unwrap_or_else(PoisonError::into_inner);
            let release = state
                .get_mut(path)
                .expect("a release entry is never removed");
            // Checked on the timeout too: a release that came with it counts as a release.
            if release.round > mine {
                return match &release.failed {
                    Some((round, e)) if *round == release.round => Err(e.clone()),
                    _ => Ok(started.elapsed()),
                };
            }
            if tokio::time::Instant::now() >= deadline {
                release.on_release.retain(|(c, _)| *c != caller);
                true
            } else {
                false
            }
        };
        if timed_out {
            return Err(busy(path, started));
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

/// [`wait_released`] by a close watch of the lock file (Linux): a holder unlocks, then closes
/// its beacon (`LockFile::beacon`), and the close wakes every waiter; each then takes a
/// non-blocking shared `flock` to see that no holder is left, checked again every `RECHECK`
/// (50 ms) in case a release came with no close (a descriptor a forked child still shares),
/// and soon after a close that found the lock still held (a holder that died: the kernel
/// reports its close before it lets its lock go). Polled on a blocking call's own thread
/// (`runtime::block_on`'s, which nothing else needs meanwhile), the wait blocks it, so that
/// the thread that sees the release is the caller's; on a runtime worker the reactor wakes
/// the task. Either way a woken process has no waiter thread to wake in between, which is
/// most of a hand-off's CPU when many processes wake together on few cores. `None`, with `on_release` left in place, where this cannot be (not
/// Linux, no inotify instance left, no lock file yet): the caller uses [`wait_released`].
pub async fn wait_released_watching(
    path: &Path,
    timeout: Duration,
    on_release: &mut Option<OnRelease>,
) -> Option<Result<Duration>> {
    #[cfg(target_os = "linux")]
    {
        wait_released_watching_every(path, timeout, RECHECK, on_release).await
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (path, timeout, on_release);
        None
    }
}

/// [`wait_released_watching`], checking the lock again every `recheck` with no close seen
/// (tests set it apart from the closes they make).
#[cfg(target_os = "linux")]
async fn wait_released_watching_every(
    path: &Path,
    timeout: Duration,
    recheck: Duration,
    on_release: &mut Option<OnRelease>,
) -> Option<Result<Duration>> {
    {
        let started = Instant::now();
        // Decided by the thread that polls the wait: a blocking caller's leader runs on the
        // caller's thread, unless it was handed to the runtime.
        let blocking = crate::runtime::is_callers_thread();
        if !blocking && tokio::runtime::Handle::try_current().is_err() {
            // No reactor to wake the task: the waiter thread does.
            return None;
        }
        // Watched before the first check, so that a release between the two is not missed.
        let mut pooled = PooledWatch::take(path)?;
        let mut watch = match CloseWait::new(&mut pooled, blocking) {
            Ok(w) => w,
            Err(e) => return Some(Err(Error::io("waiting for the lock", path, &e))),
        };
        let lf = match LockFile::open_read_only(path) {
            Ok(lf) => lf,
            Err(e) => return Some(Err(e)),
        };
        let mut waited = false;
        // The last wake was a close, or a look again soon after one (below).
        let mut closed = false;
        // How long the next wait may block with no close seen.
        let mut look_again = recheck;
        loop {
            match fs4::FileExt::try_lock_shared(lf.file()) {
                Ok(()) => {
                    // LockFile's drop unlocks explicitly, then closes.
                    drop(lf);
                    if !waited {
                        return Some(Ok(Duration::ZERO));
                    }
                    let seen = if closed {
                        &SEEN_AT_CLOSE
                    } else {
                        &SEEN_AT_RECHECK
                    };
                    seen.fetch_add(1, Ordering::Relaxed);
                    if blocking {
                        OWN_THREAD_RELEASES.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(f) = on_release.take() {
                        ON_RELEASE_RUNS.fetch_add(1, Ordering::Relaxed);
                        f();
                    }
                    return Some(Ok(started.elapsed()));
                }
                Err(fs4::TryLockError::Error(e)) => {
                    return Some(Err(Error::io("locking", path, &e)))
                }
                Err(fs4::TryLockError::WouldBlock) => {
                    #[cfg(test)]
                    if closed && look_again == recheck {
                        WOKEN_IN_VAIN.fetch_add(1, Ordering::SeqCst);
                    }
                    // A close with the lock still held: a holder that died, whose beacon's
                    // close the kernel reports before it lets the lock go (the flock goes
                    // with the last close of the lock's descriptor, after the notice, in an
                    // order of its own), or another process that took the lock since. Look
                    // again soon, then less and less often (a release wakes the watch anyway).
                    look_again = if closed && look_again == recheck {
                        LOOK_AGAIN_AFTER_CLOSE
                    } else {
                        (look_again * 4).min(recheck)
                    };
                }
            }
            if !waited {
                waited = true;
                SHARED_WAITS.fetch_add(1, Ordering::Relaxed);
            }
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Some(Err(busy(path, started)));
            }
            let soon = look_again < recheck;
            match watch.wait(left.min(look_again)).await {
                Ok(seen) => closed = seen || soon,
                Err(e) => return Some(Err(Error::io("waiting for the lock", path, &e))),
            }
        }
    }
}

/// A pooled close watch in use by one wait: polled on the calling thread, or registered with
/// the runtime's reactor (and given back to its pool when the wait ends or its task is
/// dropped).
#[cfg(target_os = "linux")]
enum CloseWait<'a> {
    Here(&'a PooledWatch),
    Reactor {
        home: &'a mut PooledWatch,
        fd: Option<tokio::io::unix::AsyncFd<crate::sys::CloseWatch>>,
    },
}

#[cfg(target_os = "linux")]
impl<'a> CloseWait<'a> {
    fn new(pooled: &'a mut PooledWatch, blocking: bool) -> std::io::Result<CloseWait<'a>> {
        if blocking {
            return Ok(CloseWait::Here(pooled));
        }
        let watch = pooled.watch.take().expect("a pooled watch holds one");
        // SAFETY: a CloseWatch owns its descriptor (an OwnedFd it never replaces), which stays
        // open and the same until `into_inner` gives the watch back (CloseWait's drop).
        let registered = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(watch, tokio::io::Interest::READABLE)
        };
        match registered {
            Ok(fd) => Ok(CloseWait::Reactor {
                home: pooled,
                fd: Some(fd),
            }),
            Err(e) => {
                let (watch, e) = e.into_parts();
                pooled.watch = Some(watch);
                Err(e)
            }
        }
    }

    /// Until a close (`true`) or `timeout` (`false`).
    async fn wait(&mut self, timeout: Duration) -> std::io::Result<bool> {
        match self {
            CloseWait::Here(pooled) => pooled.wait(timeout),
            CloseWait::Reactor { fd, .. } => {
                let fd = fd.as_ref().expect("registered until dropped");
                match tokio::time::timeout(timeout, fd.readable()).await {
                    Err(_) => Ok(false),
                    Ok(Err(e)) => Err(e),
                    Ok(Ok(mut ready)) => {
                        ready.get_inner().drain();
                        // Cleared only if no event came since the one seen (tokio's tick).
                        ready.clear_ready();
                        Ok(true)
                    }
                }
            }
        }
    }
}

#[cfg(target_os = "linux")]
impl Drop for CloseWait<'_> {
    fn drop(&mut self) {
        if let CloseWait::Reactor { home, fd } = self {
            home.watch = fd.take().map(tokio::io::unix::AsyncFd::into_inner);
        }
    }
}

/// The close watches of one side of a fork that no wait uses now, kept for the next: closing
/// an inotify descriptor waits for the kernel's grace period (milliseconds), which must not
/// be on a caller's way back. A keeper thread closes them once none was used for
/// [`WATCH_IDLE`], so that an idle process holds none of the user's inotify instances (128 by
/// default, shared with every program's file watchers).
#[cfg(target_os = "linux")]
struct WatchPool {
    idle: Vec<crate::sys::CloseWatch>,
    in_use: usize,
    last_used: Instant,
    keeper: bool,
}

#[cfg(target_os = "linux")]
static WATCHES: ArcSwapOption<ForkSide<Mutex<WatchPool>>> = ArcSwapOption::const_empty();

#[cfg(target_os = "linux")]
const WATCH_IDLE: Duration = Duration::from_secs(2);

/// This side of the fork's pool of close watches.
#[cfg(target_os = "linux")]
fn watch_pool() -> Arc<ForkSide<Mutex<WatchPool>>> {
    this_side(&WATCHES, || {
        Mutex::new(WatchPool {
            idle: Vec::new(),
            in_use: 0,
            last_used: Instant::now(),
            keeper: false,
        })
    })
}

/// A close watch taken from this process's pool (or made), put back when dropped.
#[cfg(target_os = "linux")]
struct PooledWatch {
    pool: Arc<ForkSide<Mutex<WatchPool>>>,
    watch: Option<crate::sys::CloseWatch>,
}

#[cfg(target_os = "linux")]
impl PooledWatch {
    /// A watch on `path`; `None` when no inotify instance can be had.
    fn take(path: &Path) -> Option<PooledWatch> {
        let pool = watch_pool();
        let (pooled, start_keeper) = {
            let mut p = pool.state.lock().unwrap_or_else(PoisonError::into_inner);
            p.in_use += 1;
            // Started now, before the release, so that no thread starts on the way back.
            (p.idle.pop(), !std::mem::replace(&mut p.keeper, true))
        };
        if start_keeper {
            let theirs = pool.clone();
            let started = std::thread::Builder::new()
                .name("oauth-lock-watch".into())
                .spawn(move || keep_watches(&theirs));
            if started.is_err() {
                // Without a keeper, a watch put back is closed at once (see Drop).
                pool.state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .keeper = false;
            }
        }
        // Counted in use from here: a failure below puts back what it took.
        let mut taken = PooledWatch { pool, watch: None };
        taken.watch = Some(match pooled {
            Some(w) => w,
            None => crate::sys::CloseWatch::new().ok()?,
        });
        taken.watch.as_ref()?.watch(path).ok()?;
        Some(taken)
    }

    fn wait(&self, timeout: Duration) -> std::io::Result<bool> {
        self.watch.as_ref().expect("until dropped").wait(timeout)
    }
}

#[cfg(target_os = "linux")]
impl Drop for PooledWatch {
    fn drop(&mut self) {
        let mut p = self
            .pool
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        p.in_use -= 1;
        p.last_used = Instant::now();
        if let (Some(w), true) = (self.watch.take(), p.keeper) {
            p.idle.push(w);
        }
    }
}

/// The keeper of a watch pool: closes the idle watches once none was used for
/// [`WATCH_IDLE`], then ends (the next wait starts another).
#[cfg(target_os = "linux")]
fn keep_watches(pool: &ForkSide<Mutex<WatchPool>>) {
    loop {
        std::thread::sleep(WATCH_IDLE);
        let mut p = pool.state.lock().unwrap_or_else(PoisonError::into_inner);
        if p.in_use == 0 && p.last_used.elapsed() >= WATCH_IDLE {
            p.keeper = false;
            let idle = std::mem::take(&mut p.idle);
            drop(p);
            drop(idle);
            return;
        }
    }
}

/// Waits on a caller's own thread that saw the release after a close, and after a
/// [`RECHECK`] with no close (tests tell the two ways apart by these).
#[cfg(target_os = "linux")]
static SEEN_AT_CLOSE: AtomicU64 = AtomicU64::new(0);
#[cfg(target_os = "linux")]
static SEEN_AT_RECHECK: AtomicU64 = AtomicU64::new(0);
/// Close watches woken by a close that was no release (the lock still held).
#[cfg(all(test, target_os = "linux"))]
static WOKEN_IN_VAIN: AtomicU64 = AtomicU64::new(0);
/// Of those, the waits that blocked the caller's own thread.
static OWN_THREAD_RELEASES: AtomicU64 = AtomicU64::new(0);

/// How often [`wait_released_watching`] checks the lock with no close seen: a bound on the wait
/// for a release that closed nothing, not the way releases are seen.
#[cfg(target_os = "linux")]
const RECHECK: Duration = Duration::from_millis(50);

/// How soon [`wait_released_watching`] looks at the lock again after a close that found it
/// still held (a dying holder's lock goes microseconds after its close is reported).
#[cfg(target_os = "linux")]
const LOOK_AGAIN_AFTER_CLOSE: Duration = Duration::from_micros(200);

/// The shared waiter of `path`: blocks until no exclusive holder remains, lets go at once (a
/// writer waiting behind is held up for microseconds only), runs what the callers asked for
/// at the release, and wakes them.
fn wait_shared_in_kernel(table: &Releases, path: &Path, lf: LockFile) {
    let outcome = fs4::FileExt::lock_shared(lf.file());
    // LockFile's drop unlocks explicitly, then closes.
    drop(lf);
    let (notify, on_release) = {
        let mut state = table.state.lock().unwrap_or_else(PoisonError::into_inner);
        let release = state
            .get_mut(path)
            .expect("a release entry is never removed");
        release.round += 1;
        release.waiter = false;
        let on_release = std::mem::take(&mut release.on_release);
        match outcome {
            Ok(()) => (release.notify.clone(), on_release),
            Err(e) => {
                release.failed = Some((release.round, Error::io("locking", path, &e)));
                (release.notify.clone(), Vec::new())
            }
        }
    };
    for (_, f) in on_release {
        ON_RELEASE_RUNS.fetch_add(1, Ordering::Relaxed);
        // One caller's failure must not cost the others their wake-up.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    }
    notify.notify_waiters();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// (callers waiting, waiter thread running, waiter threads started) of `path`'s queue.
    fn queue_facts(path: &Path) -> Option<(usize, bool, usize)> {
        let waits = waits();
        let state = lock_state(&waits);
        let q = state.queues.get(path)?;
        Some((q.tickets.len(), q.waiter, q.threads_started))
    }

    /// Descriptors of this process open on `path`, read from /proc: `None` elsewhere (Windows),
    /// where the counts are not checked (`assert_fds`).
    fn fds_on(path: &Path) -> Option<usize> {
        if !cfg!(target_os = "linux") {
            return None;
        }
        let path = path.canonicalize().unwrap();
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l == path))
            .count()
            .into()
    }

    /// A holder's descriptors on its lock file: the locked one, and on Linux its beacon.
    const HOLDER_FDS: usize = if cfg!(target_os = "linux") { 2 } else { 1 };

    /// Asserts that `n` descriptors are open on `path`, where they can be counted.
    fn assert_fds(path: &Path, n: usize, what: &str) {
        if let Some(open) = fds_on(path) {
            assert_eq!(open, n, "{what}");
        }
    }

    fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn waiters_on_one_path_share_one_waiter_thread_and_get_the_lock_in_turn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let held = lock_exclusive(&path, Duration::from_secs(1)).unwrap();
        let inside = Arc::new(AtomicBool::new(false));
        let order = Arc::new(Mutex::new(Vec::new()));
        let contender = |n: u32| {
            let (path, inside, order) = (path.clone(), inside.clone(), order.clone());
            std::thread::spawn(move || {
                let g = lock_exclusive(&path, Duration::from_secs(30)).unwrap();
                assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                order.lock().unwrap().push(n);
                std::thread::sleep(Duration::from_millis(100));
                inside.store(false, Ordering::SeqCst);
                drop(g);
            })
        };
        let first = contender(1);
        eventually("the first contender waits", || {
            queue_facts(&path).is_some_and(|(n, _, _)| n == 1)
        });
        let second = contender(2);
        eventually("the second contender waits", || {
            queue_facts(&path).is_some_and(|(n, _, _)| n == 2)
        });
        assert_eq!(
            queue_facts(&path),
            Some((2, true, 1)),
            "two callers, one waiter thread"
        );
        assert_fds(
            &path,
            HOLDER_FDS + 1,
            "the holder's descriptors and the waiter's",
        );

        drop(held);
        eventually("the first contender holds the lock", || {
            order.lock().unwrap().len() == 1
        });
        assert_eq!(*order.lock().unwrap(), [1], "first come, first served");
        let (waiting, waiter, started) = queue_facts(&path).expect("the second still waits");
        assert_eq!(
            (waiting, waiter, started),
            (1, true, 1),
            "the same waiter goes on"
        );
        assert!(
            fds_on(&path).is_none_or(|n| n <= HOLDER_FDS + 1),
            "the holder's and the waiter's fresh one"
        );

        first.join().unwrap();
        second.join().unwrap();
        assert_eq!(*order.lock().unwrap(), [1, 2]);
        eventually("the queue is gone once nobody waits", || {
            queue_facts(&path).is_none()
        });
        assert_fds(&path, 0, "every descriptor closed");
        drop(lock_exclusive(&path, Duration::ZERO).expect("the lock is free"));
    }

    #[test]
    fn a_waiter_whose_callers_all_gave_up_unlocks_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let held = lock_exclusive(&path, Duration::from_secs(1)).unwrap();
        for _ in 0..50 {
            let e = lock_exclusive(&path, Duration::from_millis(1))
                .err()
                .expect("held");
            assert_eq!(e.code(), crate::ErrorCode::Busy);
        }
        assert_eq!(
            queue_facts(&path),
            Some((0, true, 1)),
            "one waiter for all 50"
        );
        assert_fds(
            &path,
            HOLDER_FDS + 1,
            "the holder's descriptors and the waiter's",
        );
        drop(held);
        eventually("the waiter let go and ended", || {
            queue_facts(&path).is_none()
        });
        drop(lock_exclusive(&path, Duration::ZERO).expect("the lock is free"));
        assert_fds(&path, 0, "descriptors");
    }

    #[test]
    fn a_contender_blocks_in_the_kernel_and_wakes_on_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let held = lock_exclusive(&path, Duration::from_secs(1)).unwrap();
        assert_eq!(held.waited, Duration::ZERO);
        let before = blocked_waits();
        let p = path.clone();
        let waiter = std::thread::spawn(move || {
            let g = lock_exclusive(&p, Duration::from_secs(30)).unwrap();
            (Instant::now(), g.waited)
        });
        // Proof that it went to the kernel: the blocked-wait counter moved, and it waits in
        // this path's queue (the counter alone could be another test's wait).
        while blocked_waits() == before || queue_facts(&path).is_none_or(|(n, _, _)| n == 0) {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(50));
        let released = Instant::now();
        drop(held);
        let (woke, waited) = waiter.join().unwrap();
        assert!(
            waited >= Duration::from_millis(50),
            "it waited for the holder: {waited:?}"
        );
        // How fast the kernel hands over is a benchmark's figure (bench/waiters), not a
        // bound here: under load (Wine, CI) any bound flakes. The order is behaviour.
        assert!(woke >= released, "it woke only after the release");
    }

    #[test]
    fn deadline_gives_busy_and_the_abandoned_wait_releases_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let held = lock_exclusive(&path, Duration::from_secs(1)).unwrap();
        let err = match lock_exclusive(&path, Duration::from_millis(100)) {
            Err(e) => e,
            Ok(_) => panic!("the lock was held"),
        };
        assert_eq!(err.code(), crate::ErrorCode::Busy);
        assert_eq!(err.path(), Some(path.as_path()));
        drop(held);
        // The abandoned waiter thread gets the lock and must let go of it at once.
        let again = lock_exclusive(&path, Duration::from_secs(5)).unwrap();
        drop(again);
    }

    /// The shared-wait tests count this process's descriptors: run one at a time.
    static SHARED_WAIT_TESTS: Mutex<()> = Mutex::new(());

    /// An `on_release` that counts its runs and says whether its caller's task was still
    /// waiting (not yet woken) when it ran.
    fn counting(runs: &Arc<AtomicU64>, woken: &Arc<AtomicBool>) -> Option<OnRelease> {
        let (runs, woken) = (runs.clone(), woken.clone());
        Some(Box::new(move || {
            assert!(!woken.load(Ordering::SeqCst), "ran before its caller woke");
            runs.fetch_add(1, Ordering::SeqCst);
        }))
    }

    /// Releases `held` once no `on_release` ran, and checks that every waiter waited and that
    /// each one's `on_release` ran once.
    async fn release_to(
        held: LockGuard,
        waiters: Vec<tokio::task::JoinHandle<Result<Duration>>>,
        runs: &AtomicU64,
    ) {
        assert_eq!(
            runs.load(Ordering::SeqCst),
            0,
            "nothing runs before the release"
        );
        drop(held);
        let n = waiters.len() as u64;
        for w in waiters {
            assert!(w.await.unwrap().unwrap() > Duration::ZERO, "it waited");
        }
        assert_eq!(runs.load(Ordering::SeqCst), n, "each on_release ran once");
    }

    // The guard only serializes the shared-wait tests (they count descriptors); nothing else
    // in these tests takes it.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_free_lock_is_not_waited_for_and_nothing_stays_held() {
        let _serial = SHARED_WAIT_TESTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let runs = Arc::new(AtomicU64::new(0));
        let woken = Arc::new(AtomicBool::new(false));
        let waited = wait_released(&path, Duration::from_secs(1), counting(&runs, &woken))
            .await
            .unwrap();
        assert_eq!(waited, Duration::ZERO);
        assert_eq!(runs.load(Ordering::SeqCst), 0, "nothing was released");
        // The shared probe is gone: the exclusive lock is free at once.
        assert!(try_lock_exclusive(&path).unwrap().is_some());
        assert_fds(&path, 0, "descriptors");
    }

    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_waiter_wakes_at_the_release_after_its_on_release_ran_and_takes_nothing() {
        let _serial = SHARED_WAIT_TESTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let held = lock_exclusive(&path, Duration::from_secs(1)).unwrap();
        let before = shared_waits();
        let runs = Arc::new(AtomicU64::new(0));
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                let woken = Arc::new(AtomicBool::new(false));
                let hook = counting(&runs, &woken);
                tokio::spawn(async move {
                    let waited = wait_released(&path, Duration::from_secs(30), hook).await;
                    woken.store(true, Ordering::SeqCst);
                    waited
                })
            })
            .collect();
        while shared_waits() - before < 8 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_fds(
            &path,
            HOLDER_FDS + 1,
            "the holder's descriptors and one waiter's",
        );
        assert!(try_lock_exclusive(&path).unwrap().is_none(), "still held");
        release_to(held, waiters, &runs).await;
        // Nobody took anything: the lock is free for the next writer.
        assert!(try_lock_exclusive(&path).unwrap().is_some());
        assert_fds(&path, 0, "the shared waiter let go");
    }

    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shared_wait_times_out_busy_withdraws_its_on_release_and_lets_go_at_the_release() {
        let _serial = SHARED_WAIT_TESTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let held = lock_exclusive(&path, Duration::from_secs(1)).unwrap();
        let runs = Arc::new(AtomicU64::new(0));
        let woken = Arc::new(AtomicBool::new(false));
        let err = wait_released(&path, Duration::from_millis(50), counting(&runs, &woken))
            .await
            .unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::Busy);
        assert_eq!(err.path(), Some(path.as_path()));
        // A second caller reuses the blocked waiter instead of starting another.
        let err = wait_released(&path, Duration::from_millis(50), counting(&runs, &woken))
            .await
            .unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::Busy);
        assert_fds(
            &path,
            HOLDER_FDS + 1,
            "the holder's descriptors and one waiter's",
        );
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(10);
        while fds_on(&path).is_some_and(|n| n != 0) {
            assert!(
                Instant::now() < deadline,
                "the abandoned waiter never let go"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Where descriptors cannot be counted (Windows), the abandoned waiter is granted its
        // shared hold at the release and lets go a moment later: the lock is free once it has.
        eventually("the abandoned waiter let go", || {
            try_lock_exclusive(&path).unwrap().is_some()
        });
        assert_eq!(
            runs.load(Ordering::SeqCst),
            0,
            "a caller that gave up is not called back"
        );
    }

    /// A shared-wait test's turn (they count descriptors and watches), its directory, and
    /// the lock file in it.
    fn shared_wait_test() -> (MutexGuard<'static, ()>, tempfile::TempDir, PathBuf) {
        let serial = SHARED_WAIT_TESTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        (serial, dir, path)
    }

    /// A recheck that never comes in a test: what ends the wait is the close (or the timeout).
    #[cfg(target_os = "linux")]
    const NEVER: Duration = Duration::from_secs(3600);

    /// Inotify descriptors open in this process (the close watches).
    #[cfg(target_os = "linux")]
    fn close_watches_open() -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:inotify")
            })
            .count()
    }

    /// `wait_released_here` on a thread of its own; what it returned and whether its
    /// `on_release` is still there (not run).
    #[cfg(target_os = "linux")]
    fn wait_here_on_a_thread(
        path: &Path,
        timeout: Duration,
        recheck: Duration,
        runs: &Arc<AtomicU64>,
    ) -> std::thread::JoinHandle<(Result<Duration>, bool)> {
        let (path, runs) = (path.to_owned(), runs.clone());
        std::thread::spawn(move || {
            let me = std::thread::current().id();
            let mut hook: Option<OnRelease> = Some(Box::new(move || {
                assert_eq!(
                    std::thread::current().id(),
                    me,
                    "ran on the caller's thread"
                );
                runs.fetch_add(1, Ordering::SeqCst);
            }));
            let waiting = wait_released_watching_every(&path, timeout, recheck, &mut hook);
            let waited = crate::runtime::block_on(waiting).expect("Linux watches");
            (waited, hook.is_some())
        })
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_blocking_callers_wait_sees_the_holders_close_on_its_own_thread_and_takes_nothing() {
        let (_serial, _dir, path) = shared_wait_test();
        let held = lock_exclusive(&path, Duration::from_secs(1)).unwrap();
        let (before, at_close) = (shared_waits(), SEEN_AT_CLOSE.load(Ordering::SeqCst));
        let runs = Arc::new(AtomicU64::new(0));
        let waiter = wait_here_on_a_thread(&path, Duration::from_secs(30), NEVER, &runs);
        eventually("the waiter waits", || shared_waits() > before);
        std::thread::sleep(Duration::from_millis(100));
        assert!(!waiter.is_finished(), "it waits while the lock is held");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            0,
            "nothing runs before the release"
        );
        drop(held);
        let (waited, hook_left) = waiter.join().unwrap();
        assert!(waited.unwrap() > Duration::ZERO, "it waited");
        assert!(!hook_left, "on_release was taken");
        assert_eq!(runs.load(Ordering::SeqCst), 1, "on_release ran once");
        assert_eq!(
            SEEN_AT_CLOSE.load(Ordering::SeqCst) - at_close,
            1,
            "the release was seen at the holder's close"
        );
        // Nothing taken, nothing left open on the lock file.
        assert!(try_lock_exclusive(&path).unwrap().is_some());
        assert_fds(&path, 0, "descriptors on the lock file");
    }

    /// Contenders that find the lock held close their descriptor again; only a release may
    /// wake the close watches, or every arrival would wake every waiter (N² wakes for N
    /// processes).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_contenders_failed_try_wakes_no_waiter_and_the_holders_release_does() {
        let (_serial, _dir, path) = shared_wait_test();
        let held = lock_exclusive(&path, Duration::from_secs(1)).unwrap();
        let (before, at_close) = (shared_waits(), SEEN_AT_CLOSE.load(Ordering::SeqCst));
        let (at_recheck, in_vain) = (
            SEEN_AT_RECHECK.load(Ordering::SeqCst),
            WOKEN_IN_VAIN.load(Ordering::SeqCst),
        );
        let runs = Arc::new(AtomicU64::new(0));
        let waiter = wait_here_on_a_thread(&path, Duration::from_secs(30), NEVER, &runs);
        eventually("the waiter waits", || shared_waits() > before);
        for _ in 0..5 {
            assert!(try_lock_exclusive(&path).unwrap().is_none());
        }
        // A close event, if one had come, is read within this.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            WOKEN_IN_VAIN.load(Ordering::SeqCst) - in_vain,
            0,
            "a contender's close woke the waiter"
        );
        assert!(!waiter.is_finished());
        drop(held);
        let (waited, _) = waiter.join().unwrap();
        assert!(waited.unwrap() > Duration::ZERO);
        assert_eq!(
            (
                SEEN_AT_CLOSE.load(Ordering::SeqCst) - at_close,
                SEEN_AT_RECHECK.load(Ordering::SeqCst) - at_recheck,
                WOKEN_IN_VAIN.load(Ordering::SeqCst) - in_vain
            ),
            (1, 0, 0),
            "seen at the holder's close, once"
        );
    }

    /// A caller that gave up its exclusive wait leaves its waiter thread blocked in `flock`;
    /// at the holder's release that thread takes the lock and lets it go at once. The shared
    /// waiters, woken by the holder's close while that thread still held it, must be woken
    /// again by its release, not left to their recheck.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_abandoned_exclusive_waits_release_wakes_the_close_watches() {
        let (_serial, _dir, path) = shared_wait_test();
        let held = lock_exclusive(&path, Duration::from_secs(1)).unwrap();
        let (before, at_recheck) = (shared_waits(), SEEN_AT_RECHECK.load(Ordering::SeqCst));
        let runs = Arc::new(AtomicU64::new(0));
        let waiter = wait_here_on_a_thread(&path, Duration::from_secs(30), NEVER, &runs);
        eventually("the waiter waits", || shared_waits() > before);
        let err = lock_exclusive(&path, Duration::from_millis(20))
            .err()
            .unwrap();
        assert_eq!(err.code(), crate::ErrorCode::Busy);
        assert_eq!(queue_facts(&path).map(|(_, w, _)| w), Some(true));
        let in_vain = WOKEN_IN_VAIN.load(Ordering::SeqCst);
        // The waiter thread, once it has the lock, is held up on the table until the shared
        // waiter has found the lock still taken (woken by the holder's close, in vain).
        let table = waits();
        let state = lock_state(&table);
        let released = Instant::now();
        drop(held);
        eventually(
            "the shared waiter finds the lock taken by the abandoned wait",
            || WOKEN_IN_VAIN.load(Ordering::SeqCst) > in_vain,
        );
        drop(state);
        let (waited, _) = waiter.join().unwrap();
        assert!(waited.unwrap() > Duration::ZERO);
        assert!(
            released.elapsed() < Duration::from_secs(10),
            "woken at a close, not at the end of its wait"
        );
        assert_eq!(SEEN_AT_RECHECK.load(Ordering::SeqCst) - at_recheck, 0);
        eventually("the abandoned wait ends", || queue_facts(&path).is_none());
        assert!(try_lock_exclusive(&path).unwrap().is_some());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_release_that_closes_nothing_is_seen_at_the_recheck() {
        let (_serial, _dir, path) = shared_wait_test();
        // A holder whose descriptor stays open after its unlock (as one a forked child still
        // shares does): its release makes no close.
        let holder = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        fs4::FileExt::lock(&holder).unwrap();
        let (before, at_recheck) = (shared_waits(), SEEN_AT_RECHECK.load(Ordering::SeqCst));
        let runs = Arc::new(AtomicU64::new(0));
        let waiter = wait_here_on_a_thread(&path, Duration::from_secs(30), RECHECK, &runs);
        eventually("the waiter waits", || shared_waits() > before);
        fs4::FileExt::unlock(&holder).unwrap();
        let (waited, _) = waiter.join().unwrap();
        assert!(waited.unwrap() > Duration::ZERO, "it waited");
        assert_eq!(runs.load(Ordering::SeqCst), 1, "on_release ran once");
        assert_eq!(SEEN_AT_RECHECK.load(Ordering::SeqCst) - at_recheck, 1);
        drop(holder);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_blocking_callers_wait_times_out_busy_and_runs_nothing_and_a_free_lock_is_not_waited_for() {
        let (_serial, _dir, path) = shared_wait_test();
        let held = lock_exclusive(&path, Duration::from_secs(1)).unwrap();
        let runs = Arc::new(AtomicU64::new(0));
        let (waited, hook_left) =
            wait_here_on_a_thread(&path, Duration::from_millis(120), NEVER, &runs)
                .join()
                .unwrap();
        let err = waited.unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::Busy);
        assert_eq!(err.path(), Some(path.as_path()));
        assert!(hook_left, "a caller that gave up is not called back");
        assert_fds(&path, HOLDER_FDS, "the holder's descriptors only");
        drop(held);
        let (waited, hook_left) =
            wait_here_on_a_thread(&path, Duration::from_secs(1), NEVER, &runs)
                .join()
                .unwrap();
        assert_eq!(waited.unwrap(), Duration::ZERO, "free: nothing to wait for");
        assert!(hook_left, "nothing was released");
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert!(try_lock_exclusive(&path).unwrap().is_some());
        assert_fds(&path, 0, "descriptors on the lock file");
    }

    /// The close watch outlives its wait (closing one takes the kernel's grace period), is
    /// used again by the next wait, and is closed once the process stops waiting: an idle
    /// process holds none of the user's inotify instances.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_close_watch_is_kept_for_the_next_wait_and_closed_when_idle() {
        let (_serial, dir, _) = shared_wait_test();
        let runs = Arc::new(AtomicU64::new(0));
        eventually("no watch left by another test", || {
            close_watches_open() == 0
        });
        for key in ["a", "b", "a"] {
            let path = dir.path().join(format!("{key}.lock"));
            let held = lock_exclusive(&path, Duration::from_secs(1)).unwrap();
            let before = shared_waits();
            let waiter = wait_here_on_a_thread(&path, Duration::from_secs(30), NEVER, &runs);
            eventually("the waiter waits", || shared_waits() > before);
            assert_eq!(close_watches_open(), 1, "one watch, the same each time");
            drop(held);
            assert!(waiter.join().unwrap().0.unwrap() > Duration::ZERO);
            assert_eq!(close_watches_open(), 1, "kept after the wait");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        eventually("the idle watch is closed", || close_watches_open() == 0);
    }

    /// A pooled watch used for one lock file, then another, watches the second alone: a
    /// release of the first wakes no wait on the second.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_pooled_watch_forgets_the_lock_file_of_its_last_wait() {
        let (_serial, dir, _) = shared_wait_test();
        let runs = Arc::new(AtomicU64::new(0));
        let (a, b) = (dir.path().join("a.lock"), dir.path().join("b.lock"));
        let held = lock_exclusive(&a, Duration::from_secs(1)).unwrap();
        let before = shared_waits();
        let waiter = wait_here_on_a_thread(&a, Duration::from_secs(30), NEVER, &runs);
        eventually("the waiter waits on a", || shared_waits() > before);
        drop(held);
        assert!(waiter.join().unwrap().0.unwrap() > Duration::ZERO);
        // The same watch (kept in the pool) for a wait on b; a is taken and let go meanwhile.
        let held_b = lock_exclusive(&b, Duration::from_secs(1)).unwrap();
        let (before, in_vain) = (shared_waits(), WOKEN_IN_VAIN.load(Ordering::SeqCst));
        let waiter = wait_here_on_a_thread(&b, Duration::from_secs(30), NEVER, &runs);
        eventually("the waiter waits on b", || shared_waits() > before);
        assert_eq!(pool_facts().0, 1, "one watch in use");
        drop(lock_exclusive(&a, Duration::from_secs(1)).unwrap());
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            WOKEN_IN_VAIN.load(Ordering::SeqCst) - in_vain,
            0,
            "a's release woke the wait on b"
        );
        drop(held_b);
        assert!(waiter.join().unwrap().0.unwrap() > Duration::ZERO);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    /// A wait that returns at a close leaves no close queued (one read takes them: the kernel
    /// merges identical events not yet read), so that the next wait blocks until a close to
    /// come; else a waiter would be woken in vain by closes already seen.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_close_watch_wait_leaves_no_close_seen_queued() {
        // Serial: other tests count the process's inotify instances.
        let (_serial, _dir, path) = shared_wait_test();
        std::fs::write(&path, b"").unwrap();
        let watch = crate::sys::CloseWatch::new().unwrap();
        watch.watch(&path).unwrap();
        let close = || drop(OpenOptions::new().write(true).open(&path).unwrap());
        for _ in 0..20 {
            close();
        }
        assert!(
            watch.wait(Duration::from_secs(5)).unwrap(),
            "the closes were seen"
        );
        assert!(
            !watch.wait(Duration::from_millis(50)).unwrap(),
            "closes already seen woke the next wait"
        );
        close();
        assert!(
            watch.wait(Duration::from_secs(5)).unwrap(),
            "a new close is seen"
        );
        assert!(!watch.wait(Duration::from_millis(50)).unwrap());
    }

    /// (watches in use, watches idle in the pool).
    #[cfg(target_os = "linux")]
    fn pool_facts() -> (usize, usize) {
        let pool = watch_pool();
        let p = pool.state.lock().unwrap();
        (p.in_use, p.idle.len())
    }

    #[cfg(target_os = "linux")]
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_waits_are_woken_by_the_reactor_at_the_holders_close() {
        let (_serial, _dir, path) = shared_wait_test();
        let held = lock_exclusive(&path, Duration::from_secs(1)).unwrap();
        let before = shared_waits();
        let (at_close, own) = (SEEN_AT_CLOSE.load(Ordering::SeqCst), own_thread_releases());
        let runs = Arc::new(AtomicU64::new(0));
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let (path, runs) = (path.clone(), runs.clone());
                tokio::spawn(async move {
                    let mut hook: Option<OnRelease> = Some(Box::new(move || {
                        runs.fetch_add(1, Ordering::SeqCst);
                    }));
                    let waited = wait_released_watching_every(
                        &path,
                        Duration::from_secs(30),
                        NEVER,
                        &mut hook,
                    );
                    waited.await.expect("Linux watches")
                })
            })
            .collect();
        while shared_waits() - before < 4 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(pool_facts().0, 4, "a watch each");
        tokio::time::sleep(Duration::from_millis(100)).await;
        release_to(held, waiters, &runs).await;
        assert_eq!(
            SEEN_AT_CLOSE.load(Ordering::SeqCst) - at_close,
            4,
            "seen at the close (at a recheck: {})",
            SEEN_AT_RECHECK.load(Ordering::SeqCst)
        );
        assert_eq!(own_thread_releases(), own, "no caller's thread was blocked");
        assert_eq!(pool_facts(), (0, 4), "every watch back in the pool");
        assert!(try_lock_exclusive(&path).unwrap().is_some());
        assert_fds(&path, 0, "descriptors on the lock file");
    }

    /// An async caller may be dropped mid-wait: its watch goes back to the pool (no close on
    /// the way, no watch counted in use for ever) and nothing stays open on the lock file.
    #[cfg(target_os = "linux")]
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_async_wait_gives_its_watch_back_and_leaves_nothing_open() {
        let (_serial, _dir, path) = shared_wait_test();
        let held = lock_exclusive(&path, Duration::from_secs(1)).unwrap();
        let before = shared_waits();
        let (in_use, idle) = pool_facts();
        let waiter = {
            let path = path.clone();
            tokio::spawn(async move {
                let mut hook: Option<OnRelease> = Some(Box::new(|| panic!("never released")));
                wait_released_watching_every(&path, Duration::from_secs(30), NEVER, &mut hook).await
            })
        };
        while shared_waits() == before {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(pool_facts().0, in_use + 1);
        waiter.abort();
        assert!(waiter.await.unwrap_err().is_cancelled());
        let idle_after = if idle == 0 { 1 } else { idle };
        assert_eq!(
            pool_facts(),
            (in_use, idle_after),
            "the watch is back in the pool"
        );
        assert_fds(&path, HOLDER_FDS, "the holder's descriptors only");
        drop(held);
    }

    /// Shared holds last a moment (taken and dropped at once), so a writer behind a stream of
    /// waiters is never starved: every exclusive acquisition succeeds well within its timeout
    /// while eight tasks keep waiting and re-waiting on the same lock.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_are_not_starved_by_a_stream_of_shared_waits() {
        let (_serial, _dir, path) = shared_wait_test();
        let stop = Arc::new(AtomicBool::new(false));
        let waits_before = shared_waits();
        let stream: Vec<_> = (0..8)
            .map(|_| {
                let (path, stop) = (path.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        wait_released(&path, Duration::from_secs(30), None)
                            .await
                            .unwrap();
                        n += 1;
                        tokio::task::yield_now().await;
                    }
                    n
                })
            })
            .collect();
        let writer = std::thread::spawn({
            let path = path.clone();
            move || {
                for _ in 0..200 {
                    let g = lock_exclusive(&path, Duration::from_secs(5))
                        .expect("a writer got the lock within 5 s despite the shared waits");
                    std::thread::sleep(Duration::from_micros(200));
                    drop(g);
                }
            }
        });
        while !writer.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        writer.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        let mut rounds = 0;
        for t in stream {
            rounds += t.await.unwrap();
        }
        assert!(rounds > 200, "the stream really ran: {rounds} rounds");
        assert!(
            shared_waits() > waits_before,
            "some waits found the writer holding it"
        );
    }
}
