//! Refreshers: what turns a refresh token into new tokens. The built-in OAuth2 one and
//! callbacks (closures here; C, Python and JS functions in the bindings) share one trait and
//! one classification of failures.

pub mod oauth2;

use crate::error::{Context, Error, Result};
use crate::record::Record;
use crate::tokens::TokenFields;
use futures_util::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;

pub use oauth2::{Body, ClientAuth, OAuth2, OAuth2Config};

/// Exchanges the refresh token in `record` (read under the lock) for new token fields.
///
/// Runs under the credential's lock, in a task of its own. Errors must be classified:
/// use [`classify_oauth_error`] for an OAuth `error` string, `Error::Transient` for
/// anything worth retrying. A refresher must not ask for the same key's token.
pub trait Refresher: Send + Sync + 'static {
    fn refresh<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Result<TokenFields>>;
}

/// The OAuth errors (RFC 6749 §5.2 and providers' own) that end a credential.
pub const TERMINAL_ERRORS: [&str; 8] = [
    "invalid_client",
    "unauthorized_client",
    "access_denied",
    "invalid_scope",
    "unsupported_grant_type",
    "invalid_refresh_token",
    "app_session_terminated",
    "refresh_token_reused",
];

/// Classifies a parsed OAuth `error` field (never a message substring).
///
/// `invalid_grant` → `InvalidGrant`; the terminal list → `Terminal`; `temporarily_unavailable`,
/// `server_error` → `Transient`; any other error → `Terminal` (the request was refused and
/// repeating it will not help).
pub fn classify_oauth_error(error: &str, description: Option<String>) -> Error {
    let ctx = Context::default();
    match error {
        "invalid_grant" => Error::InvalidGrant { ctx, description },
        "temporarily_unavailable" | "server_error" => Error::Transient {
            ctx,
            reason: format!(
                "the provider answered {error}{}",
                description.map(|d| format!(": {d}")).unwrap_or_default()
            ),
            retry_after: None,
        },
        other => Error::Terminal {
            ctx,
            oauth_error: other.to_owned(),
            description,
        },
    }
}

struct FnRefresher<F>(F);

impl<F, Fut> Refresher for FnRefresher<F>
where
    F: Fn(Record) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<TokenFields>> + Send + 'static,
{
    fn refresh<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Result<TokenFields>> {
        Box::pin((self.0)(record.clone()))
    }
}

/// A callback refresher from an async closure. It gets the current record (with its
/// refresh token) and returns the new token fields or a classified error.
///
/// ```
/// use oauth_lock::{refresher_fn, TokenFields, Secret};
/// let r = refresher_fn(|record| async move {
///     let _refresh_token = record.refresh_token.as_ref().map(|t| t.expose().to_owned());
///     Ok(TokenFields { access_token: Some(Secret::new("new-access")), expires_in_ms: Some(3_600_000), ..Default::default() })
/// });
/// # drop(r);
/// ```
pub fn refresher_fn<F, Fut>(f: F) -> Arc<dyn Refresher>
where
    F: Fn(Record) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<TokenFields>> + Send + 'static,
{
    Arc::new(FnRefresher(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn classification_reads_the_error_field() {
        assert_eq!(
            classify_oauth_error("invalid_grant", None).code(),
            ErrorCode::InvalidGrant
        );
        for e in TERMINAL_ERRORS {
            let err = classify_oauth_error(e, Some("d".into()));
            assert_eq!(err.code(), ErrorCode::Terminal, "{e}");
            assert_eq!(err.oauth_error(), Some(e));
        }
        assert_eq!(
            classify_oauth_error("temporarily_unavailable", None).code(),
            ErrorCode::Transient
        );
        assert_eq!(
            classify_oauth_error("server_error", None).code(),
            ErrorCode::Transient
        );
        // A description mentioning another error never changes the class.
        let e = classify_oauth_error(
            "temporarily_unavailable",
            Some("not an invalid_grant".into()),
        );
        assert_eq!(e.code(), ErrorCode::Transient);
    }
}
