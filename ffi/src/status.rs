//! The status code every call returns, the thread-local last error behind it, and the guard
//! (panic boundary, argument checks) that every `extern "C"` body runs inside.

use oauth_lock_core::{interop, Context, Error, ErrorCode};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The result of every fallible call. The numbers are stable and never reused: 0 is
/// success, 1 to 11 are the error codes of DESIGN.md §5 (the same numbers as the CLI's exit
/// codes minus 10), 100 and up are the C ABI's own.
///
/// After any code but `OAUTH_LOCK_OK`, `oauth_lock_last_error` (on the same thread) says what
/// was wrong, naming the key and the record's path where there is one.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum oauth_lock_code {
    /// Success; the out-parameters were written.
    OAUTH_LOCK_OK = 0,
    /// No record, no refresh token, or the record is marked dead. Retry after a login.
    OAUTH_LOCK_NEEDS_LOGIN = 1,
    /// The provider rejected the refresh token and no other writer rotated it. Log in again.
    OAUTH_LOCK_INVALID_GRANT = 2,
    /// Another terminal OAuth error (`invalid_client`, `invalid_scope`, ...; the OAuth
    /// `error` string is in `oauth_lock_last_error_json`). Retry after a fix.
    OAUTH_LOCK_TERMINAL = 3,
    /// Network error, timeout, HTTP 5xx or 429, `temporarily_unavailable`, a body (or a
    /// callback's answer) that is not an OAuth response. Retry later.
    OAUTH_LOCK_TRANSIENT = 4,
    /// The credential's lock was not obtained in time. Retry later.
    OAUTH_LOCK_BUSY = 5,
    /// A save was refused because it would drop a refresh token (see
    /// `OAUTH_LOCK_SAVE_ALLOW_DOWNGRADE`).
    OAUTH_LOCK_DOWNGRADE = 6,
    /// The record does not parse; the message gives its path. It is left untouched.
    OAUTH_LOCK_CORRUPT = 7,
    /// The record is of a newer format than this library understands; it is left untouched.
    OAUTH_LOCK_UNSUPPORTED_FORMAT = 8,
    /// A file-system error (path and OS error in the message).
    OAUTH_LOCK_IO = 9,
    /// A bad key, config, credential, option, flag, string that is not UTF-8, or JSON that
    /// does not parse; the message names which argument or field, and why.
    OAUTH_LOCK_INVALID_ARGUMENT = 10,
    /// A plain-`http` token URL other than loopback.
    OAUTH_LOCK_INSECURE = 11,
    /// A pointer argument that must not be NULL was NULL; nothing was done.
    OAUTH_LOCK_NULL_PARAMETER = 100,
    /// A bug in oauth-lock: a Rust panic was caught at the boundary. Nothing was written
    /// through the out-parameters; please report the message.
    OAUTH_LOCK_PANIC = 101,
}

use oauth_lock_code::*;

impl oauth_lock_code {
    pub(crate) fn from_core(code: ErrorCode) -> Self {
        match code {
            ErrorCode::NeedsLogin => OAUTH_LOCK_NEEDS_LOGIN,
            ErrorCode::InvalidGrant => OAUTH_LOCK_INVALID_GRANT,
            ErrorCode::Terminal => OAUTH_LOCK_TERMINAL,
            ErrorCode::Transient => OAUTH_LOCK_TRANSIENT,
            ErrorCode::Busy => OAUTH_LOCK_BUSY,
            ErrorCode::Downgrade => OAUTH_LOCK_DOWNGRADE,
            ErrorCode::Corrupt => OAUTH_LOCK_CORRUPT,
            ErrorCode::UnsupportedFormat => OAUTH_LOCK_UNSUPPORTED_FORMAT,
            ErrorCode::Io => OAUTH_LOCK_IO,
            ErrorCode::InvalidArgument => OAUTH_LOCK_INVALID_ARGUMENT,
            ErrorCode::Insecure => OAUTH_LOCK_INSECURE,
        }
    }

    /// The name for `oauth_lock_code_name`, NUL-terminated: §5's names, plus the ABI's own.
    pub(crate) fn name_of(number: c_int) -> &'static CStr {
        match number {
            0 => c"Ok",
            100 => c"NullParameter",
            101 => c"Panic",
            n => ErrorCode::ALL
                .iter()
                .find(|c| c_int::from(c.number()) == n)
                .map(|c| match c {
                    ErrorCode::NeedsLogin => c"NeedsLogin",
                    ErrorCode::InvalidGrant => c"InvalidGrant",
                    ErrorCode::Terminal => c"Terminal",
                    ErrorCode::Transient => c"Transient",
                    ErrorCode::Busy => c"Busy",
                    ErrorCode::Downgrade => c"Downgrade",
                    ErrorCode::Corrupt => c"Corrupt",
                    ErrorCode::UnsupportedFormat => c"UnsupportedFormat",
                    ErrorCode::Io => c"Io",
                    ErrorCode::InvalidArgument => c"InvalidArgument",
                    ErrorCode::Insecure => c"Insecure",
                })
                .unwrap_or(c"Unknown"),
        }
    }
}

