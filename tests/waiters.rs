//! Waiters wake together (DESIGN.md §4 step 2.3, issue 14): processes that find the lock held
//! wait on the shared lock, all wake at the holder's release, re-read and adopt; none takes
//! the exclusive lock unless the record is still stale. Asserted through the core's counters
//! (`oauth-lock probe` prints them), not times, and at the provider.

mod support;

use serde_json::Value;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn probe(dir: &std::path::Path, key: &str) -> Child {
    cmd(dir, &["probe", key])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn report(child: Child) -> Value {
    let out = child.wait_with_output().unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("probe said {line:?} ({e}); stderr: {}", stderr(&out)))
}

/// Starts the leader on an expired credential (its refresh is slow at the provider), then
/// `waiters` more processes, and returns once every waiter is blocked in `flock` behind it.
fn leader_and_waiters(dir: &std::path::Path, key: &str, waiters: usize) -> (Child, Vec<Child>) {
    let leader = probe(dir, key);
    let deadline = Instant::now() + Duration::from_secs(20);
    while lock_is_free(dir, key) {
        assert!(Instant::now() < deadline, "the leader never took the lock");
        std::thread::sleep(Duration::from_millis(2));
    }
    let waiting: Vec<Child> = (0..waiters).map(|_| probe(dir, key)).collect();
    for w in &waiting {
        while blocked_in_flock(w.id()) != Some(true) {
            assert!(
                Instant::now() < deadline,
                "waiter {} never blocked behind the holder",
                w.id()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert!(!lock_is_free(dir, key), "the leader still refreshes");
    (leader, waiting)
}

#[test]
fn sixteen_processes_behind_one_slow_refresh_wake_together_and_none_takes_the_lock() {
    let mock = Mock::start(&["--lifetime", "1h", "--latency", "3s"]);
    let (_d, dir) = store_dir();
    login_and_save(&mock, &dir, "k", Some(0.0));
    let (leader, waiting) = leader_and_waiters(&dir, "k", 15);

    let leader = report(leader);
    assert_eq!(leader["error"], Value::Null, "{leader}");
    assert_eq!(
        leader["exclusive_locks"], 1,
        "the leader refreshed under the lock"
    );
    for w in waiting.into_iter().map(report) {
        assert_eq!(w["error"], Value::Null, "{w}");
        assert_eq!(
            (&w["generation"], &w["fingerprint"]),
            (&leader["generation"], &leader["fingerprint"]),
            "every waiter returned the leader's new token: {w}"
        );
        assert_eq!(
            w["exclusive_locks"], 0,
            "a waiter adopted without the exclusive lock: {w}"
        );
        assert_eq!(
            w["shared_waits"], 1,
            "it waited once, on the shared lock: {w}"
        );
        assert_eq!(
            w["on_release_runs"], 1,
            "the re-read ran on the thread that saw the release: {w}"
        );
        assert_eq!(
            w["own_thread_releases"],
            u64::from(cfg!(target_os = "linux")),
            "a blocking caller saw the release on its own thread (its lock file's close \
             watch), with no waiter thread to wake: {w}"
        );
    }
    assert_eq!(mock.stat("refreshes"), 1);
    assert_eq!(mock.stat("replays"), 0);
    assert_eq!(record(&dir, "k")["generation"], 2, "one rotation committed");
}

/// The holder's refresh fails (an outage): the waiters wake, find the shared backoff it
/// recorded, and answer at once without taking the lock or calling the provider.
#[test]
fn waiters_behind_a_failing_refresh_see_its_backoff_and_send_nothing() {
    let mock = Mock::start(&["--lifetime", "1h", "--latency", "3s"]);
    let (_d, dir) = store_dir();
    login_and_save(&mock, &dir, "k", Some(0.0));
    let (status, _) = http(
        "POST",
        &format!("{}/admin/outage", mock.url),
        None,
        Some(r#"{"ms": 60000}"#),
    );
    assert_eq!(status, 200);
    let (leader, waiting) = leader_and_waiters(&dir, "k", 6);

    let leader = report(leader);
    assert_eq!(leader["error"], "Transient", "{leader}");
    assert_eq!(leader["exclusive_locks"], 1);
    for w in waiting.into_iter().map(report) {
        assert_eq!(
            w["error"], "Transient",
            "the expired token cannot be handed out: {w}"
        );
        assert_eq!(
            w["exclusive_locks"], 0,
            "no second attempt under the lock: {w}"
        );
        assert_eq!(w["shared_waits"], 1, "{w}");
        assert_eq!(w["on_release_runs"], 1, "{w}");
    }
    assert_eq!(
        mock.stat("token_requests"),
        1,
        "only the leader reached the provider"
    );
    assert!(record(&dir, "k")["backoff"]["until_ms"].is_i64());
}

/// G6 with waiters: the holder is SIGKILLed with the lock while 6 processes wait for its
/// release. Its death closes its descriptors, and that close (not the periodic recheck) wakes
/// every waiter at once. The record is still stale, so they queue for the exclusive lock (or,
/// if one has taken it by then, wait on for its release): the first refreshes, the others
/// adopt its token. One refresh, no replay, every waiter back with the same token.
#[test]
fn a_holder_killed_while_others_wait_wakes_them_at_its_death_and_one_refreshes() {
    let mock = Mock::start(&["--lifetime", "1h"]);
    let (d, dir) = store_dir();
    login_and_save(&mock, &dir, "k", Some(0.0));
    let marker = d.path().join("holder-locked");
    let mut holder = cmd(&dir, &["probe", "k"])
        .env("OAUTH_LOCK_FAULT", "locked")
        .env("OAUTH_LOCK_FAULT_MARKER", &marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !marker.exists() {
        assert!(
            Instant::now() < deadline,
            "crash point `locked` never reached (is the CLI built with fault-injection?)"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(!lock_is_free(&dir, "k"), "the holder holds the lock");
    let waiting: Vec<Child> = (0..6).map(|_| probe(&dir, "k")).collect();
    for w in &waiting {
        while blocked_in_flock(w.id()) != Some(true) {
            assert!(Instant::now() < deadline, "waiter {} never blocked", w.id());
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    holder.kill().unwrap();
    holder.wait().unwrap();

    let reports: Vec<Value> = waiting.into_iter().map(report).collect();
    let first = &reports[0];
    for w in &reports {
        assert_eq!(w["error"], Value::Null, "{w}");
        assert_eq!(
            (&w["generation"], &w["fingerprint"]),
            (&first["generation"], &first["fingerprint"]),
            "every waiter returned the one new token: {w}"
        );
        assert_eq!(w["shared_waits"], 1, "it waited on the shared lock: {w}");
        assert_eq!(
            w["releases_seen_at_close"],
            u64::from(cfg!(target_os = "linux")),
            "the holder's death woke it through its close watch, not a recheck: {w}"
        );
        assert!(
            w["exclusive_locks"].as_u64().unwrap() <= 1,
            "at most one hand-off each: {w}"
        );
    }
    // Those that re-read before the refresh queued for the lock (one of them refreshed); a
    // waiter that saw the lock taken again by then waited on for that release, and adopted.
    let queued: u64 = reports
        .iter()
        .map(|w| w["exclusive_locks"].as_u64().unwrap())
        .sum();
    assert!(queued >= 1, "one of them refreshed under the lock");
    assert_eq!(first["generation"], 2, "one rotation committed");
    assert_eq!(mock.stat("refreshes"), 1, "one waiter refreshed");
    assert_eq!(mock.stat("replays"), 0);
    assert_eq!(record(&dir, "k")["generation"], 2);
    assert!(lock_is_free(&dir, "k"), "no lock outlives them");
}
