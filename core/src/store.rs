//! The `Store`: a location of credentials (a directory or a database) and the operations on
//! it — token sources, login (`save`), logout (`clear`), `status`, `list`, `verify`.

use crate::backend::{Backend, FsBackend, Location, PgBackend};
use crate::error::{Error, ErrorCode, Result};
use crate::events;
use crate::key::Key;
use crate::mirror::{MirrorConfig, MirrorShape};
use crate::protocol::{Slot, SourceOptions, TokenSource};
use crate::record::{LastError, Record, State};
use crate::refresher::{OAuth2Config, Refresher};
use crate::runtime::{self, now_ms};
use crate::secret::Secret;
use crate::tokens::{invalid_credential, AccessToken, TokenFields};
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A login's result to store: token fields plus, optionally, how to refresh them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Credential {
    pub tokens: TokenFields,
    /// The built-in refresher's config (a record's `refresh` field); kept from the
    /// existing record when `None`.
    pub refresh: Option<Value>,
    /// A mirror file to keep in step (DESIGN.md §6); kept from the existing record when `None`.
    pub mirror: Option<Value>,
}

impl Credential {
    /// From a JSON object in token-response shape (`access_token`, `refresh_token`,
    /// `expires_in` or `expires_at_ms`, `token_type`, `scope`, `id_token`), with optional
    /// `refresh` and `mirror` configs; any other field goes to `extra`.
    pub fn from_json(value: &Value) -> Result<Credential> {
        let tokens =
            TokenFields::from_json(value, &["refresh", "mirror"]).map_err(invalid_credential)?;
        let field = |name: &str| value.get(name).filter(|v| !v.is_null()).cloned();
        Ok(Credential {
            tokens,
            refresh: field("refresh"),
            mirror: field("mirror"),
        })
    }
}

/// Options of [`Store::save`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaveOptions {
    /// Replace a credential that has a refresh token with one that has none.
    pub allow_downgrade: bool,
    /// Longest wait for the lock (default 35 s, longer than a refresh's 30 s timeout).
    pub write_lock_timeout: Duration,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            allow_downgrade: false,
            write_lock_timeout: Duration::from_secs(35),
        }
    }
}

/// Options of [`Store::import`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The key to store it under; the program's name (`claude-code`, `codex`) if `None`.
    pub key: Option<String>,
    /// The program's file; where the program keeps it if `None` (`$CLAUDE_CONFIG_DIR`,
    /// `$CODEX_HOME`, else the home directory). Kept as given: a symlink stays one.
    pub file: Option<PathBuf>,
    /// Refresh at this token URL instead of the program's own (tests use a mock provider).
    pub token_url: Option<String>,
}

/// A problem reading a record, as reported by `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub code: ErrorCode,
    pub message: String,
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What `status` and `list` report; they never lock and never refresh.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Status {
    pub key: String,
    /// Where the record is: its file, or the database's URL (without password) and the key.
    pub path: PathBuf,
    /// Where the store is: its directory, or the database's URL without the password.
    pub location: String,
    /// The database server's version, for a database store.
    pub server: Option<String>,
    /// A record exists (it may still be unreadable: see `problem`).
    pub exists: bool,
    pub generation: Option<u64>,
    pub state: Option<State>,
    pub has_access_token: bool,
    pub has_refresh_token: bool,
    /// The record carries a `refresh` config, so any process can refresh it by key alone.
    pub has_refresh_config: bool,
    /// The mirror file kept in step, if any.
    pub mirror_path: Option<PathBuf>,
    /// Which program's file the mirror is.
    pub mirror_shape: Option<MirrorShape>,
    pub expires_at_ms: Option<i64>,
    pub issued_at_ms: Option<i64>,
    /// When the refresh token was last rotated.
    pub refresh_token_issued_at_ms: Option<i64>,
    pub last_error: Option<LastError>,
    /// No process refreshes before this time (a failed refresh's backoff), if set.
    pub backoff_until_ms: Option<i64>,
    pub updated_at_ms: Option<i64>,
    pub updated_by: Option<Value>,
    pub access_token_fingerprint: Option<String>,
    pub refresh_token_fingerprint: Option<String>,
    /// The record or the store directory is readable by group or others.
    pub insecure_permissions: bool,
    /// The store is on a network file system (locks do not hold across machines).
    pub network_fs: bool,
    /// Why the record could not be read (`Corrupt`, `UnsupportedFormat`, `Io`).
    pub problem: Option<Problem>,
}

