//! Another program's `mkdir` locks (proper-lockfile's, as Claude Code takes them around its own
//! refresh), taken by oauth-lock inside its own lock so that the two programs serialize
//! (DESIGN.md §6.1).
//!
//! proper-lockfile's rules: a lock is a directory made with `mkdir`; its holder sets its mtime
//! to now every [`TOUCH_EVERY`]; a lock whose mtime is older than [`STALE`] belongs to a dead
//! holder and may be removed (with `rmdir`, which is why nothing is ever put inside a lock
//! directory: Claude Code could not clear a non-empty one). We keep those rules, with one
//! addition. A crashed holder's leftover clears after 60 s by Claude Code's rule and ours
//! alike. A lock whose mtime is more than [`STALE`] in the *future* (a clock stepped back, a
//! home directory copied from another machine) is never stale to proper-lockfile, so Claude
//! Code would wait on it forever; a live holder touches with its current time every 5 s, so
//! such an mtime is no live holder's unless the clock stepped back by more than 60 s, and we
//! count it stale too: we remove it, and Claude Code's next `mkdir` succeeds.
//!
//! Waiting polls, as proper-lockfile does: there is nothing in a directory to block on.

use crate::error::{Error, Result};
use std::ffi::{OsStr, OsString};
use std::fs::FileTimes;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// proper-lockfile's `stale`, as Claude Code uses it.
pub(crate) const STALE: Duration = Duration::from_secs(60);

/// proper-lockfile's `update`: how often a holder sets its lock's mtime to now.
pub(crate) const TOUCH_EVERY: Duration = Duration::from_secs(5);

/// Between two looks at a held lock: short beside a refresh, long beside a `mkdir`.
const POLL: Duration = Duration::from_millis(30);

/// Test-only: set to `1`, [`ForeignLock::acquire`] takes nothing, so that tests can show the
/// replays that happen without the interop. Never set it in production.
const TEST_SWITCH: &str = "OAUTH_LOCK_TEST_NO_FOREIGN_LOCKS";

/// Which directory we made, so that we never touch or remove a lock another program made at
/// the same path after removing ours as stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DirId {
    dev: u64,
    ino: u64,
}

impl DirId {
    fn of(stamp: crate::sys::Stamp) -> DirId {
        DirId {
            dev: stamp.dev,
            ino: stamp.ino,
        }
    }
}

/// The lock directories held, shared with the toucher thread.
#[derive(Debug, Default)]
struct Held {
    dirs: Vec<PathBuf>,
    ids: Vec<DirId>,
}

/// The locks an `acquire` has taken so far, released if it fails or its future is dropped
/// (a caller's timeout), so that no lock of ours is left for Claude Code to wait out.
struct Taken<'a> {
    program: &'a str,
    held: Held,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        release(self.program, &self.held);
    }
}

/// The thread that keeps the held locks fresh; it stops when `stop` is dropped.
struct Toucher {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

/// Locks of another program, held until dropped.
pub(crate) struct ForeignLock {
    program: String,
    held: Arc<Held>,
    toucher: Option<Toucher>,
}

impl ForeignLock {
    /// Takes each lock directory of `dirs` in order (mkdir), waiting in all at most `wait`.
    /// `program` names the owner for messages (e.g. "Claude Code").
    pub(crate) async fn acquire(
        program: &str,
        dirs: Vec<PathBuf>,
        wait: Duration,
    ) -> Result<ForeignLock> {
        Self::acquire_with(program, dirs, wait, TOUCH_EVERY).await
    }

