//! A JS async refresher as a core callback refresher: the core calls it (from its runtime)
//! through a threadsafe function with `callback_credential` in camelCase; the JS layer's
//! wrapper answers with `callback_answer` JSON as a string, having already turned a
//! rejection into `{error, error_description}`. A promise that never settles is bounded by
//! the source's refresh timeout.

use crate::json_case;
use napi::bindgen_prelude::Promise;
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use oauth_lock::interop::json_refresher;
use oauth_lock::{Error, Refresher};
use serde_json::Value;
use std::sync::Arc;

/// The wrapper as a threadsafe function; weak, so a source alone keeps no process alive.
pub type JsRefresherFn = ThreadsafeFunction<Value, Promise<String>, Value, Status, false, true>;

pub fn js_refresher(f: JsRefresherFn) -> Arc<dyn Refresher> {
    let f = Arc::new(f);
    json_refresher(move |credential| {
        let f = f.clone();
        async move {
            let promise = f
                .call_async_catch(json_case::to_camel(credential))
                .await
                .map_err(|e| {
                    Error::transient(format!("the JS refresher could not be called: {e}"))
                })?;
            let answer = promise
                .await
                .map_err(|e| Error::transient(format!("the JS refresher's promise failed: {e}")))?;
            serde_json::from_str::<Value>(&answer)
                .map(json_case::to_snake)
                .map_err(|e| {
                    Error::transient(format!("the JS refresher's answer is not JSON: {e}"))
                })
        }
    })
}
