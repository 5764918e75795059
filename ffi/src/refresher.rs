//! C callback refreshers: a function pointer with userdata, answering through an
//! `oauth_lock_answer` that the library owns, read by the core's `interop` functions.

use crate::error::oauth_lock_error;
use crate::status::{arg, guard, invalid, oauth_lock_code, optional_text, text, Call, Failure};
use oauth_lock_core::{interop, Error, Refresher};
use serde_json::Value;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::Arc;

/// Where a refresh callback writes its answer. Owned by the library and valid only during
/// the callback call it was passed to; do not keep the pointer.
pub struct oauth_lock_answer {
    /// The token fields, or why `oauth_lock_answer_set_json` could not read them.
    json: Option<Result<Value, String>>,
    oauth_error: Option<String>,
    description: Option<String>,
}

/// A refresh callback.
///
/// Called with `credential_json`, the credential as read under the lock: a JSON object
/// `{"key", "generation", "access_token", "token_type", "expires_at_ms", "refresh_token",
/// "scope", "id_token", "extra"}` (absent fields are null). `credential_json` is owned by the
/// library and valid only during the call. It holds the refresh token: never log it.
///
/// Spend the refresh token at the provider, then either
/// - call `oauth_lock_answer_set_json(answer, json)` with the new token fields in
///   token-response shape (`access_token` required; `expires_in` seconds or `expires_at_ms`,
///   `refresh_token` (keep the old one when omitted), `token_type`, `scope`, `id_token`,
///   others kept as `extra`) and return `OAUTH_LOCK_OK`; or
/// - return `OAUTH_LOCK_INVALID_GRANT` (the provider rejected the refresh token),
///   `OAUTH_LOCK_TERMINAL` (another terminal OAuth error: name it with
///   `oauth_lock_answer_set_error`) or `OAUTH_LOCK_TRANSIENT` (network down, provider
///   busy: the old access token is still used while it is valid), optionally with
///   `oauth_lock_answer_set_error(answer, oauth_error, description)`.
///
/// A JSON answer `{"error": "invalid_grant" | "transient" | <OAuth error>,
/// "error_description": ...}` with `OAUTH_LOCK_OK` is classified the same way. Any other code,
/// `OAUTH_LOCK_OK` without an answer, or an answer that is not token fields is treated as
/// `OAUTH_LOCK_TRANSIENT` (the record is left as it was) and named in the error message.
///
/// It runs under the credential's lock, on a thread of the library's (never the caller's),
/// and may run on several threads at once for different keys; it must not call
/// `oauth_lock_*` functions on the same key (that would wait on itself until the refresh
/// timeout). A callback still running at the source's `refresh_timeout_ms` gives its callers
/// `OAUTH_LOCK_TRANSIENT`, but the refresh keeps the credential's lock until the callback
/// returns (at most 4 s longer) and commits a late answer, so no other process sends the same
/// refresh token meanwhile; a callback still running after that is abandoned (it keeps its
/// thread until it returns, and its answer is ignored).
pub type oauth_lock_refresh_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        credential_json: *const c_char,
        answer: *mut oauth_lock_answer,
    ) -> c_int,
>;

/// Releases a callback's userdata; called exactly once, on some library thread, when no
/// callback call can happen any more (after the last source using it is freed and any
/// refresh in progress has returned). Not called when the call registering it fails.
pub type oauth_lock_userdata_free_callback = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// A C function pointer with its userdata; `Send`/`Sync` because the header requires the
/// userdata to be usable from any thread.
pub(crate) struct Userdata {
    pub ptr: *mut c_void,
    pub free: oauth_lock_userdata_free_callback,
}

// SAFETY: the header requires `userdata` to be usable from any thread, and the callbacks
// (function pointers, no state of their own) to be callable from any thread; `Userdata` only
// hands the pointer to them and never dereferences it.
unsafe impl Send for Userdata {}
// SAFETY: as for `Send`: the header also lets the library call the callbacks with the same
// `userdata` on several threads at once.
unsafe impl Sync for Userdata {}

impl Userdata {
    /// Through a method, so that closures capture the whole `Userdata` (which is `Send`).
    pub fn ptr(&self) -> *mut c_void {
        self.ptr
    }
}

impl Drop for Userdata {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            // SAFETY: `free` is the caller's `oauth_lock_userdata_free_callback` for this very
            // `userdata`; `drop` runs once, when the last owner (the refresher, or the listener
            // and its running calls) is gone, so no callback can use `userdata` any more, as
            // the header promises; it may run on any thread, which the header allows.
            unsafe { free(self.ptr) };
        }
    }
}

/// The core refresher calling `callback`.
pub(crate) fn callback_refresher(
    callback: unsafe extern "C" fn(*mut c_void, *const c_char, *mut oauth_lock_answer) -> c_int,
    userdata: Userdata,
) -> Arc<dyn Refresher> {
    interop::blocking_json_refresher(move |credential: Value| {
        let credential = CString::new(credential.to_string())
            .map_err(|_| Error::transient("the credential holds a NUL byte"))?;
        let mut answer = oauth_lock_answer {
            json: None,
            oauth_error: None,
            description: None,
        };
        // SAFETY: `callback` is the caller's non-NULL `oauth_lock_refresh_callback`, which the
        // header lets the library call from any library thread with this `userdata` (alive
        // while this refresher exists). `credential` is a NUL-terminated string and `answer` an
        // exclusive borrow of a local: both outlive the call, and the header says neither may
        // be kept after it.
        let code = unsafe { callback(userdata.ptr(), credential.as_ptr(), &mut answer) };
        if code != oauth_lock_code::OAUTH_LOCK_OK as c_int {
            return Err(interop::refresh_failure_code(
                i64::from(code),
                answer.oauth_error.as_deref(),
                answer.description,
            ));
        }
        match answer.json {
            Some(Ok(v)) => Ok(v),
            Some(Err(why)) => Err(Error::transient(format!(
                "the refresh callback's answer is unreadable: {why}"
            ))),
            None => Err(Error::transient(
                "the refresh callback returned OAUTH_LOCK_OK without calling \
                 oauth_lock_answer_set_json",
            )),
        }
    })
}

