//! What the C, Python and Node bindings translate through: configs, credentials, callback
//! refreshers and events cross as JSON here, so that no binding holds OAuth or file logic.

use crate::error::{Error, ErrorCode, Result};
use crate::record::Record;
use crate::refresher::{classify_oauth_error, refresher_fn, OAuth2, OAuth2Config, Refresher};
use crate::tokens::TokenFields;
use futures_util::FutureExt;
use serde_json::{json, Map, Value};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

pub use crate::events::{add_listener, remove_listener, Event, Level, ListenerId};

/// The built-in OAuth2 refresher from a JSON config (the record's `refresh` shape).
/// `InvalidArgument` for a malformed config or unknown field, `Insecure` for a non-https URL.
pub fn oauth2_refresher(config: &Value) -> Result<Arc<dyn Refresher>> {
    Ok(Arc::new(OAuth2::new(OAuth2Config::from_json(config)?)?))
}

/// What a callback refresher receives: the credential as read under the lock.
///
/// `{"key", "generation", "access_token", "token_type", "expires_at_ms", "refresh_token",
/// "scope", "id_token", "extra"}`; absent fields are `null`, `extra` is always an object.
pub fn callback_credential(record: &Record) -> Value {
    let secret = |s: &Option<crate::Secret>| s.as_ref().map(|s| s.expose().to_owned());
    json!({
        "key": record.key,
        "generation": record.generation,
        "access_token": secret(&record.access_token),
        "token_type": record.token_type,
        "expires_at_ms": record.expires_at_ms,
        "refresh_token": secret(&record.refresh_token),
        "scope": record.scope,
        "id_token": secret(&record.id_token),
        "extra": Value::Object(record.extra.clone()),
    })
}

/// Reads a callback refresher's answer.
///
/// Token fields in token-response shape (`access_token` required; `expires_in` seconds or
/// `expires_at_ms`, `refresh_token`, `token_type`, `scope`, `id_token`, others kept as
/// extra), or a failure `{"error": "...", "error_description": "..."}` classified like a
/// provider's answer (`invalid_grant`, the terminal OAuth errors, `transient`,
/// `temporarily_unavailable`, ...), with an optional `retry_after` in seconds that every
/// process then waits before refreshing again. Anything else is `Transient`: the refresh token may have
/// been spent, so the record is left as it was and the old access token is still used while
/// it is valid.
pub fn callback_answer(answer: &Value) -> Result<TokenFields> {
    if let Some(obj) = answer.as_object() {
        if let Some(error) = obj.get("error").filter(|e| !e.is_null()) {
            let description = obj
                .get("error_description")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let retry_after = obj
                .get("retry_after")
                .and_then(Value::as_f64)
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| std::time::Duration::from_secs_f64(s.min(86_400.0)));
            return match error.as_str() {
                Some(code) => Err(match (refresh_failure(code, description), retry_after) {
                    (Error::Transient { ctx, reason, .. }, Some(after)) => Error::Transient {
                        ctx,
                        reason,
                        retry_after: Some(after),
                    },
                    (e, _) => e,
                }),
                None => Err(Error::transient(
                    "the refresher's answer has an `error` that is not a string",
                )),
            };
        }
        if !obj.get("access_token").is_some_and(Value::is_string) {
            return TokenFields::rotation_only(answer).ok_or_else(|| {
                Error::transient("the refresher's answer has no `access_token` string")
            });
        }
    }
    TokenFields::from_json(answer, &[])
        .or_else(|m| TokenFields::rotation_only(answer).ok_or(m))
        .map_err(|m| Error::transient(format!("the refresher's answer is not token fields: {m}")))
}

/// A refresh failure named by a callback: an OAuth `error` string, or one of the §5 codes a
/// refresher may return (`invalid_grant`, `terminal`, `transient`), in any casing.
pub fn refresh_failure(error: &str, description: Option<String>) -> Error {
    let normal = error.to_ascii_lowercase().replace('-', "_");
    match normal.as_str() {
        "transient" => Error::transient(match description {
            Some(d) => format!("the refresher failed: {d}"),
            None => "the refresher failed transiently".into(),
        }),
        "terminal" => classify_oauth_error("terminal", description),
        "invalid_grant" | "invalidgrant" => classify_oauth_error("invalid_grant", description),
        _ => classify_oauth_error(error, description),
    }
}

/// A refresh failure named by a stable code number (the C ABI's callback). Only
/// `InvalidGrant`, `Terminal` and `Transient` are a refresher's to return; any other number
/// is the callback's bug and reported as `Transient` naming it.
pub fn refresh_failure_code(
    number: i64,
    oauth_error: Option<&str>,
    description: Option<String>,
) -> Error {
    let code = ErrorCode::ALL
        .iter()
        .find(|c| i64::from(c.number()) == number);
    match (code, oauth_error) {
        (Some(ErrorCode::InvalidGrant), _) => classify_oauth_error("invalid_grant", description),
        (Some(ErrorCode::Terminal), Some(e)) if !e.is_empty() => {
            classify_oauth_error(e, description)
        }
        (Some(ErrorCode::Terminal), _) => classify_oauth_error("terminal", description),
        (Some(ErrorCode::Transient), _) => refresh_failure("transient", description),
        _ => Error::transient(format!(
            "the refresher returned code {number}, which is not one a refresher may return \
             (InvalidGrant, Terminal or Transient)"
        )),
    }
}

/// A refresher from an async callback that takes [`callback_credential`] JSON and answers
/// as [`callback_answer`] reads it (the Node binding's promise-returning functions).
pub fn json_refresher<F, Fut>(f: F) -> Arc<dyn Refresher>
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value>> + Send + 'static,
{
    refresher_fn(move |record| {
        let pending = f(callback_credential(&record));
        async move { callback_answer(&pending.await?) }
    })
}

