//! Event listeners: the decision events of DESIGN.md §8 handed to a C callback as JSON.

use crate::error::oauth_lock_error;
use crate::refresher::{oauth_lock_userdata_free_callback, Userdata};
use crate::status::{guard, invalid, oauth_lock_code, out, Call, Failure};
use oauth_lock_core::interop;
use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

/// An event listener: called with `event_json`, one decision event as a JSON object
/// `{"event": "refreshed"|"adopted"|"lock_waited"|"refresh_deferred"|"invalid_grant"|
/// "race_recovered"|"needs_login"|"downgrade_refused"|"login_without_refresh_token",
/// "level": "info"|"warn", "key", "path", "message", "fields": {...}}` (tokens appear only as
/// fingerprints). `event_json` is owned by the library and valid only during the call.
///
/// Called on whatever library or caller thread made the decision, possibly on several
/// threads at once, sometimes while a credential's lock is held: return quickly, and do not
/// call `oauth_lock_*` functions other than `oauth_lock_add_event_listener` /
/// `oauth_lock_remove_event_listener` from it.
pub type oauth_lock_event_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event_json: *const c_char)>;

/// Calls `callback` with every event of this process from now on. `userdata` is passed to
/// every call and must be usable from any thread; `free_userdata` (may be NULL) releases it
/// once the listener is removed and no call is running any more. On success writes the
/// listener's id (for `oauth_lock_remove_event_listener`) to `*out_id`. On failure the caller
/// still owns `userdata`.
///
/// Codes: `OAUTH_LOCK_NULL_PARAMETER` (`callback` or `out_id` is NULL).
#[no_mangle]
pub extern "C" fn oauth_lock_add_event_listener(
    callback: oauth_lock_event_callback,
    userdata: *mut c_void,
    free_userdata: oauth_lock_userdata_free_callback,
    out_id: *mut u64,
) -> oauth_lock_code {
    add_event_listener(
        Call::plain("oauth_lock_add_event_listener"),
        callback,
        userdata,
        free_userdata,
        out_id,
    )
}

/// `oauth_lock_add_event_listener`, reporting its error through `out_error` (may be NULL): NULL
/// on success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_add_event_listener_e(
    callback: oauth_lock_event_callback,
    userdata: *mut c_void,
    free_userdata: oauth_lock_userdata_free_callback,
    out_id: *mut u64,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    add_event_listener(
        Call::reporting("oauth_lock_add_event_listener_e", out_error),
        callback,
        userdata,
        free_userdata,
        out_id,
    )
}

fn add_event_listener(
    call: Call,
    callback: oauth_lock_event_callback,
    userdata: *mut c_void,
    free_userdata: oauth_lock_userdata_free_callback,
    out_id: *mut u64,
) -> oauth_lock_code {
    guard(call, || {
        let callback = callback.ok_or(Failure::Null("callback"))?;
        let out_id = out(out_id, "out_id")?;
        let userdata = Arc::new(Userdata {
            ptr: userdata,
            free: free_userdata,
        });
        let id = interop::add_listener(move |event| {
            let Ok(json) = serde_json::to_string(event) else {
                return;
            };
            let Ok(json) = CString::new(json) else {
                return;
            };
            // SAFETY: `callback` is the caller's non-NULL `oauth_lock_event_callback`, which
            // the header lets the library call from any thread, several at once, with this
            // `userdata` (kept alive by the `Arc` until the listener is gone). `json` is a NUL-
            // terminated string that lives until the call returns, and the header says it is
            // valid only during the call.
            unsafe { callback(userdata.ptr(), json.as_ptr()) };
        });
        // SAFETY: `out` checked that `out_id` is not NULL, and the header requires it to be
        // valid for writes of one `uint64_t`.
        unsafe { *out_id = id };
        Ok(())
    })
}

/// Stops calling the listener `id`. A call already running on another thread may still
/// finish after this returns; its `free_userdata` runs after that.
///
/// Codes: `OAUTH_LOCK_INVALID_ARGUMENT` (no listener has this id).
#[no_mangle]
pub extern "C" fn oauth_lock_remove_event_listener(id: u64) -> oauth_lock_code {
    remove_event_listener(Call::plain("oauth_lock_remove_event_listener"), id)
}

/// `oauth_lock_remove_event_listener`, reporting its error through `out_error` (may be NULL):
/// NULL on success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_remove_event_listener_e(
    id: u64,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    remove_event_listener(
        Call::reporting("oauth_lock_remove_event_listener_e", out_error),
        id,
    )
}

fn remove_event_listener(call: Call, id: u64) -> oauth_lock_code {
    guard(call, || {
        if interop::remove_listener(id) {
            Ok(())
        } else {
            Err(invalid(None, format!("no event listener has the id {id}")))
        }
    })
}
