//! Where records live, behind a small trait (lock, read, write, remove), so that the protocol
//! (DESIGN.md §4) runs unchanged on a directory (§3, [`fs`]) or a PostgreSQL database (§10).

use crate::error::{Context, Error, Result};
use crate::key::Key;
use crate::record::Record;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod fs;
pub mod postgres;

pub use fs::FsBackend;
pub use postgres::{PgBackend, PgConfig};

/// Where a store is: what `Store`s are told to open, what errors, events and `status` name,
/// and what tells the stores of one process apart (each location has its own slots).
/// `Display` never shows a password.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Location {
    /// A directory of record files (DESIGN.md §3), canonical once opened.
    Dir(PathBuf),
    /// A PostgreSQL database (DESIGN.md §10): `postgresql://user@host:port/db`, shown without
    /// the password it may carry.
    Postgres(std::sync::Arc<PgConfig>),
}

impl Location {
    /// A directory path. (A `postgresql://` URL is parsed by [`Location::parse`].)
    pub fn dir(path: impl Into<PathBuf>) -> Location {
        Location::Dir(path.into())
    }

    /// A location as users write it (`--store`, `$OAUTH_LOCK_STORE`, `Store::open`): a
    /// `postgresql://` or `postgres://` URL, else a directory. Another `scheme://` is an
    /// error rather than a directory of that odd name. Errors never quote a URL (it may
    /// hold a password).
    pub fn parse(location: &str) -> Result<Location> {
        if location.is_empty() {
            return Err(Error::invalid("the store location is empty"));
        }
        match url_scheme(location) {
            Some("postgresql" | "postgres") => Ok(Location::Postgres(std::sync::Arc::new(
                PgConfig::parse(location)?,
            ))),
            Some(other) => Err(Error::invalid(format!(
                "a store location is a directory or a postgresql:// URL, not a {other}:// URL"
            ))),
            None => Ok(Location::Dir(PathBuf::from(location))),
        }
    }

    /// The location as a path: the directory itself, or the database URL without the
    /// password. What [`crate::Store::dir`] returns.
    pub fn as_path(&self) -> &Path {
        match self {
            Location::Dir(p) => p,
            Location::Postgres(c) => Path::new(c.redacted()),
        }
    }
}

/// The scheme of `s` when it reads as `scheme://…`.
fn url_scheme(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once("://")?;
    let mut bytes = scheme.bytes();
    let first = bytes.next()?;
    (first.is_ascii_alphabetic()
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))
    .then_some(scheme)
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Dir(p) => write!(f, "{}", p.display()),
            Location::Postgres(c) => write!(f, "{c}"),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The same text as Display: a Debug print must not leak a password either.
        write!(f, "Location({self})")
    }
}

/// Identifies one written version of a record cheaply, for the hot path's change check
/// (equal versions: nobody wrote in between). Opaque: each backend has its own kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version(Stamp);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stamp {
    /// A file's identity and size: a rename makes a new inode, an edit in place a new mtime.
    File {
        dev: u64,
        ino: u64,
        mtime_ns: i64,
        size: u64,
    },
    /// A row's generation and a stamp the database draws anew on every write (generations
    /// start again at 1 after a logout, so they alone could repeat).
    Row { generation: u64, stamp: i64 },
}

impl Version {
    pub(crate) fn file(dev: u64, ino: u64, mtime_ns: i64, size: u64) -> Version {
        Version(Stamp::File {
            dev,
            ino,
            mtime_ns,
            size,
        })
    }

    pub(crate) fn row(generation: u64, stamp: i64) -> Version {
        Version(Stamp::Row { generation, stamp })
    }
}

/// A write that took effect: every process now reads the new record.
#[derive(Debug)]
pub struct Committed {
    pub version: Version,
    /// Set when the record was replaced but could not be made durable (syncing its directory
    /// failed): it is committed for every process, and a power loss may still undo it.
    pub not_durable: Option<Error>,
}

/// What `status` reports about where a record is kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// The record or its directory is readable or writable by group or others.
    pub insecure_permissions: bool,
    /// The store is on a network file system, where locks are not reliable across machines.
    pub network_fs: bool,
    /// The database server's version, for a database store.
    pub server: Option<String>,
}

/// What a backend read at a holder's release: the record then, as `Backend::read` says it.
pub type ReadAtRelease = Result<Option<(Record, Version)>>;

/// The protocol's work at a holder's release (`Backend::wait_released`), given the record if
/// the backend read it then, so that a waiter on a database needs no round trip of its own.
pub type AtRelease = Box<dyn FnOnce(Option<ReadAtRelease>) + Send>;