/// DESIGN.md §10: a database that cannot be reached is `Transient` for a token, and `Io` for
/// a save or a clear (which no refresher runs in, so their only `Transient` is the store's).
fn unreachable_is_io(e: Error) -> Error {
    match e {
        Error::Transient { ctx, reason, .. } => Error::Io {
            ctx,
            op: "reaching the store".into(),
            kind: std::io::ErrorKind::NotConnected,
            os_code: None,
            message: reason,
        },
        other => other,
    }
}

/// A store of credentials (a directory, or a PostgreSQL database) shared by every process that
/// opens it.
///
/// ```no_run
/// # async fn demo() -> oauth_lock::Result<()> {
/// let store = oauth_lock::Store::open_default()?;
/// let source = store.source("anthropic:work")?;
/// let token = source.access_token().await?;
/// println!("Authorization: {}", token.token_type());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", self.backend.location())
            .finish()
    }
}

impl Store {
    /// Opens the store at `location`: a directory (created, mode 0700, if needed) or a
    /// `postgresql://` / `postgres://` URL (DESIGN.md §10; connected at first use, so opening
    /// never waits on the network).
    pub fn open(location: impl AsRef<Path>) -> Result<Store> {
        let location = location.as_ref();
        let backend: Arc<dyn Backend> = match location.to_str().map(Location::parse) {
            Some(Ok(Location::Postgres(_))) => {
                PgBackend::open(location.to_str().expect("a URL is UTF-8"))?
            }
            Some(Err(e)) => return Err(e),
            _ => Arc::new(FsBackend::open(location)?),
        };
        Ok(Store::with_backend(backend))
    }

    /// Opens the default store: `$OAUTH_LOCK_STORE`, else `$OAUTH_LOCK_DIR`, else the
    /// platform state directory.
    pub fn open_default() -> Result<Store> {
        match std::env::var_os("OAUTH_LOCK_STORE").filter(|s| !s.is_empty()) {
            Some(location) => Store::open(location),
            None => Store::open(Store::default_dir()?),
        }
    }

    /// `$OAUTH_LOCK_DIR`, else `$XDG_STATE_HOME/oauth-lock` (`~/.local/state/oauth-lock`),
    /// macOS `~/Library/Application Support/oauth-lock`, Windows `%LOCALAPPDATA%\oauth-lock`.
    pub fn default_dir() -> Result<PathBuf> {
        if let Some(dir) = std::env::var_os("OAUTH_LOCK_DIR").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .map(|d| d.join("oauth-lock"))
            .ok_or_else(|| {
                Error::invalid("no home directory to put the store in; set OAUTH_LOCK_DIR")
            })
    }

    /// A store on a backend of the caller's.
    pub fn with_backend(backend: Arc<dyn Backend>) -> Store {
        Store { backend }
    }

    /// The store's directory (canonical); for a database store, its URL without the password.
    pub fn dir(&self) -> &Path {
        self.backend.location().as_path()
    }

    /// Where the store is (`Display` never shows a password).
    pub fn location(&self) -> &Location {
        self.backend.location()
    }

    /// Where the record of `key` is: its file, or the database's URL (without password) and
    /// the key.
    pub fn path_of(&self, key: &str) -> Result<PathBuf> {
        Ok(self.backend.place(&Key::new(key)?))
    }

    /// A token source refreshed with the record's own `refresh` config.
    pub fn source(&self, key: &str) -> Result<TokenSource> {
        self.source_with_options(key, None, SourceOptions::default())
    }

    /// A token source refreshed by `refresher`.
    pub fn source_with(&self, key: &str, refresher: Arc<dyn Refresher>) -> Result<TokenSource> {
        self.source_with_options(key, Some(refresher), SourceOptions::default())
    }

    /// A token source with explicit options (margin, timeouts).
    pub fn source_with_options(
        &self,
        key: &str,
        refresher: Option<Arc<dyn Refresher>>,
        options: SourceOptions,
    ) -> Result<TokenSource> {
        Ok(TokenSource::new(
            self.backend.clone(),
            Key::new(key)?,
            refresher,
            options,
        ))
    }

    /// Stores a login (DESIGN.md §4 save). Runs to completion even if the future is dropped.
    pub async fn save(
        &self,
        key: &str,
        credential: Credential,
        options: SaveOptions,
    ) -> Result<Status> {
        let store = self.clone();
        let key = key.to_owned();
        let task = runtime::process()
            .runtime
            .spawn_blocking(move || store.save_blocking(&key, credential, options));
        task.await
            .map_err(|e| Error::transient(format!("the save was interrupted: {e}")))?
    }

