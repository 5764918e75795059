//! The refresh protocol of DESIGN.md §4: the per-process slot for each (store, key), the hot
//! path, the single flight, and the leader's locked re-read → refresh → commit → publish.

use crate::backend::{Backend, Committed, Location, Locked, Version};
use crate::error::{Error, ErrorCode, Result};
use crate::events;
use crate::key::Key;
use crate::mirror::{MirrorConfig, MirrorRead, MirrorTokens};
use crate::record::{Backoff, LastError, Record, State};
use crate::refresher::{OAuth2, OAuth2Config, Refresher};
use crate::runtime::{self, ms_i64, now_ms, this_side, ForkSide};
use crate::secret::Secret;
use crate::tokens::{AccessToken, TokenFields};
use arc_swap::{ArcSwap, ArcSwapOption};
use futures_util::FutureExt;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Tuning of a [`TokenSource`]; the defaults are DESIGN.md's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceOptions {
    /// Refresh this long before expiry (capped at half the token's lifetime). Default 5 min.
    pub refresh_margin: Duration,
    /// Longest wait for the credential's lock before `Busy`. Default 35 s.
    pub lock_timeout: Duration,
    /// How often the hot path checks the file for another process's login or logout. Default 1 s.
    pub revalidate: Duration,
    /// Longest the callers wait for a refresher before `Transient` (or the old token while it
    /// is still accepted). Default 30 s. The refresh itself keeps the credential's lock until
    /// the refresher has really ended, at most [`LATE_ANSWER_WINDOW`] longer, and commits a
    /// late good answer, so that nobody sends the same refresh token meanwhile.
    pub refresh_timeout: Duration,
    /// Longest wait for a mirror's program's own lock (Claude Code's) before `Busy` naming it
    /// (or the old token while it is still accepted). Default 15 s: that program holds it for
    /// one refresh; a crashed holder's lock counts as stale after 60 s.
    pub foreign_lock_timeout: Duration,
}

/// How long past `refresh_timeout` a refresh keeps the lock waiting for its refresher (the
/// hard cap of DESIGN.md §4 step 6): 30 s + 4 s stays under the 35 s `write_lock_timeout`, so a
/// login still gets through. A refresher still running after it is abandoned and the lock
/// released; if it then reaches the provider, its refresh token is spent (the G3 window).
pub const LATE_ANSWER_WINDOW: Duration = Duration::from_secs(4);

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            refresh_margin: Duration::from_secs(300),
            lock_timeout: Duration::from_secs(35),
            revalidate: Duration::from_secs(1),
            refresh_timeout: Duration::from_secs(30),
            foreign_lock_timeout: Duration::from_secs(15),
        }
    }
}

/// The last record this process saw for a key.
pub(crate) struct Known {
    pub record: Record,
    pub version: Option<Version>,
    /// Present when the record is usable (state ok, has an access token).
    pub token: Option<AccessToken>,
}

/// Per-process state of one credential, shared by every `Store`/`TokenSource` on it.
pub(crate) struct Slot {
    pub key: Key,
    pub backend: Arc<dyn Backend>,
    pub path: PathBuf,
    epoch: u64,
    known: ArcSwapOption<Known>,
    last_check_ms: AtomicI64,
    flight: Mutex<Option<Arc<Flight>>>,
    /// A refresh the provider answered whose commit failed: the only copy of the new refresh
    /// token, committed by this process's next leader before it refreshes (G3).
    held: Mutex<Option<HeldRotation>>,
}

/// A rotation not yet in the store.
struct HeldRotation {
    /// The refresh token it was redeemed with. While the record still holds it (and is `ok`),
    /// the rotation is the newest; a login, a logout or another rotation supersedes it. Not the
    /// generation: a backoff another process writes moves that without touching the tokens,
    /// and generations start again after a `clear`.
    spent: Option<Secret>,
    record: Record,
}

/// The slots of this side of a fork, by (store, key).
type Slots = ForkSide<Mutex<HashMap<(Location, Key), Arc<Slot>>>>;
static SLOTS: ArcSwapOption<Slots> = ArcSwapOption::const_empty();

/// A poisoned lock only means a panic elsewhere; the data it guards stays consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Slot {
    /// The slot for (store, key) in this process (of this side of the last fork).
    pub(crate) fn get(backend: &Arc<dyn Backend>, key: &Key) -> Arc<Slot> {
        let side = this_side(&SLOTS, Default::default);
        let epoch = side.epoch;
        let mut slots = lock(&side.state);
        slots
            .entry((backend.location().clone(), key.clone()))
            .or_insert_with(|| {
                Arc::new(Slot {
                    key: key.clone(),
                    backend: backend.clone(),
                    path: backend.place(key),
                    epoch,
                    known: ArcSwapOption::empty(),
                    last_check_ms: AtomicI64::new(0),
                    flight: Mutex::new(None),
                    held: Mutex::new(None),
                })
            })
            .clone()
    }

    fn err(&self, e: Error) -> Error {
        e.with_context(self.key.as_str(), &self.path)
    }

    fn generation(&self) -> Option<u64> {
        self.known.load().as_ref().map(|k| k.record.generation)
    }

    /// Remembers a record. Unlocked reads never go back to an older generation, even when
    /// another thread installs a newer one at the same moment (compare-and-swap); a read
    /// under the lock (or our own write) is the truth and always wins.
    pub(crate) fn install(
        &self,
        record: Record,
        version: Option<Version>,
        authoritative: bool,
    ) -> Option<AccessToken> {
        let token = match (&record.access_token, record.state) {
            (Some(at), State::Ok) => Some(AccessToken::new(
                at.expose(),
                record.token_type.as_deref(),
                record.expires_at_ms,
                record.generation,
            )),
            _ => None,
        };
        let generation = record.generation;
        let fresh = Some(Arc::new(Known {
            record,
            version,
            token: token.clone(),
        }));
        if authoritative {
            self.known.store(fresh);
        } else {
            let mut current = self.known.load_full();
            loop {
                if let Some(k) = current
                    .as_ref()
                    .filter(|k| k.record.generation > generation)
                {
                    return k.token.clone();
                }
                let previous = self.known.compare_and_swap(&current, fresh.clone());
                let swapped = match (&*previous, &current) {
                    (Some(p), Some(c)) => Arc::ptr_eq(p, c),
                    (None, None) => true,
                    _ => false,
                };
                if swapped {
                    break;
                }
                current = self.known.load_full();
            }
        }
        self.last_check_ms.store(now_ms(), Ordering::Relaxed);
        token
    }

    pub(crate) fn forget(&self) {
        self.known.store(None);
    }
}