/// A store of records. Reads are lock-free; writes happen through a [`Locked`] handle.
pub trait Backend: Send + Sync + 'static {
    /// Where the store is; `Store`s at the same location share in-process state.
    fn location(&self) -> &Location;
    /// Where the record of `key` is, as errors, events and `status` name it: its file, or
    /// the database's URL (without password) and the key. Never holds a secret.
    fn place(&self, key: &Key) -> PathBuf;
    /// The record and its version, without locking; `None` when there is none.
    fn read(&self, key: &Key) -> Result<Option<(Record, Version)>>;
    /// The version only, for the hot path: cheap and local (one `stat`, or what the change
    /// notices said); `None` when there is no record.
    fn version(&self, key: &Key) -> Result<Option<Version>>;
    /// Takes the credential's exclusive lock, waiting at most `timeout` (`Busy`).
    fn lock(&self, key: &Key, timeout: Duration) -> Result<Box<dyn Locked>>;
    /// Takes the exclusive lock if it is free; `None` when another holds it.
    fn try_lock(&self, key: &Key) -> Result<Option<Box<dyn Locked>>> {
        match self.lock(key, Duration::ZERO) {
            Ok(locked) => Ok(Some(locked)),
            Err(e) if e.code() == crate::error::ErrorCode::Busy => Ok(None),
            Err(e) => Err(e),
        }
    }
    /// Waits, taking nothing, until no process holds the lock exclusively, at most `timeout`
    /// (`Busy`); how long it waited. Every waiter wakes at once when the holder releases
    /// (DESIGN.md §4 step 2.3). A backend that cannot wait so returns at once, and its
    /// callers queue for the exclusive lock instead. `on_release` runs at the release, before
    /// the caller's task wakes, on the thread that saw it (never when the wait returned at
    /// once, timed out or failed), given the record if the backend read it at the release
    /// (in the wait's own round trip), else `None` (the callback reads it). A wait polled on a
    /// blocking caller's own thread may block it (`runtime::is_callers_thread`).
    fn wait_released(
        &self,
        _key: &Key,
        _timeout: Duration,
        _on_release: AtRelease,
    ) -> futures_util::future::BoxFuture<'static, Result<Duration>> {
        Box::pin(async { Ok(Duration::ZERO) })
    }
    /// Every key with a record.
    fn list(&self) -> Result<Vec<Key>>;
    /// Permissions and file-system or server facts for `status`.
    fn placement(&self, key: &Key) -> Placement;
}

/// A credential whose lock is held; dropping it releases the lock.
///
/// Writes are fenced: a write takes effect only while this handle still holds the lock
/// (a database commits it in the lock's own session, so a holder whose session ended cannot
/// commit), and only over the record this handle last read or wrote. `Ok` means committed:
/// nothing a write makes is published (to this process's slot or anyone) before that.
pub trait Locked: Send {
    /// How long taking the lock waited.
    fn waited(&self) -> Duration;
    /// The authoritative read; what the next write is fenced on.
    fn read(&mut self) -> Result<Option<(Record, Version)>>;
    /// Replaces the record atomically and durably. An error means the record was NOT
    /// replaced; a replacement that may not survive a power loss is `Ok` and says so.
    fn write(&mut self, record: &Record) -> Result<Committed>;
    /// Removes the record (not the lock); whether there was one.
    fn remove(&mut self) -> Result<bool>;
    /// Says that the holder does nothing more under the lock after its next write, so that a
    /// backend whose release costs a round trip (PostgreSQL) may release with the commit:
    /// the waiters wake as the record lands. The lock is released whatever the write's
    /// outcome, so the holder must not touch the store after it.
    fn release_with_next_write(&mut self) {}
}

/// How a key check's `Corrupt` reason starts (see [`holds_another_key`]).
const ANOTHER_KEY: &str = "the record holds key ";

/// Whether `e` says the file holds another key's record (two keys share one file on a
/// case-insensitive file system): no save may replace it, since it is another credential.
pub(crate) fn holds_another_key(e: &Error) -> bool {
    matches!(e, Error::Corrupt { reason, .. } if reason.starts_with(ANOTHER_KEY))
}

/// Every read checks that the record is the one asked for (DESIGN.md §3): two keys whose
/// names a file system does not tell apart (case-insensitive, or stems made by an older
/// version) would otherwise read, refresh and overwrite each other's credential.
pub(crate) fn check_key(record: &Record, key: &Key) -> Result<()> {
    if record.key == key.as_str() {
        return Ok(());
    }
    Err(Error::Corrupt {
        ctx: Context {
            key: Some(key.as_str().to_owned()),
            path: None,
        },
        reason: format!(
            "{ANOTHER_KEY}{:?}, not {:?}: two keys share one file (a case-insensitive \
             file system?)",
            record.key,
            key.as_str()
        ),
    })
}

/// Names the record's place in a parse error (`Corrupt`, `UnsupportedFormat`).
pub(crate) fn with_place(e: Error, place: &Path) -> Error {
    match e {
        Error::Corrupt { mut ctx, reason } => {
            ctx.path = Some(place.to_owned());
            Error::Corrupt { ctx, reason }
        }
        Error::UnsupportedFormat { mut ctx, format } => {
            ctx.path = Some(place.to_owned());
            Error::UnsupportedFormat { ctx, format }
        }
        other => other,
    }
}
