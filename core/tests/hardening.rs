//! The corners of the protocol that an independent read found unreached (issue 11): a refresh
//! that outlives `refresh_timeout`, client errors that must not kill a credential, the backoff
//! every process shares after a failure, the two outcomes of a commit, listeners that run
//! after the unlock, and margins too large for an `i64`.

mod support;

use oauth_lock::backend::{Backend, Committed, FsBackend, Location, Locked, Placement, Version};
use oauth_lock::interop::{add_listener, blocking_json_refresher, remove_listener};
use oauth_lock::{
    classify_oauth_error, refresher_fn, Error, ErrorCode, Key, Record, Refresher, SourceOptions,
    Store, REFRESH_TOKEN_ERRORS,
};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

/// A strict provider: it accepts only the current refresh token (a replay is counted and
/// refused), rotates on every refresh, and counts refreshes.
struct Strict {
    calls: AtomicUsize,
    replays: AtomicUsize,
    current: Mutex<String>,
}

impl Strict {
    fn new() -> Arc<Strict> {
        Arc::new(Strict {
            calls: AtomicUsize::new(0),
            replays: AtomicUsize::new(0),
            current: Mutex::new("rt-0".into()),
        })
    }

    /// One token request presenting `refresh_token`, answered as a token endpoint would.
    fn redeem(&self, refresh_token: &str) -> Value {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let mut current = self.current.lock().unwrap();
        if *current != refresh_token {
            self.replays.fetch_add(1, Ordering::SeqCst);
            return json!({"error": "invalid_grant", "error_description": "reused"});
        }
        *current = format!("rt-{n}");
        json!({"access_token": format!("at-{n}"), "refresh_token": format!("rt-{n}"), "expires_in": 3600})
    }

    fn as_refresher(self: &Arc<Self>) -> Arc<dyn Refresher> {
        let me = self.clone();
        refresher_fn(move |rec| {
            let answer = me.redeem(rec.refresh_token.as_ref().unwrap().expose());
            async move { oauth_lock::interop::callback_answer(&answer) }
        })
    }
}

/// A callback refresher on a blocking thread (as C, Python and JVM callbacks run) that sends
/// its request only after `delay`, then answers with what the provider said.
fn slow_callback(provider: &Arc<Strict>, delay: Duration) -> Arc<dyn Refresher> {
    let provider = provider.clone();
    blocking_json_refresher(move |credential| {
        std::thread::sleep(delay);
        Ok(provider.redeem(credential["refresh_token"].as_str().unwrap()))
    })
}

/// Whether the credential's lock is free right now (taking it releases it again at once).
fn lock_is_free(store: &Store, key: &str) -> bool {
    lock_is_freed_within(store, key, Duration::ZERO)
}

/// Whether the credential's lock is freed within `within`. The holder writes the record and
/// installs it in the process's slot under the lock, and unlocks just after, so a caller in
/// the same process (which reads the slot) can return in that gap while the lock is still,
/// briefly, held: right after a caller returns, "free" is only eventually true (CI saw it).
fn lock_is_freed_within(store: &Store, key: &str, within: Duration) -> bool {
    let path = store.path_of(key).unwrap().with_extension("lock");
    oauth_lock::lock::lock_exclusive(&path, within).is_ok()
}

