//! The decision events of DESIGN.md §8, emitted through `tracing` with target `oauth_lock`
//! and an `event` field, so every binding can route them. Tokens appear only as fingerprints.

use arc_swap::ArcSwap;
use once_cell::sync::Lazy;
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tracing::{info, warn};

/// How much an event matters: `Info` for normal decisions, `Warn` for ones a user may act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
}

/// A decision event as listeners receive it (the same content as the `tracing` event).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Event {
    /// `adopted`, `refreshed`, `lock_waited`, ... (DESIGN.md §8).
    pub event: &'static str,
    pub level: Level,
    pub key: String,
    /// The record file: tells apart the stores of one process.
    pub path: String,
    pub message: &'static str,
    /// The event's other fields (generation, ms, fingerprints, reason, ...).
    pub fields: Map<String, Value>,
}

/// Names a listener for [`remove_listener`].
pub type ListenerId = u64;

type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

// Lock-free (read-copy-update), so that a fork never copies a listener lock held by a thread
// the child lacks.
static LISTENERS: Lazy<ArcSwap<Vec<(ListenerId, Listener)>>> = Lazy::new(Default::default);
static ANY_LISTENER: AtomicBool = AtomicBool::new(false);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Calls `f` with every event of this process from now on, on whatever thread decided it.
/// For bindings that route events to their own logging (Python `logging`, Node listeners).
pub fn add_listener(f: impl Fn(&Event) + Send + Sync + 'static) -> ListenerId {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let f: Listener = Arc::new(f);
    LISTENERS.rcu(|all| {
        let mut all = Vec::clone(all);
        all.push((id, f.clone()));
        all
    });
    ANY_LISTENER.store(true, Ordering::Release);
    id
}

/// Stops calling a listener; `false` when it was not registered.
pub fn remove_listener(id: ListenerId) -> bool {
    let before = LISTENERS.rcu(|all| {
        let mut all = Vec::clone(all);
        all.retain(|(i, _)| *i != id);
        all
    });
    ANY_LISTENER.store(!LISTENERS.load().is_empty(), Ordering::Release);
    before.iter().any(|(i, _)| *i == id)
}

tokio::task_local! {
    /// Events decided by a flight's leader, held until it has released the lock.
    static HELD: RefCell<Vec<Event>>;
}

thread_local! {
    /// The same for blocking work (a save, a clear) on this thread.
    static HELD_HERE: RefCell<Option<Vec<Event>>> = const { RefCell::new(None) };
}

/// Runs `fut`, then hands the listeners the events it decided: a listener (a Python one waits
/// for the GIL) never runs while the credential's lock is held, so it never stretches another
/// process's wait. `fut` must release every lock it takes before it ends.
pub(crate) async fn after_unlock<F: Future>(fut: F) -> F::Output {
    let (out, held) = HELD
        .scope(RefCell::new(Vec::new()), async {
            let out = fut.await;
            (out, HELD.with(|h| h.take()))
        })
        .await;
    dispatch(&held);
    out
}

/// [`after_unlock`] for blocking work on the calling thread.
pub(crate) fn after_unlock_blocking<T>(f: impl FnOnce() -> T) -> T {
    let outer = HELD_HERE.with(|h| h.borrow_mut().replace(Vec::new()));
    let out = f();
    let held = HELD_HERE.with(|h| std::mem::replace(&mut *h.borrow_mut(), outer));
    dispatch(&held.unwrap_or_default());
    out
}

/// Calls every listener with each event; a listener that panics is skipped, never fatal to
/// the caller (its panic says nothing about the refresh, which is already committed).
fn dispatch(events: &[Event]) {
    if events.is_empty() {
        return;
    }
    // A snapshot, so that a listener may add or remove listeners.
    let listeners = LISTENERS.load_full();
    for ev in events {
        for (_, l) in listeners.iter() {
            let _ = catch_unwind(AssertUnwindSafe(|| l(ev)));
        }
    }
}

/// Builds the event only when someone listens: the hot path pays one atomic load.
fn notify(
    event: &'static str,
    level: Level,
    key: &str,
    path: &Path,
    message: &'static str,
    fields: impl FnOnce() -> Value,
) {
    if !ANY_LISTENER.load(Ordering::Acquire) {
        return;
    }
    let fields = match fields() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let ev = Event {
        event,
        level,
        key: key.to_owned(),
        path: path.display().to_string(),
        message,
        fields,
    };
    // Held for later while a leader or a blocking write is deciding under the lock.
    if HELD.try_with(|h| h.borrow_mut().push(ev.clone())).is_ok() {
        return;
    }
    let held_here = HELD_HERE
        .try_with(|h| match h.borrow_mut().as_mut() {
            Some(held) => {
                held.push(ev.clone());
                true
            }
            None => false,
        })
        .unwrap_or(false);
    if held_here {
        return;
    }
    dispatch(std::slice::from_ref(&ev));
}