/// Why a call failed, before it becomes the thread's last error.
pub(crate) enum Failure {
    Core(Error),
    /// The named pointer argument was NULL.
    Null(&'static str),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Core(e)
    }
}

pub(crate) type Outcome<T = ()> = Result<T, Failure>;

/// An `InvalidArgument` about an argument of the C call, naming the key where there is one.
pub(crate) fn invalid(key: Option<&str>, reason: String) -> Failure {
    Failure::Core(Error::InvalidArgument {
        ctx: Context {
            key: key.map(str::to_owned),
            path: None,
        },
        reason,
    })
}

/// The last failure on this thread, as `oauth_lock_last_error*` report it.
pub(crate) struct LastError {
    pub code: oauth_lock_code,
    pub message: String,
    pub json: Value,
}

thread_local! {
    static LAST: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

pub(crate) fn with_last<R>(f: impl FnOnce(Option<&LastError>) -> R) -> R {
    LAST.with(|l| f(l.borrow().as_ref()))
}

fn set_last(e: LastError) -> oauth_lock_code {
    let code = e.code;
    LAST.with(|l| *l.borrow_mut() = Some(e));
    code
}

fn abi_error(code: oauth_lock_code, message: String) -> LastError {
    let name = oauth_lock_code::name_of(code as c_int)
        .to_str()
        .unwrap_or("Unknown");
    LastError {
        code,
        json: json!({"code": name, "code_number": code as c_int, "message": message,
                     "key": null, "path": null, "oauth_error": null}),
        message,
    }
}

/// Runs the body of the C function `name`: clears the thread's last error, catches any
/// panic, and turns a failure into its code and the new last error.
pub(crate) fn guard(name: &'static str, body: impl FnOnce() -> Outcome) -> oauth_lock_code {
    LAST.with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.take();
        }
    });
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => OAUTH_LOCK_OK,
        Ok(Err(Failure::Core(e))) => set_last(LastError {
            code: oauth_lock_code::from_core(e.code()),
            message: e.to_string(),
            json: interop::error_json(&e),
        }),
        Ok(Err(Failure::Null(param))) => set_last(abi_error(
            OAUTH_LOCK_NULL_PARAMETER,
            format!("{name}: the argument `{param}` is NULL"),
        )),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            set_last(abi_error(
                OAUTH_LOCK_PANIC,
                format!("{name}: internal error (a bug in oauth-lock, please report it): {what}"),
            ))
        }
    }
}

/// The pointee of a pointer argument that must not be NULL.
///
/// # Safety
/// `p` is NULL or valid for reads for the returned lifetime (the header's contract).
pub(crate) unsafe fn arg<'a, T>(p: *const T, name: &'static str) -> Outcome<&'a T> {
    p.as_ref().ok_or(Failure::Null(name))
}

/// An out-parameter that must not be NULL; written only once the call has succeeded.
pub(crate) fn out<T>(p: *mut T, name: &'static str) -> Outcome<*mut T> {
    if p.is_null() {
        Err(Failure::Null(name))
    } else {
        Ok(p)
    }
}

/// A C string argument that must not be NULL and must be UTF-8.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the returned lifetime.
pub(crate) unsafe fn text<'a>(
    p: *const c_char,
    name: &'static str,
    key: Option<&str>,
) -> Outcome<&'a str> {
    if p.is_null() {
        return Err(Failure::Null(name));
    }
    CStr::from_ptr(p)
        .to_str()
        .map_err(|e| invalid(key, format!("`{name}` is not valid UTF-8: {e}")))
}

/// A C string argument that may be NULL.
///
/// # Safety
/// As [`text`].
pub(crate) unsafe fn optional_text<'a>(
    p: *const c_char,
    name: &'static str,
    key: Option<&str>,
) -> Outcome<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        text(p, name, key).map(Some)
    }
}

/// A JSON argument: `InvalidArgument` naming the argument when it does not parse.
///
/// # Safety
/// As [`text`].
pub(crate) unsafe fn json_arg(
    p: *const c_char,
    name: &'static str,
    key: Option<&str>,
) -> Outcome<Value> {
    let s = text(p, name, key)?;
    serde_json::from_str(s).map_err(|e| invalid(key, format!("`{name}` is not valid JSON: {e}")))
}

/// A string handed to the caller, to be freed with `oauth_lock_string_free`.
pub(crate) fn owned_string(s: String) -> Outcome<*mut c_char> {
    CString::new(s).map(CString::into_raw).map_err(|_| {
        invalid(
            None,
            "the result holds a NUL byte and cannot cross the C ABI".into(),
        )
    })
}
