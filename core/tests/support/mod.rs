//! Helpers shared by the core's integration tests: a store in a temporary directory, logins,
//! the record as JSON, and running a test alone in a process of its own.

#![allow(dead_code)]

use oauth_lock::{
    refresher_fn, Credential, Error, ErrorCode, Refresher, SaveOptions, Secret, Store, TokenFields,
};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    (dir, store)
}

pub fn save(store: &Store, key: &str, v: Value) {
    store
        .save_blocking(
            key,
            Credential::from_json(&v).unwrap(),
            SaveOptions::default(),
        )
        .unwrap();
}

/// A credential whose access token is already expired.
pub fn save_expired(store: &Store, key: &str) {
    save(
        store,
        key,
        json!({"access_token": "at-0", "refresh_token": "rt-0", "expires_in": 0}),
    );
}

pub fn record(store: &Store, key: &str) -> Value {
    serde_json::from_slice(&std::fs::read(store.path_of(key).unwrap()).unwrap()).unwrap()
}

pub fn code<T: std::fmt::Debug>(r: Result<T, Error>) -> ErrorCode {
    r.expect_err("expected an error").code()
}

/// Runs the test `name` again, alone, in a test process of its own, and there runs `body`.
/// A fork copies whatever the process's other threads are doing at that instant; in this
/// test binary those are the other tests' threads, and a child that inherits one of them
/// half-way through queueing on a contended `parking_lot` lock (a process-wide table)
/// crashes for a reason that is not the behaviour under test (seen once in CI).
pub fn in_a_process_of_its_own(name: &str, body: impl FnOnce()) {
    const ALONE: &str = "OAUTH_LOCK_TEST_ALONE";
    if std::env::var_os(ALONE).is_some() {
        return body();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1", "--nocapture"])
        .env(ALONE, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{name} did not run: {stdout}");
}

/// A refresher that rotates like a strict provider: it refuses any refresh token but the
/// current one (counting replays), and counts refreshes.
pub struct Rotating {
    pub calls: AtomicUsize,
    pub replays: AtomicUsize,
    pub current: parking_lot::Mutex<String>,
    pub delay: Duration,
}

impl Rotating {
    pub fn new(first_rt: &str, delay: Duration) -> Arc<Rotating> {
        Arc::new(Rotating {
            calls: AtomicUsize::new(0),
            replays: AtomicUsize::new(0),
            current: parking_lot::Mutex::new(first_rt.into()),
            delay,
        })
    }
    pub fn as_refresher(self: &Arc<Self>) -> Arc<dyn Refresher> {
        let me = self.clone();
        refresher_fn(move |rec| {
            let me = me.clone();
            async move {
                let n = me.calls.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(me.delay).await;
                let presented = rec.refresh_token.as_ref().unwrap().expose().to_owned();
                let mut current = me.current.lock();
                if *current != presented {
                    me.replays.fetch_add(1, Ordering::SeqCst);
                    return Err(oauth_lock::classify_oauth_error(
                        "invalid_grant",
                        Some("reused".into()),
                    ));
                }
                *current = format!("rt-{n}");
                Ok(TokenFields {
                    access_token: Some(Secret::new(format!("at-{n}"))),
                    refresh_token: Some(Secret::new(format!("rt-{n}"))),
                    expires_in_ms: Some(3_600_000),
                    ..Default::default()
                })
            }
        })
    }
}
