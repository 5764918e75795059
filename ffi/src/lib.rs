//! The C ABI of oauth-lock (`include/oauth_lock.h`, generated from this crate by cbindgen):
//! translation only, every decision stays in the core.
//!
//! Conventions (rustls-ffi's): every fallible call returns an `oauth_lock_code` and writes its
//! outputs through out-pointers only on success; opaque handles with `_new` / `_free`
//! (`_free(NULL)` is a no-op); every pointer argument is checked (`OAUTH_LOCK_NULL_PARAMETER`);
//! a panic never crosses the boundary (`OAUTH_LOCK_PANIC`); configs, credentials, status and
//! events cross as JSON strings; callbacks are `fn(userdata, ...)` and may run on any thread.
//! A failure is the thread's last error, and every fallible call has an `_e` twin that also
//! hands the caller the `oauth_lock_error` of that very call.
// The C names are the ABI (`oauth_lock_store`, `OAUTH_LOCK_OK`), not Rust's casing.
#![allow(non_camel_case_types)]
// Raw pointers are the ABI: the header states what each argument must point to, and every
// pointer is checked for NULL before use.
#![allow(clippy::not_unsafe_ptr_arg_deref)]
// Every `unsafe` block says why it is sound (`// SAFETY:`), including the unsafe operations
// inside `unsafe fn`s; CI runs clippy with `-D warnings`, so a new block without one fails.
#![warn(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

mod error;
mod events;
mod refresher;
mod source;
mod status;
mod store;
mod token;

pub use error::*;
pub use events::*;
pub use refresher::*;
pub use source::*;
pub use status::oauth_lock_code;
pub use store::*;
pub use token::*;

use status::{guard, last_error, text, Call};
use std::ffi::{c_char, c_int, CString};
use std::panic::catch_unwind;

/// The library's version, e.g. "0.1.0" (static; do not free).
#[no_mangle]
pub extern "C" fn oauth_lock_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The name of a code: "Ok", the DESIGN.md §5 name ("NeedsLogin", "InvalidGrant", ...),
/// "NullParameter", "Panic", or "Unknown" for a number that is not a code (static; do not
/// free).
#[no_mangle]
pub extern "C" fn oauth_lock_code_name(code: c_int) -> *const c_char {
    oauth_lock_code::name_of(code).as_ptr()
}

/// Names the caller's language in the records this process writes (`updated_by.lang`), e.g.
/// "java". The first call in a process wins, and opening a store sets "c" if nothing was set
/// before: call it before `oauth_lock_store_new`.
///
/// Codes: `OAUTH_LOCK_INVALID_ARGUMENT` (not UTF-8), `OAUTH_LOCK_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn oauth_lock_set_client_lang(lang: *const c_char) -> oauth_lock_code {
    set_client_lang(Call::plain("oauth_lock_set_client_lang"), lang)
}

/// `oauth_lock_set_client_lang`, reporting its error through `out_error` (may be NULL): NULL on
/// success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_set_client_lang_e(
    lang: *const c_char,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    set_client_lang(
        Call::reporting("oauth_lock_set_client_lang_e", out_error),
        lang,
    )
}

fn set_client_lang(call: Call, lang: *const c_char) -> oauth_lock_code {
    guard(call, || {
        // SAFETY: the header requires `lang` to be NULL or a NUL-terminated string that lives
        // through the call; `text` checks NULL, and the core copies the string.
        oauth_lock_core::set_client_lang(unsafe { text(lang, "lang", None)? });
        Ok(())
    })
}

/// Frees a string returned by this library (status, list, paths, error JSON). NULL is a
/// no-op. Do not pass strings from anywhere else, nor the getters' strings of a token or an
/// error.
#[no_mangle]
pub extern "C" fn oauth_lock_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: a non-NULL `s` is a string this library returned through `char **`, made by
        // `CString::into_raw` (`owned_string`, `oauth_lock_last_error_json`), which the header
        // lets the caller free once.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// The code of the last failed call on this thread, or `OAUTH_LOCK_OK` if the last call