pub(crate) fn adopted(key: &str, path: &Path, generation: u64, authoritative: bool) {
    info!(target: "oauth_lock", event = "adopted", key, path = %path.display(), generation, under_lock = authoritative, "another process refreshed; adopted its token");
    notify(
        "adopted",
        Level::Info,
        key,
        path,
        "another process refreshed; adopted its token",
        || json!({"generation": generation, "under_lock": authoritative}),
    );
}

pub(crate) fn refreshed(
    key: &str,
    path: &Path,
    generation: u64,
    old_rt_fingerprint: &str,
    new_rt_fingerprint: &str,
    ms: u64,
) {
    info!(target: "oauth_lock", event = "refreshed", key, path = %path.display(), generation, old_refresh_token = old_rt_fingerprint, new_refresh_token = new_rt_fingerprint, ms, "refreshed and committed");
    notify(
        "refreshed",
        Level::Info,
        key,
        path,
        "refreshed and committed",
        || json!({"generation": generation, "old_refresh_token": old_rt_fingerprint, "new_refresh_token": new_rt_fingerprint, "ms": ms}),
    );
}

pub(crate) fn lock_waited(key: &str, path: &Path, ms: f64) {
    info!(target: "oauth_lock", event = "lock_waited", key, path = %path.display(), ms, "waited for the credential's lock");
    notify(
        "lock_waited",
        Level::Info,
        key,
        path,
        "waited for the credential's lock",
        || json!({"ms": ms}),
    );
}

pub(crate) fn refresh_deferred(key: &str, path: &Path, reason: &str) {
    warn!(target: "oauth_lock", event = "refresh_deferred", key, path = %path.display(), reason, "refresh failed transiently; the current access token is still valid and is used");
    notify(
        "refresh_deferred",
        Level::Warn,
        key,
        path,
        "refresh failed transiently; the current access token is still valid and is used",
        || json!({"reason": reason}),
    );
}

pub(crate) fn invalid_grant(key: &str, path: &Path, rt_fingerprint: &str, oauth_error: &str) {
    warn!(target: "oauth_lock", event = "invalid_grant", key, path = %path.display(), refresh_token = rt_fingerprint, oauth_error, "the provider rejected the refresh token; marked needs_login");
    notify(
        "invalid_grant",
        Level::Warn,
        key,
        path,
        "the provider rejected the refresh token; marked needs_login",
        || json!({"refresh_token": rt_fingerprint, "oauth_error": oauth_error}),
    );
}

pub(crate) fn race_recovered(key: &str, path: &Path, generation: u64) {
    info!(target: "oauth_lock", event = "race_recovered", key, path = %path.display(), generation, "the refresh token was rotated by another writer; adopted it");
    notify(
        "race_recovered",
        Level::Info,
        key,
        path,
        "the refresh token was rotated by another writer; adopted it",
        || json!({"generation": generation}),
    );
}

pub(crate) fn rotation_kept(key: &str, path: &Path, generation: u64) {
    warn!(target: "oauth_lock", event = "rotation_kept", key, path = %path.display(), generation, "the refresh answer was unusable but carried a new refresh token; saved it");
    notify(
        "rotation_kept",
        Level::Warn,
        key,
        path,
        "the refresh answer was unusable but carried a new refresh token; saved it",
        || json!({"generation": generation}),
    );
}

pub(crate) fn needs_login(key: &str, path: &Path, reason: &str) {
    info!(target: "oauth_lock", event = "needs_login", key, path = %path.display(), reason, "the credential needs a login");
    notify(
        "needs_login",
        Level::Info,
        key,
        path,
        "the credential needs a login",
        || json!({"reason": reason}),
    );
}

pub(crate) fn downgrade_refused(key: &str, path: &Path) {
    warn!(target: "oauth_lock", event = "downgrade_refused", key, path = %path.display(), "refused to replace a credential that has a refresh token with one that has none");
    notify(
        "downgrade_refused",
        Level::Warn,
        key,
        path,
        "refused to replace a credential that has a refresh token with one that has none",
        || json!({}),
    );
}

pub(crate) fn login_without_refresh_token(key: &str, path: &Path) {
    warn!(target: "oauth_lock", event = "login_without_refresh_token", key, path = %path.display(), "saved a credential without a refresh token: it cannot be refreshed");
    notify(
        "login_without_refresh_token",
        Level::Warn,
        key,
        path,
        "saved a credential without a refresh token: it cannot be refreshed",
        || json!({}),
    );
}

