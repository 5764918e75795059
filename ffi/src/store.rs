//! `oauth_lock_store`: opening a store and the operations on it (login, logout, status,
//! list, verify), each translated to the core's `Store`.

use crate::error::oauth_lock_error;
use crate::status::{
    arg, guard, invalid, json_arg, oauth_lock_code, optional_text, out, owned_string, text, Call,
};
use crate::token::oauth_lock_token;
use oauth_lock_core::{Credential, Error, SaveOptions, Store};
use std::ffi::c_char;

/// A store: a directory of credentials shared by every process that opens it.
///
/// Created by `oauth_lock_store_new`, freed by `oauth_lock_store_free`. One store may be used
/// from any number of threads at once. Sources made from it stay valid after it is freed.
pub struct oauth_lock_store {
    pub(crate) inner: Store,
}

/// `save` flag: replace a credential that has a refresh token with one that has none
/// (otherwise such a save fails with `OAUTH_LOCK_DOWNGRADE`).
pub const OAUTH_LOCK_SAVE_ALLOW_DOWNGRADE: u32 = 1;

/// Adds the key and the record's path to an error that lacks them, so every message names both.
pub(crate) fn in_context(store: &Store, key: &str, e: Error) -> Error {
    match store.path_of(key) {
        Ok(path) => e.with_context(key, &path),
        Err(_) => e,
    }
}

/// Opens the store at `dir`, a location: a directory (created with mode 0700 if missing) or
/// a `postgresql://user@host:port/database` URL (DESIGN.md §10; the password from the URL or
/// `PGPASSWORD`, never shown in a message; connected at first use). NULL opens the default
/// store: `$OAUTH_LOCK_STORE`, else `$OAUTH_LOCK_DIR`, else `$XDG_STATE_HOME/oauth-lock`
/// (`~/.local/state/oauth-lock`).
///
/// On success writes a new store to `*out_store`; free it with `oauth_lock_store_free`.
/// The first store opened in a process names the process's language "c" in the records it
/// writes (`updated_by.lang`), unless `oauth_lock_set_client_lang` was called before.
///
/// Codes: `OAUTH_LOCK_IO` (the directory cannot be created or opened),
/// `OAUTH_LOCK_INVALID_ARGUMENT` (`dir` is not UTF-8, a malformed URL or unknown `sslmode`,
/// or no home directory for the default),
/// `OAUTH_LOCK_NULL_PARAMETER` (`out_store` is NULL).
#[no_mangle]
pub extern "C" fn oauth_lock_store_new(
    dir: *const c_char,
    out_store: *mut *mut oauth_lock_store,
) -> oauth_lock_code {
    store_new(Call::plain("oauth_lock_store_new"), dir, out_store)
}

/// `oauth_lock_store_new`, reporting its error through `out_error` (may be NULL): NULL on
/// success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_store_new_e(
    dir: *const c_char,
    out_store: *mut *mut oauth_lock_store,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    store_new(
        Call::reporting("oauth_lock_store_new_e", out_error),
        dir,
        out_store,
    )
}

fn store_new(
    call: Call,
    dir: *const c_char,
    out_store: *mut *mut oauth_lock_store,
) -> oauth_lock_code {
    guard(call, || {
        let out_store = out(out_store, "out_store")?;
        // SAFETY: `dir` may be NULL (the default store); otherwise the header requires a NUL-
        // terminated string that lives through the call. `optional_text` checks NULL.
        let dir = unsafe { optional_text(dir, "dir", None)? };
        oauth_lock_core::set_client_lang("c");
        let inner = match dir {
            Some(d) => Store::open(d)?,
            None => Store::open_default()?,
        };
        // SAFETY: `out` checked that `out_store` is not NULL, and the header requires it to be
        // valid for writes of one pointer. The caller now owns the box and frees it with
        // `oauth_lock_store_free`.
        unsafe { *out_store = Box::into_raw(Box::new(oauth_lock_store { inner })) };
        Ok(())
    })
}

