//! `oauth_lock_token`: an access token handed to C, with its value and type as
//! NUL-terminated strings that live as long as the handle.

use crate::status::{invalid, Outcome};
use oauth_lock_core::AccessToken;
use std::ffi::{c_char, CString};
use std::sync::{Arc, OnceLock};

/// An access token: its value, type, expiry and record generation.
///
/// Returned by the source calls; free each returned pointer once with
/// `oauth_lock_token_free`. Immutable: it may be read from any number of threads at once.
/// The strings its getters return live until it is freed. Calls that hand out the same
/// cached token may return the same pointer (it is reference-counted): still free each one.
/// Never log the value; log `oauth_lock_token_fingerprint` instead.
pub struct oauth_lock_token {
    token: AccessToken,
    /// `value NUL type NUL`, built once per token, not per call.
    text: Box<[u8]>,
    fingerprint: OnceLock<CString>,
}

impl oauth_lock_token {
    pub(crate) fn new(token: AccessToken) -> Outcome<Arc<oauth_lock_token>> {
        let (value, kind) = (token.value().as_bytes(), token.token_type().as_bytes());
        if value.contains(&0) || kind.contains(&0) {
            return Err(invalid(
                None,
                "the token holds a NUL byte and cannot cross the C ABI".into(),
            ));
        }
        let mut text = Vec::with_capacity(value.len() + kind.len() + 2);
        text.extend_from_slice(value);
        text.push(0);
        text.extend_from_slice(kind);
        text.push(0);
        Ok(Arc::new(oauth_lock_token {
            token,
            text: text.into_boxed_slice(),
            fingerprint: OnceLock::new(),
        }))
    }

    /// Whether this handle holds the very token `other` (the same core allocation).
    pub(crate) fn holds(&self, other: &AccessToken) -> bool {
        std::ptr::eq(self.token.value(), other.value())
            && self.token.generation() == other.generation()
    }

    /// The pointer handed to C; `oauth_lock_token_free` takes its reference back.
    pub(crate) fn into_raw(this: Arc<oauth_lock_token>) -> *mut oauth_lock_token {
        Arc::into_raw(this).cast_mut()
    }
}

/// The token to send (e.g. `Authorization: Bearer <value>`), NUL-terminated. Owned by the
/// token: valid until `oauth_lock_token_free`. NULL if `token` is NULL.
#[no_mangle]
pub extern "C" fn oauth_lock_token_value(token: *const oauth_lock_token) -> *const c_char {
    // SAFETY: the header requires `token` to be NULL or a token from this library that is not
    // freed yet; `as_ref` checks NULL, and the returned pointer points into the token, which
    // the header says lives until `oauth_lock_token_free`.
    match unsafe { token.as_ref() } {
        Some(t) => t.text.as_ptr().cast(),
        None => std::ptr::null(),
    }
}

/// The token type ("Bearer" unless the provider said otherwise), NUL-terminated. Owned by the
/// token: valid until `oauth_lock_token_free`. NULL if `token` is NULL.
#[no_mangle]
pub extern "C" fn oauth_lock_token_type(token: *const oauth_lock_token) -> *const c_char {
    // SAFETY: the header requires `token` to be NULL or a token from this library that is not
    // freed yet; `as_ref` checks NULL, and the returned pointer points into the token, which
    // the header says lives until `oauth_lock_token_free`.
    match unsafe { token.as_ref() } {
        Some(t) => t.text[t.token.value().len() + 1..].as_ptr().cast(),
        None => std::ptr::null(),
    }
}

/// When the token expires, in Unix milliseconds; 0 when the provider gave no expiry (such a
/// token is used until rejected) or `token` is NULL.
#[no_mangle]
pub extern "C" fn oauth_lock_token_expires_at_ms(token: *const oauth_lock_token) -> i64 {
    // SAFETY: the header requires `token` to be NULL or a token from this library that is not
    // freed yet; `as_ref` checks NULL, and only a number is read.
    unsafe { token.as_ref() }
        .and_then(|t| t.token.expires_at_ms())
        .unwrap_or(0)
}

/// The record generation the token came from (it rises by one on every write of the
/// record); 0 if `token` is NULL.
#[no_mangle]
pub extern "C" fn oauth_lock_token_generation(token: *const oauth_lock_token) -> u64 {
    // SAFETY: the header requires `token` to be NULL or a token from this library that is not
    // freed yet; `as_ref` checks NULL, and only a number is read.
    unsafe { token.as_ref() }.map_or(0, |t| t.token.generation())
}

/// The token's fingerprint (first 8 hex digits of its SHA-256), safe to log. Owned by the
/// token: valid until `oauth_lock_token_free`. NULL if `token` is NULL.
#[no_mangle]
pub extern "C" fn oauth_lock_token_fingerprint(token: *const oauth_lock_token) -> *const c_char {
    // SAFETY: the header requires `token` to be NULL or a token from this library that is not
    // freed yet; `as_ref` checks NULL, and the returned pointer points into the token, which
    // the header says lives until `oauth_lock_token_free`.
    match unsafe { token.as_ref() } {
        Some(t) => t
            .fingerprint
            .get_or_init(|| CString::new(t.token.fingerprint()).unwrap_or_default())
            .as_ptr(),
        None => std::ptr::null(),
    }
}

/// Frees a token returned by this library and the strings its getters returned. NULL is a
/// no-op.
#[no_mangle]
pub extern "C" fn oauth_lock_token_free(token: *mut oauth_lock_token) {
    if !token.is_null() {
        // SAFETY: a non-NULL `token` came from `oauth_lock_token::into_raw` (`Arc::into_raw`),
        // and the header lets the caller free each pointer it was given once, so this takes
        // back that one reference.
        drop(unsafe { Arc::from_raw(token.cast_const()) });
    }
}
