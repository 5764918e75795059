//! The refresh protocol of DESIGN.md §4: the per-process slot for each (store, key), the hot
//! path, the single flight, and the leader's locked re-read → refresh → commit → publish.

use crate::backend::{Backend, Locked, Version};
use crate::error::{Error, ErrorCode, Result};
use crate::events;
use crate::key::Key;
use crate::mirror::{MirrorConfig, MirrorTokens};
use crate::record::{Record, State};
use crate::refresher::{OAuth2, OAuth2Config, Refresher};
use crate::runtime::{self, now_ms};
use crate::tokens::AccessToken;
use arc_swap::{ArcSwap, ArcSwapOption};
use futures_util::FutureExt;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
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
    /// Longest a refresher may take before `Transient`. Default 30 s.
    pub refresh_timeout: Duration,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            refresh_margin: Duration::from_secs(300),
            lock_timeout: Duration::from_secs(35),
            revalidate: Duration::from_secs(1),
            refresh_timeout: Duration::from_secs(30),
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
}

/// The slots of one side of a fork. A child starts a registry of its own (its epoch), so a
/// mutex that a parent's thread held at the fork is left behind, never waited for.
struct Registry {
    epoch: u64,
    slots: Mutex<HashMap<(PathBuf, Key), Arc<Slot>>>,
}
static SLOTS: ArcSwapOption<Registry> = ArcSwapOption::const_empty();

/// This epoch's registry, made by the first caller after a fork (or at start).
fn registry(epoch: u64) -> Arc<Registry> {
    loop {
        if let Some(r) = SLOTS.load_full().filter(|r| r.epoch == epoch) {
            return r;
        }
        SLOTS.rcu(|current| match current {
            Some(r) if r.epoch == epoch => Some(r.clone()),
            _ => Some(Arc::new(Registry {
                epoch,
                slots: Mutex::new(HashMap::new()),
            })),
        });
    }
}

