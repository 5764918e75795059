//! The decision events of DESIGN.md §8, emitted through `tracing` with target `oauth_lock`
//! and an `event` field, so every binding can route them. Tokens appear only as fingerprints.

use tracing::{info, warn};

pub(crate) fn adopted(key: &str, generation: u64, authoritative: bool) {
    info!(target: "oauth_lock", event = "adopted", key, generation, under_lock = authoritative, "another process refreshed; adopted its token");
}

pub(crate) fn refreshed(key: &str, generation: u64, old_rt: &str, new_rt: &str, ms: u64) {
    info!(target: "oauth_lock", event = "refreshed", key, generation, old_refresh_token = old_rt, new_refresh_token = new_rt, ms, "refreshed and committed");
}

pub(crate) fn lock_waited(key: &str, ms: f64) {
    info!(target: "oauth_lock", event = "lock_waited", key, ms, "waited for the credential's lock");
}

pub(crate) fn refresh_deferred(key: &str, reason: &str) {
    warn!(target: "oauth_lock", event = "refresh_deferred", key, reason, "refresh failed transiently; the current access token is still valid and is used");
}

pub(crate) fn invalid_grant(key: &str, refresh_token: &str, oauth_error: &str) {
    warn!(target: "oauth_lock", event = "invalid_grant", key, refresh_token, oauth_error, "the provider rejected the refresh token; marked needs_login");
}

pub(crate) fn race_recovered(key: &str, generation: u64) {
    info!(target: "oauth_lock", event = "race_recovered", key, generation, "the refresh token was rotated by another writer; adopted it");
}

pub(crate) fn needs_login(key: &str, reason: &str) {
    info!(target: "oauth_lock", event = "needs_login", key, reason, "the credential needs a login");
}

pub(crate) fn downgrade_refused(key: &str) {
    warn!(target: "oauth_lock", event = "downgrade_refused", key, "refused to replace a credential that has a refresh token with one that has none");
}

pub(crate) fn login_without_refresh_token(key: &str) {
    warn!(target: "oauth_lock", event = "login_without_refresh_token", key, "saved a credential without a refresh token: it cannot be refreshed");
}