pub(crate) fn refresh_refused(key: &str, path: &Path, oauth_error: &str) {
    warn!(target: "oauth_lock", event = "refresh_refused", key, path = %path.display(), oauth_error, "the provider refused the refresh with a client or configuration error; the refresh token stays usable");
    notify(
        "refresh_refused",
        Level::Warn,
        key,
        path,
        "the provider refused the refresh with a client or configuration error; the refresh token stays usable",
        || json!({"oauth_error": oauth_error}),
    );
}

pub(crate) fn backing_off(key: &str, path: &Path, until_ms: i64, failures: u32) {
    warn!(target: "oauth_lock", event = "backing_off", key, path = %path.display(), until_ms, failures, "the refresh failed; no process refreshes this credential again before until_ms");
    notify(
        "backing_off",
        Level::Warn,
        key,
        path,
        "the refresh failed; no process refreshes this credential again before until_ms",
        || json!({"until_ms": until_ms, "failures": failures}),
    );
}

pub(crate) fn commit_not_durable(key: &str, path: &Path, reason: &str) {
    warn!(target: "oauth_lock", event = "commit_not_durable", key, path = %path.display(), reason, "the record was replaced (every process sees it) but syncing its directory failed; a power loss may undo it");
    notify(
        "commit_not_durable",
        Level::Warn,
        key,
        path,
        "the record was replaced (every process sees it) but syncing its directory failed; a power loss may undo it",
        || json!({"reason": reason}),
    );
}

pub(crate) fn rotation_held(key: &str, path: &Path, reason: &str) {
    warn!(target: "oauth_lock", event = "rotation_held", key, path = %path.display(), reason, "the refresh succeeded but its commit failed; this process holds the new tokens and commits them before the next refresh");
    notify(
        "rotation_held",
        Level::Warn,
        key,
        path,
        "the refresh succeeded but its commit failed; this process holds the new tokens and commits them before the next refresh",
        || json!({"reason": reason}),
    );
}

pub(crate) fn rotation_recommitted(key: &str, path: &Path, generation: u64) {
    info!(target: "oauth_lock", event = "rotation_recommitted", key, path = %path.display(), generation, "committed the tokens of an earlier refresh whose commit had failed");
    notify(
        "rotation_recommitted",
        Level::Info,
        key,
        path,
        "committed the tokens of an earlier refresh whose commit had failed",
        || json!({"generation": generation}),
    );
}

pub(crate) fn mirror_adopted(key: &str, path: &Path, mirror: &Path, generation: u64) {
    let mirror = mirror.display().to_string();
    info!(target: "oauth_lock", event = "mirror_adopted", key, path = %path.display(), mirror, generation, "the mirror's program had rotated the tokens; the record took them");
    notify(
        "mirror_adopted",
        Level::Info,
        key,
        path,
        "the mirror's program had rotated the tokens; the record took them",
        || json!({"mirror": mirror, "generation": generation}),
    );
}

pub(crate) fn mirror_written(key: &str, path: &Path, mirror: &Path, generation: u64) {
    let mirror = mirror.display().to_string();
    info!(target: "oauth_lock", event = "mirror_written", key, path = %path.display(), mirror, generation, "wrote the record's tokens into the mirror");
    notify(
        "mirror_written",
        Level::Info,
        key,
        path,
        "wrote the record's tokens into the mirror",
        || json!({"mirror": mirror, "generation": generation}),
    );
}

pub(crate) fn mirror_ignored(key: &str, path: &Path, mirror: &Path, reason: &str) {
    let mirror = mirror.display().to_string();
    warn!(target: "oauth_lock", event = "mirror_ignored", key, path = %path.display(), mirror, reason, "the mirror holds no usable tokens (a logged-out stub, or foreign content); not adopted");
    notify(
        "mirror_ignored",
        Level::Warn,
        key,
        path,
        "the mirror holds no usable tokens (a logged-out stub, or foreign content); not adopted",
        || json!({"mirror": mirror, "reason": reason}),
    );
}

pub(crate) fn foreign_lock_waited(key: &str, path: &Path, program: &str, ms: f64) {
    info!(target: "oauth_lock", event = "foreign_lock_waited", key, path = %path.display(), program, ms, "waited for the mirror's program's own lock");
    notify(
        "foreign_lock_waited",
        Level::Info,
        key,
        path,
        "waited for the mirror's program's own lock",
        || json!({"program": program, "ms": ms}),
    );
}
