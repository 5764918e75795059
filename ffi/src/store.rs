//! `oauth_lock_store`: opening a store and the operations on it (login, logout, status,
//! list, verify), each translated to the core's `Store`.

use crate::status::{
    arg, guard, invalid, json_arg, oauth_lock_code, optional_text, out, owned_string, text,
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

/// Opens the store in directory `dir` (created with mode 0700 if missing), or the default
/// store when `dir` is NULL: `$OAUTH_LOCK_DIR`, else `$XDG_STATE_HOME/oauth-lock`
/// (`~/.local/state/oauth-lock`).
///
/// On success writes a new store to `*out_store`; free it with `oauth_lock_store_free`.
/// The first store opened in a process names the process's language "c" in the records it
/// writes (`updated_by.lang`), unless `oauth_lock_set_client_lang` was called before.
///
/// Codes: `OAUTH_LOCK_IO` (the directory cannot be created or opened),
/// `OAUTH_LOCK_INVALID_ARGUMENT` (`dir` is not UTF-8, or no home directory for the default),
/// `OAUTH_LOCK_NULL_PARAMETER` (`out_store` is NULL).
#[no_mangle]
pub extern "C" fn oauth_lock_store_new(
    dir: *const c_char,
    out_store: *mut *mut oauth_lock_store,
) -> oauth_lock_code {
    guard("oauth_lock_store_new", || {
        let out_store = out(out_store, "out_store")?;
        let dir = unsafe { optional_text(dir, "dir", None)? };
        oauth_lock_core::set_client_lang("c");
        let inner = match dir {
            Some(d) => Store::open(d)?,
            None => Store::open_default()?,
        };
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
    guard("oauth_lock_store_dir", || {
        let store = unsafe { arg(store, "store")? };
        let out_dir = out(out_dir, "out_dir")?;
        let dir = owned_string(store.inner.dir().display().to_string())?;
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
    guard("oauth_lock_store_path_of", || {
        let store = unsafe { arg(store, "store")? };
        let key = unsafe { text(key, "key", None)? };
        let out_path = out(out_path, "out_path")?;
        let path = owned_string(store.inner.path_of(key)?.display().to_string())?;
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
    guard("oauth_lock_store_save", || {
        let store = unsafe { arg(store, "store")? };
        let key = unsafe { text(key, "key", None)? };
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
    guard("oauth_lock_store_clear", || {
        let store = unsafe { arg(store, "store")? };
        let key = unsafe { text(key, "key", None)? };
        let out_existed = out(out_existed, "out_existed")?;
        let existed = store.inner.clear_blocking(key)?;
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
    guard("oauth_lock_store_status", || {
        let store = unsafe { arg(store, "store")? };
        let key = unsafe { text(key, "key", None)? };
        let out_json = out(out_json, "out_json")?;
        let status = store.inner.status(key)?;
        let json = owned_string(serde_json::to_string(&status).map_err(|e| {
            invalid(
                Some(key),
                format!("the status cannot be written as JSON: {e}"),
            )
        })?)?;
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
    guard("oauth_lock_store_list", || {
        let store = unsafe { arg(store, "store")? };
        let out_json = out(out_json, "out_json")?;
        let all = store.inner.list()?;
        let json = owned_string(
            serde_json::to_string(&all)
                .map_err(|e| invalid(None, format!("the list cannot be written as JSON: {e}")))?,
        )?;
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
    guard("oauth_lock_store_verify", || {
        let store = unsafe { arg(store, "store")? };
        let key = unsafe { text(key, "key", None)? };
        let out_token = out(out_token, "out_token")?;
        let token = oauth_lock_token::new(store.inner.verify_blocking(key)?)?;
        unsafe { *out_token = oauth_lock_token::into_raw(token) };
        Ok(())
    })
}