/// Frees a store. NULL is a no-op. Sources made from it stay valid. Must not be called
/// while another thread is using the same store pointer.
#[no_mangle]
pub extern "C" fn oauth_lock_store_free(store: *mut oauth_lock_store) {
    if !store.is_null() {
        // A drop cannot panic here (an Arc), but no panic may cross the boundary anyway.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: a non-NULL `store` came from `Box::into_raw` in `oauth_lock_store_new`,
            // and the header lets the caller free it once and only when no other thread uses
            // it, so this takes back the only owner.
            drop(unsafe { Box::from_raw(store) })
        }));
    }
}

/// The store's directory (canonical path). On success writes a new string to `*out_dir`;
/// free it with `oauth_lock_string_free`.
///
/// Codes: `OAUTH_LOCK_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn oauth_lock_store_dir(
    store: *const oauth_lock_store,
    out_dir: *mut *mut c_char,
) -> oauth_lock_code {
    store_dir(Call::plain("oauth_lock_store_dir"), store, out_dir)
}

/// `oauth_lock_store_dir`, reporting its error through `out_error` (may be NULL): NULL on
/// success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_store_dir_e(
    store: *const oauth_lock_store,
    out_dir: *mut *mut c_char,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    store_dir(
        Call::reporting("oauth_lock_store_dir_e", out_error),
        store,
        out_dir,
    )
}

fn store_dir(
    call: Call,
    store: *const oauth_lock_store,
    out_dir: *mut *mut c_char,
) -> oauth_lock_code {
    guard(call, || {
        // SAFETY: the header requires `store` to be NULL or a store from `oauth_lock_store_new`
        // that is not freed before this call returns; `arg` checks NULL, and the store is only
        // read.
        let store = unsafe { arg(store, "store")? };
        let out_dir = out(out_dir, "out_dir")?;
        let dir = owned_string(store.inner.dir().display().to_string())?;
        // SAFETY: `out` checked that `out_dir` is not NULL, and the header requires it to be
        // valid for writes of one pointer. The caller now owns the string
        // (`oauth_lock_string_free`).
        unsafe { *out_dir = dir };
        Ok(())
    })
}

/// The path of the record file of `key` (whether or not it exists). On success writes a new
/// string to `*out_path`; free it with `oauth_lock_string_free`.
///
/// Codes: `OAUTH_LOCK_INVALID_ARGUMENT` (a bad key: 1 to 64 bytes of printable ASCII, no
/// leading '.'), `OAUTH_LOCK_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn oauth_lock_store_path_of(
    store: *const oauth_lock_store,
    key: *const c_char,
    out_path: *mut *mut c_char,
) -> oauth_lock_code {
    store_path_of(
        Call::plain("oauth_lock_store_path_of"),
        store,
        key,
        out_path,
    )
}

/// `oauth_lock_store_path_of`, reporting its error through `out_error` (may be NULL): NULL on
/// success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_store_path_of_e(
    store: *const oauth_lock_store,
    key: *const c_char,
    out_path: *mut *mut c_char,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    store_path_of(
        Call::reporting("oauth_lock_store_path_of_e", out_error),
        store,
        key,
        out_path,
    )
}

fn store_path_of(
    call: Call,
    store: *const oauth_lock_store,
    key: *const c_char,
    out_path: *mut *mut c_char,
) -> oauth_lock_code {
    guard(call, || {
        // SAFETY: the header requires `store` to be NULL or a store from `oauth_lock_store_new`
        // that is not freed before this call returns; `arg` checks NULL, and the store is only
        // read.
        let store = unsafe { arg(store, "store")? };
        // SAFETY: the header requires `key` to be NULL or a NUL-terminated string that lives
        // through the call; `text` checks NULL, and the borrow ends with the call.
        let key = unsafe { text(key, "key", None)? };
        let out_path = out(out_path, "out_path")?;
        let path = owned_string(store.inner.path_of(key)?.display().to_string())?;
        // SAFETY: `out` checked that `out_path` is not NULL, and the header requires it to be
        // valid for writes of one pointer. The caller now owns the string
        // (`oauth_lock_string_free`).
        unsafe { *out_path = path };
        Ok(())
    })
}