    /// [`ForeignLock::acquire`] with the touch interval as a parameter, so that tests need
    /// not wait 5 s to see a touch.
    async fn acquire_with(
        program: &str,
        dirs: Vec<PathBuf>,
        wait: Duration,
        touch_every: Duration,
    ) -> Result<ForeignLock> {
        if switched_off(std::env::var_os(TEST_SWITCH)) {
            return Ok(ForeignLock {
                program: program.to_owned(),
                held: Arc::default(),
                toucher: None,
            });
        }
        let start = Instant::now();
        let deadline = start + wait;
        let mut taken = Taken {
            program,
            held: Held::default(),
        };
        // Until the toucher starts, this task keeps the locks already taken fresh itself: a
        // long wait for the second lock must not let the first go stale.
        let mut last_touch = Instant::now();
        let mut warned = Vec::new();
        for dir in dirs {
            loop {
                if let Some(id) = take(program, &dir)? {
                    taken.held.dirs.push(dir);
                    taken.held.ids.push(id);
                    warned.push(false);
                    break;
                }
                let now = Instant::now();
                if now >= deadline {
                    return Err(Error::Busy {
                        ctx: Default::default(),
                        waited_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                        foreign: Some(format!(
                            "{program}'s lock {} is held (it counts as stale {} s after its last update)",
                            dir.display(),
                            STALE.as_secs()
                        )),
                    });
                }
                if now.duration_since(last_touch) >= touch_every {
                    touch_all(program, &taken.held, &mut warned);
                    last_touch = now;
                }
                tokio::time::sleep(POLL.min(deadline - now)).await;
            }
        }
        let held = Arc::new(std::mem::take(&mut taken.held));
        let toucher = if held.dirs.is_empty() {
            None
        } else {
            match spawn_toucher(program, Arc::clone(&held), warned, touch_every) {
                Ok(toucher) => Some(toucher),
                Err(e) => {
                    release(program, &held);
                    return Err(Error::io(
                        format!("starting the thread that keeps {program}'s lock fresh"),
                        &held.dirs[0],
                        &e,
                    ));
                }
            }
        };
        Ok(ForeignLock {
            program: program.to_owned(),
            held,
            toucher,
        })
    }

    /// The lock directories held, in order.
    // Only the tests read it so far; it is part of the API for callers' messages.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn dirs(&self) -> &[PathBuf] {
        &self.held.dirs
    }
}

impl Drop for ForeignLock {
    fn drop(&mut self) {
        // Stopped before the rmdirs, so that nothing touches a path once it is released.
        if let Some(Toucher { stop, thread }) = self.toucher.take() {
            drop(stop);
            if thread.join().is_err() {
                tracing::warn!(target: "oauth_lock", program = %self.program, "the thread that kept a foreign lock fresh panicked");
            }
        }
        release(&self.program, &self.held);
    }
}

/// Whether an existing lock dir with this mtime is stale at `now`: older than [`STALE`], or
/// more than [`STALE`] in the future (see the module doc).
pub(crate) fn is_stale(mtime: SystemTime, now: SystemTime) -> bool {
    match now.duration_since(mtime) {
        Ok(age) => age > STALE,
        Err(ahead) => ahead.duration() > STALE,
    }
}

/// Whether the test switch's value turns the foreign locks off.
fn switched_off(value: Option<OsString>) -> bool {
    value.as_deref() == Some(OsStr::new("1"))
}

/// One attempt at `dir`: `Some` when we made it, `None` when a live holder has it. A stale
/// lock is removed and tried again at once.
fn take(program: &str, dir: &Path) -> Result<Option<DirId>> {
    let taking = || format!("taking {program}'s lock");
    loop {
        match std::fs::create_dir(dir) {
            Ok(()) => {
                return match crate::sys::stamp_path(dir, false) {
                    Ok(stamp) => Ok(Some(DirId::of(stamp))),
                    Err(e) => {
                        let _ = std::fs::remove_dir(dir);
                        Err(Error::io(taking(), dir, &e))
                    }
                };
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(taking(), dir, &e)),
        }
        let meta = match std::fs::symlink_metadata(dir) {
            Ok(meta) => meta,
            // Released between our mkdir and our look.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(taking(), dir, &e)),
        };
        let mtime = meta.modified().map_err(|e| Error::io(taking(), dir, &e))?;
        if !is_stale(mtime, SystemTime::now()) {
            return Ok(None);
        }
        tracing::warn!(target: "oauth_lock", program, lock = %dir.display(), "removing a stale foreign lock");
        match std::fs::remove_dir(dir) {
            Ok(()) => {}
            // Someone else removed it first.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::io(
                    format!("removing {program}'s stale lock"),
                    dir,
                    &e,
                ))
            }
        }
    }
}