/// What a flight must achieve.
#[derive(Clone, Debug, PartialEq)]
enum Mode {
    /// A fresh token; refresh only if there is none.
    Fresh,
    /// The caller's token was rejected (HTTP 401): anything but that token, if fresh.
    Reject(String),
    /// Refresh no matter what (`verify`).
    Force,
}

impl Mode {
    /// Whether `record`'s token may still be handed out after a failed refresh (DESIGN.md §4
    /// step 9): not past its expiry, and not the token the caller saw rejected.
    fn still_usable(&self, record: &Record, now: i64) -> bool {
        match self {
            Mode::Fresh => record.is_unexpired(now),
            Mode::Reject(bad) => {
                record.is_unexpired(now)
                    && record
                        .access_token
                        .as_ref()
                        .is_some_and(|t| t.expose() != bad)
            }
            Mode::Force => false,
        }
    }

    /// Whether `record`'s token satisfies this mode without a refresh.
    fn accepts(&self, record: &Record, now: i64, margin_ms: i64) -> bool {
        match self {
            Mode::Fresh => record.is_fresh(now, margin_ms),
            Mode::Reject(bad) => {
                record.is_fresh(now, margin_ms)
                    && record
                        .access_token
                        .as_ref()
                        .is_some_and(|t| t.expose() != bad)
            }
            Mode::Force => false,
        }
    }
}

/// One refresh in progress in this process; followers wait for its result.
struct Flight {
    mode: Mode,
    result: OnceLock<Result<AccessToken>>,
    done: Notify,
}

/// A blocking caller's leader, run on its own thread ([`TokenSource::join_or_start`]).
type Lead = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Who asks for a flight: a blocking caller is parked in `block_on` until it ends; an async
/// one may be dropped before.
#[derive(Clone, Copy)]
enum Caller {
    Blocking,
    Async,
}

impl Flight {
    async fn wait(&self) -> Result<AccessToken> {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.result.get() {
                return r.clone();
            }
            notified.await;
        }
    }
}

tokio::task_local! {
    /// The credential whose refresher this task is running (to refuse re-entry).
    static REFRESHING: (Location, Key);
}

/// Gives a valid access token for one credential: the object callers hold.
///
/// Cheap to clone; every clone and every `TokenSource` for the same store and key in the
/// process share one slot and one single flight.
#[derive(Clone)]
pub struct TokenSource {
    backend: Arc<dyn Backend>,
    key: Key,
    refresher: Option<Arc<dyn Refresher>>,
    options: SourceOptions,
    slot: Arc<ArcSwap<Slot>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("key", &self.key)
            .field("store", self.backend.location())
            .field("options", &self.options)
            .finish()
    }
}