/// Item 1: the caller gets `Transient` at `refresh_timeout`, but the refresh keeps the lock
/// until its refresher ends, so a second caller arriving after the timeout sends nothing and
/// gets the late answer, which is committed.
#[test]
fn a_timed_out_callback_keeps_the_lock_and_its_late_answer_is_committed() {
    let (_d, store) = store();
    save_expired(&store, "k");
    let provider = Strict::new();
    let callback = slow_callback(&provider, Duration::from_millis(900));
    let opts = SourceOptions {
        refresh_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let first = store
        .source_with_options("k", Some(callback.clone()), opts)
        .unwrap();
    let started = Instant::now();
    let err = first.access_token_blocking().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Transient, "{err}");
    assert!(
        err.to_string().contains("did not answer within 300 ms"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(850),
        "answered at the timeout"
    );
    assert_eq!(
        record(&store, "k")["generation"],
        1,
        "nothing committed yet"
    );
    assert!(
        !lock_is_free(&store, "k"),
        "the lock stays held while the refresher may still be sending the refresh token"
    );
    // Another caller (its own Store object, as another process), after the timeout.
    let second = Store::open(store.dir())
        .unwrap()
        .source_with_options("k", Some(callback), opts)
        .unwrap();
    let token = second.access_token_blocking().unwrap();
    assert_eq!(token.value(), "at-1", "the late answer");
    assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
    assert_eq!(provider.replays.load(Ordering::SeqCst), 0);
    let rec = record(&store, "k");
    assert_eq!(
        (
            &rec["access_token"],
            &rec["refresh_token"],
            &rec["generation"]
        ),
        (&json!("at-1"), &json!("rt-1"), &json!(2))
    );
    // Far inside the hard cap: the lock goes with the commit, not at `LATE_ANSWER_WINDOW`.
    assert!(lock_is_freed_within(
        &store,
        "k",
        Duration::from_millis(500)
    ));
}

/// Item 1, the hard cap: a refresher that never ends holds the lock `LATE_ANSWER_WINDOW` past
/// the timeout, no longer; then the lock is released and a backoff recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresher_that_never_ends_holds_the_lock_until_the_hard_cap() {
    let (_d, store) = store();
    save_expired(&store, "k");
    let r = refresher_fn(|_| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Err(Error::transient("never"))
    });
    let opts = SourceOptions {
        refresh_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let source = store.source_with_options("k", Some(r), opts).unwrap();
    assert_eq!(code(source.access_token().await), ErrorCode::Transient);
    let timed_out = Instant::now();
    assert!(!lock_is_free(&store, "k"));
    let path = store.path_of("k").unwrap().with_extension("lock");
    let lock = tokio::task::spawn_blocking(move || {
        oauth_lock::lock::lock_exclusive(&path, Duration::from_secs(10))
    })
    .await
    .unwrap()
    .unwrap();
    let held = timed_out.elapsed();
    drop(lock);
    let cap = oauth_lock::LATE_ANSWER_WINDOW;
    assert!(
        held >= cap - Duration::from_millis(100) && held < cap + Duration::from_secs(2),
        "held {held:?} past the timeout; the cap is {cap:?}"
    );
    let rec = record(&store, "k");
    assert_eq!(rec["refresh_token"], "rt-0");
    assert_eq!(rec["backoff"]["failures"], 1, "{rec}");
}

/// Item 4: a client or configuration error (`invalid_client`) is returned and recorded in
/// `last_error`, but the credential stays `ok` and its refresh token usable: once the client
/// is fixed, the same refresh token refreshes, with no login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_error_is_recorded_but_leaves_the_refresh_token_usable() {
    let (_d, store) = store();
    save_expired(&store, "k");
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let misconfigured = refresher_fn(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        async {
            Err(classify_oauth_error(
                "invalid_client",
                Some("bad secret".into()),
            ))
        }
    });
    let bad = store.source_with("k", misconfigured).unwrap();
    let err = bad.access_token().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Terminal);
    assert_eq!(err.oauth_error(), Some("invalid_client"));
    let rec = record(&store, "k");
    assert_eq!(rec["state"], "ok", "not marked dead");
    assert_eq!(rec["refresh_token"], "rt-0");
    assert_eq!(rec["last_error"]["code"], "invalid_client");
    assert_eq!(rec["last_error"]["description"], "bad secret");
    assert_eq!(rec["backoff"]["failures"], 1);
    // During the backoff the refusal is repeated without a request.
    let again = bad.access_token().await.unwrap_err();
    assert_eq!(
        (again.code(), again.oauth_error()),
        (ErrorCode::Terminal, Some("invalid_client"))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let status = store.status("k").unwrap();
    assert_eq!(status.state, Some(oauth_lock::State::Ok));
    assert_eq!(status.last_error.unwrap().code, "invalid_client");
    // Fixed: the same refresh token works after the backoff.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let provider = Strict::new();
    let token = store
        .source_with("k", provider.as_refresher())
        .unwrap()
        .access_token()
        .await
        .unwrap();
    assert_eq!(token.value(), "at-1");
    assert_eq!(provider.replays.load(Ordering::SeqCst), 0);
    let rec = record(&store, "k");
    assert_eq!(
        (&rec["last_error"], &rec["backoff"]),
        (&Value::Null, &Value::Null)
    );
}