/// Stores a login for `key` (DESIGN.md §4 save): `credential_json` is a JSON object in
/// token-response shape (`access_token`, `refresh_token`, `expires_in` seconds or
/// `expires_at_ms`, `token_type`, `scope`, `id_token`; other fields are kept as `extra`), with
/// an optional `refresh` object (the built-in OAuth2 refresher's config: `token_url`,
/// `client_id`, optional `client_secret`, `scope`, `body` "form"|"json", `extra_params`,
/// `headers`, `timeout`) and an optional `mirror` object. `flags` is 0 or
/// `OAUTH_LOCK_SAVE_ALLOW_DOWNGRADE`.
///
/// Blocks while another process holds the credential's lock (at most 35 s). Safe from any
/// thread. Nothing is written unless the call succeeds.
///
/// Codes: `OAUTH_LOCK_INVALID_ARGUMENT` (bad key, JSON that does not parse, a credential
/// without tokens, a bad or unknown field in `refresh`/`mirror`, unknown flag bits),
/// `OAUTH_LOCK_INSECURE` (a plain-http non-loopback `token_url`), `OAUTH_LOCK_DOWNGRADE`,
/// `OAUTH_LOCK_BUSY`, `OAUTH_LOCK_CORRUPT` (the existing record does not parse and the new
/// credential has no refresh token), `OAUTH_LOCK_UNSUPPORTED_FORMAT`, `OAUTH_LOCK_IO`,
/// `OAUTH_LOCK_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn oauth_lock_store_save(
    store: *const oauth_lock_store,
    key: *const c_char,
    credential_json: *const c_char,
    flags: u32,
) -> oauth_lock_code {
    store_save(
        Call::plain("oauth_lock_store_save"),
        store,
        key,
        credential_json,
        flags,
    )
}

/// `oauth_lock_store_save`, reporting its error through `out_error` (may be NULL): NULL on
/// success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_store_save_e(
    store: *const oauth_lock_store,
    key: *const c_char,
    credential_json: *const c_char,
    flags: u32,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    store_save(
        Call::reporting("oauth_lock_store_save_e", out_error),
        store,
        key,
        credential_json,
        flags,
    )
}

fn store_save(
    call: Call,
    store: *const oauth_lock_store,
    key: *const c_char,
    credential_json: *const c_char,
    flags: u32,
) -> oauth_lock_code {
    guard(call, || {
        // SAFETY: the header requires `store` to be NULL or a store from `oauth_lock_store_new`
        // that is not freed before this call returns; `arg` checks NULL, and the store is only
        // read.
        let store = unsafe { arg(store, "store")? };
        // SAFETY: the header requires `key` to be NULL or a NUL-terminated string that lives
        // through the call; `text` checks NULL, and the borrow ends with the call.
        let key = unsafe { text(key, "key", None)? };
        // SAFETY: the header requires `credential_json` to be NULL or a NUL-terminated string
        // that lives through the call; `json_arg` checks NULL and copies it into a JSON value.
        let value = unsafe { json_arg(credential_json, "credential_json", Some(key)) }?;
        if flags & !OAUTH_LOCK_SAVE_ALLOW_DOWNGRADE != 0 {
            return Err(invalid(
                Some(key),
                format!("unknown bits in `flags`: {flags:#x}"),
            ));
        }
        let credential =
            Credential::from_json(&value).map_err(|e| in_context(&store.inner, key, e))?;
        let options = SaveOptions {
            allow_downgrade: flags & OAUTH_LOCK_SAVE_ALLOW_DOWNGRADE != 0,
            ..SaveOptions::default()
        };
        store
            .inner
            .save_blocking(key, credential, options)
            .map_err(|e| in_context(&store.inner, key, e))?;
        Ok(())
    })
}

/// Removes the credential `key` (a logout; the lock file stays). Writes to `*out_existed`
/// whether there was a record. Blocks while another process holds the lock (at most 35 s).
///
/// Codes: `OAUTH_LOCK_INVALID_ARGUMENT` (bad key), `OAUTH_LOCK_BUSY`, `OAUTH_LOCK_IO`,
/// `OAUTH_LOCK_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn oauth_lock_store_clear(
    store: *const oauth_lock_store,
    key: *const c_char,
    out_existed: *mut bool,
) -> oauth_lock_code {
    store_clear(
        Call::plain("oauth_lock_store_clear"),
        store,
        key,
        out_existed,
    )
}

