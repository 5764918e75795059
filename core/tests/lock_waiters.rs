//! Lock waits are bounded (issue 11): a holder in another process that never lets go (stopped
//! with SIGSTOP) costs this process one waiter thread and one descriptor, however many calls
//! give up with `Busy` meanwhile; and when the fork handler's table of lock descriptors is
//! full, taking another lock fails loudly (`Io`) instead of leaving a descriptor a forked
//! child would keep.
//!
//! Each test counts the threads and descriptors of its whole process, so each runs alone, in
//! a test process of its own.

mod support;

use oauth_lock::{
    refresher_fn, Credential, ErrorCode, Refresher, SaveOptions, Secret, SourceOptions, Store,
    TokenFields,
};
use serde_json::json;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

fn threads() -> usize {
    count("/proc/self/task")
}

fn fds() -> usize {
    count("/proc/self/fd")
}

/// Whether another open file description holds an exclusive `flock` on `path`.
fn held_elsewhere(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    // SAFETY: flock(2) on a descriptor `file` owns for the whole call.
    let got = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    got != 0
}

/// A `sleep 60` process that holds the exclusive lock on `path` (taken between fork and exec,
/// on a descriptor that survives the exec); killed and reaped on drop.
struct Holder(Child);

impl Holder {
    fn start(path: &Path) -> Holder {
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        let mut command = Command::new("sleep");
        command.arg("60").stdin(Stdio::null());
        // SAFETY: between fork and exec the closure calls only open(2) and flock(2), which are
        // async-signal-safe, on a path allocated before the fork.
        unsafe {
            command.pre_exec(move || {
                let fd = libc::open(c_path.as_ptr(), libc::O_RDWR | libc::O_CREAT, 0o600);
                if fd < 0 || libc::flock(fd, libc::LOCK_EX) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let holder = Holder(command.spawn().expect("spawning sleep"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !held_elsewhere(path) {
            assert!(Instant::now() < deadline, "the holder never took the lock");
            std::thread::sleep(Duration::from_millis(1));
        }
        holder
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the pid of our own child, which is not reaped yet.
        assert_eq!(unsafe { libc::kill(self.0.id() as i32, signal) }, 0);
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn refresher(calls: &Arc<AtomicUsize>) -> Arc<dyn Refresher> {
    let calls = calls.clone();
    refresher_fn(move |_| {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            Ok(TokenFields {
                access_token: Some(Secret::new(format!("at-{n}"))),
                refresh_token: Some(Secret::new(format!("rt-{n}"))),
                expires_in_ms: Some(3_600_000),
                ..Default::default()
            })
        }
    })
}

fn save(store: &Store, key: &str, expires_in: u64) {
    let cred = json!({"access_token": "at-0", "refresh_token": "rt-0", "expires_in": expires_in});
    store
        .save_blocking(
            key,
            Credential::from_json(&cred).unwrap(),
            SaveOptions::default(),
        )
        .unwrap();
}

#[test]
fn a_stopped_holder_costs_one_waiter_however_many_calls_give_up() {
    in_a_process_of_its_own(
        "a_stopped_holder_costs_one_waiter_however_many_calls_give_up",
        stopped_holder_costs_one_waiter,
    );
}

fn stopped_holder_costs_one_waiter() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    save(&store, "k", 0);
    save(&store, "warm", 3600);
    let calls = Arc::new(AtomicUsize::new(0));
    // The runtime's threads (and a blocking thread that took a lock) exist before the first
    // count: a forced refresh of another credential.
    let warm = store.source_with("warm", refresher(&calls)).unwrap();
    assert_eq!(warm.verify_blocking().unwrap().value(), "at-1");
    calls.store(0, Ordering::SeqCst);

    let holder = Holder::start(&store.dir().join("k.lock"));
    holder.signal(libc::SIGSTOP);
    let quick = SourceOptions {
        lock_timeout: Duration::from_millis(5),
        ..Default::default()
    };
    let source = store
        .source_with_options("k", Some(refresher(&calls)), quick)
        .unwrap();
    let (threads0, fds0) = (threads(), fds());
    let (mut most_threads, mut most_fds) = (threads0, fds0);
    for i in 0..1000 {
        let e = source.access_token_blocking().unwrap_err();
        assert_eq!(e.code(), ErrorCode::Busy, "call {i}: {e}");
        most_threads = most_threads.max(threads());
        most_fds = most_fds.max(fds());
    }
    eprintln!(
        "1000 Busy calls behind a stopped holder: threads {threads0} -> at most {most_threads}, \
         descriptors {fds0} -> at most {most_fds}"
    );
    assert!(
        most_threads <= threads0 + 4,
        "threads grew from {threads0} to {most_threads}"
    );
    assert!(
        most_fds <= fds0 + 4,
        "descriptors grew from {fds0} to {most_fds}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing was refreshed");

    holder.signal(libc::SIGCONT);
    drop(holder);
    let patient = store.source_with("k", refresher(&calls)).unwrap();
    assert_eq!(
        patient.access_token_blocking().unwrap().value(),
        "at-1",
        "once the holder is gone, a call refreshes"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while fds() > fds0 {
        assert!(
            Instant::now() < deadline,
            "the waiter's descriptor stays open: {} > {fds0}",
            fds()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_full_lock_descriptor_table_fails_loudly() {
    in_a_process_of_its_own(
        "a_full_lock_descriptor_table_fails_loudly",
        full_lock_descriptor_table_fails_loudly,
    );
}

fn full_lock_descriptor_table_fails_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let take = |i: usize| {
        oauth_lock::lock::lock_exclusive(
            &dir.path().join(format!("{i}.lock")),
            Duration::from_secs(1),
        )
    };
    let mut held: Vec<_> = (0..256).map(|i| take(i).unwrap()).collect();
    let e = take(256).err().expect("the table is full");
    let message = e.to_string();
    assert_eq!(e.code(), ErrorCode::Io, "{message}");
    let path = dir.path().join("256.lock");
    assert_eq!(e.path(), Some(path.as_path()));
    assert!(message.contains(&path.display().to_string()), "{message}");
    // 256 held: on Linux each with its beacon.
    let open = if cfg!(target_os = "linux") { 512 } else { 256 };
    assert!(
        message.contains(&format!("has {open} lock-file descriptors open")),
        "{message}"
    );
    held.pop();
    let again = take(256).expect("a freed slot is used again");
    drop(again);
    drop(held);
}

/// DESIGN.md §4 fork rule, for a child that takes a lock of its own and then drops a guard it
/// inherited: the inherited guard must not untrack the child's descriptor (it used to free its
/// old slot, which the child's new lock had been given), or a grandchild forked later keeps
/// the child's lock alive after the child dies.
#[test]
fn a_guard_inherited_across_fork_leaves_the_childs_own_locks_tracked() {
    in_a_process_of_its_own(
        "a_guard_inherited_across_fork_leaves_the_childs_own_locks_tracked",
        guard_inherited_across_fork_leaves_the_childs_own_locks_tracked,
    );
}

fn guard_inherited_across_fork_leaves_the_childs_own_locks_tracked() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.lock"), dir.path().join("b.lock"));
    let pid_file = dir.path().join("grandchild");
    let inherited = oauth_lock::lock::lock_exclusive(&a, Duration::from_secs(5)).unwrap();
    // SAFETY: this test runs alone in its process, with no other thread of its own; the child
    // only takes a lock, forks, writes a file and leaves with _exit.
    let child = unsafe { libc::fork() };
    assert!(child >= 0);
    if child == 0 {
        let Ok(own) = oauth_lock::lock::lock_exclusive(&b, Duration::from_secs(5)) else {
            // SAFETY: _exit(2) ends the child without running the parent's destructors.
            unsafe { libc::_exit(3) };
        };
        drop(inherited);
        // SAFETY: as above; the grandchild only sleeps and leaves with _exit.
        let grandchild = unsafe { libc::fork() };
        if grandchild == 0 {
            std::thread::sleep(Duration::from_secs(20));
            // SAFETY: as above.
            unsafe { libc::_exit(0) };
        }
        let ok = std::fs::write(&pid_file, grandchild.to_string()).is_ok();
        // Die holding `own`: no unlock, no destructor.
        std::mem::forget(own);
        // SAFETY: as above.
        unsafe { libc::_exit(if ok { 0 } else { 4 }) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child, with a valid pointer for its status.
    assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
    assert_eq!(status, 0, "the child failed");
    let grandchild: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let got = oauth_lock::lock::lock_exclusive(&b, Duration::from_secs(2));
    // SAFETY: kill(2) has no memory-safety preconditions. The grandchild was reparented when
    // the child died, so init reaps it.
    unsafe { libc::kill(grandchild, libc::SIGKILL) };
    assert!(
        got.is_ok(),
        "the child's lock outlived it through the grandchild: {:?}",
        got.err()
    );
    drop(inherited);
}