/// Sets `dir`'s times to now if it is still the directory we made.
fn touch(dir: &Path, id: DirId) -> std::io::Result<()> {
    let file = crate::sys::open_dir(dir)?;
    if DirId::of(crate::sys::stamp(&file)?) != id {
        return Err(std::io::Error::other(
            "it was removed as stale and another lock now stands in its place",
        ));
    }
    let now = SystemTime::now();
    file.set_times(FileTimes::new().set_modified(now).set_accessed(now))
}

/// Touches every held lock; a failure is told once per lock, since it repeats every tick.
fn touch_all(program: &str, held: &Held, warned: &mut [bool]) {
    for ((dir, &id), warned) in held.dirs.iter().zip(&held.ids).zip(warned) {
        if let Err(e) = touch(dir, id) {
            if !*warned {
                *warned = true;
                // proper-lockfile calls such a lock "compromised": another program may now
                // hold it at the same time as we do.
                tracing::warn!(target: "oauth_lock", program, lock = %dir.display(), error = %e, "could not keep a foreign lock fresh");
            }
        }
    }
}

fn spawn_toucher(
    program: &str,
    held: Arc<Held>,
    mut warned: Vec<bool>,
    every: Duration,
) -> std::io::Result<Toucher> {
    let (stop, stopped) = mpsc::channel::<()>();
    let program = program.to_owned();
    let thread = std::thread::Builder::new()
        .name("oauth-lock-foreign-touch".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                touch_all(&program, &held, &mut warned);
            }
        })?;
    Ok(Toucher { stop, thread })
}