/// Item 4: the errors that say the refresh token itself is dead do mark the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_token_errors_mark_the_record_dead() {
    for error in ["invalid_grant"].into_iter().chain(REFRESH_TOKEN_ERRORS) {
        let (_d, store) = store();
        save_expired(&store, "k");
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let r = refresher_fn(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            async move { Err(classify_oauth_error(error, None)) }
        });
        let source = store.source_with("k", r).unwrap();
        let err = source.access_token().await.unwrap_err();
        assert_eq!(err.oauth_error(), Some(error));
        let rec = record(&store, "k");
        assert_eq!(rec["state"], "needs_login", "{error}");
        assert_eq!(rec["last_error"]["code"], error);
        assert_eq!(code(source.access_token().await), ErrorCode::NeedsLogin);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{error}: tried once");
    }
}

/// Item 5: a provider's `Retry-After` sets the shared backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_from_the_provider_sets_the_backoff() {
    let (_d, store) = store();
    save_expired(&store, "k");
    let r = refresher_fn(|_| async {
        Err(Error::transient_retry_after(
            "503",
            Duration::from_secs(120),
        ))
    });
    let before = now_ms();
    let err = store
        .source_with("k", r)
        .unwrap()
        .access_token()
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Transient);
    let until = record(&store, "k")["backoff"]["until_ms"].as_i64().unwrap();
    assert!(
        (before + 119_000..now_ms() + 121_000).contains(&until),
        "until {until}, now {before}"
    );
    // Another process's source honours it: no request, Transient saying how long.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let other = refresher_fn(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        async { Err(Error::transient("unreachable")) }
    });
    let err = Store::open(store.dir())
        .unwrap()
        .source_with("k", other)
        .unwrap()
        .access_token()
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Transient);
    assert!(
        err.retry_after().unwrap() > Duration::from_secs(100),
        "{err}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

/// A directory store whose next writes fail (a full disk at the commit), or replace the
/// record without the directory sync.
struct Flaky {
    inner: FsBackend,
    fail_writes: Arc<AtomicUsize>,
    not_durable: Arc<AtomicBool>,
}

impl Backend for Flaky {
    fn location(&self) -> &Location {
        self.inner.location()
    }
    fn place(&self, key: &Key) -> PathBuf {
        self.inner.place(key)
    }
    fn read(&self, key: &Key) -> oauth_lock::Result<Option<(Record, Version)>> {
        self.inner.read(key)
    }
    fn version(&self, key: &Key) -> oauth_lock::Result<Option<Version>> {
        self.inner.version(key)
    }
    fn lock(&self, key: &Key, timeout: Duration) -> oauth_lock::Result<Box<dyn Locked>> {
        Ok(Box::new(FlakyLocked {
            inner: self.inner.lock(key, timeout)?,
            fail_writes: self.fail_writes.clone(),
            not_durable: self.not_durable.clone(),
        }))
    }
    fn list(&self) -> oauth_lock::Result<Vec<Key>> {
        self.inner.list()
    }
    fn placement(&self, key: &Key) -> Placement {
        self.inner.placement(key)
    }
}

struct FlakyLocked {
    inner: Box<dyn Locked>,
    fail_writes: Arc<AtomicUsize>,
    not_durable: Arc<AtomicBool>,
}

fn enospc(op: &str) -> Error {
    Error::Io {
        ctx: Default::default(),
        op: op.into(),
        kind: std::io::ErrorKind::StorageFull,
        os_code: Some(28),
        message: "No space left on device".into(),
    }
}

impl Locked for FlakyLocked {
    fn waited(&self) -> Duration {
        self.inner.waited()
    }
    fn read(&mut self) -> oauth_lock::Result<Option<(Record, Version)>> {
        self.inner.read()
    }
    fn write(&mut self, record: &Record) -> oauth_lock::Result<Committed> {
        if self
            .fail_writes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(enospc("writing the record"));
        }
        let mut committed = self.inner.write(record)?;
        if self.not_durable.load(Ordering::SeqCst) {
            committed.not_durable = Some(enospc("syncing the store directory"));
        }
        Ok(committed)
    }
    fn remove(&mut self) -> oauth_lock::Result<bool> {
        self.inner.remove()
    }
}

