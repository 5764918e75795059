//! # oauth-lock
//!
//! One correct implementation of OAuth refresh-token rotation, shared by every thread and
//! every process on a machine (see `DESIGN.md`): a locked, re-reading, single-flight
//! refresh over one store, so that a refresh token is never spent twice. A store is a
//! directory, or a PostgreSQL database for machines that share a credential
//! (`Store::open("postgresql://…")`, `docs/FLEET.md`).
//!
//! ```no_run
//! use oauth_lock::{Credential, SaveOptions, Store};
//! # async fn demo() -> oauth_lock::Result<()> {
//! let store = Store::open("/tmp/my-store")?;
//! // A login: a token response plus how to refresh it.
//! let login = serde_json::json!({
//!     "access_token": "…", "refresh_token": "…", "expires_in": 3600,
//!     "refresh": {"token_url": "https://auth.example.com/oauth/token", "client_id": "my-app"}
//! });
//! store.save("example", Credential::from_json(&login)?, SaveOptions::default()).await?;
//! // Any process, any thread: a valid token, refreshed at most once per expiry.
//! let source = store.source("example")?;
//! let token = source.access_token().await?;
//! // After an HTTP 401 with that token:
//! let token = source.reject(token.value()).await?;
//! # let _ = token; Ok(()) }
//! ```

// Every `unsafe` block says why it is sound (clippy, -D warnings in CI).
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod backend;
mod error;
mod events;
#[cfg(feature = "fault-injection")]
mod fault;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
pub mod interop;
mod keepalive;
mod key;
pub mod lock;
mod mirror;
mod protocol;
mod record;
pub mod refresher;
mod runtime;
mod secret;
mod store;
mod sys;
mod tokens;

pub use backend::Location;
pub use error::{Context, Error, ErrorCode, Result, REFRESH_TOKEN_ERRORS};
pub use keepalive::{Keepalive, KeepaliveAction, KeepaliveOptions, KeepalivePass, KeepaliveReport};
pub use key::Key;
pub use mirror::{MirrorConfig, MirrorShape};
pub use protocol::{MirrorSync, SourceOptions, TokenSource, LATE_ANSWER_WINDOW};
pub use record::{Backoff, LastError, Record, State, UpdatedBy, FORMAT};
pub use refresher::{
    classify_oauth_error, refresher_fn, Body, ClientAuth, OAuth2, OAuth2Config, Refresher,
};
pub use runtime::set_client_lang;
pub use secret::{fingerprint, Secret};
pub use store::{Credential, ImportOptions, Problem, SaveOptions, Status, Store};
pub use tokens::{AccessToken, TokenFields};

/// The README's Rust examples, compiled as doc tests so that they keep working as written.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