/// Gives the refresh callback's answer: `json` is the new token fields (or an
/// `{"error": ..., "error_description": ...}` object), copied; the caller keeps ownership of
/// `json`. Call it from inside the callback only, then return `OAUTH_LOCK_OK`. A later call
/// replaces the earlier answer.
///
/// Codes: `OAUTH_LOCK_INVALID_ARGUMENT` (`json` is not UTF-8 or does not parse: the refresh
/// then fails as `OAUTH_LOCK_TRANSIENT` naming why), `OAUTH_LOCK_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn oauth_lock_answer_set_json(
    answer: *mut oauth_lock_answer,
    json: *const c_char,
) -> oauth_lock_code {
    answer_set_json(Call::plain("oauth_lock_answer_set_json"), answer, json)
}

/// `oauth_lock_answer_set_json`, reporting its error through `out_error` (may be NULL): NULL on
/// success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_answer_set_json_e(
    answer: *mut oauth_lock_answer,
    json: *const c_char,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    answer_set_json(
        Call::reporting("oauth_lock_answer_set_json_e", out_error),
        answer,
        json,
    )
}

fn answer_set_json(
    call: Call,
    answer: *mut oauth_lock_answer,
    json: *const c_char,
) -> oauth_lock_code {
    guard(call, || {
        // SAFETY: the header requires `answer` to be NULL or the `oauth_lock_answer` passed to
        // the refresh callback that is running (a local of `callback_refresher`, alive and
        // borrowed by nothing else until the callback returns, and called from inside it only);
        // `as_mut` checks NULL.
        let answer = unsafe { answer.as_mut() }.ok_or(Failure::Null("answer"))?;
        // SAFETY: the header requires `json` to be NULL or a NUL-terminated string that lives
        // through the call; `text` checks NULL, and it is parsed (copied) before the call
        // returns.
        let parsed = unsafe { text(json, "json", None) }.and_then(|s| {
            serde_json::from_str::<Value>(s)
                .map_err(|e| invalid(None, format!("`json` is not valid JSON: {e}")))
        });
        match parsed {
            Ok(v) => {
                answer.json = Some(Ok(v));
                Ok(())
            }
            Err(Failure::Core(e)) => {
                answer.json = Some(Err(e.to_string()));
                Err(Failure::Core(e))
            }
            Err(other) => Err(other),
        }
    })
}

/// Names why the refresh failed, for a callback returning `OAUTH_LOCK_INVALID_GRANT`,
/// `OAUTH_LOCK_TERMINAL` or `OAUTH_LOCK_TRANSIENT`: `oauth_error` is the provider's OAuth
/// `error` string (e.g. "invalid_client"; may be NULL), `description` a human-readable reason
/// (may be NULL; never put a token in it). Both are copied. Call it from inside the callback
/// only.
///
/// Codes: `OAUTH_LOCK_INVALID_ARGUMENT` (a string that is not UTF-8),
/// `OAUTH_LOCK_NULL_PARAMETER` (`answer` is NULL).
#[no_mangle]
pub extern "C" fn oauth_lock_answer_set_error(
    answer: *mut oauth_lock_answer,
    oauth_error: *const c_char,
    description: *const c_char,
) -> oauth_lock_code {
    answer_set_error(
        Call::plain("oauth_lock_answer_set_error"),
        answer,
        oauth_error,
        description,
    )
}

/// `oauth_lock_answer_set_error`, reporting its error through `out_error` (may be NULL): NULL
/// on success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_answer_set_error_e(
    answer: *mut oauth_lock_answer,
    oauth_error: *const c_char,
    description: *const c_char,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    answer_set_error(
        Call::reporting("oauth_lock_answer_set_error_e", out_error),
        answer,
        oauth_error,
        description,
    )
}

fn answer_set_error(
    call: Call,
    answer: *mut oauth_lock_answer,
    oauth_error: *const c_char,
    description: *const c_char,
) -> oauth_lock_code {
    guard(call, || {
        // SAFETY: as in `oauth_lock_answer_set_json`, `answer` is NULL or the running
        // callback's answer; `arg` checks NULL (the reference is dropped at once).
        unsafe { arg(answer.cast_const(), "answer")? };
        // SAFETY: `oauth_error` may be NULL; otherwise the header requires a NUL-terminated
        // string that lives through the call. `optional_text` checks NULL, and it is copied
        // below.
        let oauth_error = unsafe { optional_text(oauth_error, "oauth_error", None)? };
        // SAFETY: as for `oauth_error`.
        let description = unsafe { optional_text(description, "description", None)? };
        // SAFETY: `answer` is not NULL (checked by `arg` above) and is the running callback's
        // answer, which nothing else borrows during this call (see
        // `oauth_lock_answer_set_json`).
        let answer = unsafe { &mut *answer };
        answer.oauth_error = oauth_error.map(str::to_owned);
        answer.description = description.map(str::to_owned);
        Ok(())
    })
}
