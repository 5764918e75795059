//! Credential keys and the file stems derived from them (DESIGN.md §3): the only place
//! that turns a key into a file name. Stems stay distinct on case-insensitive file systems
//! (upper-case letters are percent-encoded) and never name a Windows device.

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

    /// The file stem (DESIGN.md §3): every byte outside `[a-z0-9._-]` percent-encoded with
    /// upper-case hex, so that two keys that differ only in case get names that differ on a
    /// case-insensitive file system too (`anthropic:Work` → `anthropic%3A%57ork`). A key whose
    /// part before its first `.` is a Windows device name (`con`, `prn`, `aux`, `nul`,
    /// `com0`–`com9`, `lpt0`–`lpt9`, in any case) also has its first byte encoded
    /// (`con` → `%63on`, `nul.backup` → `%6Eul.backup`), so no stem names a device.
    pub fn stem(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        let device = is_device_name(&self.0);
        for (i, b) in self.0.bytes().enumerate() {
            if is_stem_byte(b) && !(i == 0 && device) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    /// The key a stem was made from, if `stem` is the canonical stem of a valid key (exactly
    /// what [`stem`](Self::stem) makes: upper-case hex, safe bytes not encoded, upper-case
    /// letters encoded, device names' first byte encoded); `None` for any other name.
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

/// The bytes a stem keeps as they are: none differ from another only in case.
fn is_stem_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
}

/// Whether the part of `key` before its first `.` is a Windows device name, in any case.
pub(crate) fn is_device_name(key: &str) -> bool {
    let base = key.split('.').next().unwrap_or(key).to_ascii_lowercase();
    match base.as_bytes() {
        b"con" | b"prn" | b"aux" | b"nul" => true,
        [b'c', b'o', b'm', d] | [b'l', b'p', b't', d] => d.is_ascii_digit(),
        _ => false,
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
            Key::from_stem("%61"),
            None,
            "an encoded safe byte is not canonical"
        );
        assert_eq!(
            Key::from_stem("Work"),
            None,
            "an upper-case letter is always encoded"
        );
        assert_eq!(
            Key::from_stem("con"),
            None,
            "a device name has its first byte encoded"
        );
        assert_eq!(Key::from_stem("nul.x"), None);
        assert_eq!(
            Key::from_stem("c%4F%4E"),
            None,
            "CON in any case is a device"
        );
        assert_eq!(Key::from_stem("%2E%2E"), None);
        assert_eq!(Key::from_stem("bad%"), None);
        assert_eq!(Key::from_stem("a%3Ab").unwrap().as_str(), "a:b");
        assert_eq!(Key::from_stem("a%41").unwrap().as_str(), "aA");
        assert_eq!(Key::from_stem("%63%4F%4E").unwrap().as_str(), "cON");
    }

    #[test]
    fn keys_differing_in_case_or_naming_a_device_get_distinct_safe_stems() {
        for (a, b) in [("work", "Work"), ("a:b", "A:b"), ("con", "CON"), ("x", "X")] {
            let (sa, sb) = (Key::new(a).unwrap().stem(), Key::new(b).unwrap().stem());
            assert_ne!(
                sa.to_ascii_lowercase(),
                sb.to_ascii_lowercase(),
                "{a} vs {b}"
            );
        }
        for key in [
            "con",
            "Con",
            "prn.x",
            "aux",
            "NUL",
            "com0",
            "COM9",
            "lpt1.json",
            "lPt5",
        ] {
            let stem = Key::new(key).unwrap().stem();
            assert!(stem.starts_with('%'), "{key} -> {stem}");
            assert_eq!(Key::from_stem(&stem).unwrap().as_str(), key);
        }
        for key in ["cons", "com", "com10", "lpt", "aux-work", "x.con", "null"] {
            let stem = Key::new(key).unwrap().stem();
            assert!(!stem.starts_with('%'), "{key} -> {stem}");
        }
    }
}