impl TokenSource {
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        key: Key,
        refresher: Option<Arc<dyn Refresher>>,
        options: SourceOptions,
    ) -> TokenSource {
        let slot = Slot::get(&backend, &key);
        TokenSource {
            backend,
            key,
            refresher,
            options,
            slot: Arc::new(ArcSwap::new(slot)),
        }
    }

    /// The credential's key.
    pub fn key(&self) -> &str {
        self.key.as_str()
    }

    /// The record file.
    pub fn path(&self) -> PathBuf {
        self.backend.place(&self.key)
    }

    pub fn options(&self) -> &SourceOptions {
        &self.options
    }

    fn slot(&self) -> Arc<Slot> {
        let slot = self.slot.load_full();
        if slot.epoch == runtime::epoch() {
            return slot;
        }
        let fresh = Slot::get(&self.backend, &self.key);
        self.slot.store(fresh.clone());
        fresh
    }

    fn margin_ms(&self) -> i64 {
        ms_i64(self.options.refresh_margin)
    }

    /// The hot path: the slot's token if it is fresh, with at most one `stat` per
    /// `revalidate` interval to notice another process's login or logout.
    pub fn cached(&self) -> Option<AccessToken> {
        let slot = self.slot.load();
        if slot.epoch != runtime::epoch() {
            return None;
        }
        let known = slot.known.load();
        let known = known.as_ref()?;
        let token = known.token.as_ref()?;
        let now = now_ms();
        if !known.record.is_fresh(now, self.margin_ms()) {
            return None;
        }
        let last = slot.last_check_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= ms_i64(self.options.revalidate)
            && slot
                .last_check_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            match slot.backend.version(&slot.key) {
                Ok(v) if v.is_some() && v == known.version => {}
                // Changed (a login, a logout, another process's refresh): take the slow path,
                // and leave the check due until a read installs the change, so that the next
                // call (a binding's blocking call right after its own `cached()`) does not
                // answer from the old slot.
                _ => {
                    slot.last_check_ms.store(last, Ordering::Relaxed);
                    return None;
                }
            }
        }
        Some(token.clone())
    }

    /// A valid access token, refreshing under the protocol if needed.
    pub async fn access_token(&self) -> Result<AccessToken> {
        self.access_token_as(Caller::Async).await
    }

    async fn access_token_as(&self, caller: Caller) -> Result<AccessToken> {
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        self.fly_as(Mode::Fresh, caller).await
    }

    /// The caller got HTTP 401 with `token`: returns a different valid token, refreshing
    /// (once across all processes) if nobody has yet.
    pub async fn reject(&self, token: &str) -> Result<AccessToken> {
        self.reject_as(token, Caller::Async).await
    }

    async fn reject_as(&self, token: &str, caller: Caller) -> Result<AccessToken> {
        if let Some(t) = self.cached().filter(|t| t.value() != token) {
            return Ok(t);
        }
        self.fly_as(Mode::Reject(token.to_owned()), caller).await
    }

    /// A token valid for at least `at_least` (e.g. for a long job or a cron keep-alive):
    /// refreshes if the current one expires sooner, unless another process already did.
    pub async fn access_token_valid_for(&self, at_least: Duration) -> Result<AccessToken> {
        self.access_token_valid_for_as(at_least, Caller::Async)
            .await
    }

    async fn access_token_valid_for_as(
        &self,
        at_least: Duration,
        caller: Caller,
    ) -> Result<AccessToken> {
        let token = self.access_token_as(caller).await?;
        match token.expires_at_ms() {
            Some(exp) if exp.saturating_sub(now_ms()) < ms_i64(at_least) => {
                self.reject_as(token.value(), caller).await
            }
            _ => Ok(token),
        }
    }

    /// [`access_token_valid_for`](Self::access_token_valid_for) for callers without an async runtime.
    pub fn access_token_valid_for_blocking(&self, at_least: Duration) -> Result<AccessToken> {
        runtime::block_on(self.access_token_valid_for_as(at_least, Caller::Blocking))
    }

    /// Forces one refresh, proving the refresh token works (it rotates it).
    pub async fn verify(&self) -> Result<AccessToken> {
        self.fly(Mode::Force).await
    }

    /// [`access_token`](Self::access_token) for callers without an async runtime.
    pub fn access_token_blocking(&self) -> Result<AccessToken> {
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        runtime::block_on(self.fly_as(Mode::Fresh, Caller::Blocking))
    }

    /// [`reject`](Self::reject) for callers without an async runtime.
    pub fn reject_blocking(&self, token: &str) -> Result<AccessToken> {
        runtime::block_on(self.reject_as(token, Caller::Blocking))
    }

    /// Brings the credential's mirror (DESIGN.md §6.1) in step with the record, without a
    /// refresh: a newer token the program rotated is adopted; a stale, missing or blanked
    /// (logged-out stub) mirror is rewritten from the record. Takes the locks (ours, then the
    /// program's) only when they differ. The keep-alive calls it on every pass.
    pub async fn sync_mirror(&self) -> Result<MirrorSync> {
        let slot = self.slot();
        let fut = async {
            let Some((record, _)) = slot.backend.read(&slot.key)? else {
                return Err(Error::needs_login("no credential is stored under this key"));
            };
            let Some(mirror) = record
                .mirror
                .as_ref()
                .map(MirrorConfig::from_json)
                .transpose()?
            else {
                return Ok(MirrorSync::NoMirror);
            };
            if in_step(&mirror.read(), &record) {
                return Ok(MirrorSync::InStep);
            }
            let backend = slot.backend.clone();
            let key = slot.key.clone();
            let timeout = self.options.lock_timeout;
            let mut locked = tokio::task::spawn_blocking(move || backend.lock(&key, timeout))
                .await
                .map_err(|e| Error::transient(format!("the lock wait was interrupted: {e}")))??;
            let _foreign = take_foreign(
                &mirror,
                self.options.foreign_lock_timeout,
                &slot.key,
                &slot.path,
            )
            .await?;
            let Some((record, version)) = locked.read()? else {
                return Err(Error::needs_login("no credential is stored under this key"));
            };
            let found = mirror.read();
            if in_step(&found, &record) {
                return Ok(MirrorSync::InStep);
            }
            match found {
                MirrorRead::Tokens(m) if is_newer(&m, &record) => {
                    let (next, version) =
                        adopt_mirror(locked.as_mut(), &record, m, &mirror, &slot.key, &slot.path)?;
                    events::adopted(slot.key.as_str(), &slot.path, next.generation, true);
                    let generation = next.generation;
                    slot.install(next, Some(version), true);
                    Ok(MirrorSync::Adopted { generation })
                }
                MirrorRead::Unreadable(why) => Ok(MirrorSync::Unreadable(why)),
                // The program's logout removes its file: not ours to undo (the next refresh
                // of the credential writes it again, as DESIGN.md §6.1 says).
                MirrorRead::Missing => Ok(MirrorSync::Missing),
                MirrorRead::NoTokens => Ok(MirrorSync::Unreadable(
                    "it holds no OAuth login (an API key only?); left untouched".into(),
                )),
                // Missing, a stub, or older than the record: the record is the truth, unless
                // it is dead itself (then the program's stub says the same, and stays).
                _ if record.state == State::Ok && record.access_token.is_some() => {
                    mirror.write_back(&record)?;
                    events::mirror_written(
                        slot.key.as_str(),
                        &slot.path,
                        &mirror.path,
                        record.generation,
                    );
                    slot.install(record, Some(version), true);
                    Ok(MirrorSync::Repaired)
                }
                _ => Ok(MirrorSync::InStep),
            }
        };
        events::after_unlock(fut).await.map_err(|e| slot.err(e))
    }

    /// [`sync_mirror`](Self::sync_mirror) for callers without an async runtime.
    pub fn sync_mirror_blocking(&self) -> Result<MirrorSync> {
        runtime::block_on(self.sync_mirror())
    }

    /// [`verify`](Self::verify) for callers without an async runtime.
    pub fn verify_blocking(&self) -> Result<AccessToken> {
        runtime::block_on(self.fly_as(Mode::Force, Caller::Blocking))
    }

    /// Joins the slot's flight or starts one, then waits for its result. Waiting can be
    /// cancelled; the flight itself runs on the core's runtime and always completes.
    async fn fly(&self, mode: Mode) -> Result<AccessToken> {
        self.fly_as(mode, Caller::Async).await
    }

    /// [`fly`](Self::fly); a [`Caller::Blocking`] cannot be cancelled, and runs the flight it
    /// starts itself ([`join_or_start`](Self::join_or_start)).
    async fn fly_as(&self, mode: Mode, caller: Caller) -> Result<AccessToken> {
        let slot = self.slot();
        let reentrant = REFRESHING
            .try_with(|(id, key)| id == slot.backend.location() && key == &slot.key)
            .unwrap_or(false);
        if reentrant {
            return Err(slot.err(Error::invalid(
                "a refresher asked for the token of the credential it is refreshing; it would wait on itself",
            )));
        }
        // Joining someone else's flight is enough for Fresh; Reject and Force may need their
        // own flight after it (at most one more round each).
        for _ in 0..3 {
            let (flight, mine, lead) = self.join_or_start(&slot, &mode, caller);
            let result = match lead {
                None => flight.wait().await,
                Some(mut lead) => {
                    let waiting = flight.wait();
                    tokio::pin!(waiting);
                    tokio::select! {
                        biased;
                        () = &mut lead => waiting.await,
                        // Answered before the leader ended (a refresh that timed out still
                        // holds the lock until its refresher ends): the runtime finishes it.
                        result = &mut waiting => {
                            runtime::process().runtime.spawn(lead);
                            result
                        }
                    }
                }
            };
            let satisfied = mine
                || match (&mode, &result) {
                    (Mode::Fresh, _) | (_, Err(_)) => true,
                    (Mode::Reject(bad), Ok(t)) => t.value() != bad,
                    (Mode::Force, Ok(_)) => flight.mode == Mode::Force,
                };
            if satisfied {
                return result;
            }
        }
        Err(slot.err(Error::transient(
            "other refreshes kept superseding this one; try again",
        )))
    }

    /// The flight to wait on, and whether this caller started it. A blocking caller runs the
    /// leader it starts on its own thread, before it waits: the thread that sees a release
    /// (DESIGN.md §4 step 2.3) then wakes that caller alone, not a runtime worker that
    /// finishes the leader's task beside it (one thread wake less per waiting process, which
    /// is CPU that every process woken together on few cores pays N times). An async caller
    /// may be dropped mid-way, and the flight's other callers must still be answered: its
    /// leader is a task of its own.
    fn join_or_start(
        &self,
        slot: &Arc<Slot>,
        mode: &Mode,
        caller: Caller,
    ) -> (Arc<Flight>, bool, Option<Lead>) {
        let mut current = lock(&slot.flight);
        if let Some(f) = current.as_ref().filter(|f| f.result.get().is_none()) {
            return (f.clone(), false, None);
        }
        let flight = Arc::new(Flight {
            mode: mode.clone(),
            result: OnceLock::new(),
            done: Notify::new(),
        });
        *current = Some(flight.clone());
        drop(current);
        let leader = Leader {
            slot: slot.clone(),
            refresher: self.refresher.clone(),
            options: self.options,
            mode: mode.clone(),
            flight: flight.clone(),
        };
        let scope = (slot.backend.location().clone(), slot.key.clone());
        let lead = REFRESHING.scope(scope, async move {
            // Listeners hear the leader's events once it has released the lock (before its
            // callers return, so that a caller that saw the result has seen the events too).
            let run = events::after_unlock(leader.run());
            let result = match AssertUnwindSafe(run).catch_unwind().await {
                Ok(r) => r,
                Err(_) => Err(Error::invalid(
                    "oauth-lock's refresh task panicked (a bug); the record holds its last commit",
                )),
            };
            leader.publish(result);
            let mut current = lock(&leader.slot.flight);
            if current
                .as_ref()
                .is_some_and(|c| Arc::ptr_eq(c, &leader.flight))
            {
                *current = None;
            }
        });
        match caller {
            Caller::Async => {
                runtime::process().runtime.spawn(lead);
                (flight, true, None)
            }
            Caller::Blocking => (flight, true, Some(Box::pin(lead))),
        }
    }
}