/// succeeded. Every fallible call resets it; the `oauth_lock_last_error*` calls do not.
/// Exact even from a thread-local destructor while the thread exits.
#[no_mangle]
pub extern "C" fn oauth_lock_last_error_code() -> oauth_lock_code {
    catch_unwind(|| last_error().map_or(oauth_lock_code::OAUTH_LOCK_OK, |l| l.code()))
        .unwrap_or(oauth_lock_code::OAUTH_LOCK_PANIC)
}

/// The message of the last failed call on this thread (empty if it succeeded): what was
/// wrong, naming the key and the record's path where there is one, never a token.
///
/// Copies at most `len - 1` bytes of it into `buf`, cut at a character boundary, and always
/// NUL-terminates when `len > 0`, so it cannot overflow. Writes the message's full length
/// (without the NUL) to `*out_len`, so a caller can retry with a larger buffer; `buf` may be
/// NULL when `len` is 0 to ask only for the length. Does not change the last error.
///
/// A call made while its thread exits (from a thread-local destructor) may find that the
/// thread's last error could not be kept; the message then says so and names the `_e`
/// variants, whose `oauth_lock_error` always has the details.
///
/// Codes: `OAUTH_LOCK_NULL_PARAMETER` (`out_len` is NULL, or `buf` is NULL with `len > 0`;
/// the last error is left as it was).
#[no_mangle]
pub extern "C" fn oauth_lock_last_error(
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> oauth_lock_code {
    if out_len.is_null() || (buf.is_null() && len > 0) {
        return oauth_lock_code::OAUTH_LOCK_NULL_PARAMETER;
    }
    let full = catch_unwind(|| {
        let last = last_error();
        let message = last.as_deref().map_or("", |l| l.message());
        if len > 0 {
            let mut n = message.len().min(len - 1);
            while !message.is_char_boundary(n) {
                n -= 1;
            }
            // SAFETY: `len > 0` here, so `buf` is not NULL (checked above) and, by the
            // header, valid for writes of `len` bytes; `n <= len - 1` bytes are copied from
            // `message` (which has at least `n` bytes) and the NUL goes to `buf[n]`, within
            // `len`. A Rust string cannot overlap the caller's buffer.
            unsafe {
                std::ptr::copy_nonoverlapping(message.as_ptr(), buf.cast::<u8>(), n);
                *buf.add(n) = 0;
            }
        }
        message.len()
    });
    match full {
        Ok(full) => {
            // SAFETY: `out_len` is not NULL (checked above) and the header requires it to be
            // valid for writes of one `size_t`.
            unsafe { *out_len = full };
            oauth_lock_code::OAUTH_LOCK_OK
        }
        Err(_) => oauth_lock_code::OAUTH_LOCK_PANIC,
    }
}

/// The last failed call on this thread as a JSON object `{"code": "NeedsLogin", ...,
/// "code_number": 1, "message", "key", "path", "oauth_error"}` (absent parts null), or the
/// JSON `null` if the last call succeeded. On success writes a new string to `*out_json`;
/// free it with `oauth_lock_string_free`. Does not change the last error.
///
/// Codes: `OAUTH_LOCK_NULL_PARAMETER` (the last error is left as it was).
#[no_mangle]
pub extern "C" fn oauth_lock_last_error_json(out_json: *mut *mut c_char) -> oauth_lock_code {
    if out_json.is_null() {
        return oauth_lock_code::OAUTH_LOCK_NULL_PARAMETER;
    }
    let json = catch_unwind(|| {
        last_error()
            .map_or_else(|| c"null".to_owned(), |l| l.json().to_owned())
            .into_raw()
    });
    match json {
        Ok(s) => {
            // SAFETY: `out_json` is not NULL (checked above) and the header requires it to be
            // valid for writes of one pointer; the caller now owns the string.
            unsafe { *out_json = s };
            oauth_lock_code::OAUTH_LOCK_OK
        }
        Err(_) => oauth_lock_code::OAUTH_LOCK_PANIC,
    }
}
