//! The status code every call returns, the thread-local last error behind it, and the guard
//! (panic boundary, argument checks) that every `extern "C"` body runs inside.

use crate::error::oauth_lock_error;
use oauth_lock_core::{interop, Context, Error, ErrorCode};
use serde_json::{json, Value};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// The result of every fallible call. The numbers are stable and never reused: 0 is
/// success, 1 to 11 are the error codes of DESIGN.md §5 (the same numbers as the CLI's exit
/// codes minus 10), 100 and up are the C ABI's own.
///
/// After any code but `OAUTH_LOCK_OK`, `oauth_lock_last_error` (on the same thread) says what
/// was wrong, naming the key and the record's path where there is one; so does the
/// `oauth_lock_error` of the call's `_e` variant, on any thread.
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
    /// `error` string is in `oauth_lock_last_error_json` and `oauth_lock_error_json`). Retry
    /// after a fix.
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

/// A C function being run by [`guard`]: its name (for the messages) and, for an `_e`
/// variant, where to report its error.
#[derive(Clone, Copy)]
pub(crate) struct Call {
    name: &'static str,
    /// NULL, or the `_e` variant's `out_error` (the header: valid for writes).
    out_error: *mut *mut oauth_lock_error,
}

impl Call {
    /// A plain call: its error goes to the thread's last error only.
    pub(crate) fn plain(name: &'static str) -> Self {
        Call {
            name,
            out_error: std::ptr::null_mut(),
        }
    }

    /// An `_e` call: its error also goes to `*out_error` (NULL on success) when `out_error`
    /// is not NULL.
    pub(crate) fn reporting(name: &'static str, out_error: *mut *mut oauth_lock_error) -> Self {
        Call { name, out_error }
    }

    /// Writes the call's outcome to `*out_error` (never panics).
    fn report(self, error: Option<&Arc<oauth_lock_error>>) {
        if self.out_error.is_null() {
            return;
        }
        let raw = error.map_or(std::ptr::null_mut(), |e| {
            oauth_lock_error::into_raw(e.clone())
        });
        // SAFETY: `out_error` is not NULL, and the header requires a non-NULL `out_error` to
        // be valid for writes of one pointer; the caller now owns the reference in `raw`.
        unsafe { *self.out_error = raw };
    }
}

thread_local! {
    /// The last failed call on this thread (`None` after a success), as
    /// `oauth_lock_last_error*` report it. It has a destructor, so while the thread exits
    /// (after it ran) it can no longer be read or written: every access is a `try_with`.
    static LAST: RefCell<Option<Arc<oauth_lock_error>>> = const { RefCell::new(None) };
    /// `LAST`'s code, in a thread-local without a destructor: it is still there while the
    /// thread exits, so `oauth_lock_last_error_code` stays exact even then.
    static LAST_CODE: Cell<oauth_lock_code> = const { Cell::new(OAUTH_LOCK_OK) };
}

/// Sets the thread's last error (`None`: the last call succeeded). Never panics: while the
/// thread exits, whatever part of the thread-local state is gone is left alone.
fn set_last(error: Option<&Arc<oauth_lock_error>>) {
    let code = error.map_or(OAUTH_LOCK_OK, |e| e.code());
    let _ = LAST_CODE.try_with(|c| c.set(code));
    let _ = LAST.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            *l = error.cloned();
        }
    });
}

/// The thread's last error, `None` if the last call succeeded. Never panics. While the
/// thread exits, once its last error is gone, an error with the kept code and a message that
/// says the details were not kept.
pub(crate) fn last_error() -> Option<Arc<oauth_lock_error>> {
    let kept = LAST.try_with(|l| l.try_borrow().map(|l| l.clone()));
    match kept {
        Ok(Ok(last)) => last,
        _ => match LAST_CODE.try_with(Cell::get).unwrap_or(OAUTH_LOCK_OK) {
            OAUTH_LOCK_OK => None,
            code => Some(abi_error(
                code,
                "the details of this error were not kept: the call was made while its thread \
                 was exiting (the `_e` variant of the call reports them in full)"
                    .into(),
            )),
        },
    }
}

/// An error of the C ABI's own (not the core's), in the same JSON shape.
fn abi_error(code: oauth_lock_code, message: String) -> Arc<oauth_lock_error> {
    let name = oauth_lock_code::name_of(code as c_int)
        .to_str()
        .unwrap_or("Unknown");
    let json = json!({"code": name, "code_number": code as c_int, "message": message,
                      "key": null, "path": null, "oauth_error": null});
    oauth_lock_error::new(code, message, json.to_string())
}

