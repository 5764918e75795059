//! `oauth_lock_source`: a token source for one key (with the record's own refresher, an
//! OAuth2 config given as JSON, or a C callback) and its blocking calls.

use crate::error::oauth_lock_error;
use crate::refresher::{
    callback_refresher, oauth_lock_refresh_callback, oauth_lock_userdata_free_callback, Userdata,
};
use crate::status::{arg, guard, json_arg, oauth_lock_code, out, text, Call, Failure, Outcome};
use crate::store::{in_context, oauth_lock_store};
use crate::token::oauth_lock_token;
use arc_swap::ArcSwapOption;
use oauth_lock_core::{interop, AccessToken, Refresher, SourceOptions, TokenSource};
use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

/// A token source: hands out a valid access token for one key, refreshing it at most once
/// per expiry across every thread and process on the machine.
///
/// Created by the `oauth_lock_source_new*` calls, freed by `oauth_lock_source_free`. One
/// source may be used from any number of threads at once; sources for the same key share
/// their cached token within the process.
pub struct oauth_lock_source {
    inner: TokenSource,
    /// The last token handed out, so that the hot path returns the same handle (a
    /// reference-count increment) instead of allocating C strings on every call.
    last: ArcSwapOption<oauth_lock_token>,
}

impl oauth_lock_source {
    fn handle(&self, token: AccessToken) -> Outcome<Arc<oauth_lock_token>> {
        if let Some(last) = &*self.last.load() {
            if last.holds(&token) {
                return Ok(last.clone());
            }
        }
        let fresh = oauth_lock_token::new(token)?;
        self.last.store(Some(fresh.clone()));
        Ok(fresh)
    }
}

/// Tuning of a source, in milliseconds. Fill it with `oauth_lock_source_options_default`,
/// then change what you need; pass NULL instead to get the defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct oauth_lock_source_options {
    /// Refresh this long before expiry (capped at half the token's lifetime). Default 300000.
    pub refresh_margin_ms: u64,
    /// Longest wait for the credential's lock before `OAUTH_LOCK_BUSY`. Default 35000.
    pub lock_timeout_ms: u64,
    /// Longest the callers wait for a refresher (HTTP or callback) before
    /// `OAUTH_LOCK_TRANSIENT` (the refresh itself keeps the lock up to 4000 ms longer and
    /// commits a late answer). Default 30000.
    pub refresh_timeout_ms: u64,
    /// How often the hot path checks the record file for another process's login or
    /// logout. Default 1000.
    pub revalidate_ms: u64,
}

impl From<SourceOptions> for oauth_lock_source_options {
    fn from(o: SourceOptions) -> Self {
        let ms = |d: Duration| d.as_millis().try_into().unwrap_or(u64::MAX);
        oauth_lock_source_options {
            refresh_margin_ms: ms(o.refresh_margin),
            lock_timeout_ms: ms(o.lock_timeout),
            refresh_timeout_ms: ms(o.refresh_timeout),
            revalidate_ms: ms(o.revalidate),
        }
    }
}

/// The options behind an optional pointer (NULL = defaults).
///
/// # Safety
/// `p` is NULL or points to an `oauth_lock_source_options` valid for reads.
unsafe fn options_of(p: *const oauth_lock_source_options) -> SourceOptions {
    // SAFETY: the function's contract: NULL (checked by `as_ref`) or valid for reads.
    match unsafe { p.as_ref() } {
        None => SourceOptions::default(),
        Some(o) => SourceOptions {
            refresh_margin: Duration::from_millis(o.refresh_margin_ms),
            lock_timeout: Duration::from_millis(o.lock_timeout_ms),
            refresh_timeout: Duration::from_millis(o.refresh_timeout_ms),
            revalidate: Duration::from_millis(o.revalidate_ms),
            ..SourceOptions::default()
        },
    }
}

/// Writes the default options (DESIGN.md's) to `*out_options`.
///
/// Codes: `OAUTH_LOCK_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn oauth_lock_source_options_default(
    out_options: *mut oauth_lock_source_options,
) -> oauth_lock_code {
    source_options_default(
        Call::plain("oauth_lock_source_options_default"),
        out_options,
    )
}

/// `oauth_lock_source_options_default`, reporting its error through `out_error` (may be NULL):
/// NULL on success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_source_options_default_e(
    out_options: *mut oauth_lock_source_options,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    source_options_default(
        Call::reporting("oauth_lock_source_options_default_e", out_error),
        out_options,
    )
}