    /// [`save`](Self::save) for callers without an async runtime.
    pub fn save_blocking(
        &self,
        key: &str,
        credential: Credential,
        options: SaveOptions,
    ) -> Result<Status> {
        let key = Key::new(key)?;
        let path = self.backend.place(&key);
        // Listeners hear the save's events after its lock is released.
        events::after_unlock_blocking(|| self.save_inner(&key, &path, credential, options))
            .map_err(|e| unreachable_is_io(e).with_context(key.as_str(), &path))?;
        self.status(key.as_str())
    }

    fn save_inner(
        &self,
        key: &Key,
        path: &Path,
        credential: Credential,
        options: SaveOptions,
    ) -> Result<()> {
        let Credential {
            tokens,
            refresh,
            mirror,
        } = credential;
        if tokens.access_token.is_none() && tokens.refresh_token.is_none() {
            return Err(invalid_credential(
                "it has neither an access_token nor a refresh_token".into(),
            ));
        }
        if let Some(config) = &refresh {
            OAuth2Config::from_json(config)?;
        }
        if let Some(config) = &mirror {
            MirrorConfig::from_json(config)?;
        }
        let mut locked = self.backend.lock(key, options.write_lock_timeout)?;
        let existing = match locked.read() {
            Ok(found) => found.map(|(r, _)| r),
            // An unreadable record is replaced only by a save that cannot lose a refresh token.
            // Another key's record (a case-insensitive file system) is another credential.
            Err(e)
                if e.code() == ErrorCode::Corrupt
                    && !crate::backend::holds_another_key(&e)
                    && (tokens.refresh_token.is_some() || options.allow_downgrade) =>
            {
                None
            }
            Err(e) => return Err(e),
        };
        let had_refresh_token = existing.as_ref().is_some_and(|r| r.refresh_token.is_some());
        if had_refresh_token && tokens.refresh_token.is_none() && !options.allow_downgrade {
            events::downgrade_refused(key.as_str(), path);
            return Err(Error::Downgrade {
                ctx: Default::default(),
            });
        }
        if tokens.refresh_token.is_none() {
            events::login_without_refresh_token(key.as_str(), path);
        }
        let now = now_ms();
        let previous = existing.as_ref().map_or(0, |r| r.generation);
        let mut record = Record::empty(key.as_str());
        if let Some(old) = existing {
            record.unknown = old.unknown;
            record.extra = old.extra;
            record.refresh = old.refresh;
            record.mirror = old.mirror;
            if old.refresh_token.is_some() && old.refresh_token == tokens.refresh_token {
                record.refresh_token_issued_at_ms = old.refresh_token_issued_at_ms;
            }
        }
        if refresh.is_some() {
            record.refresh = refresh;
        }
        if mirror.is_some() {
            record.mirror = mirror;
        }
        record.expires_at_ms = tokens.expiry(now);
        record.issued_at_ms = Some(now);
        if tokens.refresh_token.is_some() && record.refresh_token_issued_at_ms.is_none() {
            record.refresh_token_issued_at_ms = Some(now);
        }
        record.access_token = tokens.access_token;
        record.token_type = Some(tokens.token_type.unwrap_or_else(|| "Bearer".to_owned()));
        record.refresh_token = tokens.refresh_token;
        record.scope = tokens.scope;
        record.id_token = tokens.id_token;
        record.extra.extend(tokens.extra);
        record.stamp(previous, now);
        let committed = locked.write(&record)?;
        if let Some(e) = &committed.not_durable {
            events::commit_not_durable(key.as_str(), path, &e.to_string());
        }
        Slot::get(&self.backend, key).install(record, Some(committed.version), true);
        Ok(())
    }

    /// Removes a credential (a logout); the lock file stays. Whether there was one.
    pub async fn clear(&self, key: &str) -> Result<bool> {
        let store = self.clone();
        let key = key.to_owned();
        let task = runtime::process()
            .runtime
            .spawn_blocking(move || store.clear_blocking(&key));
        task.await
            .map_err(|e| Error::transient(format!("the clear was interrupted: {e}")))?
    }

    /// [`clear`](Self::clear) for callers without an async runtime.
    pub fn clear_blocking(&self, key: &str) -> Result<bool> {
        let key = Key::new(key)?;
        let path = self.backend.place(&key);
        let run = || {
            let mut locked = self
                .backend
                .lock(&key, SaveOptions::default().write_lock_timeout)?;
            let existed = locked.remove()?;
            Slot::get(&self.backend, &key).forget();
            Ok(existed)
        };
        run().map_err(|e: Error| unreachable_is_io(e).with_context(key.as_str(), &path))
    }