/// The leader of a flight: DESIGN.md §4 step 2.
#[derive(Clone)]
struct Leader {
    slot: Arc<Slot>,
    refresher: Option<Arc<dyn Refresher>>,
    options: SourceOptions,
    mode: Mode,
    flight: Arc<Flight>,
}

/// What step 8 found after the provider said the refresh token is dead.
enum Recovery {
    /// Another writer rotated it and its token serves the caller.
    Adopted(AccessToken),
    /// Another writer rotated it; refresh once more with its refresh token.
    Retry(Record, Version),
    /// Nobody rotated it: the credential is dead (the record as read now).
    Dead(Record, Version),
}

impl Leader {
    fn key(&self) -> &str {
        self.slot.key.as_str()
    }

    fn path(&self) -> &std::path::Path {
        &self.slot.path
    }

    fn margin_ms(&self) -> i64 {
        ms_i64(self.options.refresh_margin)
    }

    fn accepts(&self, record: &Record) -> bool {
        self.mode.accepts(record, now_ms(), self.margin_ms())
    }

    /// Answers the flight's callers; later answers of the same flight are ignored.
    fn publish(&self, result: Result<AccessToken>) {
        let _ = self.flight.result.set(result.map_err(|e| self.slot.err(e)));
        self.flight.done.notify_waiters();
    }

    /// Announces a record another writer made, if it is news to this process.
    fn note_adoption(&self, record: &Record, under_lock: bool) {
        if self
            .slot
            .generation()
            .is_some_and(|g| record.generation > g)
        {
            events::adopted(self.key(), self.path(), record.generation, under_lock);
        }
    }

    fn token_of(
        &self,
        record: Record,
        version: Option<Version>,
        authoritative: bool,
    ) -> Result<AccessToken> {
        let generation = record.generation;
        self.slot
            .install(record, version, authoritative)
            .ok_or_else(|| {
                Error::needs_login(format!(
                    "record generation {generation} has no usable access token"
                ))
            })
    }