fn source_options_default(
    call: Call,
    out_options: *mut oauth_lock_source_options,
) -> oauth_lock_code {
    guard(call, || {
        let out_options = out(out_options, "out_options")?;
        // SAFETY: `out` checked that `out_options` is not NULL, and the header requires it to
        // point to an `oauth_lock_source_options` valid for writes (a plain `repr(C)` struct of
        // integers, so nothing is dropped).
        unsafe { *out_options = SourceOptions::default().into() };
        Ok(())
    })
}

fn make_source(
    store: &oauth_lock_store,
    key: &str,
    refresher: Option<Arc<dyn Refresher>>,
    options: SourceOptions,
    out_source: *mut *mut oauth_lock_source,
) -> Outcome {
    let inner = store.inner.source_with_options(key, refresher, options)?;
    let source = oauth_lock_source {
        inner,
        last: ArcSwapOption::empty(),
    };
    // SAFETY: every caller passes its `out_source` argument after `out` checked that it is not
    // NULL, and the header requires it to be valid for writes of one pointer. The caller now
    // owns the box and frees it with `oauth_lock_source_free`.
    unsafe { *out_source = Box::into_raw(Box::new(source)) };
    Ok(())
}

/// A source for `key` refreshed with the record's own `refresh` config (saved with the
/// login), so any process can refresh the credential knowing only its key. `options` may be
/// NULL (defaults). On success writes a new source to `*out_source`; free it with
/// `oauth_lock_source_free`. The record need not exist yet.
///
/// Codes: `OAUTH_LOCK_INVALID_ARGUMENT` (bad key), `OAUTH_LOCK_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn oauth_lock_source_new(
    store: *const oauth_lock_store,
    key: *const c_char,
    options: *const oauth_lock_source_options,
    out_source: *mut *mut oauth_lock_source,
) -> oauth_lock_code {
    source_new(
        Call::plain("oauth_lock_source_new"),
        store,
        key,
        options,
        out_source,
    )
}

/// `oauth_lock_source_new`, reporting its error through `out_error` (may be NULL): NULL on
/// success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_source_new_e(
    store: *const oauth_lock_store,
    key: *const c_char,
    options: *const oauth_lock_source_options,
    out_source: *mut *mut oauth_lock_source,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    source_new(
        Call::reporting("oauth_lock_source_new_e", out_error),
        store,
        key,
        options,
        out_source,
    )
}

fn source_new(
    call: Call,
    store: *const oauth_lock_store,
    key: *const c_char,
    options: *const oauth_lock_source_options,
    out_source: *mut *mut oauth_lock_source,
) -> oauth_lock_code {
    guard(call, || {
        // SAFETY: the header requires `store` to be NULL or a store from `oauth_lock_store_new`
        // that is not freed before this call returns; `arg` checks NULL, and the store is only
        // read.
        let store = unsafe { arg(store, "store")? };
        // SAFETY: the header requires `key` to be NULL or a NUL-terminated string that lives
        // through the call; `text` checks NULL, and the borrow ends with the call.
        let key = unsafe { text(key, "key", None)? };
        let out_source = out(out_source, "out_source")?;
        // SAFETY: `options` may be NULL (the defaults); otherwise the header requires it to
        // point to an `oauth_lock_source_options` valid for reads during the call. `options_of`
        // checks NULL and copies the four numbers.
        let options = unsafe { options_of(options) };
        make_source(store, key, None, options, out_source)
    })
}

/// A source for `key` refreshed by the built-in OAuth2 refresher with `config_json`:
/// `{"token_url", "client_id", "client_secret"?, "scope"?, "body": "form"|"json",
/// "extra_params"?, "headers"?, "timeout"?}` (unknown fields are refused). `options` may be
/// NULL. On success writes a new source to `*out_source`; free it with
/// `oauth_lock_source_free`.
///
/// Codes: `OAUTH_LOCK_INVALID_ARGUMENT` (bad key, JSON that does not parse, a missing, bad or
/// unknown field), `OAUTH_LOCK_INSECURE` (a plain-http `token_url` other than loopback),
/// `OAUTH_LOCK_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn oauth_lock_source_new_oauth2(
    store: *const oauth_lock_store,
    key: *const c_char,
    config_json: *const c_char,
    options: *const oauth_lock_source_options,
    out_source: *mut *mut oauth_lock_source,
) -> oauth_lock_code {
    source_new_oauth2(
        Call::plain("oauth_lock_source_new_oauth2"),
        store,
        key,
        config_json,
        options,
        out_source,
    )
}

