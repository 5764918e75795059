//! The Node addon behind the npm package `oauth-lock`: translation only. Every OAuth and
//! file decision is the core's (`oauth_lock`); this crate turns JS values into the core's
//! JSON (`oauth_lock::interop`), core errors into JSON the JS layer (`lib/`) rethrows as
//! `OAuthLockError`s, and core events and callback refreshers into threadsafe JS calls.

// No `unsafe` here so far; any future block must say why it is sound (`// SAFETY:`), and CI
// runs clippy with `-D warnings`.
#![warn(clippy::undocumented_unsafe_blocks)]

mod errors;
mod events;
mod json_case;
mod refresher;
mod source;
mod store;

pub use errors::error_codes;
pub use events::{add_event_listener, remove_event_listener};
pub use source::{AccessToken, NativeTokenSource};
pub use store::NativeStore;

use napi_derive::napi;

/// A trivial async call: the benchmark's yardstick for what any napi Promise costs.
#[napi]
pub async fn bench_noop() -> u32 {
    0
}
