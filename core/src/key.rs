//! Credential keys and the file stems derived from them (DESIGN.md §3): the only place
//! that turns a key into a file name.

use crate::error::{Error, Result};
use std::fmt;

/// A validated credential key: 1–64 bytes of printable ASCII, not `.`/`..`, no leading `.`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    /// Validates `key`; a bad one gives `InvalidArgument` saying why.
    pub fn new(key: &str) -> Result<Key> {
        let why = if key.is_empty() {
            Some("a key is 1 to 64 bytes; this one is empty".to_owned())
        } else if key.len() > 64 {
            Some(format!(
                "a key is 1 to 64 bytes; this one has {}",
                key.len()
            ))
        } else if let Some(b) = key.bytes().find(|b| !(b' '..=b'~').contains(b)) {
            Some(format!(
                "a key holds printable ASCII only (space to ~); byte 0x{b:02x} is not"
            ))
        } else if key.starts_with('.') {
            Some("a key must not start with '.'".to_owned())
        } else {
            None
        };
        match why {
            Some(reason) => {
                let mut e = Error::invalid(reason);
                if let Error::InvalidArgument { ctx, .. } = &mut e {
                    ctx.key = Some(key.escape_debug().to_string());
                }
                Err(e)
            }
            None => Ok(Key(key.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file stem: every byte outside `[A-Za-z0-9._-]` percent-encoded (upper-case hex).
    pub fn stem(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    /// The key a stem was made from, if `stem` is a canonical stem of a valid key.
    pub fn from_stem(stem: &str) -> Option<Key> {
        let bytes = stem.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = stem.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        let key = Key::new(std::str::from_utf8(&out).ok()?).ok()?;
        (key.stem() == stem).then_some(key)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn stems_match_shared_vectors() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/vectors/stems.json"
        );
        let text = std::fs::read_to_string(path).expect("../shared/vectors beside the repo");
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert!(map.len() >= 10);
        for (key, want) in map {
            let want = want.as_str().unwrap();
            match Key::new(&key) {
                Ok(k) => {
                    assert_eq!(k.stem(), want, "stem of {key:?}");
                    assert_eq!(
                        Key::from_stem(want).as_ref(),
                        Some(&k),
                        "round trip of {key:?}"
                    );
                }
                Err(e) => {
                    assert_eq!(want, "InvalidArgument", "key {key:?} was refused: {e}");
                    assert_eq!(e.code(), ErrorCode::InvalidArgument);
                }
            }
        }
    }

    #[test]
    fn from_stem_rejects_non_canonical_names() {
        assert_eq!(
            Key::from_stem("a%3a"),
            None,
            "lower-case hex is not canonical"
        );
        assert_eq!(
            Key::from_stem("a%41"),
            None,
            "an encoded safe byte is not canonical"
        );
        assert_eq!(Key::from_stem("%2E%2E"), None);
        assert_eq!(Key::from_stem("bad%"), None);
        assert_eq!(Key::from_stem("a%3Ab").unwrap().as_str(), "a:b");
    }
}