    fn dead(&self, record: &Record) -> Error {
        let reason = match &record.last_error {
            Some(e) => format!(
                "the refresh token was rejected ({}{}); log in again",
                e.code,
                e.description
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
            None => "the credential is marked needs_login; log in again".to_owned(),
        };
        events::needs_login(self.key(), self.path(), &reason);
        Error::needs_login(reason)
    }

    fn gone(&self) -> Error {
        self.slot.forget();
        events::needs_login(self.key(), self.path(), "no credential is stored");
        Error::needs_login("no credential is stored under this key; log in (save) first")
    }

    /// Steps 1–4, then 5–9 under the lock.
    async fn run(&self) -> Result<AccessToken> {
        // A rotation this process could not commit is committed before anything else: only
        // under the exclusive lock (step 4), so no unlocked answer may come first.
        let holds_rotation = lock(&self.slot.held).is_some();
        // 1–2: the unlocked read.
        if self.mode != Mode::Force && !holds_rotation {
            match self.slot.backend.read(&self.slot.key)? {
                None => return Err(self.gone()),
                Some((record, version)) => {
                    if record.state == State::NeedsLogin {
                        let err = self.dead(&record);
                        self.slot.install(record, Some(version), false);
                        return Err(err);
                    }
                    let newer_or_same = self
                        .slot
                        .generation()
                        .is_none_or(|g| record.generation >= g);
                    if newer_or_same && self.accepts(&record) {
                        self.note_adoption(&record, false);
                        return self.token_of(record, Some(version), false);
                    }
                    if newer_or_same && record.backing_off(now_ms()) {
                        return self.backing_off(record, version, false);
                    }
                }
            }
        }
        // 3: the lock. Held by another: wait for its release together with every other waiter
        // (a shared wait), re-read, and adopt if that holder refreshed; only a waiter that
        // still finds the record stale queues for the exclusive lock (N waiters, one hand-off).
        let mut locked = match self.try_lock()? {
            Some(locked) => locked,
            None => {
                let waited = match self.mode {
                    _ if holds_rotation => Duration::ZERO,
                    Mode::Force => Duration::ZERO,
                    _ => match self.after_release().await? {
                        (_, Some(done)) => return done,
                        (waited, None) => waited,
                    },
                };
                self.lock(self.options.lock_timeout.saturating_sub(waited))
                    .await?
            }
        };
        // 4: the authoritative read, after committing a rotation this process still holds.
        let Some((record, version)) = locked.read()? else {
            return Err(self.gone());
        };
        let (record, version) = self.commit_held(locked.as_mut(), record, version)?;
        if record.state == State::NeedsLogin {
            let err = self.dead(&record);
            self.slot.install(record, Some(version), true);
            return Err(err);
        }
        if self.accepts(&record) {
            self.note_adoption(&record, true);
            return self.token_of(record, Some(version), true);
        }
        if self.mode != Mode::Force && record.backing_off(now_ms()) {
            return self.backing_off(record, version, true);
        }
        self.refresh_locked(locked.as_mut(), record, version).await
    }

    /// Step 3, when the lock is free: taken at once.
    fn try_lock(&self) -> Result<Option<Box<dyn Locked>>> {
        let locked = self.slot.backend.try_lock(&self.slot.key)?;
        #[cfg(feature = "fault-injection")]
        if locked.is_some() {
            crate::fault::hit("locked");
        }
        Ok(locked)
    }

    /// Step 3's shared wait: until the holder releases (every waiter wakes at once), then the
    /// unlocked re-read. The answer if the record now serves the caller (or says it cannot be
    /// refreshed now), else how long it waited.
    async fn after_release(&self) -> Result<(Duration, Option<Result<AccessToken>>)> {
        // The re-read and its answer run on the thread that saw the release, before this task
        // wakes: the callers are answered with one thread wake per process, not two (a
        // worker's), which is most of a hand-off's cost when many processes wake together.
        let ran = Arc::new(AtomicBool::new(false));
        let at_release = {
            let (leader, ran) = (self.clone(), ran.clone());
            let started = Instant::now();
            Box::new(move |read_at_release| {
                ran.store(true, Ordering::Release);
                let answer = events::after_unlock_blocking(|| {
                    leader.note_waited(started.elapsed());
                    leader.answer_after_release(read_at_release)
                });
                if let Ok(Some(answer)) = answer {
                    leader.publish(answer);
                }
            })
        };
        let waited = self
            .slot
            .backend
            .wait_released(&self.slot.key, self.options.lock_timeout, at_release)
            .await?;
        if let Some(answered) = self.flight.result.get() {
            return Ok((waited, Some(answered.clone())));
        }
        // The wait ended without the callback's answer: it found the record still stale, or
        // could not read it, or never ran (the lock was free, or the backend cannot wait so).
        if !ran.load(Ordering::Acquire) {
            self.note_waited(waited);
        }
        Ok((waited, self.answer_after_release(None)?))
    }

    fn note_waited(&self, waited: Duration) {
        if waited > Duration::ZERO {
            let ms = waited.as_secs_f64() * 1000.0;
            events::lock_waited(self.key(), self.path(), ms);
        }
    }

    /// Step 2.3's unlocked re-read after a holder released: the answer, or `None` when the
    /// record is still stale and the exclusive lock must be taken. `read_at_release`: the
    /// record as the backend read it at the release, if it did (else it is read here).
    fn answer_after_release(
        &self,
        read_at_release: Option<crate::backend::ReadAtRelease>,
    ) -> Result<Option<Result<AccessToken>>> {
        let read = match read_at_release {
            Some(read) => read,
            None => self.slot.backend.read(&self.slot.key),
        };
        let Some((record, version)) = read? else {
            return Ok(Some(Err(self.gone())));
        };
        if record.state == State::NeedsLogin {
            let err = self.dead(&record);
            self.slot.install(record, Some(version), false);
            return Ok(Some(Err(err)));
        }
        let newer_or_same = self
            .slot
            .generation()
            .is_none_or(|g| record.generation >= g);
        if newer_or_same && self.accepts(&record) {
            self.note_adoption(&record, false);
            return Ok(Some(self.token_of(record, Some(version), false)));
        }
        if newer_or_same && record.backing_off(now_ms()) {
            return Ok(Some(self.backing_off(record, version, false)));
        }
        Ok(None)
    }

    /// Step 3: the lock, waited for on a blocking thread (the wait blocks in the kernel).
    async fn lock(&self, timeout: Duration) -> Result<Box<dyn Locked>> {
        let backend = self.slot.backend.clone();
        let key = self.slot.key.clone();
        let locked = tokio::task::spawn_blocking(move || backend.lock(&key, timeout))
            .await
            .map_err(|e| Error::transient(format!("the lock wait was interrupted: {e}")))??;
        #[cfg(feature = "fault-injection")]
        crate::fault::hit("locked");
        if locked.waited() > Duration::ZERO {
            events::lock_waited(
                self.key(),
                self.path(),
                locked.waited().as_secs_f64() * 1000.0,
            );
        }
        Ok(locked)
    }

    fn refresher_for(&self, record: &Record) -> Result<Arc<dyn Refresher>> {
        if let Some(r) = &self.refresher {
            return Ok(r.clone());
        }
        match &record.refresh {
            Some(config) => Ok(Arc::new(OAuth2::new(OAuth2Config::from_json(config)?)?)),
            None => Err(Error::invalid(
                "the record has no `refresh` config and no refresher was given, so it cannot be refreshed",
            )),
        }
    }

    /// Steps 5–9, holding the lock.
    async fn refresh_locked(
        &self,
        locked: &mut dyn Locked,
        mut record: Record,
        mut version: Version,
    ) -> Result<AccessToken> {
        let mirror = record
            .mirror
            .as_ref()
            .map(MirrorConfig::from_json)
            .transpose()?;
        // §6.1: the program's own lock too, held until the write-back, so that it and we
        // serialize; a busy one is a failed refresh of step 9 (the old token while it lasts).
        let _foreign = match &mirror {
            Some(m) => match take_foreign(
                m,
                self.options.foreign_lock_timeout,
                &self.slot.key,
                &self.slot.path,
            )
            .await
            {
                Ok(held) => held,
                // Recorded as a backoff like any failed refresh, so that the other processes
                // do not each wait for the program's lock in turn while holding ours.
                Err(e) => return self.defer(locked, record, version, e),
            },
            None => None,
        };
        // §6: another program rotated the token in its own file: adopt it instead of refreshing.
        if let Some((m, found)) = mirror
            .as_ref()
            .and_then(|m| self.newer_in_mirror(m, &record))
        {
            (record, version) = self.adopt_mirror(locked, &record, found, m)?;
            events::adopted(self.key(), self.path(), record.generation, true);
            if self.accepts(&record) {
                return self.token_of(record, Some(version), true);
            }
        }
        let mut recovered = false;
        loop {
            // 5
            let Some(old_rt) = record.refresh_token.clone() else {
                events::needs_login(self.key(), self.path(), "no refresh token");
                self.slot.install(record, Some(version), true);
                return Err(Error::needs_login(
                    "the credential has no refresh token and its access token is not fresh",
                ));
            };
            let refresher = self.refresher_for(&record)?;
            // 6
            let sent_at = now_ms();
            let started = Instant::now();
            let outcome = self.attempt(refresher, &record).await;
            #[cfg(feature = "fault-injection")]
            if outcome.is_ok() {
                crate::fault::hit("answered");
            }
            match outcome {
                // 7
                Ok(fields) if fields.access_token.is_some() => {
                    return self.commit(locked, record, fields, sent_at, &old_rt, started, &mirror);
                }
                Ok(fields) if fields.refresh_token.is_some() => {
                    // G1: the provider rotated but its answer is unusable; keep the new
                    // refresh token so that the next refresh does not present the spent one.
                    let (kept, v) = self.keep_rotation(locked, record, fields, sent_at)?;
                    let err = Error::transient(
                        "the refresh answer carried a new refresh token but no usable access \
                         token; the refresh token was saved and the next call refreshes again",
                    );
                    return self.defer(locked, kept, v, err);
                }
                Ok(_) => return Err(Error::invalid("the refresher returned no access_token")),
                // 8
                Err(e) if e.is_refresh_token_error() => {
                    match self.recover(locked, &record, version, &mirror, recovered)? {
                        Recovery::Adopted(token) => return Ok(token),
                        Recovery::Retry(r, v) => {
                            recovered = true;
                            (record, version) = (r, v);
                        }
                        Recovery::Dead(current, v) => {
                            return self.mark_dead(locked, current, v, e, &old_rt)
                        }
                    }
                }
                // 9
                Err(e) if matches!(e.code(), ErrorCode::Transient | ErrorCode::Terminal) => {
                    return self.defer(locked, record, version, e);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Step 6: the refresher runs in a task of its own, which nothing aborts before it ends.
    /// At `refresh_timeout` the callers get step 9's answer, but the lock stays held until the
    /// refresher has really ended (at most [`LATE_ANSWER_WINDOW`] more), so that no other
    /// process sends the same refresh token meanwhile, and a late answer is still committed.
    async fn attempt(&self, refresher: Arc<dyn Refresher>, record: &Record) -> Result<TokenFields> {
        let credential = record.clone();
        let scope = (self.slot.backend.location().clone(), self.slot.key.clone());
        let mut task = runtime::process()
            .runtime
            .spawn(REFRESHING.scope(scope, async move { refresher.refresh(&credential).await }));
        let timeout = self.options.refresh_timeout;
        let joined = match tokio::time::timeout(timeout, &mut task).await {
            Ok(joined) => joined,
            Err(_) => {
                let late = Error::transient(format!(
                    "the refresher did not answer within {} ms; the refresh keeps the \
                     credential's lock for up to {} ms more and commits a late answer",
                    timeout.as_millis(),
                    LATE_ANSWER_WINDOW.as_millis()
                ));
                self.publish(self.deferred_or(record.clone(), None, true, late));
                match tokio::time::timeout(LATE_ANSWER_WINDOW, &mut task).await {
                    Ok(joined) => joined,
                    Err(_) => {
                        task.abort();
                        return Err(Error::transient(format!(
                            "the refresher did not end within {} ms (refresh_timeout + {} ms); \
                             the lock is released, and if the refresher still reaches the \
                             provider, the refresh token may be spent",
                            (timeout + LATE_ANSWER_WINDOW).as_millis(),
                            LATE_ANSWER_WINDOW.as_millis()
                        )));
                    }
                }
            }
        };
        joined.unwrap_or_else(|e| {
            Err(if e.is_panic() {
                Error::invalid("the refresher panicked; nothing was written")
            } else {
                Error::transient(format!("the refresher was cancelled: {e}"))
            })
        })
    }

    /// Step 7: merge, write, write back the mirror, hand out the new token.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        locked: &mut dyn Locked,
        record: Record,
        fields: TokenFields,
        sent_at: i64,
        old_rt: &Secret,
        started: Instant,
        mirror: &Option<MirrorConfig>,
    ) -> Result<AccessToken> {
        let mut next = record.clone();
        next.apply_refresh(fields, sent_at);
        next.stamp(record.generation, now_ms());
        // A mirror is written back under the lock; without one, nothing follows the write.
        if mirror.is_none() {
            locked.release_with_next_write();
        }
        let committed = self.write_rotation(locked, &record, &next)?;
        if let Some(m) = mirror {
            match m.write_back(&next) {
                Ok(()) => events::mirror_written(self.key(), self.path(), &m.path, next.generation),
                Err(e) => {
                    events::mirror_ignored(self.key(), self.path(), &m.path, &e.to_string());
                    tracing::warn!(target: "oauth_lock", key = self.key(), "could not update the mirror: {e}");
                }
            }
        }
        let new_rt = next
            .refresh_token
            .as_ref()
            .map(Secret::fingerprint)
            .unwrap_or_default();
        events::refreshed(
            self.key(),
            self.path(),
            next.generation,
            &old_rt.fingerprint(),
            &new_rt,
            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        );
        self.token_of(next, Some(committed.version), true)
    }

    /// Step 7 for an unusable answer that still rotated: the new refresh token alone.
    fn keep_rotation(
        &self,
        locked: &mut dyn Locked,
        record: Record,
        fields: TokenFields,
        sent_at: i64,
    ) -> Result<(Record, Version)> {
        let mut next = record.clone();
        next.refresh_token = fields.refresh_token;
        next.refresh_token_issued_at_ms = Some(sent_at);
        next.stamp(record.generation, now_ms());
        let committed = self.write_rotation(locked, &record, &next)?;
        events::rotation_kept(self.key(), self.path(), next.generation);
        Ok((next, committed.version))
    }

    /// Writes a record that carries a new refresh token (G3). The two outcomes are told apart:
    /// replaced but not durable is committed (every process sees it; a warning says a power
    /// loss may undo it); not replaced keeps the rotation in this process, the only copy of
    /// the new refresh token, for the next leader to commit before it refreshes.
    fn write_rotation(
        &self,
        locked: &mut dyn Locked,
        base: &Record,
        next: &Record,
    ) -> Result<Committed> {
        match locked.write(next) {
            Ok(committed) => {
                self.note_not_durable(&committed);
                Ok(committed)
            }
            Err(e) => {
                events::rotation_held(self.key(), self.path(), &e.to_string());
                *lock(&self.slot.held) = Some(HeldRotation {
                    spent: base.refresh_token.clone(),
                    record: next.clone(),
                });
                Err(match e {
                    Error::Io {
                        ctx,
                        op,
                        kind,
                        os_code,
                        message,
                    } => Error::Io {
                        ctx,
                        op: format!(
                            "{op} (the refresh succeeded but was NOT saved; this process keeps \
                             the new tokens and saves them at its next call)"
                        ),
                        kind,
                        os_code,
                        message,
                    },
                    other => other,
                })
            }
        }
    }

    fn note_not_durable(&self, committed: &Committed) {
        if let Some(e) = &committed.not_durable {
            events::commit_not_durable(self.key(), self.path(), &e.to_string());
        }
    }

    /// Step 4's prelude: a rotation this process could not commit earlier is committed now,
    /// if the record still holds the refresh token it was redeemed with (else a login, a logout
    /// or another rotation superseded it).
    fn commit_held(
        &self,
        locked: &mut dyn Locked,
        record: Record,
        version: Version,
    ) -> Result<(Record, Version)> {
        let Some(held) = lock(&self.slot.held).take() else {
            return Ok((record, version));
        };
        if record.state != State::Ok || record.refresh_token != held.spent {
            tracing::warn!(target: "oauth_lock", key = self.key(), generation = record.generation,
                "dropped a held rotation: the record's refresh token changed since it was redeemed");
            return Ok((record, version));
        }
        let mut next = held.record;
        next.backoff = None;
        next.stamp(record.generation, now_ms());
        let committed = self.write_rotation(locked, &record, &next)?;
        events::rotation_recommitted(self.key(), self.path(), next.generation);
        Ok((next, committed.version))
    }

    /// Step 8: the provider says the refresh token is dead. Another writer may have rotated it
    /// under us (a mirror's program, a writer that does not lock): adopt a newer one once.
    fn recover(
        &self,
        locked: &mut dyn Locked,
        record: &Record,
        version: Version,
        mirror: &Option<MirrorConfig>,
        recovered: bool,
    ) -> Result<Recovery> {
        let (current, version) = match locked.read()? {
            Some(found) => found,
            None => (record.clone(), version),
        };
        if recovered || current.state != State::Ok {
            return Ok(Recovery::Dead(current, version));
        }
        let rotated =
            current.refresh_token.is_some() && current.refresh_token != record.refresh_token;
        let (next, version) = if rotated {
            (current, version)
        } else if let Some((m, found)) = mirror
            .as_ref()
            .and_then(|m| self.newer_in_mirror(m, &current))
        {
            self.adopt_mirror(locked, &current, found, m)?
        } else {
            return Ok(Recovery::Dead(current, version));
        };
        events::race_recovered(self.key(), self.path(), next.generation);
        if self.accepts(&next) {
            return Ok(Recovery::Adopted(self.token_of(
                next,
                Some(version),
                true,
            )?));
        }
        Ok(Recovery::Retry(next, version))
    }

    /// Step 8, nobody rotated it: `needs_login` (G5), so no process sends it again.
    fn mark_dead(
        &self,
        locked: &mut dyn Locked,
        record: Record,
        version: Version,
        err: Error,
        old_rt: &Secret,
    ) -> Result<AccessToken> {
        let oauth_error = err.oauth_error().unwrap_or("invalid_grant").to_owned();
        let description = match &err {
            Error::InvalidGrant { description, .. } | Error::Terminal { description, .. } => {
                description.clone()
            }
            _ => None,
        };
        events::invalid_grant(self.key(), self.path(), &old_rt.fingerprint(), &oauth_error);
        let mut dead = record.clone();
        dead.mark_needs_login(&oauth_error, description, now_ms());
        dead.backoff = None;
        dead.stamp(record.generation, now_ms());
        match locked.write(&dead) {
            Ok(committed) => {
                self.note_not_durable(&committed);
                self.slot.install(dead, Some(committed.version), true);
            }
            Err(w) => {
                self.slot.install(record, Some(version), true);
                tracing::error!(target: "oauth_lock", key = self.key(), "could not record needs_login: {w}")
            }
        }
        Err(err)
    }

    /// Step 9: a transient failure, or a refusal that is not about the refresh token (a client
    /// or configuration error, kept in `last_error`; the credential stays usable). Records a
    /// backoff that every process honours, then answers with the old token while it is still
    /// accepted, else the error.
    fn defer(
        &self,
        locked: &mut dyn Locked,
        record: Record,
        version: Version,
        err: Error,
    ) -> Result<AccessToken> {
        let now = now_ms();
        let mut next = record.clone();
        let backoff =
            Backoff::after_failure(record.backoff.as_ref(), err.retry_after().map(ms_i64), now);
        // A refusal of the client is what callers hear until the backoff ends; a transient
        // failure replaces an older refusal (it is no longer the last error).
        next.last_error = match &err {
            Error::Terminal {
                oauth_error,
                description,
                ..
            } => {
                events::refresh_refused(self.key(), self.path(), oauth_error);
                Some(LastError {
                    code: oauth_error.clone(),
                    description: description.clone(),
                    at_ms: now,
                })
            }
            _ => None,
        };
        next.backoff = Some(backoff.clone());
        next.stamp(record.generation, now);
        let (record, version) = match locked.write(&next) {
            Ok(committed) => {
                self.note_not_durable(&committed);
                events::backing_off(self.key(), self.path(), backoff.until_ms, backoff.failures);
                (next, committed.version)
            }
            Err(w) => {
                tracing::warn!(target: "oauth_lock", key = self.key(), "could not record the backoff: {w}");
                (record, version)
            }
        };
        self.deferred_or(record, Some(version), true, err)
    }

    /// Step 9 for every process while a backoff lasts: no refresh token is sent; the old token
    /// while it is still accepted, else the recorded refusal or `Transient`.
    fn backing_off(
        &self,
        record: Record,
        version: Version,
        authoritative: bool,
    ) -> Result<AccessToken> {
        let now = now_ms();
        let backoff = record.backoff.clone().unwrap_or(Backoff {
            until_ms: now,
            failures: 0,
        });
        let wait_ms = backoff.until_ms.saturating_sub(now).max(0);
        let err = match &record.last_error {
            Some(LastError {
                code, description, ..
            }) => crate::refresher::classify_oauth_error(code, description.clone()),
            None => Error::Transient {
                ctx: Default::default(),
                reason: format!(
                    "{} refresh(es) in a row failed; no process refreshes this credential for \
                     another {wait_ms} ms",
                    backoff.failures
                ),
                retry_after: Some(Duration::from_millis(wait_ms.unsigned_abs())),
            },
        };
        self.deferred_or(record, Some(version), authoritative, err)
    }

    /// The old token if this mode may still use it (event `refresh_deferred`), else `err`.
    fn deferred_or(
        &self,
        record: Record,
        version: Option<Version>,
        authoritative: bool,
        err: Error,
    ) -> Result<AccessToken> {
        if self.mode.still_usable(&record, now_ms()) {
            events::refresh_deferred(self.key(), self.path(), &err.to_string());
            return self.token_of(record, version, authoritative);
        }
        if version.is_some() {
            self.slot.install(record, version, authoritative);
        }
        Err(err)
    }

    /// Takes a mirror's tokens into the record, under the lock: a new generation.
    fn adopt_mirror(
        &self,
        locked: &mut dyn Locked,
        record: &Record,
        m: MirrorTokens,
        mirror: &MirrorConfig,
    ) -> Result<(Record, Version)> {
        adopt_mirror(locked, record, m, mirror, &self.slot.key, self.path())
    }

    /// The mirror's tokens if its program rotated them past the record's (see [`is_newer`]);
    /// a stub or foreign content is reported (`mirror_ignored`) and never adopted.
    fn newer_in_mirror<'m>(
        &self,
        mirror: &'m MirrorConfig,
        record: &Record,
    ) -> Option<(&'m MirrorConfig, MirrorTokens)> {
        match mirror.read() {
            MirrorRead::Tokens(m) if is_newer(&m, record) => Some((mirror, m)),
            MirrorRead::Stub => {
                events::mirror_ignored(self.key(), self.path(), &mirror.path, "a logged-out stub");
                None
            }
            MirrorRead::Unreadable(why) => {
                events::mirror_ignored(self.key(), self.path(), &mirror.path, &why);
                None
            }
            _ => None,
        }
    }
}

/// Takes the mirror's program's own lock (DESIGN.md §6.1), saying how long it waited.
async fn take_foreign(
    mirror: &MirrorConfig,
    timeout: Duration,
    key: &Key,
    path: &std::path::Path,
) -> Result<Option<crate::mirror::foreign_lock::ForeignLock>> {
    let started = Instant::now();
    let held = mirror.lock_foreign(timeout).await;
    let waited = started.elapsed();
    if waited >= Duration::from_millis(1) && !mirror.foreign_lock_dirs().is_empty() {
        let ms = waited.as_secs_f64() * 1000.0;
        events::foreign_lock_waited(key.as_str(), path, mirror.shape.program(), ms);
    }
    held
}

/// Takes a mirror's tokens into the record, under the lock: a new generation.
fn adopt_mirror(
    locked: &mut dyn Locked,
    record: &Record,
    m: MirrorTokens,
    mirror: &MirrorConfig,
    key: &Key,
    path: &std::path::Path,
) -> Result<(Record, Version)> {
    let key = key.as_str();
    let now = now_ms();
    let mut next = record.clone();
    next.access_token = Some(m.access_token);
    if m.refresh_token.is_some() {
        next.refresh_token = m.refresh_token;
        next.refresh_token_issued_at_ms = Some(now);
    }
    next.expires_at_ms = m.expires_at_ms;
    next.issued_at_ms = None;
    if m.id_token.is_some() {
        next.id_token = m.id_token;
    }
    if m.scope.is_some() {
        next.scope = m.scope;
    }
    next.state = State::Ok;
    next.last_error = None;
    next.backoff = None;
    next.stamp(record.generation, now);
    let committed = locked.write(&next)?;
    if let Some(e) = &committed.not_durable {
        events::commit_not_durable(key, path, &e.to_string());
    }
    events::mirror_adopted(key, path, &mirror.path, next.generation);
    Ok((next, committed.version))
}

/// What [`TokenSource::sync_mirror`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MirrorSync {
    /// The credential has no mirror.
    NoMirror,
    /// The mirror already held the record's tokens (or the record is dead and so is it).
    InStep,
    /// The program had rotated the tokens: the record took them (this generation).
    Adopted { generation: u64 },
    /// The mirror was stale or a logged-out stub: rewritten from the record.
    Repaired,
    /// The file is gone (the program's logout removes it): left alone.
    Missing,
    /// The mirror cannot be read (the reason never quotes it); left untouched.
    Unreadable(String),
}

/// The mirror holds the record's access and refresh tokens.
fn in_step(found: &MirrorRead, record: &Record) -> bool {
    match found {
        MirrorRead::Tokens(m) => {
            Some(&m.access_token) == record.access_token.as_ref()
                && m.refresh_token == record.refresh_token
        }
        _ => false,
    }
}

/// Whether the program rotated the tokens *past* the record: a different, non-empty refresh
/// token with a later expiry. Merely different is not enough: a mirror that missed a
/// write-back holds an older, spent token, and adopting it would replay it.
fn is_newer(m: &MirrorTokens, record: &Record) -> bool {
    m.refresh_token
        .as_ref()
        .is_some_and(|rt| !rt.expose().is_empty() && Some(rt) != record.refresh_token.as_ref())
        && !m.access_token.expose().is_empty()
        && m.expires_at_ms.unwrap_or(i64::MIN) > record.expires_at_ms.unwrap_or(i64::MIN)
}
