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

/// The version of the core this addon was built from (`CARGO_PKG_VERSION`; the core, this
/// crate and the npm package all take the workspace's version). `lib/index.js` refuses to
/// load an addon whose version differs from the package's, and exports it as `version`.
#[napi]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// A trivial async call: the benchmark's yardstick for what any napi Promise costs.
#[napi]
pub async fn bench_noop() -> u32 {
    0
}
