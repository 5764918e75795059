//! Core errors as napi errors whose message is the core's `error_json`, so the JS layer can
//! rethrow them as `OAuthLockError`s with `code`, `key`, `path` and `oauthError`.

use oauth_lock::interop::error_json;
use oauth_lock::ErrorCode;
use serde_json::{json, Value};

/// Starts the message of every napi error that carries an oauth-lock error as JSON.
pub const MARKER: &str = "oauth-lock-error:";

fn from_json(json: Value) -> napi::Error {
    napi::Error::from_reason(format!("{MARKER}{json}"))
}

/// A core error for JS.
pub fn to_napi(err: oauth_lock::Error) -> napi::Error {
    from_json(error_json(&err))
}

/// A bad argument caught while translating it (a wrong type, a negative duration), in the
/// same shape as a core `InvalidArgument`.
pub fn invalid(key: Option<&str>, reason: &str) -> napi::Error {
    let code = ErrorCode::InvalidArgument;
    from_json(json!({
        "code": code.as_str(),
        "code_number": code.number(),
        "message": match key {
            Some(k) => format!("key {k:?}: invalid argument: {reason}"),
            None => format!("invalid argument: {reason}"),
        },
        "key": key,
        "path": null,
        "oauth_error": null,
    }))
}

/// Shorthand: a core result for JS.
pub trait IntoNapi<T> {
    fn napi(self) -> napi::Result<T>;
}

impl<T> IntoNapi<T> for oauth_lock::Result<T> {
    fn napi(self) -> napi::Result<T> {
        self.map_err(to_napi)
    }
}

/// The §5 code names in their stable order, so JS builds its `codes` from the core's list.
#[napi_derive::napi]
pub fn error_codes() -> Vec<String> {
    ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect()
}
