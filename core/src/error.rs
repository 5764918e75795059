//! The one error type, with exactly the codes of DESIGN.md §5, shared by every binding.

use std::fmt;
use std::path::{Path, PathBuf};

/// The stable code of an [`Error`], the same name in every language.
///
/// The numbers are part of the C ABI and the CLI's exit codes: never reuse or reorder them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ErrorCode {
    /// No record, no refresh token, or the record is marked dead. Retry after a login.
    NeedsLogin = 1,
    /// The provider rejected the refresh token and no other writer rotated it.
    InvalidGrant = 2,
    /// Another terminal OAuth error (`invalid_client`, `invalid_scope`, ...).
    Terminal = 3,
    /// Network error, timeout, HTTP 5xx or 429, `temporarily_unavailable`, a non-OAuth body.
    Transient = 4,
    /// The lock was not obtained in time.
    Busy = 5,
    /// A save was refused because it would drop a refresh token.
    Downgrade = 6,
    /// The record does not parse.
    Corrupt = 7,
    /// The record is of a newer format.
    UnsupportedFormat = 8,
    /// A file-system error.
    Io = 9,
    /// A bad key, config or credential.
    InvalidArgument = 10,
    /// A plain-`http` token URL other than loopback.
    Insecure = 11,
}

impl ErrorCode {
    /// Every code, in the order of their numbers.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::NeedsLogin,
        ErrorCode::InvalidGrant,
        ErrorCode::Terminal,
        ErrorCode::Transient,
        ErrorCode::Busy,
        ErrorCode::Downgrade,
        ErrorCode::Corrupt,
        ErrorCode::UnsupportedFormat,
        ErrorCode::Io,
        ErrorCode::InvalidArgument,
        ErrorCode::Insecure,
    ];

    /// The name as written in DESIGN.md §5, e.g. `"NeedsLogin"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NeedsLogin => "NeedsLogin",
            ErrorCode::InvalidGrant => "InvalidGrant",
            ErrorCode::Terminal => "Terminal",
            ErrorCode::Transient => "Transient",
            ErrorCode::Busy => "Busy",
            ErrorCode::Downgrade => "Downgrade",
            ErrorCode::Corrupt => "Corrupt",
            ErrorCode::UnsupportedFormat => "UnsupportedFormat",
            ErrorCode::Io => "Io",
            ErrorCode::InvalidArgument => "InvalidArgument",
            ErrorCode::Insecure => "Insecure",
        }
    }

    /// The stable number (C ABI, CLI exit code offset).
    pub fn number(self) -> u8 {
        self as u8
    }

    /// Whether retrying the same call later may succeed without anyone fixing anything.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::Transient | ErrorCode::Busy | ErrorCode::Io)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which credential and which file an error is about; filled in by the store, so that
/// every message names the key and the path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    pub key: Option<String>,
    pub path: Option<PathBuf>,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.key, &self.path) {
            (Some(k), Some(p)) => write!(f, "key {k:?} ({})", p.display()),
            (Some(k), None) => write!(f, "key {k:?}"),
            (None, Some(p)) => write!(f, "{}", p.display()),
            (None, None) => f.write_str("oauth-lock"),
        }
    }
}

/// An oauth-lock error: a code of DESIGN.md §5, the key and path it concerns, and details.
///
/// Messages never contain a token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{ctx}: needs login: {reason}")]
    NeedsLogin { ctx: Context, reason: String },
    #[error("{ctx}: the provider rejected the refresh token (invalid_grant{}); log in again", desc(.description))]
    InvalidGrant {
        ctx: Context,
        description: Option<String>,
    },
    #[error("{ctx}: the provider refused the refresh ({oauth_error}{})", desc(.description))]
    Terminal {
        ctx: Context,
        oauth_error: String,
        description: Option<String>,
    },
    #[error("{ctx}: temporary failure: {reason}")]
    Transient {
        ctx: Context,
        reason: String,
        /// How long the provider asked us to wait (its `Retry-After`), when it said.
        retry_after: Option<std::time::Duration>,
    },
    #[error("{ctx}: the lock was not obtained within {waited_ms} ms{}", held_by(.foreign))]
    Busy {
        ctx: Context,
        waited_ms: u64,
        /// The other program's lock that was held (a mirror's, DESIGN.md §6.1), if not ours.
        foreign: Option<String>,
    },
    #[error("{ctx}: refused to replace a credential that has a refresh token with one that has none (pass allow_downgrade to force)")]
    Downgrade { ctx: Context },
    #[error("{ctx}: the record is corrupt: {reason}")]
    Corrupt { ctx: Context, reason: String },
    #[error("{ctx}: the record has format {format}, newer than this version of oauth-lock understands (1); it is left untouched")]
    UnsupportedFormat { ctx: Context, format: u64 },
    #[error("{ctx}: {op} failed: {message}")]
    Io {
        ctx: Context,
        op: String,
        kind: std::io::ErrorKind,
        os_code: Option<i32>,
        message: String,
    },
    #[error("{ctx}: invalid argument: {reason}")]
    InvalidArgument { ctx: Context, reason: String },
    #[error(
        "{ctx}: insecure token URL {url:?}: only https, or http to a loopback address, is allowed"
    )]
    Insecure { ctx: Context, url: String },
}

fn held_by(foreign: &Option<String>) -> String {
    match foreign {
        Some(lock) => format!(" ({lock})"),
        None => String::new(),
    }
}

fn desc(d: &Option<String>) -> String {
    match d {
        Some(d) if !d.is_empty() => format!(": {d}"),
        _ => String::new(),
    }
}