/// `oauth_lock_source_new_oauth2`, reporting its error through `out_error` (may be NULL): NULL
/// on success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_source_new_oauth2_e(
    store: *const oauth_lock_store,
    key: *const c_char,
    config_json: *const c_char,
    options: *const oauth_lock_source_options,
    out_source: *mut *mut oauth_lock_source,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    source_new_oauth2(
        Call::reporting("oauth_lock_source_new_oauth2_e", out_error),
        store,
        key,
        config_json,
        options,
        out_source,
    )
}

fn source_new_oauth2(
    call: Call,
    store: *const oauth_lock_store,
    key: *const c_char,
    config_json: *const c_char,
    options: *const oauth_lock_source_options,
    out_source: *mut *mut oauth_lock_source,
) -> oauth_lock_code {
    guard(call, || {
        // SAFETY: the header requires `store` to be NULL or a store from `oauth_lock_store_new`
        // that is not freed before this call returns; `arg` checks NULL, and the store is only
        // read.
        let store = unsafe { arg(store, "store")? };
        // SAFETY: the header requires `key` to be NULL or a NUL-terminated string that lives
        // through the call; `text` checks NULL, and the borrow ends with the call.
        let key = unsafe { text(key, "key", None)? };
        let out_source = out(out_source, "out_source")?;
        store.inner.path_of(key)?;
        // SAFETY: the header requires `config_json` to be NULL or a NUL-terminated string that
        // lives through the call; `json_arg` checks NULL and copies it into a JSON value.
        let config = unsafe { json_arg(config_json, "config_json", Some(key)) };
        let config = config.map_err(|f| match f {
            Failure::Core(e) => Failure::Core(in_context(&store.inner, key, e)),
            other => other,
        })?;
        let refresher =
            interop::oauth2_refresher(&config).map_err(|e| in_context(&store.inner, key, e))?;
        // SAFETY: `options` may be NULL (the defaults); otherwise the header requires it to
        // point to an `oauth_lock_source_options` valid for reads during the call. `options_of`
        // checks NULL and copies the four numbers.
        let options = unsafe { options_of(options) };
        make_source(store, key, Some(refresher), options, out_source)
    })
}

/// A source for `key` refreshed by a C callback (see `oauth_lock_refresh_callback`), for
/// providers that the built-in OAuth2 refresher cannot talk to. `userdata` is passed to
/// every call of `callback` and must be usable from any thread; `free_userdata` (may be
/// NULL) releases it once no call can happen any more. `options` may be NULL. On success
/// writes a new source to `*out_source`; free it with `oauth_lock_source_free`. On failure
/// the caller still owns `userdata`.
///
/// Codes: `OAUTH_LOCK_INVALID_ARGUMENT` (bad key), `OAUTH_LOCK_NULL_PARAMETER` (`store`,
/// `key`, `callback` or `out_source` is NULL).
#[no_mangle]
pub extern "C" fn oauth_lock_source_new_callback(
    store: *const oauth_lock_store,
    key: *const c_char,
    callback: oauth_lock_refresh_callback,
    userdata: *mut c_void,
    free_userdata: oauth_lock_userdata_free_callback,
    options: *const oauth_lock_source_options,
    out_source: *mut *mut oauth_lock_source,
) -> oauth_lock_code {
    source_new_callback(
        Call::plain("oauth_lock_source_new_callback"),
        store,
        key,
        callback,
        userdata,
        free_userdata,
        options,
        out_source,
    )
}

/// `oauth_lock_source_new_callback`, reporting its error through `out_error` (may be NULL):
/// NULL on success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_source_new_callback_e(
    store: *const oauth_lock_store,
    key: *const c_char,
    callback: oauth_lock_refresh_callback,
    userdata: *mut c_void,
    free_userdata: oauth_lock_userdata_free_callback,
    options: *const oauth_lock_source_options,
    out_source: *mut *mut oauth_lock_source,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    source_new_callback(
        Call::reporting("oauth_lock_source_new_callback_e", out_error),
        store,
        key,
        callback,
        userdata,
        free_userdata,
        options,
        out_source,
    )
}

