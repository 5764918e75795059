//! Mirrors (DESIGN.md §6.1): programs that keep their own credential file and do not use
//! oauth-lock (Claude Code's `~/.claude/.credentials.json`, Codex's `~/.codex/auth.json`) stay
//! in step with the store. Under the lock (and the program's own lock, if it has one), a newer
//! token in the mirror is adopted instead of refreshing; after a refresh the new tokens are
//! written back, keeping every field oauth-lock does not own.

pub(crate) mod foreign_lock;
mod shapes;

use crate::error::{Error, Result};
use crate::record::Record;
use crate::refresher::{Body, OAuth2Config};
use crate::secret::Secret;
use crate::tokens::TokenFields;
use foreign_lock::ForeignLock;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The layout of a mirror file: which program keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MirrorShape {
    /// Claude Code: `{"claudeAiOauth": {"accessToken", "refreshToken", "expiresAt" (ms), …}, …}`
    ClaudeCode,
    /// Codex CLI: `{"tokens": {"access_token", "refresh_token", "id_token", "account_id"},
    /// "last_refresh", …}`, the expiry in the access token's JWT `exp`.
    Codex,
}

impl MirrorShape {
    /// The program's name, for messages.
    pub fn program(self) -> &'static str {
        match self {
            MirrorShape::ClaudeCode => "Claude Code",
            MirrorShape::Codex => "Codex",
        }
    }

    /// The key `import` uses when none is given.
    pub fn default_key(self) -> &'static str {
        match self {
            MirrorShape::ClaudeCode => "claude-code",
            MirrorShape::Codex => "codex",
        }
    }

    /// The program's token endpoint.
    pub fn token_url(self) -> &'static str {
        match self {
            MirrorShape::ClaudeCode => "https://platform.claude.com/v1/oauth/token",
            MirrorShape::Codex => "https://auth.openai.com/oauth/token",
        }
    }

    /// The program's public OAuth client id.
    pub fn client_id(self) -> &'static str {
        match self {
            MirrorShape::ClaudeCode => "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
            MirrorShape::Codex => "app_EMoamEEZ73f0CkXaXp7hrann",
        }
    }

    /// The built-in refresher's config that refreshes as the program does (its token URL,
    /// client id and JSON body), or at `token_url` instead.
    pub fn refresh_config(self, token_url: Option<&str>) -> OAuth2Config {
        let mut config = OAuth2Config::new(token_url.unwrap_or(self.token_url()), self.client_id());
        config.body = Body::Json;
        config
    }

    /// Where the program keeps its file: `$CLAUDE_CONFIG_DIR/.credentials.json` or
    /// `~/.claude/.credentials.json`; `$CODEX_HOME/auth.json` or `~/.codex/auth.json`.
    pub fn default_path(self) -> Result<PathBuf> {
        let (var, home_dir, file) = match self {
            MirrorShape::ClaudeCode => ("CLAUDE_CONFIG_DIR", ".claude", ".credentials.json"),
            MirrorShape::Codex => ("CODEX_HOME", ".codex", "auth.json"),
        };
        if let Some(dir) = std::env::var_os(var).filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir).join(file));
        }
        let home = dirs::home_dir().ok_or_else(|| {
            Error::invalid(format!(
                "no home directory to find {}'s file in; pass its path",
                self.program()
            ))
        })?;
        Ok(home.join(home_dir).join(file))
    }
}

impl std::str::FromStr for MirrorShape {
    type Err = Error;

    /// `claude-code` (or `claude_code`) and `codex`, as the CLI spells them.
    fn from_str(s: &str) -> Result<MirrorShape> {
        match s {
            "claude-code" | "claude_code" => Ok(MirrorShape::ClaudeCode),
            "codex" => Ok(MirrorShape::Codex),
            other => Err(Error::invalid(format!(
                "unknown program {other:?}: expected claude-code or codex"
            ))),
        }
    }
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
    pub id_token: Option<Secret>,
    pub scope: Option<String>,
}

/// What a mirror file holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum MirrorRead {
    Missing,
    /// Not JSON, or not readable; the reason never quotes the file.
    Unreadable(String),
    /// No OAuth login at all (a Codex file with only an API key).
    NoTokens,
    /// A logged-out stub: blanked tokens, `expiresAt: 0`.
    Stub,
    Tokens(MirrorTokens),
}

/// How long a read retries a file that does not parse: Codex rewrites its file in place
/// (truncate, then write), so a reader may see it empty or half written for a moment.
const TORN_READ_RETRY: Duration = Duration::from_millis(200);

impl MirrorConfig {
    pub fn new(path: impl Into<PathBuf>, shape: MirrorShape) -> MirrorConfig {
        MirrorConfig {
            path: path.into(),
            shape,
        }
    }

    /// Parses and checks a `mirror` config (an absolute path, a known shape).
    pub fn from_json(value: &Value) -> Result<MirrorConfig> {
        let config: MirrorConfig = serde_json::from_value(value.clone()).map_err(|e| {
            Error::invalid(format!(
                "mirror config: {e} (expected {{\"path\": \"/abs/file.json\", \"shape\": \"claude_code\" or \"codex\"}})"
            ))
        })?;
        if !config.path.is_absolute() {
            return Err(Error::invalid("mirror config: path must be absolute"));
        }
        Ok(config)
    }