fn flaky_store() -> (tempfile::TempDir, Store, Arc<AtomicUsize>, Arc<AtomicBool>) {
    let dir = tempfile::tempdir().unwrap();
    let fail_writes = Arc::new(AtomicUsize::new(0));
    let not_durable = Arc::new(AtomicBool::new(false));
    let backend = Flaky {
        inner: FsBackend::open(&dir.path().join("flaky")).unwrap(),
        fail_writes: fail_writes.clone(),
        not_durable: not_durable.clone(),
    };
    (
        dir,
        Store::with_backend(Arc::new(backend)),
        fail_writes,
        not_durable,
    )
}

/// Item 6: a commit that really fails says so, and the process keeps the new refresh token
/// (the only copy once the provider rotated) and commits it before the next refresh, so the
/// spent one is never presented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_keeps_the_rotation_and_the_next_call_commits_it() {
    let (_d, store, fail_writes, _) = flaky_store();
    save_expired(&store, "k");
    let before = std::fs::read(store.path_of("k").unwrap()).unwrap();
    let provider = Strict::new();
    let source = store.source_with("k", provider.as_refresher()).unwrap();
    fail_writes.store(1, Ordering::SeqCst);
    let err = source.access_token().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io);
    assert!(err.to_string().contains("NOT saved"), "{err}");
    assert!(err.to_string().contains("keeps the new tokens"), "{err}");
    assert_eq!(
        std::fs::read(store.path_of("k").unwrap()).unwrap(),
        before,
        "the store is as it was"
    );
    let token = source.access_token().await.unwrap();
    assert_eq!(token.value(), "at-1", "the held rotation, committed");
    assert_eq!(
        provider.calls.load(Ordering::SeqCst),
        1,
        "no second request"
    );
    assert_eq!(provider.replays.load(Ordering::SeqCst), 0);
    let rec = record(&store, "k");
    assert_eq!(
        (&rec["refresh_token"], &rec["generation"]),
        (&json!("rt-1"), &json!(2))
    );
}

/// Item 6 (found by the model check): another process writing only a backoff meanwhile (it
/// presented the spent token into a provider outage) moves the generation but not the tokens;
/// the held rotation is still the newest and is committed, not dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_rotation_survives_a_backoff_another_process_wrote() {
    let (_d, store, fail_writes, _) = flaky_store();
    save_expired(&store, "k");
    let provider = Strict::new();
    let source = store.source_with("k", provider.as_refresher()).unwrap();
    fail_writes.store(1, Ordering::SeqCst);
    assert_eq!(code(source.access_token().await), ErrorCode::Io);
    // Another process's step 9: generation + 1, a backoff (already over), the same tokens.
    let mut rec = record(&store, "k");
    rec["generation"] = json!(rec["generation"].as_u64().unwrap() + 1);
    rec["backoff"] = json!({"until_ms": now_ms() - 1, "failures": 1});
    std::fs::write(store.path_of("k").unwrap(), rec.to_string()).unwrap();
    let token = source.access_token().await.unwrap();
    assert_eq!(token.value(), "at-1", "the held rotation, committed");
    assert_eq!(
        provider.calls.load(Ordering::SeqCst),
        1,
        "no second request"
    );
    assert_eq!(provider.replays.load(Ordering::SeqCst), 0);
    let rec = record(&store, "k");
    assert_eq!(
        (&rec["refresh_token"], &rec["backoff"]),
        (&json!("rt-1"), &Value::Null)
    );
}