/// `oauth_lock_store_clear`, reporting its error through `out_error` (may be NULL): NULL on
/// success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_store_clear_e(
    store: *const oauth_lock_store,
    key: *const c_char,
    out_existed: *mut bool,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    store_clear(
        Call::reporting("oauth_lock_store_clear_e", out_error),
        store,
        key,
        out_existed,
    )
}

fn store_clear(
    call: Call,
    store: *const oauth_lock_store,
    key: *const c_char,
    out_existed: *mut bool,
) -> oauth_lock_code {
    guard(call, || {
        // SAFETY: the header requires `store` to be NULL or a store from `oauth_lock_store_new`
        // that is not freed before this call returns; `arg` checks NULL, and the store is only
        // read.
        let store = unsafe { arg(store, "store")? };
        // SAFETY: the header requires `key` to be NULL or a NUL-terminated string that lives
        // through the call; `text` checks NULL, and the borrow ends with the call.
        let key = unsafe { text(key, "key", None)? };
        let out_existed = out(out_existed, "out_existed")?;
        let existed = store.inner.clear_blocking(key)?;
        // SAFETY: `out` checked that `out_existed` is not NULL, and the header requires it to
        // be valid for writes of one `bool`.
        unsafe { *out_existed = existed };
        Ok(())
    })
}

/// What is known about `key`, without locking or refreshing, as a JSON object: `key`,
/// `path`, `exists`, `generation`, `state`, `has_access_token`, `has_refresh_token`,
/// `has_refresh_config`, `expires_at_ms`, `refresh_token_issued_at_ms`, `last_error`,
/// `updated_by`, token fingerprints (never tokens), `insecure_permissions`, `network_fs`,
/// `problem` (why an existing record cannot be read). On success writes a new string to
/// `*out_json`; free it with `oauth_lock_string_free`.
///
/// Codes: `OAUTH_LOCK_INVALID_ARGUMENT` (bad key), `OAUTH_LOCK_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn oauth_lock_store_status(
    store: *const oauth_lock_store,
    key: *const c_char,
    out_json: *mut *mut c_char,
) -> oauth_lock_code {
    store_status(Call::plain("oauth_lock_store_status"), store, key, out_json)
}

/// `oauth_lock_store_status`, reporting its error through `out_error` (may be NULL): NULL on
/// success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_store_status_e(
    store: *const oauth_lock_store,
    key: *const c_char,
    out_json: *mut *mut c_char,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    store_status(
        Call::reporting("oauth_lock_store_status_e", out_error),
        store,
        key,
        out_json,
    )
}

fn store_status(
    call: Call,
    store: *const oauth_lock_store,
    key: *const c_char,
    out_json: *mut *mut c_char,
) -> oauth_lock_code {
    guard(call, || {
        // SAFETY: the header requires `store` to be NULL or a store from `oauth_lock_store_new`
        // that is not freed before this call returns; `arg` checks NULL, and the store is only
        // read.
        let store = unsafe { arg(store, "store")? };
        // SAFETY: the header requires `key` to be NULL or a NUL-terminated string that lives
        // through the call; `text` checks NULL, and the borrow ends with the call.
        let key = unsafe { text(key, "key", None)? };
        let out_json = out(out_json, "out_json")?;
        let status = store.inner.status(key)?;
        let json = owned_string(serde_json::to_string(&status).map_err(|e| {
            invalid(
                Some(key),
                format!("the status cannot be written as JSON: {e}"),
            )
        })?)?;
        // SAFETY: `out` checked that `out_json` is not NULL, and the header requires it to be
        // valid for writes of one pointer. The caller now owns the string
        // (`oauth_lock_string_free`).
        unsafe { *out_json = json };
        Ok(())
    })
}

