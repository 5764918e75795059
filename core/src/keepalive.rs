//! The keep-alive (DESIGN.md §6.1, `oauth-lock keepalive`): refreshes credentials well before
//! they expire, under the protocol, so that the programs whose files are mirrored always find
//! a fresh token there and never refresh (and race) themselves. One pass at a time; the caller
//! sleeps until the pass's `next` deadline.

use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{MirrorSync, SourceOptions};
use crate::record::State;
use crate::runtime::{ms_i64, now_ms};
use crate::store::{Status, Store};
use std::collections::HashMap;
use std::time::Duration;

/// Tuning of a [`Keepalive`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepaliveOptions {
    /// Refresh a credential when it expires within this (capped at half the token's
    /// lifetime, so a short-lived token is not refreshed on every pass). Default 30 min, well
    /// before the programs' own 5-minute margin.
    pub ahead: Duration,
    /// Longest sleep between passes, so that a re-login, a logout or a rotation by the
    /// program is noticed even when no credential is due. Default 60 s.
    pub check_every: Duration,
    /// How long to wait before trying again after `Busy` or an unexpected error. Default 5 s.
    pub retry_after: Duration,
}

impl Default for KeepaliveOptions {
    fn default() -> Self {
        KeepaliveOptions {
            ahead: Duration::from_secs(30 * 60),
            check_every: Duration::from_secs(60),
            retry_after: Duration::from_secs(5),
        }
    }
}

/// What a pass did for one credential. Never holds a token; fingerprints only.
#[derive(Clone, Debug)]
pub enum KeepaliveAction {
    /// Nothing to do before `due_at_ms`.
    Fresh { expires_at_ms: Option<i64> },
    /// Refreshed (by this pass, or just before by another process).
    Refreshed {
        generation: u64,
        access_token_fingerprint: String,
        expires_at_ms: Option<i64>,
    },
    /// The program had rotated the tokens in its file; the record took them.
    AdoptedFromMirror { generation: u64 },
    /// The program's file was stale or a logged-out stub; rewritten from the record.
    RepairedMirror,
    /// The mirror cannot be read; left untouched (said once per reason).
    MirrorUnreadable(String),
    /// The program's file is gone (its logout removes it); left alone until a refresh.
    MirrorMissing,
    /// A refresh failed recently (here or in another process); none before `until_ms`.
    BackingOff { until_ms: i64 },
    /// The credential needs a login; it is not refreshed until one happens (said once).
    NeedsLogin(String),
    /// The record has no refresh config, so only its own program can refresh it (said once).
    CannotRefresh,
    /// Refreshing failed (`Transient`, `Busy`, …); tried again at `due_at_ms`.
    Failed(Error),
}

/// One line of a pass's report.
#[derive(Clone, Debug)]
pub struct KeepaliveReport {
    pub key: String,
    pub action: KeepaliveAction,
    /// When this credential next needs attention (Unix ms), if ever.
    pub due_at_ms: Option<i64>,
}

/// The result of one pass.
#[derive(Clone, Debug)]
pub struct KeepalivePass {
    /// What changed or went wrong; unchanged, still-fresh credentials are left out after the
    /// first pass, and a repeated `NeedsLogin` or `CannotRefresh` is said once.
    pub reports: Vec<KeepaliveReport>,
    /// How long to sleep before the next pass: until the earliest due time, at most
    /// `check_every`.
    pub sleep: Duration,
    /// Credentials that failed or need a login in this pass (for `--once`'s exit status, so
    /// that cron reports them).
    pub failures: usize,
}

/// Keeps the credentials of one store fresh, pass after pass.
pub struct Keepalive {
    store: Store,
    keys: Vec<String>,
    options: KeepaliveOptions,
    /// What was last said per key, so that a state is announced once, not on every pass.
    said: HashMap<String, String>,
}

impl Keepalive {
    /// Keeps `keys` fresh, or every credential of the store (looked up on each pass) if empty.
    pub fn new(store: Store, keys: Vec<String>, options: KeepaliveOptions) -> Keepalive {
        Keepalive {
            store,
            keys,
            options,
            said: HashMap::new(),
        }
    }

    /// One pass over the credentials, blocking (run it off an async runtime's threads).
    pub fn pass(&mut self) -> Result<KeepalivePass> {
        let keys = if self.keys.is_empty() {
            self.store.list()?.into_iter().map(|s| s.key).collect()
        } else {
            self.keys.clone()
        };
        let now = now_ms();
        let mut next = now.saturating_add(ms_i64(self.options.check_every));
        let mut reports = Vec::new();
        let mut failures = 0;
        for key in keys {
            let report = self.one(&key);
            if matches!(
                report.action,
                KeepaliveAction::Failed(_) | KeepaliveAction::NeedsLogin(_)
            ) {
                failures += 1;
            }
            if let Some(due) = report.due_at_ms {
                next = next.min(due);
            }
            let said = format!("{:?}", std::mem::discriminant(&report.action));
            let repeat = self.said.get(&key) == Some(&said);
            let quiet = matches!(
                report.action,
                KeepaliveAction::Fresh { .. }
                    | KeepaliveAction::BackingOff { .. }
                    | KeepaliveAction::MirrorMissing
                    | KeepaliveAction::NeedsLogin(_)
                    | KeepaliveAction::CannotRefresh
                    | KeepaliveAction::MirrorUnreadable(_)
            );
            if !(repeat && quiet) {
                reports.push(report);
            }
            self.said.insert(key, said);
        }
        let sleep_ms = next.saturating_sub(now_ms()).max(0);
        Ok(KeepalivePass {
            reports,
            sleep: Duration::from_millis(u64::try_from(sleep_ms).unwrap_or(0)),
            failures,
        })
    }

