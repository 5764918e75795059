//! `NativeStore`: the core `Store` for JS. Blocking core calls run on napi's blocking pool,
//! so no call waits on the event loop's thread.

use crate::errors::{invalid, IntoNapi};
use crate::json_case;
use crate::refresher::{js_refresher, JsRefresherFn};
use crate::source::{AccessToken, NativeTokenSource};
use napi::bindgen_prelude::spawn_blocking;
use napi_derive::napi;
use oauth_lock::interop::oauth2_refresher;
use oauth_lock::{Credential, SaveOptions, SourceOptions, Store};
use serde_json::Value;
use std::time::Duration;

/// A source's tuning, in milliseconds (`SourceOptions` of the core).
#[napi(object)]
#[derive(Default)]
pub struct NativeSourceOptions {
    pub refresh_margin_ms: Option<f64>,
    pub lock_timeout_ms: Option<f64>,
    pub refresh_timeout_ms: Option<f64>,
    pub revalidate_ms: Option<f64>,
}

/// `save`'s options.
#[napi(object)]
#[derive(Default)]
pub struct NativeSaveOptions {
    pub allow_downgrade: Option<bool>,
    pub write_lock_timeout_ms: Option<f64>,
}

fn duration(key: &str, name: &str, ms: Option<f64>, default: Duration) -> napi::Result<Duration> {
    match ms {
        None => Ok(default),
        Some(ms) => Duration::try_from_secs_f64(ms / 1000.0).map_err(|_| {
            invalid(
                Some(key),
                &format!("`{name}` must be a non-negative number of milliseconds"),
            )
        }),
    }
}

fn source_options(key: &str, o: Option<NativeSourceOptions>) -> napi::Result<SourceOptions> {
    let o = o.unwrap_or_default();
    let d = SourceOptions::default();
    Ok(SourceOptions {
        refresh_margin: duration(
            key,
            "refreshMarginMs",
            o.refresh_margin_ms,
            d.refresh_margin,
        )?,
        lock_timeout: duration(key, "lockTimeoutMs", o.lock_timeout_ms, d.lock_timeout)?,
        revalidate: duration(key, "revalidateMs", o.revalidate_ms, d.revalidate)?,
        refresh_timeout: duration(
            key,
            "refreshTimeoutMs",
            o.refresh_timeout_ms,
            d.refresh_timeout,
        )?,
        ..d
    })
}

/// Runs a blocking core call off the event loop's thread.
async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> oauth_lock::Result<T> + Send + 'static,
) -> napi::Result<T> {
    spawn_blocking(f)
        .await
        .map_err(|e| {
            napi::Error::from_reason(format!("oauth-lock: the call was interrupted: {e}"))
        })?
        .napi()
}

fn report(value: serde_json::Result<Value>) -> Value {
    json_case::report(value.unwrap_or(Value::Null))
}

#[napi]
pub struct NativeStore {
    inner: Store,
}

#[napi]
impl NativeStore {
    /// Opens (creating it 0700) the store at `path`, else the default one.
    #[napi(constructor)]
    pub fn new(path: Option<String>) -> napi::Result<Self> {
        oauth_lock::set_client_lang("node");
        let inner = match path {
            Some(p) => Store::open(p),
            None => Store::open_default(),
        }
        .napi()?;
        Ok(NativeStore { inner })
    }

    #[napi(getter)]
    pub fn dir(&self) -> String {
        self.inner.dir().display().to_string()
    }

    #[napi]
    pub fn path_of(&self, key: String) -> napi::Result<String> {
        Ok(self.inner.path_of(&key).napi()?.display().to_string())
    }

