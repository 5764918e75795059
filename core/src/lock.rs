//! The cross-process lock on `<stem>.lock`: an exclusive `flock` (fs4) whose wait blocks in
//! the kernel on a dedicated thread, so a waiter wakes the moment the holder releases, with
//! a deadline that gives `Busy`. Also the fork hygiene of DESIGN.md §4.

use crate::error::{Context, Error, Result};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How many lock acquisitions found the lock held and blocked in the kernel (diagnostics).
static BLOCKED_WAITS: AtomicU64 = AtomicU64::new(0);

/// Number of lock acquisitions in this process that had to block in the kernel.
pub fn blocked_waits() -> u64 {
    BLOCKED_WAITS.load(Ordering::Relaxed)
}

/// Open lock descriptors, so that a forked child can close the ones it inherited.
const SLOTS: usize = 256;
static OPEN_FDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];

fn register(fd: RawFd) -> Option<usize> {
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
            unsafe { libc::close(fd) };
        }
    }
}

/// An open lock file, registered for the fork handler.
struct LockFile {
    file: Option<File>,
    slot: Option<usize>,
    pid: u32,
}

impl LockFile {
    fn open(path: &Path) -> std::io::Result<LockFile> {
        // A child forked while this descriptor is open must close its copy.
        crate::runtime::install_fork_handler();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        let slot = register(file.as_raw_fd());
        Ok(LockFile {
            file: Some(file),
            slot,
            pid: std::process::id(),
        })
    }

    fn file(&self) -> &File {
        self.file.as_ref().expect("open until dropped")
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let file = self.file.take().expect("dropped once");
        if let Some(i) = self.slot {
            OPEN_FDS[i].store(-1, Ordering::Release);
        }
        if self.pid != std::process::id() {
            // Inherited across fork: the fork handler already closed this descriptor.
            std::mem::forget(file);
            return;
        }
        // Unlock explicitly: a forked child might still share this open file description.
        let _ = fs4::FileExt::unlock(&file);
    }
}

/// A held exclusive lock; released (explicitly, then closed) on drop.
pub struct LockGuard {
    _file: LockFile,
    /// How long the acquisition waited.
    pub waited: Duration,
}

enum Wait {
    Waiting,
    Acquired(LockFile),
    Failed(std::io::Error),
    Abandoned,
}

/// Takes the exclusive lock on `path`, waiting at most `timeout`.
pub fn lock_exclusive(path: &Path, timeout: Duration) -> Result<LockGuard> {
    let started = Instant::now();
    let io = |op: &str, e: &std::io::Error| Error::io(op, path, e);
    let lf = LockFile::open(path).map_err(|e| io("opening the lock file", &e))?;
    match fs4::FileExt::try_lock(lf.file()) {
        Ok(()) => {
            return Ok(LockGuard {
                _file: lf,
                waited: Duration::ZERO,
            })
        }
        Err(fs4::TryLockError::Error(e)) => return Err(io("locking", &e)),
        Err(fs4::TryLockError::WouldBlock) => {}
    }
    BLOCKED_WAITS.fetch_add(1, Ordering::Relaxed);
    let shared = Arc::new((Mutex::new(Wait::Waiting), Condvar::new()));
    let theirs = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("oauth-lock-wait".into())
        .spawn(move || {
            let result = fs4::FileExt::lock(lf.file());
            let (state, cv) = &*theirs;
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            match (&*state, result) {
                // The caller gave up: release at once (LockFile's drop unlocks).
                (Wait::Abandoned, _) => drop(lf),
                (_, Ok(())) => *state = Wait::Acquired(lf),
                (_, Err(e)) => *state = Wait::Failed(e),
            }
            cv.notify_all();
        });
    if let Err(e) = spawned {
        return Err(io("starting the lock-wait thread", &e));
    }
    let (state, cv) = &*shared;
    let deadline = started + timeout;
    let mut guard = state.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        match std::mem::replace(&mut *guard, Wait::Waiting) {
            Wait::Acquired(lf) => {
                return Ok(LockGuard {
                    _file: lf,
                    waited: started.elapsed(),
                })
            }
            Wait::Failed(e) => return Err(io("locking", &e)),
            Wait::Waiting | Wait::Abandoned => {}
        }
        let now = Instant::now();
        if now >= deadline {
            *guard = Wait::Abandoned;
            return Err(Error::Busy {
                ctx: Context {
                    key: None,
                    path: Some(PathBuf::from(path)),
                },
                waited_ms: started.elapsed().as_millis() as u64,
            });
        }
        guard = cv
            .wait_timeout(guard, deadline - now)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // Proof that it went to the kernel: the blocked-wait counter moved.
        while blocked_waits() == before {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(50));
        let released = Instant::now();
        drop(held);
        let (woke, waited) = waiter.join().unwrap();
        let handoff = woke.duration_since(released);
        assert!(
            waited >= Duration::from_millis(50),
            "it waited for the holder: {waited:?}"
        );
        // A sleep-polling waiter with any sensible interval would miss this by far.
        assert!(
            handoff < Duration::from_millis(100),
            "hand-off took {handoff:?}"
        );
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
}