/// Item 6: a login after the failed commit supersedes the held rotation (it is dropped, not
/// written over the login).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_supersedes_a_held_rotation() {
    let (_d, store, fail_writes, _) = flaky_store();
    save_expired(&store, "k");
    let provider = Strict::new();
    let source = store.source_with("k", provider.as_refresher()).unwrap();
    fail_writes.store(1, Ordering::SeqCst);
    assert_eq!(code(source.access_token().await), ErrorCode::Io);
    save(
        &store,
        "k",
        json!({"access_token": "at-login", "refresh_token": "rt-login", "expires_in": 3600}),
    );
    assert_eq!(source.access_token().await.unwrap().value(), "at-login");
    assert_eq!(record(&store, "k")["refresh_token"], "rt-login");
}

/// Item 6: a record that was replaced but whose directory sync failed is committed (every
/// process sees it): the caller gets the new token and an event says it may not be durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_but_unsynced_record_is_committed_not_lost() {
    let (_d, store, _, not_durable) = flaky_store();
    save_expired(&store, "k");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let listener = add_listener(move |e| s.lock().unwrap().push(e.event));
    not_durable.store(true, Ordering::SeqCst);
    let provider = Strict::new();
    let token = store
        .source_with("k", provider.as_refresher())
        .unwrap()
        .access_token()
        .await
        .unwrap();
    remove_listener(listener);
    assert_eq!(token.value(), "at-1");
    assert_eq!(record(&store, "k")["refresh_token"], "rt-1");
    assert!(
        seen.lock().unwrap().contains(&"commit_not_durable"),
        "{:?}",
        seen.lock().unwrap()
    );
}

/// Item 8: listeners run after the lock is released (another process could take it at that
/// moment), and a listener that panics neither fails the call nor is reported as the
/// refresher's panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_run_after_the_unlock_and_a_panicking_one_changes_nothing() {
    let (_d, store) = store();
    save_expired(&store, "listened");
    let lock_path = store.path_of("listened").unwrap().with_extension("lock");
    let free_during = Arc::new(Mutex::new(Vec::new()));
    let f = free_during.clone();
    let checking = add_listener(move |e| {
        if e.key == "listened" {
            let free = oauth_lock::lock::lock_exclusive(&lock_path, Duration::ZERO).is_ok();
            f.lock().unwrap().push((e.event, free));
        }
    });
    let panicking = add_listener(|e| {
        if e.key == "listened" && e.event == "refreshed" {
            panic!("a listener's bug");
        }
    });
    let provider = Strict::new();
    let token = store
        .source_with("listened", provider.as_refresher())
        .unwrap()
        .access_token()
        .await;
    remove_listener(checking);
    remove_listener(panicking);
    assert_eq!(token.unwrap().value(), "at-1");
    let seen = free_during.lock().unwrap().clone();
    assert!(seen.iter().any(|(e, _)| *e == "refreshed"), "{seen:?}");
    assert!(
        seen.iter().all(|(_, free)| *free),
        "every listener call found the lock free: {seen:?}"
    );
    assert_eq!(record(&store, "listened")["generation"], 2);
}

/// Item 9: a margin too large for an `i64` of milliseconds saturates (it once wrapped to -1,
/// which made a token that expires in 10 s look fresh for an hour-long lifetime).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_margin_saturates_instead_of_wrapping() {
    let (_d, store) = store();
    let now = now_ms();
    let rec = json!({"format": 1, "key": "k", "generation": 1, "access_token": "at-0",
        "refresh_token": "rt-0", "issued_at_ms": now - 3_600_000, "expires_at_ms": now + 10_000});
    std::fs::write(store.path_of("k").unwrap(), rec.to_string()).unwrap();
    let provider = Strict::new();
    let opts = SourceOptions {
        refresh_margin: Duration::MAX,
        ..Default::default()
    };
    let token = store
        .source_with_options("k", Some(provider.as_refresher()), opts)
        .unwrap()
        .access_token()
        .await
        .unwrap();
    assert_eq!(
        token.value(),
        "at-1",
        "inside half the lifetime, so refreshed"
    );
}
