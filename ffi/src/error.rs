//! `oauth_lock_error`: the error of one failed call, handed to the caller by the `_e` variant
//! of the call, so that it never has to be read back from the thread's last error.

use crate::status::oauth_lock_code;
use std::ffi::{c_char, CStr, CString};
use std::sync::Arc;

/// The error of one failed call: its code, its message and its JSON form, the same as
/// `oauth_lock_last_error*` report after that call, but owned by the caller and readable
/// from any thread at any time.
///
/// Every fallible call `oauth_lock_X(args...)` (all but the `oauth_lock_last_error*` getters)
/// has a twin `oauth_lock_X_e(args..., oauth_lock_error **out_error)` that does exactly the
/// same and also reports through `out_error`: when `out_error` is not NULL, the `_e` call
/// writes NULL to `*out_error` on success and a new error on failure, so that after the call
/// `*out_error != NULL` exactly when the code is not `OAUTH_LOCK_OK` (including
/// `OAUTH_LOCK_NULL_PARAMETER` and `OAUTH_LOCK_PANIC`). A NULL `out_error` is allowed: the `_e`
/// call is then the plain call. The `_e` calls also set the thread's last error, as every
/// call does.
///
/// Use them wherever the call and the reading of its error may not happen on the same thread
/// with no other oauth-lock call in between: a JVM virtual thread (which may change carrier
/// threads between two native calls), a goroutine (which may change OS threads between two
/// cgo calls), a call made while the thread exits (from a thread-local destructor, when the
/// thread's last error can no longer be kept), or an error handed to another thread.
///
/// Free each error once with `oauth_lock_error_free`. Immutable: it may be read from any
/// number of threads at once; the strings its getters return live until it is freed.
///
/// ```c
/// oauth_lock_error *err = NULL;
/// oauth_lock_token *token = NULL;
/// if (oauth_lock_source_access_token_e(source, &token, &err) != OAUTH_LOCK_OK) {
///   fprintf(stderr, "%s: %s\n", oauth_lock_code_name(oauth_lock_error_code(err)),
///           oauth_lock_error_message(err));
/// }
/// oauth_lock_error_free(err); /* NULL after a success: a no-op */
/// ```
pub struct oauth_lock_error {
    code: oauth_lock_code,
    message: CString,
    /// `{"code", "code_number", "message", "key", "path", "oauth_error"}`.
    json: CString,
}

impl oauth_lock_error {
    /// An error with `code`, `message` and the JSON form `json` (a serialized object).
    pub(crate) fn new(code: oauth_lock_code, message: String, json: String) -> Arc<Self> {
        Arc::new(oauth_lock_error {
            code,
            message: c_string(message),
            json: c_string(json),
        })
    }

    /// The error built when building the real one failed (a bug): no allocation beyond the
    /// handle, no formatting, so it cannot fail in turn.
    pub(crate) fn fallback() -> Arc<Self> {
        Arc::new(oauth_lock_error {
            code: oauth_lock_code::OAUTH_LOCK_PANIC,
            message: FALLBACK_MESSAGE.to_owned(),
            json: FALLBACK_JSON.to_owned(),
        })
    }

    pub(crate) fn code(&self) -> oauth_lock_code {
        self.code
    }

    /// The message (UTF-8: it was built from a `String`).
    pub(crate) fn message(&self) -> &str {
        self.message.to_str().unwrap_or_default()
    }

    pub(crate) fn json(&self) -> &CStr {
        &self.json
    }

    /// The pointer handed to C; `oauth_lock_error_free` takes its reference back.
    pub(crate) fn into_raw(this: Arc<Self>) -> *mut oauth_lock_error {
        Arc::into_raw(this).cast_mut()
    }
}

const FALLBACK_MESSAGE: &CStr =
    c"internal error (a bug in oauth-lock, please report it): the error of a call could not be built";
const FALLBACK_JSON: &CStr = c"{\"code\":\"Panic\",\"code_number\":101,\"message\":\"internal error (a bug in oauth-lock, please report it): the error of a call could not be built\",\"key\":null,\"path\":null,\"oauth_error\":null}";

/// A C string of `s`; a NUL byte inside (from a provider's error description, say) would end
/// the string early in C, so it becomes U+FFFD.
fn c_string(s: String) -> CString {
    let s = if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s
    };
    CString::new(s).unwrap_or_default()
}

/// The error's code; `OAUTH_LOCK_OK` when `error` is NULL (the `*out_error` of a call that
/// succeeded).
#[no_mangle]
pub extern "C" fn oauth_lock_error_code(error: *const oauth_lock_error) -> oauth_lock_code {
    // SAFETY: the header requires `error` to be NULL or an error from an `_e` call that was
    // not freed yet; `as_ref` checks NULL.
    unsafe { error.as_ref() }.map_or(oauth_lock_code::OAUTH_LOCK_OK, |e| e.code)
}

/// The error's message, NUL-terminated UTF-8: what was wrong, naming the key and the
/// record's path where there is one, never a token. Owned by the error: valid until
/// `oauth_lock_error_free`. The empty string when `error` is NULL.
#[no_mangle]
pub extern "C" fn oauth_lock_error_message(error: *const oauth_lock_error) -> *const c_char {
    // SAFETY: as in `oauth_lock_error_code`.
    match unsafe { error.as_ref() } {
        Some(e) => e.message.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// The error as a JSON object `{"code": "NeedsLogin", ..., "code_number": 1, "message",
/// "key", "path", "oauth_error"}` (absent parts null), the same as `oauth_lock_last_error_json`
/// gives after the call. Owned by the error: valid until `oauth_lock_error_free`. The JSON
/// `null` when `error` is NULL.
#[no_mangle]
pub extern "C" fn oauth_lock_error_json(error: *const oauth_lock_error) -> *const c_char {
    // SAFETY: as in `oauth_lock_error_code`.
    match unsafe { error.as_ref() } {
        Some(e) => e.json.as_ptr(),
        None => c"null".as_ptr(),
    }
}

/// Frees an error returned by an `_e` call and the strings its getters returned. NULL is a
/// no-op.
#[no_mangle]
pub extern "C" fn oauth_lock_error_free(error: *mut oauth_lock_error) {
    if !error.is_null() {
        // SAFETY: a non-NULL `error` came from `oauth_lock_error::into_raw` (`Arc::into_raw`)
        // and the header lets the caller free it once, so this takes back that one reference.
        // Dropping it frees two `CString`s: it cannot panic.
        drop(unsafe { Arc::from_raw(error.cast_const()) });
    }
}