    /// A source refreshed by the record's own `refresh` config, or by `config` (an OAuth2
    /// config object in camelCase or snake_case).
    #[napi]
    pub fn source(
        &self,
        key: String,
        config: Option<Value>,
        options: Option<NativeSourceOptions>,
    ) -> napi::Result<NativeTokenSource> {
        let options = source_options(&key, options)?;
        let refresher = match config {
            Some(c) if !c.is_null() => Some(
                oauth2_refresher(&json_case::to_snake(c))
                    .map_err(|e| self.context(e, &key))
                    .napi()?,
            ),
            _ => None,
        };
        let inner = self
            .inner
            .source_with_options(&key, refresher, options)
            .napi()?;
        Ok(NativeTokenSource::new(inner))
    }

    /// A source refreshed by a JS function (the JS layer's wrapper around the user's async
    /// refresher: it never throws and answers with a JSON string).
    #[napi(
        ts_args_type = "key: string, refresher: (credential: any) => Promise<string>, options?: NativeSourceOptions | undefined | null"
    )]
    pub fn source_with_callback(
        &self,
        key: String,
        refresher: JsRefresherFn,
        options: Option<NativeSourceOptions>,
    ) -> napi::Result<NativeTokenSource> {
        let options = source_options(&key, options)?;
        let inner = self
            .inner
            .source_with_options(&key, Some(js_refresher(refresher)), options)
            .napi()?;
        Ok(NativeTokenSource::new(inner))
    }

    /// A login: `credential` in token-response shape (camelCase or snake_case names) with
    /// optional `refresh` and `mirror`.
    #[napi]
    pub async fn save(
        &self,
        key: String,
        credential: Value,
        options: Option<NativeSaveOptions>,
    ) -> napi::Result<Value> {
        let o = options.unwrap_or_default();
        let options = SaveOptions {
            allow_downgrade: o.allow_downgrade.unwrap_or(false),
            write_lock_timeout: duration(
                &key,
                "writeLockTimeoutMs",
                o.write_lock_timeout_ms,
                SaveOptions::default().write_lock_timeout,
            )?,
        };
        let store = self.inner.clone();
        off_thread(move || {
            let credential = Credential::from_json(&json_case::credential(credential))
                .map_err(|e| with_path(&store, e, &key))?;
            let status = store.save_blocking(&key, credential, options)?;
            Ok(report(serde_json::to_value(status)))
        })
        .await
    }

    /// A logout; `false` when there was no record.
    #[napi]
    pub async fn clear(&self, key: String) -> napi::Result<bool> {
        let store = self.inner.clone();
        off_thread(move || store.clear_blocking(&key)).await
    }

    #[napi]
    pub async fn status(&self, key: String) -> napi::Result<Value> {
        let store = self.inner.clone();
        off_thread(move || store.status(&key).map(|s| report(serde_json::to_value(s)))).await
    }

    #[napi]
    pub async fn list(&self) -> napi::Result<Value> {
        let store = self.inner.clone();
        off_thread(move || store.list().map(|s| report(serde_json::to_value(s)))).await
    }

    /// Forces one refresh with the record's own `refresh` config.
    #[napi]
    pub async fn verify(&self, key: String) -> napi::Result<AccessToken> {
        let store = self.inner.clone();
        store.verify(&key).await.napi().map(AccessToken::from)
    }

    /// Imports Claude Code's or Codex's login (`program`: `claude-code` or `codex`).
    #[napi]
    pub async fn import_login(
        &self,
        program: String,
        key: Option<String>,
        file: Option<String>,
        token_url: Option<String>,
    ) -> napi::Result<Value> {
        let store = self.inner.clone();
        off_thread(move || {
            let options = oauth_lock::ImportOptions {
                key,
                file: file.map(Into::into),
                token_url,
            };
            let status = store.import_blocking(program.parse()?, options)?;
            Ok(report(serde_json::to_value(status)))
        })
        .await
    }

    fn context(&self, e: oauth_lock::Error, key: &str) -> oauth_lock::Error {
        with_path(&self.inner, e, key)
    }
}

/// Names the key and its record's path in an error raised before the core knew them.
fn with_path(store: &Store, e: oauth_lock::Error, key: &str) -> oauth_lock::Error {
    match store.path_of(key) {
        Ok(path) => e.with_context(key, &path),
        Err(_) => e,
    }
}