/// The error of a call `name` that failed with `failure`.
fn error_of(name: &'static str, failure: Failure) -> Arc<oauth_lock_error> {
    match failure {
        Failure::Core(e) => oauth_lock_error::new(
            oauth_lock_code::from_core(e.code()),
            e.to_string(),
            interop::error_json(&e).to_string(),
        ),
        Failure::Null(param) => abi_error(
            OAUTH_LOCK_NULL_PARAMETER,
            format!("{name}: the argument `{param}` is NULL"),
        ),
    }
}

/// The error of a call `name` whose body panicked with `payload`.
fn error_of_panic(name: &'static str, payload: Box<dyn Any + Send>) -> Arc<oauth_lock_error> {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    abi_error(
        OAUTH_LOCK_PANIC,
        format!("{name}: internal error (a bug in oauth-lock, please report it): {what}"),
    )
}

/// Runs the body of the C function `call`: clears the thread's last error, catches any
/// panic, turns a failure into its code and the new last error, and reports the outcome
/// through the `_e` variant's `out_error`. Every access to the thread-local state is a
/// `try_with` inside a panic guard, so it works while the thread exits: a call from a
/// thread-local destructor still returns its code, and its `_e` error in full.
pub(crate) fn guard(call: Call, body: impl FnOnce() -> Outcome) -> oauth_lock_code {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        set_last(None);
        body()
    }));
    let built = match outcome {
        Ok(Ok(())) => {
            call.report(None);
            return OAUTH_LOCK_OK;
        }
        Ok(Err(failure)) => catch_unwind(AssertUnwindSafe(|| error_of(call.name, failure))),
        Err(payload) => catch_unwind(AssertUnwindSafe(|| error_of_panic(call.name, payload))),
    };
    let error = built.unwrap_or_else(|payload| {
        // Building the error panicked (a bug). Dropping this payload could panic in turn,
        // outside any guard: leak it instead.
        std::mem::forget(payload);
        oauth_lock_error::fallback()
    });
    // `set_last` cannot panic, but no panic may cross the boundary anyway.
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| set_last(Some(&error)))) {
        std::mem::forget(payload);
    }
    call.report(Some(&error));
    error.code()
}

