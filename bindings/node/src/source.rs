//! `NativeTokenSource` and `AccessToken`. `cached()` is the synchronous hot path (a fresh
//! token with no thread hop); the async calls await core futures, whose flights run on the
//! core's own runtime.

use crate::errors::IntoNapi;
use napi_derive::napi;
use oauth_lock::TokenSource;
use std::sync::Mutex;

#[napi]
pub struct NativeTokenSource {
    inner: TokenSource,
    /// What `cached()` last returned to JS.
    last: Mutex<Option<oauth_lock::AccessToken>>,
}

impl NativeTokenSource {
    pub fn new(inner: TokenSource) -> Self {
        NativeTokenSource {
            inner,
            last: Mutex::new(None),
        }
    }
}

#[napi]
impl NativeTokenSource {
    #[napi(getter)]
    pub fn key(&self) -> String {
        self.inner.key().to_owned()
    }

    #[napi(getter)]
    pub fn path(&self) -> String {
        self.inner.path().display().to_string()
    }

    /// The process's fresh token, or `null` when getting one needs the slow path.
    #[napi]
    pub fn cached(&self) -> Option<AccessToken> {
        let token = self.inner.cached();
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = token.clone();
        token.map(AccessToken::from)
    }

    /// The hot path's question: 0 = no fresh token (take the async path), 1 = the fresh token
    /// is the one `cached()` last returned (the JS layer hands back the object it holds, so no
    /// native object is built per call), 2 = a different fresh token (call `cached()`).
    #[napi]
    pub fn cached_state(&self) -> u32 {
        match self.inner.cached() {
            None => 0,
            Some(t) => {
                let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
                match last.as_ref() {
                    Some(l) if l.generation() == t.generation() && l.value() == t.value() => 1,
                    _ => 2,
                }
            }
        }
    }

    #[napi]
    pub async fn access_token(&self) -> napi::Result<AccessToken> {
        self.inner
            .access_token()
            .await
            .napi()
            .map(AccessToken::from)
    }

    #[napi]
    pub async fn reject(&self, token: String) -> napi::Result<AccessToken> {
        self.inner
            .reject(&token)
            .await
            .napi()
            .map(AccessToken::from)
    }

    #[napi]
    pub async fn access_token_valid_for(&self, ms: f64) -> napi::Result<AccessToken> {
        let at_least = std::time::Duration::try_from_secs_f64(ms / 1000.0).map_err(|_| {
            crate::errors::invalid(
                Some(self.inner.key()),
                "`ms` must be a non-negative number of milliseconds",
            )
        })?;
        self.inner
            .access_token_valid_for(at_least)
            .await
            .napi()
            .map(AccessToken::from)
    }

    #[napi]
    pub async fn verify(&self) -> napi::Result<AccessToken> {
        self.inner.verify().await.napi().map(AccessToken::from)
    }
}

/// An access token. The JS layer adds `expiresAt`, `toJSON` and `util.inspect`, none of
/// which show the token; only `value` and `toString()` do.
#[napi]
pub struct AccessToken {
    inner: oauth_lock::AccessToken,
}

impl From<oauth_lock::AccessToken> for AccessToken {
    fn from(inner: oauth_lock::AccessToken) -> Self {
        AccessToken { inner }
    }
}

#[napi]
impl AccessToken {
    /// The token itself, for an `Authorization` header.
    #[napi(getter)]
    pub fn value(&self) -> String {
        self.inner.value().to_owned()
    }

    #[napi(getter)]
    pub fn token_type(&self) -> String {
        self.inner.token_type().to_owned()
    }

    /// Unix milliseconds, or `null` when the provider gave no expiry.
    #[napi(getter)]
    pub fn expires_at_ms(&self) -> Option<i64> {
        self.inner.expires_at_ms()
    }

    /// The record's generation this token came from (rises by one on every write).
    #[napi(getter)]
    pub fn generation(&self) -> i64 {
        self.inner.generation() as i64
    }

    /// The first 8 hex digits of the token's SHA-256: safe to log.
    #[napi(getter)]
    pub fn fingerprint(&self) -> String {
        self.inner.fingerprint()
    }

    /// `"<tokenType> <value>"`, the `Authorization` header's value.
    #[napi]
    pub fn authorization(&self) -> String {
        self.inner.authorization()
    }

    #[napi]
    #[allow(clippy::inherent_to_string)]
    pub fn to_string(&self) -> String {
        self.inner.value().to_owned()
    }
}