/// A poisoned lock only means a panic elsewhere; the data it guards stays consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Slot {
    /// The slot for (store, key) in this process (of this side of the last fork).
    pub(crate) fn get(backend: &Arc<dyn Backend>, key: &Key) -> Arc<Slot> {
        let epoch = runtime::epoch();
        let registry = registry(epoch);
        let mut slots = lock(&registry.slots);
        slots
            .entry((backend.id().to_owned(), key.clone()))
            .or_insert_with(|| {
                Arc::new(Slot {
                    key: key.clone(),
                    backend: backend.clone(),
                    path: backend.location(key),
                    epoch,
                    known: ArcSwapOption::empty(),
                    last_check_ms: AtomicI64::new(0),
                    flight: Mutex::new(None),
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

    /// Remembers a record. Unlocked reads never go back to an older generation; a read
    /// under the lock (or our own write) is the truth and always wins.
    pub(crate) fn install(
        &self,
        record: Record,
        version: Option<Version>,
        authoritative: bool,
    ) -> Option<AccessToken> {
        if !authoritative && self.generation().is_some_and(|g| record.generation < g) {
            return self.known.load().as_ref().and_then(|k| k.token.clone());
        }
        let token = match (&record.access_token, record.state) {
            (Some(at), State::Ok) => Some(AccessToken::new(
                at.expose(),
                record.token_type.as_deref(),
                record.expires_at_ms,
                record.generation,
            )),
            _ => None,
        };
        self.known.store(Some(Arc::new(Known {
            record,
            version,
            token: token.clone(),
        })));
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
    static REFRESHING: (PathBuf, Key);
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
            .field("store", &self.backend.id())
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
        self.backend.location(&self.key)
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
        self.options.refresh_margin.as_millis() as i64
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
        if now - last >= self.options.revalidate.as_millis() as i64
            && slot
                .last_check_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            match slot.backend.version(&slot.key) {
                Ok(v) if v.is_some() && v == known.version => {}
                // Changed (a login, a logout, another process's refresh): take the slow path.
                _ => return None,
            }
        }
        Some(token.clone())
    }

    /// A valid access token, refreshing under the protocol if needed.
    pub async fn access_token(&self) -> Result<AccessToken> {
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        self.fly(Mode::Fresh).await
    }

    /// The caller got HTTP 401 with `token`: returns a different valid token, refreshing
    /// (once across all processes) if nobody has yet.
    pub async fn reject(&self, token: &str) -> Result<AccessToken> {
        if let Some(t) = self.cached().filter(|t| t.value() != token) {
            return Ok(t);
        }
        self.fly(Mode::Reject(token.to_owned())).await
    }

    /// A token valid for at least `at_least` (e.g. for a long job or a cron keep-alive):
    /// refreshes if the current one expires sooner, unless another process already did.
    pub async fn access_token_valid_for(&self, at_least: Duration) -> Result<AccessToken> {
        let token = self.access_token().await?;
        match token.expires_at_ms() {
            Some(exp) if exp - now_ms() < at_least.as_millis() as i64 => {
                self.reject(token.value()).await
            }
            _ => Ok(token),
        }
    }

    /// [`access_token_valid_for`](Self::access_token_valid_for) for callers without an async runtime.
    pub fn access_token_valid_for_blocking(&self, at_least: Duration) -> Result<AccessToken> {
        runtime::block_on(self.access_token_valid_for(at_least))
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
        runtime::block_on(self.fly(Mode::Fresh))
    }

    /// [`reject`](Self::reject) for callers without an async runtime.
    pub fn reject_blocking(&self, token: &str) -> Result<AccessToken> {
        runtime::block_on(self.reject(token))
    }

    /// [`verify`](Self::verify) for callers without an async runtime.
    pub fn verify_blocking(&self) -> Result<AccessToken> {
        runtime::block_on(self.verify())
    }

    /// Joins the slot's flight or starts one, then waits for its result. Waiting can be
    /// cancelled; the flight itself runs on the core's runtime and always completes.
    async fn fly(&self, mode: Mode) -> Result<AccessToken> {
        let slot = self.slot();
        let reentrant = REFRESHING
            .try_with(|(id, key)| id == slot.backend.id() && key == &slot.key)
            .unwrap_or(false);
        if reentrant {
            return Err(slot.err(Error::invalid(
                "a refresher asked for the token of the credential it is refreshing; it would wait on itself",
            )));
        }
        // Joining someone else's flight is enough for Fresh; Reject and Force may need their
        // own flight after it (at most one more round each).
        for _ in 0..3 {
            let (flight, mine) = self.join_or_start(&slot, &mode);
            let result = flight.wait().await;
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

    fn join_or_start(&self, slot: &Arc<Slot>, mode: &Mode) -> (Arc<Flight>, bool) {
        let mut current = lock(&slot.flight);
        if let Some(f) = current.as_ref().filter(|f| f.result.get().is_none()) {
            return (f.clone(), false);
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
        };
        let f = flight.clone();
        let process = runtime::process();
        let scope = (slot.backend.id().to_owned(), slot.key.clone());
        process.runtime.spawn(REFRESHING.scope(scope, async move {
            // A panicking refresher must not leave the followers waiting forever.
            let result = match AssertUnwindSafe(leader.run()).catch_unwind().await {
                Ok(r) => r,
                Err(_) => Err(Error::invalid(
                    "the refresher panicked; nothing was written",
                )),
            }
            .map_err(|e| leader.slot.err(e));
            let _ = f.result.set(result);
            f.done.notify_waiters();
            let mut current = lock(&leader.slot.flight);
            if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &f)) {
                *current = None;
            }
        }));
        (flight, true)
    }
}

/// The leader of a flight: DESIGN.md §4 step 2.
struct Leader {
    slot: Arc<Slot>,
    refresher: Option<Arc<dyn Refresher>>,
    options: SourceOptions,
    mode: Mode,
}

impl Leader {
    fn key(&self) -> &str {
        self.slot.key.as_str()
    }

    fn margin_ms(&self) -> i64 {
        self.options.refresh_margin.as_millis() as i64
    }

    /// Announces a record another writer made, if it is news to this process.
    fn note_adoption(&self, record: &Record, under_lock: bool) {
        if self
            .slot
            .generation()
            .is_some_and(|g| record.generation > g)
        {
            events::adopted(self.key(), &self.slot.path, record.generation, under_lock);
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
        events::needs_login(self.key(), &self.slot.path, &reason);
        Error::needs_login(reason)
    }

    async fn run(&self) -> Result<AccessToken> {
        let backend = self.slot.backend.clone();
        let key = self.slot.key.clone();
        // 1–2: the unlocked read.
        if self.mode != Mode::Force {
            match backend.read(&key)? {
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
                    if newer_or_same && self.mode.accepts(&record, now_ms(), self.margin_ms()) {
                        self.note_adoption(&record, false);
                        return self.token_of(record, Some(version), false);
                    }
                }
            }
        }
        // 3: the lock, waited for on a blocking thread (the wait blocks in the kernel).
        let timeout = self.options.lock_timeout;
        let k = key.clone();
        let mut locked = tokio::task::spawn_blocking(move || backend.lock(&k, timeout))
            .await
            .map_err(|e| Error::transient(format!("the lock wait was interrupted: {e}")))??;
        #[cfg(feature = "fault-injection")]
        crate::fault::hit("locked");
        if locked.waited() > Duration::ZERO {
            events::lock_waited(
                self.key(),
                &self.slot.path,
                locked.waited().as_secs_f64() * 1000.0,
            );
        }
        // 4: the authoritative read.
        let Some((record, version)) = locked.read()? else {
            return Err(self.gone());
        };
        if record.state == State::NeedsLogin {
            let err = self.dead(&record);
            self.slot.install(record, Some(version), true);
            return Err(err);
        }
        if self.mode.accepts(&record, now_ms(), self.margin_ms()) {
            self.note_adoption(&record, true);
            return self.token_of(record, Some(version), true);
        }
        self.refresh_locked(locked.as_mut(), record, version).await
    }

    fn gone(&self) -> Error {
        self.slot.forget();
        events::needs_login(self.key(), &self.slot.path, "no credential is stored");
        Error::needs_login("no credential is stored under this key; log in (save) first")
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
        version: Version,
    ) -> Result<AccessToken> {
        let mut recovered = false;
        let mut version = version;
        let mirror = record
            .mirror
            .as_ref()
            .map(MirrorConfig::from_json)
            .transpose()?;
        // §6: another program rotated the token in its own file: adopt it instead of refreshing.
        if let Some(m) = mirror.as_ref().and_then(MirrorConfig::read) {
            let rotated = m.refresh_token.is_some() && m.refresh_token != record.refresh_token;
            if rotated
                && m.expires_at_ms.unwrap_or(i64::MIN) > record.expires_at_ms.unwrap_or(i64::MIN)
            {
                (record, version) = adopt_mirror(locked, &record, m)?;
                events::adopted(self.key(), &self.slot.path, record.generation, true);
                if self.mode.accepts(&record, now_ms(), self.margin_ms()) {
                    return self.token_of(record, Some(version), true);
                }
            }
        }
        loop {
            let Some(old_rt) = record.refresh_token.clone() else {
                events::needs_login(self.key(), &self.slot.path, "no refresh token");
                self.slot.install(record, Some(version), true);
                return Err(Error::needs_login(
                    "the credential has no refresh token and its access token is not fresh",
                ));
            };
            let refresher = self.refresher_for(&record)?;
            let sent_at = now_ms();
            let started = Instant::now();
            let outcome = match tokio::time::timeout(
                self.options.refresh_timeout,
                refresher.refresh(&record),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(Error::transient(format!(
                    "the refresher did not answer within {} ms",
                    self.options.refresh_timeout.as_millis()
                ))),
            };
            #[cfg(feature = "fault-injection")]
            if outcome.is_ok() {
                crate::fault::hit("answered");
            }
            let outcome = match outcome {
                Ok(fields) if fields.access_token.is_none() && fields.refresh_token.is_some() => {
                    // G1: the provider rotated but its answer is unusable; keep the new
                    // refresh token so that the next refresh does not present the spent one.
                    let mut next = record.clone();
                    next.refresh_token = fields.refresh_token;
                    next.refresh_token_issued_at_ms = Some(sent_at);
                    next.stamp(record.generation, now_ms());
                    version = locked.write(&next)?;
                    events::rotation_kept(self.key(), &self.slot.path, next.generation);
                    record = next;
                    Err(Error::transient(
                        "the refresh answer carried a new refresh token but no usable access \
                         token; the refresh token was saved and the next call refreshes again",
                    ))
                }
                other => other,
            };
            match outcome {
                Ok(fields) => {
                    if fields.access_token.is_none() {
                        return Err(Error::invalid("the refresher returned no access_token"));
                    }
                    let mut next = record.clone();
                    next.apply_refresh(fields, sent_at);
                    next.stamp(record.generation, now_ms());
                    // G3: committed before anyone sees it, or an error that says it was not.
                    let version = locked.write(&next).map_err(|e| match e {
                        Error::Io { ctx, op, kind, os_code, message } => Error::Io {
                            ctx,
                            op: format!("{op} (the refresh succeeded but was NOT saved; the new tokens are lost)"),
                            kind,
                            os_code,
                            message,
                        },
                        other => other,
                    })?;
                    if let (Some(m), Some(at)) = (&mirror, &next.access_token) {
                        if let Err(e) =
                            m.write_back(at, next.refresh_token.as_ref(), next.expires_at_ms)
                        {
                            tracing::warn!(target: "oauth_lock", key = self.key(), "could not update the mirror: {e}");
                        }
                    }
                    let new_rt = next
                        .refresh_token
                        .as_ref()
                        .map(|t| t.fingerprint())
                        .unwrap_or_default();
                    events::refreshed(
                        self.key(),
                        &self.slot.path,
                        next.generation,
                        &old_rt.fingerprint(),
                        &new_rt,
                        started.elapsed().as_millis() as u64,
                    );
                    return self.token_of(next, Some(version), true);
                }
                Err(e) if matches!(e.code(), ErrorCode::InvalidGrant | ErrorCode::Terminal) => {
                    // 8: another writer may have rotated the token under us.
                    if let Some((now_record, v)) = locked.read()? {
                        let rotated = now_record.refresh_token.is_some()
                            && now_record.refresh_token != record.refresh_token;
                        if rotated && !recovered && now_record.state == State::Ok {
                            recovered = true;
                            events::race_recovered(
                                self.key(),
                                &self.slot.path,
                                now_record.generation,
                            );
                            if self.mode.accepts(&now_record, now_ms(), self.margin_ms()) {
                                return self.token_of(now_record, Some(v), true);
                            }
                            record = now_record;
                            version = v;
                            continue;
                        }
                        record = now_record;
                    }
                    let from_mirror = mirror.as_ref().and_then(MirrorConfig::read).filter(|m| {
                        m.refresh_token.is_some()
                            && m.refresh_token.as_ref() != Some(&old_rt)
                            && record.state == State::Ok
                    });
                    if let (Some(m), false) = (from_mirror, recovered) {
                        recovered = true;
                        (record, version) = adopt_mirror(locked, &record, m)?;
                        events::race_recovered(self.key(), &self.slot.path, record.generation);
                        if self.mode.accepts(&record, now_ms(), self.margin_ms()) {
                            return self.token_of(record, Some(version), true);
                        }
                        continue;
                    }
                    let oauth_error = e.oauth_error().unwrap_or("invalid_grant").to_owned();
                    let description = match &e {
                        Error::InvalidGrant { description, .. }
                        | Error::Terminal { description, .. } => description.clone(),
                        _ => None,
                    };
                    events::invalid_grant(
                        self.key(),
                        &self.slot.path,
                        &old_rt.fingerprint(),
                        &oauth_error,
                    );
                    let mut dead = record.clone();
                    dead.mark_needs_login(&oauth_error, description, now_ms());
                    dead.stamp(record.generation, now_ms());
                    match locked.write(&dead) {
                        Ok(v) => {
                            self.slot.install(dead, Some(v), true);
                        }
                        Err(w) => {
                            tracing::error!(target: "oauth_lock", key = self.key(), "could not record needs_login: {w}")
                        }
                    }
                    return Err(e);
                }
                Err(e) if e.code() == ErrorCode::Transient => {
                    // 9: keep using a token the provider still accepts.
                    let now = now_ms();
                    let still_usable = match &self.mode {
                        Mode::Fresh => record.is_unexpired(now),
                        Mode::Reject(bad) => {
                            record.is_unexpired(now)
                                && record
                                    .access_token
                                    .as_ref()
                                    .is_some_and(|t| t.expose() != bad)
                        }
                        Mode::Force => false,
                    };
                    if still_usable {
                        events::refresh_deferred(self.key(), &self.slot.path, &e.to_string());
                        return self.token_of(record, Some(version), true);
                    }
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Takes a mirror's tokens into the record, under the lock: a new generation.
fn adopt_mirror(
    locked: &mut dyn Locked,
    record: &Record,
    m: MirrorTokens,
) -> Result<(Record, Version)> {
    let now = now_ms();
    let mut next = record.clone();
    next.access_token = Some(m.access_token);
    if m.refresh_token.is_some() {
        next.refresh_token = m.refresh_token;
        next.refresh_token_issued_at_ms = Some(now);
    }
    next.expires_at_ms = m.expires_at_ms;
    next.issued_at_ms = None;
    next.state = State::Ok;
    next.last_error = None;
    next.stamp(record.generation, now);
    let version = locked.write(&next)?;
    Ok((next, version))
}