/// The pointee of a pointer argument that must not be NULL.
///
/// # Safety
/// `p` is NULL or valid for reads for the returned lifetime (the header's contract).
pub(crate) unsafe fn arg<'a, T>(p: *const T, name: &'static str) -> Outcome<&'a T> {
    // SAFETY: the function's contract: NULL (checked by `as_ref`) or valid for reads for 'a.
    unsafe { p.as_ref() }.ok_or(Failure::Null(name))
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
    // SAFETY: `p` is not NULL (checked above), so by the function's contract it is a
    // NUL-terminated string valid for 'a.
    unsafe { CStr::from_ptr(p) }
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
        // SAFETY: this function's contract is `text`'s.
        unsafe { text(p, name, key) }.map(Some)
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
    // SAFETY: this function's contract is `text`'s.
    let s = unsafe { text(p, name, key) }?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        oauth_lock_error_code, oauth_lock_error_free, oauth_lock_error_json,
        oauth_lock_error_message, oauth_lock_last_error, oauth_lock_last_error_code,
        oauth_lock_last_error_json, oauth_lock_set_client_lang_e, oauth_lock_source_options,
        oauth_lock_source_options_default, oauth_lock_store_dir, oauth_lock_string_free,
    };
    use std::process::Command;
    use std::sync::Mutex;

    /// What one call of the library from a thread-local destructor saw.
    #[derive(Debug)]
    struct Seen {
        /// Whether the thread's last error (`LAST`) was still there.
        last_alive: bool,
        /// A plain call that fails (`oauth_lock_store_dir(NULL, ...)`).
        failed: oauth_lock_code,
        last_code: oauth_lock_code,
        message: (oauth_lock_code, String),
        json: (oauth_lock_code, String),
        /// An `_e` call that fails in the core (`lang` not UTF-8): its code, and its error's
        /// code, message and JSON.
        failed_e: oauth_lock_code,
        error: (oauth_lock_code, String, String),
        /// A call that succeeds, and the last error code after it.
        succeeded: oauth_lock_code,
        last_code_after_success: oauth_lock_code,
    }

    static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

    fn string(p: *const c_char) -> String {
        // SAFETY: the library's getters return NUL-terminated strings that live at least as
        // long as this copy is made (static, or owned by a live error).
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    /// Calls the library the way a C or JVM thread-exit hook would. Must not panic: a panic
    /// in a thread-local destructor aborts the process.
    fn probe() -> Seen {
        let last_alive = LAST.try_with(|_| ()).is_ok();
        let mut dir = std::ptr::null_mut();
        let failed = oauth_lock_store_dir(std::ptr::null(), &mut dir);
        let last_code = oauth_lock_last_error_code();
        let mut buf = [0 as c_char; 512];
        let mut len = 0;
        let rc = oauth_lock_last_error(buf.as_mut_ptr(), buf.len(), &mut len);
        let message = (rc, string(buf.as_ptr()));
        let mut json = std::ptr::null_mut();
        let rc = oauth_lock_last_error_json(&mut json);
        let json_text = if json.is_null() {
            String::new()
        } else {
            string(json)
        };
        oauth_lock_string_free(json);
        let mut error = std::ptr::null_mut();
        let failed_e = oauth_lock_set_client_lang_e(c"\xff".as_ptr(), &mut error);
        let error_seen = (
            oauth_lock_error_code(error),
            string(oauth_lock_error_message(error)),
            string(oauth_lock_error_json(error)),
        );
        oauth_lock_error_free(error);
        let mut options = std::mem::MaybeUninit::<oauth_lock_source_options>::uninit();
        let succeeded = oauth_lock_source_options_default(options.as_mut_ptr());
        Seen {
            last_alive,
            failed,
            last_code,
            message,
            json: (rc, json_text),
            failed_e,
            error: error_seen,
            succeeded,
            last_code_after_success: oauth_lock_last_error_code(),
        }
    }

    struct ProbeOnDrop;

    impl Drop for ProbeOnDrop {
        fn drop(&mut self) {
            let seen = probe();
            if let Ok(mut all) = SEEN.lock() {
                all.push(seen);
            }
        }
    }

    thread_local! {
        static BEFORE: ProbeOnDrop = const { ProbeOnDrop };
        static AFTER: ProbeOnDrop = const { ProbeOnDrop };
    }

    /// The child of `calls_from_thread_local_destructors_return_codes`.
    #[test]
    #[ignore = "run in a child process by calls_from_thread_local_destructors_return_codes"]
    fn thread_local_destructor_child() {
        std::thread::spawn(|| {
            // Destructors run in the order of registration, or its reverse: with `LAST`
            // registered between the two probes, one of them runs after `LAST` is gone,
            // whatever the platform's order.
            BEFORE.with(|_| ());
            assert_eq!(
                oauth_lock_store_dir(std::ptr::null(), &mut std::ptr::null_mut()),
                OAUTH_LOCK_NULL_PARAMETER
            );
            assert!(LAST.with(|l| l.borrow().is_some()));
            AFTER.with(|_| ());
        })
        .join()
        .unwrap();
        let seen = SEEN.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:#?}");
        assert!(
            seen.iter().any(|s| !s.last_alive),
            "no probe ran after the last error was gone: {seen:#?}"
        );
        for s in seen.iter() {
            assert_eq!(s.failed, OAUTH_LOCK_NULL_PARAMETER, "{s:#?}");
            assert_eq!(s.last_code, OAUTH_LOCK_NULL_PARAMETER, "{s:#?}");
            assert_eq!(s.message.0, OAUTH_LOCK_OK, "{s:#?}");
            assert_eq!(s.json.0, OAUTH_LOCK_OK, "{s:#?}");
            assert!(s.json.1.contains(r#""code":"NullParameter""#), "{s:#?}");
            if s.last_alive {
                assert!(s.message.1.contains("`store` is NULL"), "{s:#?}");
            } else {
                assert!(
                    s.message.1.contains("while its thread was exiting"),
                    "{s:#?}"
                );
            }
            // The `_e` error is complete either way.
            assert_eq!(s.failed_e, OAUTH_LOCK_INVALID_ARGUMENT, "{s:#?}");
            assert_eq!(s.error.0, OAUTH_LOCK_INVALID_ARGUMENT, "{s:#?}");
            assert!(s.error.1.contains("`lang` is not valid UTF-8"), "{s:#?}");
            assert!(s.error.2.contains(r#""code":"InvalidArgument""#), "{s:#?}");
            assert!(s.error.2.contains("`lang` is not valid UTF-8"), "{s:#?}");
            assert_eq!(s.succeeded, OAUTH_LOCK_OK, "{s:#?}");
            assert_eq!(s.last_code_after_success, OAUTH_LOCK_OK, "{s:#?}");
        }
    }

    /// Calls made from a thread-local destructor while the thread exits (a JVM or Python
    /// thread's teardown hook, a C++ `thread_local` destructor) return their codes and never
    /// abort, after the thread's last error is gone too. Run in a child process, so that an
    /// abort fails this test instead of ending the test run.
    #[test]
    fn calls_from_thread_local_destructors_return_codes() {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "status::tests::thread_local_destructor_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "the child failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
    }
}