    /// What is known about `key`, without locking or refreshing.
    pub fn status(&self, key: &str) -> Result<Status> {
        let key = Key::new(key)?;
        // Read first: a database store learns its server's version at its first connection.
        let read = self.backend.read(&key);
        let placement = self.backend.placement(&key);
        let path = self.backend.place(&key);
        let mut status = Status {
            key: key.as_str().to_owned(),
            path: path.clone(),
            location: self.backend.location().to_string(),
            server: placement.server,
            exists: false,
            generation: None,
            state: None,
            has_access_token: false,
            has_refresh_token: false,
            has_refresh_config: false,
            mirror_path: None,
            mirror_shape: None,
            expires_at_ms: None,
            issued_at_ms: None,
            refresh_token_issued_at_ms: None,
            last_error: None,
            backoff_until_ms: None,
            updated_at_ms: None,
            updated_by: None,
            access_token_fingerprint: None,
            refresh_token_fingerprint: None,
            insecure_permissions: placement.insecure_permissions,
            network_fs: placement.network_fs,
            problem: None,
        };
        match read {
            Ok(None) => {}
            Ok(Some((r, _))) => {
                status.exists = true;
                status.generation = Some(r.generation);
                status.state = Some(r.state);
                status.has_access_token = r.access_token.is_some();
                status.has_refresh_token = r.refresh_token.is_some();
                status.has_refresh_config = r.refresh.is_some();
                let mirror = r
                    .mirror
                    .as_ref()
                    .and_then(|m| MirrorConfig::from_json(m).ok());
                status.mirror_shape = mirror.as_ref().map(|m| m.shape);
                status.mirror_path = mirror.map(|m| m.path);
                status.backoff_until_ms = r.backoff.as_ref().map(|b| b.until_ms);
                status.expires_at_ms = r.expires_at_ms;
                status.issued_at_ms = r.issued_at_ms;
                status.refresh_token_issued_at_ms = r.refresh_token_issued_at_ms;
                status.last_error = r.last_error;
                status.updated_at_ms = r.updated_at_ms;
                status.updated_by = r.updated_by;
                status.access_token_fingerprint = r.access_token.as_ref().map(Secret::fingerprint);
                status.refresh_token_fingerprint =
                    r.refresh_token.as_ref().map(Secret::fingerprint);
            }
            Err(e) => {
                // A record that does not parse exists (a row, for a database store).
                status.exists =
                    matches!(e.code(), ErrorCode::Corrupt | ErrorCode::UnsupportedFormat)
                        || path.exists();
                let e = e.with_context(key.as_str(), &path);
                status.problem = Some(Problem {
                    code: e.code(),
                    message: e.to_string(),
                });
            }
        }
        Ok(status)
    }

    /// The status of every credential in the store, by key.
    pub fn list(&self) -> Result<Vec<Status>> {
        self.backend
            .list()?
            .iter()
            .map(|k| self.status(k.as_str()))
            .collect()
    }