// The C signature's seven arguments, and the call.
#[allow(clippy::too_many_arguments)]
fn source_new_callback(
    call: Call,
    store: *const oauth_lock_store,
    key: *const c_char,
    callback: oauth_lock_refresh_callback,
    userdata: *mut c_void,
    free_userdata: oauth_lock_userdata_free_callback,
    options: *const oauth_lock_source_options,
    out_source: *mut *mut oauth_lock_source,
) -> oauth_lock_code {
    guard(call, || {
        // SAFETY: the header requires `store` to be NULL or a store from `oauth_lock_store_new`
        // that is not freed before this call returns; `arg` checks NULL, and the store is only
        // read.
        let store = unsafe { arg(store, "store")? };
        // SAFETY: the header requires `key` to be NULL or a NUL-terminated string that lives
        // through the call; `text` checks NULL, and the borrow ends with the call.
        let key = unsafe { text(key, "key", None)? };
        let callback = callback.ok_or(Failure::Null("callback"))?;
        let out_source = out(out_source, "out_source")?;
        // Checked before the userdata is taken over, so a failure leaves it with the caller.
        store.inner.path_of(key)?;
        let refresher = callback_refresher(
            callback,
            Userdata {
                ptr: userdata,
                free: free_userdata,
            },
        );
        // SAFETY: `options` may be NULL (the defaults); otherwise the header requires it to
        // point to an `oauth_lock_source_options` valid for reads during the call. `options_of`
        // checks NULL and copies the four numbers.
        let options = unsafe { options_of(options) };
        make_source(store, key, Some(refresher), options, out_source)
    })
}

/// Frees a source. NULL is a no-op. Must not be called while another thread is using the
/// same source pointer. A refresh already running finishes and is committed.
#[no_mangle]
pub extern "C" fn oauth_lock_source_free(source: *mut oauth_lock_source) {
    if !source.is_null() {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: a non-NULL `source` came from `Box::into_raw` in `make_source`, and the
            // header lets the caller free it once and only when no other thread uses it, so
            // this takes back the only owner.
            drop(unsafe { Box::from_raw(source) })
        }));
    }
}

/// Runs a source call and writes the token on success; every error names the key and path.
fn token_call(
    call: Call,
    source: *const oauth_lock_source,
    out_token: *mut *mut oauth_lock_token,
    body: impl FnOnce(&TokenSource) -> Outcome<AccessToken>,
) -> oauth_lock_code {
    guard(call, || {
        // SAFETY: the header requires `source` to be NULL or a source from an
        // `oauth_lock_source_new*` call that is not freed before this call returns; `arg`
        // checks NULL, and the source is only read.
        let source = unsafe { arg(source, "source")? };
        let out_token = out(out_token, "out_token")?;
        let token = body(&source.inner).map_err(|f| match f {
            Failure::Core(e) => {
                Failure::Core(e.with_context(source.inner.key(), &source.inner.path()))
            }
            other => other,
        })?;
        let token = source.handle(token)?;
        // SAFETY: `out` checked that `out_token` is not NULL, and the header requires it to be
        // valid for writes of one pointer. The caller now owns this reference to the token
        // (`oauth_lock_token_free`).
        unsafe { *out_token = oauth_lock_token::into_raw(token) };
        Ok(())
    })
}

/// A valid access token for the source's key (DESIGN.md §4): the cached one when it is
/// fresh (tens of nanoseconds, no lock, no system call), else one refresh shared by every
/// thread and process that needs it at the same moment. Blocks for the lock and the network
/// when a refresh is needed. Safe from any number of threads at once, and in a forked child.
/// On success writes a new token to `*out_token`; free it with `oauth_lock_token_free`.
///
/// Codes: `OAUTH_LOCK_NEEDS_LOGIN`, `OAUTH_LOCK_INVALID_GRANT`, `OAUTH_LOCK_TERMINAL`,
/// `OAUTH_LOCK_TRANSIENT` (and the old token has expired), `OAUTH_LOCK_BUSY`,
/// `OAUTH_LOCK_CORRUPT`, `OAUTH_LOCK_UNSUPPORTED_FORMAT`, `OAUTH_LOCK_IO`,
/// `OAUTH_LOCK_INVALID_ARGUMENT` (e.g. a bad `refresh` config in the record, or a refresher
/// calling back into its own key), `OAUTH_LOCK_INSECURE`, `OAUTH_LOCK_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn oauth_lock_source_access_token(
    source: *const oauth_lock_source,
    out_token: *mut *mut oauth_lock_token,
) -> oauth_lock_code {
    source_access_token(
        Call::plain("oauth_lock_source_access_token"),
        source,
        out_token,
    )
}

/// `oauth_lock_source_access_token`, reporting its error through `out_error` (may be NULL):
/// NULL on success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_source_access_token_e(
    source: *const oauth_lock_source,
    out_token: *mut *mut oauth_lock_token,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    source_access_token(
        Call::reporting("oauth_lock_source_access_token_e", out_error),
        source,
        out_token,
    )
}

fn source_access_token(
    call: Call,
    source: *const oauth_lock_source,
    out_token: *mut *mut oauth_lock_token,
) -> oauth_lock_code {
    token_call(call, source, out_token, |s| Ok(s.access_token_blocking()?))
}