    /// The config as a record stores it.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a path and a shape serialize")
    }

    /// The file as JSON, retrying a torn read for a moment; `Ok(None)` when it is missing.
    fn read_json(&self) -> std::result::Result<Option<Value>, String> {
        let deadline = Instant::now() + TORN_READ_RETRY;
        loop {
            match fs::read(&self.path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(format!("cannot read it: {e}")),
                Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                    Ok(v) => return Ok(Some(v)),
                    Err(e) if Instant::now() >= deadline => {
                        return Err(format!(
                            "it is not JSON (line {}, column {})",
                            e.line(),
                            e.column()
                        ))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                },
            }
        }
    }

    /// What the mirror holds now (a file oauth-lock does not own is never an error of ours).
    pub(crate) fn read(&self) -> MirrorRead {
        match self.read_json() {
            Ok(None) => MirrorRead::Missing,
            Ok(Some(v)) if v.is_object() => shapes::tokens_of(self.shape, &v),
            Ok(Some(_)) => MirrorRead::Unreadable("it is not a JSON object".into()),
            Err(why) => MirrorRead::Unreadable(why),
        }
    }

    /// The token fields of a login kept in the mirror (`oauth-lock import`). A missing,
    /// unreadable, logged-out or API-key-only file is `InvalidArgument` naming the file.
    pub(crate) fn login(&self) -> Result<TokenFields> {
        let file = self.path.display();
        let program = self.shape.program();
        let refuse = |why: String| Err(Error::invalid(format!("{program}'s file {file}: {why}")));
        match self.read() {
            MirrorRead::Missing => refuse(format!(
                "no such file (log in with {program} first, or pass --file)"
            )),
            MirrorRead::Unreadable(why) => refuse(why),
            MirrorRead::NoTokens => refuse(
                "it holds no OAuth login (an API key only?): there is nothing to refresh".into(),
            ),
            MirrorRead::Stub => refuse(format!(
                "it is logged out (blank tokens, as {program} leaves it after a failed refresh): \
                 log in with {program} again, then import"
            )),
            MirrorRead::Tokens(t) => Ok(TokenFields {
                access_token: Some(t.access_token),
                token_type: Some("Bearer".into()),
                expires_in_ms: None,
                expires_at_ms: t.expires_at_ms,
                refresh_token: t.refresh_token,
                scope: t.scope,
                id_token: t.id_token,
                extra: Map::new(),
            }),
        }
    }

    /// Writes the record's tokens into the mirror atomically, keeping every other field.
    /// Through a symlink, the link's final target is replaced and the link stays a link.
    pub(crate) fn write_back(&self, record: &Record) -> Result<()> {
        let target = final_target(&self.path)
            .map_err(|e| Error::io("resolving the mirror's symlinks", &self.path, &e))?;
        let io = |op: &str, e: std::io::Error| Error::io(op, &target, &e);
        let at = MirrorConfig::new(target.clone(), self.shape);
        let mut root = match at.read_json() {
            Ok(Some(Value::Object(o))) => o,
            Ok(None) => Map::new(),
            // Not ours to repair: leave a file we cannot read as it is.
            Ok(Some(_)) => {
                return Err(Error::corrupt(format!(
                    "the mirror {} is not a JSON object; left untouched",
                    target.display()
                )))
            }
            Err(why) => {
                return Err(Error::corrupt(format!(
                    "the mirror {}: {why}; left untouched",
                    target.display()
                )))
            }
        };
        shapes::merge(self.shape, &mut root, record);
        let bytes = serde_json::to_vec_pretty(&Value::Object(root)).expect("serializable");
        write_file_atomically(&target, &bytes).map_err(|e| io("writing the mirror", e))
    }

    /// The program's own lock directories, in the order it takes them: Claude Code's
    /// proper-lockfile locks `<dir>/.oauth_refresh.lock`, then `<realpath(dir)>.lock`, where
    /// `dir` is its config directory (the file's directory as configured, links not followed
    /// for the file itself). Codex has no cross-process lock.
    pub(crate) fn foreign_lock_dirs(&self) -> Vec<PathBuf> {
        match self.shape {
            MirrorShape::ClaudeCode => {
                let Some(dir) = self.path.parent() else {
                    return Vec::new();
                };
                let real = crate::sys::canonical(dir).unwrap_or_else(|_| dir.to_path_buf());
                let mut real_lock = real.into_os_string();
                real_lock.push(".lock");
                vec![dir.join(".oauth_refresh.lock"), PathBuf::from(real_lock)]
            }
            MirrorShape::Codex => Vec::new(),
        }
    }

    /// Takes the program's own locks (none for Codex), waiting at most `wait`.
    pub(crate) async fn lock_foreign(&self, wait: Duration) -> Result<Option<ForeignLock>> {
        let dirs = self.foreign_lock_dirs();
        if dirs.is_empty() {
            return Ok(None);
        }
        // No config directory, no program using it: nothing to serialize with (its locks
        // live in that directory), and a refresh must not fail for want of it.
        if self.path.parent().is_some_and(|dir| !dir.is_dir()) {
            return Ok(None);
        }
        ForeignLock::acquire(self.shape.program(), dirs, wait)
            .await
            .map(Some)
    }
}

/// The file a path finally names, following symlinks even to a target that does not exist
/// yet (a dangling link is written through, like a regular open would).
fn final_target(path: &Path) -> std::io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
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
        .map(|m| crate::sys::mode_of(&m))
        .unwrap_or(0o600);
    let result = (|| {
        let mut f = crate::sys::private_file(OpenOptions::new().write(true).create_new(true), mode)
            .open(&tmp)?;
        // The umask narrowed the mode given at creation (a 0660 file would come back 0640):
        // set it exactly.
        crate::sys::set_mode(&f, mode)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        crate::sys::replace(&tmp, path)?;
        crate::sys::sync_dir(dir)
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