/// Removes the held locks in reverse order, leaving any that is no longer the one we made.
fn release(program: &str, held: &Held) {
    for (dir, &id) in held.dirs.iter().zip(&held.ids).rev() {
        let result = match crate::sys::stamp_path(dir, false) {
            Ok(stamp) if DirId::of(stamp) != id => Err(std::io::Error::other(
                "it was removed as stale and another lock now stands in its place; left alone",
            )),
            Ok(_) => std::fs::remove_dir(dir),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(target: "oauth_lock", program, lock = %dir.display(), error = %e, "could not release a foreign lock");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    const WAIT: Duration = Duration::from_millis(300);

    fn set_mtime(dir: &Path, mtime: SystemTime) {
        crate::sys::open_dir(dir)
            .unwrap()
            .set_times(FileTimes::new().set_modified(mtime).set_accessed(mtime))
            .unwrap();
    }

    fn mtime(dir: &Path) -> SystemTime {
        std::fs::symlink_metadata(dir).unwrap().modified().unwrap()
    }

    fn two_locks(tmp: &tempfile::TempDir) -> Vec<PathBuf> {
        vec![
            tmp.path().join(".oauth_refresh.lock"),
            tmp.path().join("claude.lock"),
        ]
    }

    #[tokio::test]
    async fn takes_both_locks_in_order_and_releases_them_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = two_locks(&tmp);
        let lock = ForeignLock::acquire("Claude Code", dirs.clone(), WAIT)
            .await
            .unwrap();
        assert_eq!(lock.dirs(), &dirs[..]);
        for dir in &dirs {
            assert!(std::fs::symlink_metadata(dir).unwrap().is_dir(), "{dir:?}");
            assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0, "left empty");
        }
        drop(lock);
        for dir in &dirs {
            assert!(!dir.exists(), "{dir:?}");
        }
    }

    #[tokio::test]
    async fn a_held_lock_gives_busy_after_the_wait_and_releases_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = two_locks(&tmp);
        std::fs::create_dir(&dirs[1]).unwrap();
        let start = Instant::now();
        let err = match ForeignLock::acquire("Claude Code", dirs.clone(), WAIT).await {
            Err(e) => e,
            Ok(_) => panic!("took a held lock"),
        };
        let waited = start.elapsed();
        assert!(waited >= WAIT, "{waited:?}");
        assert!(waited < WAIT + Duration::from_secs(2), "{waited:?}");
        assert_eq!(err.code(), ErrorCode::Busy);
        let Error::Busy {
            foreign: Some(foreign),
            waited_ms,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert!(*waited_ms >= 300, "{waited_ms}");
        assert!(foreign.contains("Claude Code"), "{foreign}");
        assert!(
            foreign.contains(&dirs[1].display().to_string()),
            "{foreign}"
        );
        assert!(!dirs[0].exists(), "the first lock is released again");
        assert!(dirs[1].exists(), "the holder's lock is left alone");
    }

    #[tokio::test]
    async fn a_cancelled_acquire_releases_the_locks_it_took() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = two_locks(&tmp);
        std::fs::create_dir(&dirs[1]).unwrap();
        let acquire = ForeignLock::acquire("Claude Code", dirs.clone(), Duration::from_secs(10));
        let result = tokio::time::timeout(Duration::from_millis(200), acquire).await;
        assert!(result.is_err(), "the caller's timeout fired");
        assert!(!dirs[0].exists(), "the first lock is released again");
        assert!(dirs[1].is_dir(), "the holder's lock is left alone");
    }

    #[tokio::test]
    async fn a_lock_released_during_the_wait_is_taken() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = two_locks(&tmp);
        std::fs::create_dir(&dirs[0]).unwrap();
        let holder = {
            let dir = dirs[0].clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(150));
                std::fs::remove_dir(dir).unwrap();
            })
        };
        let start = Instant::now();
        let lock = ForeignLock::acquire("Claude Code", dirs.clone(), Duration::from_secs(5))
            .await
            .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(150));
        holder.join().unwrap();
        assert_eq!(lock.dirs(), &dirs[..]);
        assert!(dirs.iter().all(|d| d.is_dir()));
    }

    #[tokio::test]
    async fn stale_locks_are_taken_at_once_and_a_recent_one_is_not() {
        let now = SystemTime::now();
        for (when, stale) in [
            (now - Duration::from_secs(61), true),
            (now + Duration::from_secs(61), true),
            (now - Duration::from_secs(30), false),
            (now + Duration::from_secs(30), false),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join(".oauth_refresh.lock");
            std::fs::create_dir(&dir).unwrap();
            set_mtime(&dir, when);
            let start = Instant::now();
            let result = ForeignLock::acquire("Claude Code", vec![dir.clone()], WAIT).await;
            if stale {
                let lock = result.unwrap_or_else(|e| panic!("{when:?}: {e}"));
                assert!(start.elapsed() < WAIT, "at once");
                let age = SystemTime::now().duration_since(mtime(&dir));
                assert!(age.is_ok_and(|a| a < Duration::from_secs(5)), "made anew");
                drop(lock);
                assert!(!dir.exists());
            } else {
                let err = result.err().unwrap_or_else(|| panic!("{when:?} taken"));
                assert_eq!(err.code(), ErrorCode::Busy);
                assert!(dir.is_dir(), "a live holder's lock is left alone");
            }
        }
    }

    #[test]
    fn staleness_boundaries() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ms = Duration::from_millis(1);
        assert!(!is_stale(now, now));
        assert!(!is_stale(now - STALE, now));
        assert!(is_stale(now - STALE - ms, now));
        assert!(!is_stale(now + STALE, now));
        assert!(is_stale(now + STALE + ms, now));
        assert!(!is_stale(now - TOUCH_EVERY, now));
        assert!(is_stale(SystemTime::UNIX_EPOCH, now));
    }

    #[tokio::test]
    async fn the_toucher_keeps_the_lock_fresh_and_stops_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(".oauth_refresh.lock");
        let every = Duration::from_millis(100);
        let lock = ForeignLock::acquire_with("Claude Code", vec![dir.clone()], WAIT, every)
            .await
            .unwrap();
        set_mtime(&dir, SystemTime::now() - Duration::from_secs(30));
        let start = Instant::now();
        loop {
            let age = SystemTime::now()
                .duration_since(mtime(&dir))
                .unwrap_or_default();
            if age < Duration::from_secs(2) {
                break;
            }
            assert!(start.elapsed() < Duration::from_millis(500), "not touched");
            std::thread::sleep(Duration::from_millis(20));
        }

        let held = Arc::clone(&lock.held);
        drop(lock);
        assert!(!dir.exists());
        assert_eq!(Arc::strong_count(&held), 1, "the toucher thread has ended");
        std::fs::create_dir(&dir).unwrap();
        let old = SystemTime::now() - Duration::from_secs(30);
        set_mtime(&dir, old);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(mtime(&dir), old);
    }

    #[tokio::test]
    async fn the_wait_keeps_the_locks_already_taken_fresh() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = two_locks(&tmp);
        std::fs::create_dir(&dirs[1]).unwrap();
        let first = dirs[0].clone();
        let watcher = std::thread::spawn(move || {
            // Age the first lock once it is taken; the waiting task must touch it again.
            while !first.exists() {
                std::thread::sleep(Duration::from_millis(5));
            }
            set_mtime(&first, SystemTime::now() - Duration::from_secs(30));
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(600) {
                let age = SystemTime::now().duration_since(mtime(&first));
                if age.is_ok_and(|a| a < Duration::from_secs(2)) {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            false
        });
        let every = Duration::from_millis(100);
        let result =
            ForeignLock::acquire_with("Claude Code", dirs, Duration::from_millis(800), every).await;
        assert_eq!(result.err().map(|e| e.code()), Some(ErrorCode::Busy));
        assert!(watcher.join().unwrap(), "the first lock was not touched");
    }

    #[tokio::test]
    async fn a_lock_made_anew_by_another_program_is_neither_touched_nor_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(".oauth_refresh.lock");
        let every = Duration::from_millis(50);
        let lock = ForeignLock::acquire_with("Claude Code", vec![dir.clone()], WAIT, every)
            .await
            .unwrap();
        // Another program removed ours as stale and took its own (made while ours still
        // existed, so that it cannot reuse our directory's inode).
        let other = tmp.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::remove_dir(&dir).unwrap();
        std::fs::rename(&other, &dir).unwrap();
        let old = SystemTime::now() - Duration::from_secs(30);
        set_mtime(&dir, old);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(mtime(&dir), old, "another's lock was touched");
        drop(lock);
        assert!(dir.is_dir(), "another's lock was removed");
    }

    #[test]
    fn only_1_switches_the_foreign_locks_off() {
        assert!(switched_off(Some("1".into())));
        assert!(!switched_off(None));
        assert!(!switched_off(Some("0".into())));
        assert!(!switched_off(Some("".into())));
        assert!(!switched_off(Some("true".into())));
    }

    #[tokio::test]
    async fn a_missing_parent_directory_is_an_io_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = vec![
            tmp.path().join(".oauth_refresh.lock"),
            tmp.path().join("missing").join("claude.lock"),
        ];
        let err = match ForeignLock::acquire("Claude Code", dirs.clone(), WAIT).await {
            Err(e) => e,
            Ok(_) => panic!("took a lock under a missing directory"),
        };
        assert_eq!(err.code(), ErrorCode::Io);
        assert_eq!(err.path(), Some(dirs[1].as_path()));
        assert!(err.to_string().contains("Claude Code"), "{err}");
        assert!(!dirs[0].exists(), "the first lock is released again");
        assert!(!tmp.path().join("missing").exists(), "no parent is made");
    }
}