/// After an HTTP 401 with `rejected_token` (the value that was sent): a different valid
/// token. If another thread or process already refreshed, its token is returned; otherwise
/// one refresh, shared by everyone who rejected the same token. Blocking; safe from any
/// thread. On success writes a new token to `*out_token`; free it with
/// `oauth_lock_token_free`.
///
/// Codes: as `oauth_lock_source_access_token`; `OAUTH_LOCK_INVALID_ARGUMENT` also when
/// `rejected_token` is not UTF-8.
#[no_mangle]
pub extern "C" fn oauth_lock_source_reject(
    source: *const oauth_lock_source,
    rejected_token: *const c_char,
    out_token: *mut *mut oauth_lock_token,
) -> oauth_lock_code {
    source_reject(
        Call::plain("oauth_lock_source_reject"),
        source,
        rejected_token,
        out_token,
    )
}

/// `oauth_lock_source_reject`, reporting its error through `out_error` (may be NULL): NULL on
/// success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_source_reject_e(
    source: *const oauth_lock_source,
    rejected_token: *const c_char,
    out_token: *mut *mut oauth_lock_token,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    source_reject(
        Call::reporting("oauth_lock_source_reject_e", out_error),
        source,
        rejected_token,
        out_token,
    )
}

fn source_reject(
    call: Call,
    source: *const oauth_lock_source,
    rejected_token: *const c_char,
    out_token: *mut *mut oauth_lock_token,
) -> oauth_lock_code {
    token_call(call, source, out_token, |s| {
        // SAFETY: the header requires `rejected_token` to be NULL or a NUL-terminated string
        // that lives through the call; `text` checks NULL, and the borrow ends with the call.
        let rejected = unsafe { text(rejected_token, "rejected_token", Some(s.key()))? };
        Ok(s.reject_blocking(rejected)?)
    })
}

/// A token valid for at least `at_least_ms` more milliseconds (refreshing early if needed),
/// for work that must not be interrupted by an expiry. Blocking; safe from any thread. On
/// success writes a new token to `*out_token`; free it with `oauth_lock_token_free`.
///
/// Codes: as `oauth_lock_source_access_token`.
#[no_mangle]
pub extern "C" fn oauth_lock_source_access_token_valid_for(
    source: *const oauth_lock_source,
    at_least_ms: u64,
    out_token: *mut *mut oauth_lock_token,
) -> oauth_lock_code {
    source_access_token_valid_for(
        Call::plain("oauth_lock_source_access_token_valid_for"),
        source,
        at_least_ms,
        out_token,
    )
}

/// `oauth_lock_source_access_token_valid_for`, reporting its error through `out_error` (may be
/// NULL): NULL on success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_source_access_token_valid_for_e(
    source: *const oauth_lock_source,
    at_least_ms: u64,
    out_token: *mut *mut oauth_lock_token,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    source_access_token_valid_for(
        Call::reporting("oauth_lock_source_access_token_valid_for_e", out_error),
        source,
        at_least_ms,
        out_token,
    )
}

fn source_access_token_valid_for(
    call: Call,
    source: *const oauth_lock_source,
    at_least_ms: u64,
    out_token: *mut *mut oauth_lock_token,
) -> oauth_lock_code {
    token_call(call, source, out_token, |s| {
        Ok(s.access_token_valid_for_blocking(Duration::from_millis(at_least_ms))?)
    })
}

/// Forces one refresh with the source's refresher, proving the refresh token works (it
/// rotates it). Blocking. On success writes the new token to `*out_token`; free it with
/// `oauth_lock_token_free`.
///
/// Codes: as `oauth_lock_source_access_token`.
#[no_mangle]
pub extern "C" fn oauth_lock_source_verify(
    source: *const oauth_lock_source,
    out_token: *mut *mut oauth_lock_token,
) -> oauth_lock_code {
    source_verify(Call::plain("oauth_lock_source_verify"), source, out_token)
}

/// `oauth_lock_source_verify`, reporting its error through `out_error` (may be NULL): NULL on
/// success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_source_verify_e(
    source: *const oauth_lock_source,
    out_token: *mut *mut oauth_lock_token,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    source_verify(
        Call::reporting("oauth_lock_source_verify_e", out_error),
        source,
        out_token,
    )
}

fn source_verify(
    call: Call,
    source: *const oauth_lock_source,
    out_token: *mut *mut oauth_lock_token,
) -> oauth_lock_code {
    token_call(call, source, out_token, |s| Ok(s.verify_blocking()?))
}