    fn one(&self, key: &str) -> KeepaliveReport {
        let report = |action, due_at_ms| KeepaliveReport {
            key: key.to_owned(),
            action,
            due_at_ms,
        };
        let retry = now_ms().saturating_add(ms_i64(self.options.retry_after));
        let failed = |e: Error| {
            let due = match e.code() {
                ErrorCode::NeedsLogin | ErrorCode::InvalidGrant => None,
                _ => Some(
                    e.retry_after()
                        .map(|d| now_ms().saturating_add(ms_i64(d)))
                        .unwrap_or(retry),
                ),
            };
            match e.code() {
                ErrorCode::NeedsLogin | ErrorCode::InvalidGrant => {
                    report(KeepaliveAction::NeedsLogin(e.to_string()), None)
                }
                _ => report(KeepaliveAction::Failed(e), due),
            }
        };
        let options = SourceOptions {
            refresh_margin: self.options.ahead,
            ..SourceOptions::default()
        };
        let source = match self.store.source_with_options(key, None, options) {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        // The program's own rotations and logins first: a re-login there revives the record.
        let mirror = match source.sync_mirror_blocking() {
            Ok(MirrorSync::Adopted { generation }) => {
                Some(KeepaliveAction::AdoptedFromMirror { generation })
            }
            Ok(MirrorSync::Repaired) => Some(KeepaliveAction::RepairedMirror),
            Ok(MirrorSync::Unreadable(why)) => Some(KeepaliveAction::MirrorUnreadable(why)),
            Ok(MirrorSync::Missing) => Some(KeepaliveAction::MirrorMissing),
            Ok(_) => None,
            Err(e) if e.code() == ErrorCode::Busy => return failed(e),
            Err(_) => None,
        };
        let status = match self.store.status(key) {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        if let Some(p) = &status.problem {
            return failed(Error::invalid(p.message.clone()));
        }
        if !status.exists {
            return report(
                KeepaliveAction::NeedsLogin("no credential is stored under this key".into()),
                None,
            );
        }
        if status.state == Some(State::NeedsLogin) {
            let why = status
                .last_error
                .as_ref()
                .map(|e| format!("the refresh token was rejected ({})", e.code))
                .unwrap_or_else(|| "marked needs_login".into());
            return report(
                KeepaliveAction::NeedsLogin(format!("{why}; log in again")),
                None,
            );
        }
        if !status.has_refresh_config {
            return report(KeepaliveAction::CannotRefresh, None);
        }
        let window = self.window(&status);
        let due = status.expires_at_ms.map(|exp| exp.saturating_sub(window));
        let now = now_ms();
        if let Some(until) = status.backoff_until_ms.filter(|&u| u > now) {
            return report(
                mirror.unwrap_or(KeepaliveAction::BackingOff { until_ms: until }),
                Some(until),
            );
        }
        if due.is_none_or(|d| d > now) {
            let action = mirror.unwrap_or(KeepaliveAction::Fresh {
                expires_at_ms: status.expires_at_ms,
            });
            return report(action, due);
        }
        let window_d = Duration::from_millis(u64::try_from(window).unwrap_or(0));
        match source.access_token_valid_for_blocking(window_d) {
            Ok(t) => {
                let due = t.expires_at_ms().map(|exp| {
                    let lifetime = exp.saturating_sub(now);
                    exp.saturating_sub(ms_i64(self.options.ahead).min(lifetime / 2))
                });
                report(
                    KeepaliveAction::Refreshed {
                        generation: t.generation(),
                        access_token_fingerprint: t.fingerprint(),
                        expires_at_ms: t.expires_at_ms(),
                    },
                    due,
                )
            }
            Err(e) => {
                // A refresh that failed left a backoff in the record: wait for it to end.
                let until = self
                    .store
                    .status(key)
                    .ok()
                    .and_then(|s| s.backoff_until_ms)
                    .filter(|&u| u > now_ms());
                let mut r = failed(e);
                if let (Some(u), Some(_)) = (until, r.due_at_ms) {
                    r.due_at_ms = Some(u);
                }
                r
            }
        }
    }

    /// How long before expiry a credential is refreshed: `ahead`, capped at half the token's
    /// lifetime as far as the record says.
    fn window(&self, status: &Status) -> i64 {
        let ahead = ms_i64(self.options.ahead);
        let issued = status.issued_at_ms.or(status.refresh_token_issued_at_ms);
        match (status.expires_at_ms, issued) {
            (Some(exp), Some(iss)) if exp > iss => ahead.min((exp - iss) / 2),
            _ => ahead,
        }
    }
}