/// The status (as `oauth_lock_store_status`) of every credential in the store, as a JSON
/// array ordered by key. On success writes a new string to `*out_json`; free it with
/// `oauth_lock_string_free`.
///
/// Codes: `OAUTH_LOCK_IO` (the directory cannot be listed), `OAUTH_LOCK_NULL_PARAMETER`.
#[no_mangle]
pub extern "C" fn oauth_lock_store_list(
    store: *const oauth_lock_store,
    out_json: *mut *mut c_char,
) -> oauth_lock_code {
    store_list(Call::plain("oauth_lock_store_list"), store, out_json)
}

/// `oauth_lock_store_list`, reporting its error through `out_error` (may be NULL): NULL on
/// success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_store_list_e(
    store: *const oauth_lock_store,
    out_json: *mut *mut c_char,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    store_list(
        Call::reporting("oauth_lock_store_list_e", out_error),
        store,
        out_json,
    )
}

fn store_list(
    call: Call,
    store: *const oauth_lock_store,
    out_json: *mut *mut c_char,
) -> oauth_lock_code {
    guard(call, || {
        // SAFETY: the header requires `store` to be NULL or a store from `oauth_lock_store_new`
        // that is not freed before this call returns; `arg` checks NULL, and the store is only
        // read.
        let store = unsafe { arg(store, "store")? };
        let out_json = out(out_json, "out_json")?;
        let all = store.inner.list()?;
        let json = owned_string(
            serde_json::to_string(&all)
                .map_err(|e| invalid(None, format!("the list cannot be written as JSON: {e}")))?,
        )?;
        // SAFETY: `out` checked that `out_json` is not NULL, and the header requires it to be
        // valid for writes of one pointer. The caller now owns the string
        // (`oauth_lock_string_free`).
        unsafe { *out_json = json };
        Ok(())
    })
}

/// Forces one refresh of `key` with its record's own `refresh` config, proving the refresh
/// token works (it rotates it). On success writes the new token to `*out_token`; free it
/// with `oauth_lock_token_free`. Blocks for the lock and the network.
///
/// Codes: as `oauth_lock_source_access_token`.
#[no_mangle]
pub extern "C" fn oauth_lock_store_verify(
    store: *const oauth_lock_store,
    key: *const c_char,
    out_token: *mut *mut oauth_lock_token,
) -> oauth_lock_code {
    store_verify(
        Call::plain("oauth_lock_store_verify"),
        store,
        key,
        out_token,
    )
}

/// `oauth_lock_store_verify`, reporting its error through `out_error` (may be NULL): NULL on
/// success, else a new `oauth_lock_error` to free with `oauth_lock_error_free`.
#[no_mangle]
pub extern "C" fn oauth_lock_store_verify_e(
    store: *const oauth_lock_store,
    key: *const c_char,
    out_token: *mut *mut oauth_lock_token,
    out_error: *mut *mut oauth_lock_error,
) -> oauth_lock_code {
    store_verify(
        Call::reporting("oauth_lock_store_verify_e", out_error),
        store,
        key,
        out_token,
    )
}

fn store_verify(
    call: Call,
    store: *const oauth_lock_store,
    key: *const c_char,
    out_token: *mut *mut oauth_lock_token,
) -> oauth_lock_code {
    guard(call, || {
        // SAFETY: the header requires `store` to be NULL or a store from `oauth_lock_store_new`
        // that is not freed before this call returns; `arg` checks NULL, and the store is only
        // read.
        let store = unsafe { arg(store, "store")? };
        // SAFETY: the header requires `key` to be NULL or a NUL-terminated string that lives
        // through the call; `text` checks NULL, and the borrow ends with the call.
        let key = unsafe { text(key, "key", None)? };
        let out_token = out(out_token, "out_token")?;
        let token = oauth_lock_token::new(store.inner.verify_blocking(key)?)?;
        // SAFETY: `out` checked that `out_token` is not NULL, and the header requires it to be
        // valid for writes of one pointer. The caller now owns this reference to the token
        // (`oauth_lock_token_free`).
        unsafe { *out_token = oauth_lock_token::into_raw(token) };
        Ok(())
    })
}
