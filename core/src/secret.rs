//! A string that must never reach a log: its `Debug` shows only a fingerprint.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The first 8 hex digits of the SHA-256 of a token: safe to log, enough to tell tokens apart.
pub fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// A token. `Debug` prints its fingerprint, never the value; there is no `Display`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The token itself. Call only where the token is sent or handed to the caller.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(sha256:{})", self.fingerprint())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_fingerprint_only() {
        let s = Secret::new("rt-very-secret-value");
        let d = format!("{s:?}");
        assert!(!d.contains("very-secret"));
        assert_eq!(fingerprint("abc"), "ba7816bf");
        assert!(d.contains(&fingerprint("rt-very-secret-value")));
    }
}