/// A refresher from a blocking callback (C functions, Python callables): it runs on a
/// blocking thread so that it may take as long as the refresh timeout allows.
pub fn blocking_json_refresher<F>(f: F) -> Arc<dyn Refresher>
where
    F: Fn(Value) -> Result<Value> + Send + Sync + 'static,
{
    let f = Arc::new(f);
    json_refresher(move |credential| {
        let f = f.clone();
        async move {
            tokio::task::spawn_blocking(move || f(credential))
                .await
                .map_err(|e| {
                    Error::transient(if e.is_panic() {
                        "the refresher panicked".to_owned()
                    } else {
                        format!("the refresher was cancelled: {e}")
                    })
                })?
        }
    })
}

/// Runs `call` on the core's runtime (rebuilt in a forked child), detached, and hands its
/// result to `settle`, on the runtime's thread that finished it: for bindings that complete
/// a foreign future or promise from a core call without a thread of their own in between.
/// `settle` runs once, also when `call` panics (a bug: `InvalidArgument`), so that no
/// foreign future is left pending for ever.
pub fn spawn_settled<T, F, S>(call: F, settle: S)
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
    S: FnOnce(Result<T>) + Send + 'static,
{
    let task = async move {
        let result = AssertUnwindSafe(call)
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(Error::invalid("the call panicked (a bug in oauth-lock)")));
        settle(result);
    };
    drop(crate::runtime::process().runtime.spawn(task));
}

/// An error as the bindings show it: `{"code", "code_number", "message", "key", "path",
/// "oauth_error", "retry_after_ms"}` (absent parts are `null`).
pub fn error_json(err: &Error) -> Value {
    let mut m = Map::new();
    m.insert("code".into(), err.code().as_str().into());
    m.insert("code_number".into(), err.code().number().into());
    m.insert("message".into(), err.to_string().into());
    m.insert("key".into(), err.key().map(str::to_owned).into());
    m.insert(
        "path".into(),
        err.path().map(|p| p.display().to_string()).into(),
    );
    m.insert(
        "oauth_error".into(),
        err.oauth_error().map(str::to_owned).into(),
    );
    m.insert(
        "retry_after_ms".into(),
        err.retry_after()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .into(),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binding's foreign future is settled once with the call's result, and with an error
    /// when the call panics (else it would stay pending for ever).
    #[test]
    fn a_spawned_call_runs_unawaited_and_is_settled_once_even_when_it_panics() {
        let (tx, rx) = std::sync::mpsc::channel();
        let sent = tx.clone();
        // Run to completion although nobody awaits it.
        let call = async {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            Ok(7)
        };
        spawn_settled(call, move |r| sent.send(r).unwrap());
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(10))
                .unwrap()
                .unwrap(),
            7
        );
        spawn_settled(async { panic!("a bug") }, move |r: Result<u8>| {
            tx.send(r).unwrap()
        });
        let err = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap()
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
        assert!(err.to_string().contains("panicked"), "{err}");
        // Each settled once: the sender is gone with the second settle.
        assert!(rx.recv().is_err());
    }

    #[test]
    fn answers_are_token_fields_or_classified_failures() {
        let ok = callback_answer(
            &json!({"access_token": "a", "expires_in": 60, "refresh_token": "r", "account": "x"}),
        )
        .unwrap();
        assert_eq!(ok.access_token.unwrap().expose(), "a");
        assert_eq!(ok.expires_in_ms, Some(60_000));
        assert_eq!(ok.extra["account"], "x");
        let code = |v: Value| callback_answer(&v).unwrap_err().code();
        assert_eq!(
            code(json!({"error": "invalid_grant"})),
            ErrorCode::InvalidGrant
        );
        assert_eq!(
            code(json!({"error": "InvalidGrant"})),
            ErrorCode::InvalidGrant
        );
        assert_eq!(code(json!({"error": "access_denied"})), ErrorCode::Terminal);
        assert_eq!(code(json!({"error": "transient"})), ErrorCode::Transient);
        assert_eq!(
            code(json!({"error": "temporarily_unavailable"})),
            ErrorCode::Transient
        );
        let later =
            callback_answer(&json!({"error": "temporarily_unavailable", "retry_after": 30}))
                .unwrap_err();
        assert_eq!(
            later.retry_after(),
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(error_json(&later)["retry_after_ms"], 30_000);
        for garbage in [
            json!(null),
            json!(3),
            json!("x"),
            json!({}),
            json!({"access_token": 5}),
            json!({"error": 1}),
            json!({"access_token": "a", "expires_in": "soon"}),
        ] {
            assert_eq!(code(garbage.clone()), ErrorCode::Transient, "{garbage}");
        }
    }

    #[test]
    fn code_numbers_from_a_callback() {
        let n = |c: ErrorCode| i64::from(c.number());
        assert_eq!(
            refresh_failure_code(n(ErrorCode::InvalidGrant), None, None).code(),
            ErrorCode::InvalidGrant
        );
        let t = refresh_failure_code(n(ErrorCode::Terminal), Some("access_denied"), None);
        assert_eq!(
            (t.code(), t.oauth_error()),
            (ErrorCode::Terminal, Some("access_denied"))
        );
        assert_eq!(
            refresh_failure_code(n(ErrorCode::Transient), None, None).code(),
            ErrorCode::Transient
        );
        for wrong in [0, n(ErrorCode::Busy), n(ErrorCode::NeedsLogin), 999, -1] {
            let e = refresh_failure_code(wrong, None, None);
            assert_eq!(e.code(), ErrorCode::Transient);
            assert!(e.to_string().contains(&wrong.to_string()), "{e}");
        }
    }
}