    /// Makes (or updates) a record from another program's credential file (DESIGN.md §6.1,
    /// `oauth-lock import`): its tokens, the program's own refresh config (token URL, client
    /// id, JSON body) and the file as the record's mirror, so that any process, or the
    /// keep-alive, refreshes it under the protocol and the program finds the new tokens in its
    /// file. A missing, unreadable, logged-out or API-key-only file is `InvalidArgument`
    /// naming it, and nothing is written anywhere. When the record is already ahead of the
    /// file (a rotation the file missed), the record keeps its tokens and the file is rewritten.
    ///
    /// ```no_run
    /// # fn demo() -> oauth_lock::Result<()> {
    /// use oauth_lock::{ImportOptions, MirrorShape, Store};
    /// let store = Store::open_default()?;
    /// let status = store.import_blocking(MirrorShape::ClaudeCode, ImportOptions::default())?;
    /// println!("imported {} (generation {:?})", status.key, status.generation);
    /// # Ok(()) }
    /// ```
    pub fn import_blocking(&self, program: MirrorShape, options: ImportOptions) -> Result<Status> {
        let key = options
            .key
            .clone()
            .unwrap_or_else(|| program.default_key().to_owned());
        let k = Key::new(&key)?;
        let path = self.backend.place(&k);
        let file = match &options.file {
            Some(f) => {
                std::path::absolute(f).map_err(|e| Error::io("resolving the file", f, &e))?
            }
            None => program.default_path()?,
        };
        let mirror = MirrorConfig::new(file, program);
        let mut tokens = mirror.login().map_err(|e| e.with_context(&key, &path))?;
        let refresh = serde_json::to_value(program.refresh_config(options.token_url.as_deref()))
            .expect("a refresh config serializes");
        let ahead = match self.backend.read(&k) {
            Ok(Some((r, _))) if r.state == State::Ok && r.access_token.is_some() => {
                let ahead = r.refresh_token.is_some()
                    && r.refresh_token != tokens.refresh_token
                    && r.expires_at_ms.unwrap_or(i64::MIN)
                        > tokens.expires_at_ms.unwrap_or(i64::MIN);
                if ahead {
                    tokens = TokenFields {
                        access_token: r.access_token,
                        token_type: r.token_type,
                        expires_in_ms: None,
                        expires_at_ms: r.expires_at_ms,
                        refresh_token: r.refresh_token,
                        scope: r.scope,
                        id_token: r.id_token,
                        extra: Default::default(),
                    };
                }
                ahead
            }
            _ => false,
        };
        let credential = Credential {
            tokens,
            refresh: Some(refresh),
            mirror: Some(mirror.to_json()),
        };
        self.save_blocking(&key, credential, SaveOptions::default())?;
        if ahead {
            self.source(&key)?.sync_mirror_blocking()?;
        }
        self.status(&key)
    }

    /// [`import_blocking`](Self::import_blocking) on the core's runtime.
    pub async fn import(&self, program: MirrorShape, options: ImportOptions) -> Result<Status> {
        let store = self.clone();
        runtime::process()
            .runtime
            .spawn_blocking(move || store.import_blocking(program, options))
            .await
            .map_err(|e| Error::transient(format!("the import was interrupted: {e}")))?
    }

    /// Copies records into the store `to` (`oauth-lock copy`, DESIGN.md §10): the keys
    /// given, or every key. Each record goes over as it is, under both stores' locks (the
    /// source's too, so that no refresh is half-way through: a copy taken then would hold a
    /// refresh token about to be spent); its generation is raised past the one it replaces,
    /// so that the destination's processes adopt it. The keys copied, in order.
    pub fn copy_to(&self, to: &Store, keys: &[String]) -> Result<Vec<String>> {
        if self.location() == to.location() {
            return Err(Error::invalid(format!(
                "copying a store onto itself ({})",
                self.location()
            )));
        }
        let keys: Vec<Key> = if keys.is_empty() {
            self.backend.list()?
        } else {
            keys.iter().map(|k| Key::new(k)).collect::<Result<_>>()?
        };
        let timeout = SaveOptions::default().write_lock_timeout;
        let mut copied = Vec::with_capacity(keys.len());
        for key in keys {
            let run = || -> Result<()> {
                let mut from = self.backend.lock(&key, timeout)?;
                let Some((mut record, _)) = from.read()? else {
                    return Err(Error::needs_login("no credential is stored under this key"));
                };
                let mut dest = to
                    .backend
                    .lock(&key, timeout)
                    .map_err(|e| e.with_context(key.as_str(), &to.backend.place(&key)))?;
                let previous = match dest.read() {
                    Ok(found) => found.map_or(0, |(r, _)| r.generation),
                    // An unreadable destination is replaced; another key's record never is.
                    Err(e)
                        if e.code() == ErrorCode::Corrupt
                            && !crate::backend::holds_another_key(&e) =>
                    {
                        0
                    }
                    Err(e) => return Err(e.with_context(key.as_str(), &to.backend.place(&key))),
                };
                record.generation = record.generation.max(previous + 1);
                let committed = dest
                    .write(&record)
                    .map_err(|e| e.with_context(key.as_str(), &to.backend.place(&key)))?;
                Slot::get(&to.backend, &key).install(record, Some(committed.version), true);
                Ok(())
            };
            run().map_err(|e| {
                unreachable_is_io(e).with_context(key.as_str(), &self.backend.place(&key))
            })?;
            copied.push(key.as_str().to_owned());
        }
        Ok(copied)
    }

    /// Forces one refresh of `key` with its record's `refresh` config, proving it works.
    pub async fn verify(&self, key: &str) -> Result<AccessToken> {
        self.source(key)?.verify().await
    }

    /// [`verify`](Self::verify) for callers without an async runtime.
    pub fn verify_blocking(&self, key: &str) -> Result<AccessToken> {
        self.source(key)?.verify_blocking()
    }
}
