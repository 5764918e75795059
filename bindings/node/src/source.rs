//! `NativeTokenSource` and `AccessToken`. `cached()` is the synchronous hot path (a fresh
//! token with no thread hop); the async calls return promises that the core's own runtime
//! settles, where their flights run.

use napi::bindgen_prelude::{Env, Object};
use napi_derive::napi;
use oauth_lock::TokenSource;
use std::future::Future;
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

    #[napi(ts_return_type = "Promise<AccessToken>")]
    pub fn access_token<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        let source = self.inner.clone();
        settled_from_the_core(env, async move { source.access_token().await })
    }

    #[napi(ts_return_type = "Promise<AccessToken>")]
    pub fn reject<'env>(&self, env: &'env Env, token: String) -> napi::Result<Object<'env>> {
        let source = self.inner.clone();
        settled_from_the_core(env, async move { source.reject(&token).await })
    }

    #[napi(ts_return_type = "Promise<AccessToken>")]
    pub fn access_token_valid_for<'env>(
        &self,
        env: &'env Env,
        ms: f64,
    ) -> napi::Result<Object<'env>> {
        let at_least = std::time::Duration::try_from_secs_f64(ms / 1000.0).map_err(|_| {
            crate::errors::invalid(
                Some(self.inner.key()),
                "`ms` must be a non-negative number of milliseconds",
            )
        })?;
        let source = self.inner.clone();
        settled_from_the_core(
            env,
            async move { source.access_token_valid_for(at_least).await },
        )
    }

    #[napi(ts_return_type = "Promise<AccessToken>")]
    pub fn verify<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        let source = self.inner.clone();
        settled_from_the_core(env, async move { source.verify().await })
    }
}

/// A promise settled by `call` run on the core's runtime: the core thread that finishes the
/// call hands its result straight to the JS thread. (napi's `async fn` would await it on a
/// thread of napi's own runtime, one thread more to wake for every call that waited, which
/// processes woken together on few cores pay each.)
fn settled_from_the_core<'env>(
    env: &'env Env,
    call: impl Future<Output = oauth_lock::Result<oauth_lock::AccessToken>> + Send + 'static,
) -> napi::Result<Object<'env>> {
    let (deferred, promise) = env.create_deferred()?;
    oauth_lock::interop::spawn_settled(call, move |result| match result {
        Ok(token) => deferred.resolve(move |_| Ok(AccessToken::from(token))),
        Err(e) => deferred.reject(crate::errors::to_napi(e)),
    });
    Ok(promise)
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
