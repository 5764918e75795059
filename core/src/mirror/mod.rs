//! Mirrors (DESIGN.md §6): a program that keeps its own credential file and does not use
//! oauth-lock (Claude Code's `~/.claude/.credentials.json`) stays in step with the store.
//! Under the lock, a newer token in the mirror is adopted instead of refreshing; after a
//! refresh the new tokens are written back, keeping every field oauth-lock does not own.

use crate::error::{Error, Result};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The layout of a mirror file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MirrorShape {
    /// `{"claudeAiOauth": {"accessToken", "refreshToken", "expiresAt" (ms), …}, …}`
    ClaudeCode,
}

/// A record's `mirror` field: which file, in which shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    pub path: PathBuf,
    pub shape: MirrorShape,
}

/// The tokens a mirror holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MirrorTokens {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_at_ms: Option<i64>,
}

impl MirrorConfig {
    /// Parses and checks a `mirror` config (an absolute path, a known shape).
    pub fn from_json(value: &Value) -> Result<MirrorConfig> {
        let config: MirrorConfig = serde_json::from_value(value.clone()).map_err(|e| {
            Error::invalid(format!(
                "mirror config: {e} (expected {{\"path\": \"/abs/file.json\", \"shape\": \"claude_code\"}})"
            ))
        })?;
        if !config.path.is_absolute() {
            return Err(Error::invalid("mirror config: path must be absolute"));
        }
        Ok(config)
    }

    /// The mirror's tokens; `None` when the file is missing or does not hold this shape
    /// (a file oauth-lock does not own is never an error of ours).
    pub(crate) fn read(&self) -> Option<MirrorTokens> {
        let value: Value = serde_json::from_slice(&fs::read(&self.path).ok()?).ok()?;
        match self.shape {
            MirrorShape::ClaudeCode => {
                let o = value.get("claudeAiOauth")?;
                Some(MirrorTokens {
                    access_token: Secret::new(o.get("accessToken")?.as_str()?),
                    refresh_token: o
                        .get("refreshToken")
                        .and_then(Value::as_str)
                        .map(Secret::new),
                    expires_at_ms: o.get("expiresAt").and_then(Value::as_i64),
                })
            }
        }
    }

    /// Writes the record's tokens into the mirror atomically, keeping its other fields.
    pub(crate) fn write_back(
        &self,
        access: &Secret,
        refresh: Option<&Secret>,
        expires_at_ms: Option<i64>,
    ) -> Result<()> {
        let io = |op: &str, e: std::io::Error| Error::io(op, &self.path, &e);
        let mut root = match fs::read(&self.path) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(o)) => o,
                // Not ours to repair: leave a file we cannot read as it is.
                _ => {
                    return Err(Error::corrupt(
                        "the mirror file is not a JSON object; left untouched",
                    ))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(io("reading the mirror", e)),
        };
        match self.shape {
            MirrorShape::ClaudeCode => {
                let entry = root.entry("claudeAiOauth").or_insert_with(|| json!({}));
                if !entry.is_object() {
                    *entry = json!({});
                }
                let o = entry.as_object_mut().expect("made an object above");
                o.insert("accessToken".into(), json!(access.expose()));
                if let Some(rt) = refresh {
                    o.insert("refreshToken".into(), json!(rt.expose()));
                }
                o.insert("expiresAt".into(), json!(expires_at_ms));
            }
        }
        let bytes = serde_json::to_vec_pretty(&Value::Object(root)).expect("serializable");
        write_file_atomically(&self.path, &bytes).map_err(|e| io("writing the mirror", e))
    }
}

/// The temp-file name of a mirror write: `.<name>.oauth-lock.<pid>.<nanos>.<seq>.tmp`. The
/// time and a process-wide sequence make it unique even where pids repeat (containers sharing
/// a home directory), and the exact shape lets cleanup recognise our own files only.
fn temp_name(name: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        ".{name}.oauth-lock.{}.{nanos}.{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether `file` is a temp file that [`temp_name`] made for the mirror `name`.
fn is_our_temp_file(file: &str, name: &str) -> bool {
    let Some(rest) = file
        .strip_prefix(&format!(".{name}.oauth-lock."))
        .and_then(|r| r.strip_suffix(".tmp"))
    else {
        return false;
    };
    let parts: Vec<&str> = rest.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Temp files of this mirror left by killed writers. Every write-back happens under the
/// credential's lock, so while we hold it any such file is a dead writer's.
fn remove_stale_temp_files(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if is_our_temp_file(&entry.file_name().to_string_lossy(), name) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn write_file_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("the mirror path has no directory"))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_stale_temp_files(dir, &name);
    let tmp = dir.join(temp_name(&name));
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o600);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_unique_and_cleanup_takes_only_ours() {
        let a = temp_name("credentials.json");
        let b = temp_name("credentials.json");
        assert_ne!(a, b, "two writes in one process never share a name");
        assert!(is_our_temp_file(&a, "credentials.json"));
        assert!(!is_our_temp_file(&a, "credentials"), "another mirror's");
        for foreign in [
            ".credentials.json.tmp",
            ".credentials.json.oauth-lock.1.tmp",
            ".credentials.json.oauth-lock.1.2.x.tmp",
            ".credentials.json.x.oauth-lock.1.2.3.tmp",
            "credentials.json",
        ] {
            assert!(!is_our_temp_file(foreign, "credentials.json"), "{foreign}");
        }
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(&a);
        let theirs = dir.path().join(".credentials.json.tmp");
        fs::write(&stale, b"{}").unwrap();
        fs::write(&theirs, b"{}").unwrap();
        write_file_atomically(&dir.path().join("credentials.json"), b"{}").unwrap();
        assert!(!stale.exists(), "a killed writer's temp file is removed");
        assert!(theirs.exists(), "a file we did not make is left alone");
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 2, "the mirror and the foreign file");
    }
}
