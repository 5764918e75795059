//! Core decision events (DESIGN.md §8) delivered to a JS function: a non-blocking
//! threadsafe call per event, so a slow listener never holds up a refresh. Events carry
//! fingerprints, never tokens. A listener ends with its JS environment (a worker's exit).

use crate::json_case;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;
use oauth_lock::interop::{add_listener, remove_listener};
use serde_json::Value;
use std::sync::{Arc, OnceLock};

type EventFn = ThreadsafeFunction<Value, (), Value, Status, false, true>;

/// Calls `listener` with every event of this process; returns an id for
/// `removeEventListener`.
#[napi(ts_args_type = "listener: (event: any) => void")]
pub fn add_event_listener(env: Env, listener: EventFn) -> napi::Result<f64> {
    let own_id: Arc<OnceLock<u64>> = Arc::new(OnceLock::new());
    let me = own_id.clone();
    let id = add_listener(move |event| {
        let value = json_case::report(serde_json::to_value(event).unwrap_or(Value::Null));
        if listener.call(value, ThreadsafeFunctionCallMode::NonBlocking) == Status::Closing {
            if let Some(id) = me.get() {
                remove_listener(*id);
            }
        }
    });
    let _ = own_id.set(id);
    env.add_env_cleanup_hook(id, |id| {
        remove_listener(id);
    })?;
    Ok(id as f64)
}

#[napi]
pub fn remove_event_listener(id: f64) -> bool {
    remove_listener(id as u64)
}
