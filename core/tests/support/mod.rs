//! Helpers shared by the core's integration tests: a store in a temporary directory, logins,
//! the record as JSON, and running a test alone in a process of its own.

#![allow(dead_code)]

use oauth_lock::{Credential, Error, ErrorCode, SaveOptions, Store};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

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