/// The `ctx` of any variant, by reference or by mutable reference.
macro_rules! context_of {
    ($e:expr) => {
        match $e {
            Error::NeedsLogin { ctx, .. }
            | Error::InvalidGrant { ctx, .. }
            | Error::Terminal { ctx, .. }
            | Error::Transient { ctx, .. }
            | Error::Busy { ctx, .. }
            | Error::Downgrade { ctx }
            | Error::Corrupt { ctx, .. }
            | Error::UnsupportedFormat { ctx, .. }
            | Error::Io { ctx, .. }
            | Error::InvalidArgument { ctx, .. }
            | Error::Insecure { ctx, .. } => ctx,
        }
    };
}

/// The terminal OAuth errors that say the refresh token itself is dead (besides
/// `invalid_grant`), as providers spell them (DESIGN.md §4 step 8).
pub const REFRESH_TOKEN_ERRORS: [&str; 5] = [
    "invalid_refresh_token",
    "refresh_token_reused",
    "refresh_token_expired",
    "refresh_token_invalidated",
    "app_session_terminated",
];

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The code of DESIGN.md §5.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::NeedsLogin { .. } => ErrorCode::NeedsLogin,
            Error::InvalidGrant { .. } => ErrorCode::InvalidGrant,
            Error::Terminal { .. } => ErrorCode::Terminal,
            Error::Transient { .. } => ErrorCode::Transient,
            Error::Busy { .. } => ErrorCode::Busy,
            Error::Downgrade { .. } => ErrorCode::Downgrade,
            Error::Corrupt { .. } => ErrorCode::Corrupt,
            Error::UnsupportedFormat { .. } => ErrorCode::UnsupportedFormat,
            Error::Io { .. } => ErrorCode::Io,
            Error::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            Error::Insecure { .. } => ErrorCode::Insecure,
        }
    }

    fn ctx(&self) -> &Context {
        context_of!(self)
    }

    fn ctx_mut(&mut self) -> &mut Context {
        context_of!(self)
    }

    /// The credential's key, where known.
    pub fn key(&self) -> Option<&str> {
        self.ctx().key.as_deref()
    }

    /// The file concerned, where known.
    pub fn path(&self) -> Option<&Path> {
        self.ctx().path.as_deref()
    }

    /// The OAuth `error` string the provider sent, for `InvalidGrant` and `Terminal`.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            Error::InvalidGrant { .. } => Some("invalid_grant"),
            Error::Terminal { oauth_error, .. } => Some(oauth_error),
            _ => None,
        }
    }

    /// Fills in the key and path where the error does not carry them yet.
    pub fn with_context(mut self, key: &str, path: &Path) -> Self {
        let ctx = self.ctx_mut();
        if ctx.key.is_none() {
            ctx.key = Some(key.to_owned());
        }
        if ctx.path.is_none() {
            ctx.path = Some(path.to_owned());
        }
        self
    }

    pub(crate) fn io(op: impl Into<String>, path: &Path, err: &std::io::Error) -> Self {
        Error::Io {
            ctx: Context {
                key: None,
                path: Some(path.to_owned()),
            },
            op: op.into(),
            kind: err.kind(),
            os_code: err.raw_os_error(),
            message: err.to_string(),
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            ctx: Context::default(),
            reason: reason.into(),
        }
    }

    /// A failure worth retrying, for callback refreshers (network down, provider busy).
    pub fn transient(reason: impl Into<String>) -> Self {
        Error::Transient {
            ctx: Context::default(),
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// A failure worth retrying after `after` (a provider's `Retry-After`), for refreshers.
    pub fn transient_retry_after(reason: impl Into<String>, after: std::time::Duration) -> Self {
        Error::Transient {
            ctx: Context::default(),
            reason: reason.into(),
            retry_after: Some(after),
        }
    }

    /// How long the provider asked every caller to wait before the next refresh, if it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the provider said the refresh token itself is dead (DESIGN.md §4 step 8):
    /// `invalid_grant`, or a terminal error in [`REFRESH_TOKEN_ERRORS`]. Only these mark a
    /// record `needs_login`; a client or configuration error leaves the credential usable.
    pub fn is_refresh_token_error(&self) -> bool {
        match self {
            Error::InvalidGrant { .. } => true,
            Error::Terminal { oauth_error, .. } => {
                REFRESH_TOKEN_ERRORS.contains(&oauth_error.as_str())
            }
            _ => false,
        }
    }

    pub(crate) fn corrupt(reason: impl Into<String>) -> Self {
        Error::Corrupt {
            ctx: Context::default(),
            reason: reason.into(),
        }
    }

    pub(crate) fn needs_login(reason: impl Into<String>) -> Self {
        Error::NeedsLogin {
            ctx: Context::default(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_numbered_in_design_order_and_named_as_in_design() {
        let names: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "NeedsLogin",
                "InvalidGrant",
                "Terminal",
                "Transient",
                "Busy",
                "Downgrade",
                "Corrupt",
                "UnsupportedFormat",
                "Io",
                "InvalidArgument",
                "Insecure"
            ]
        );
        for (i, c) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(c.number() as usize, i + 1);
        }
    }

    #[test]
    fn message_names_key_and_path() {
        let e = Error::corrupt("expected value")
            .with_context("anthropic:work", Path::new("/s/anthropic%3Awork.json"));
        let m = e.to_string();
        assert!(m.contains("\"anthropic:work\""), "{m}");
        assert!(m.contains("/s/anthropic%3Awork.json"), "{m}");
        assert_eq!(e.code(), ErrorCode::Corrupt);
        assert_eq!(e.key(), Some("anthropic:work"));
    }
}
