//! The directory store of DESIGN.md §3: one record file and one lock file per key, written
//! by temp file + atomic replace, locked with the kernel's file lock (`crate::lock`); the
//! platform's calls are in `crate::sys`.

use super::{check_key, with_place, Backend, Committed, Location, Locked, Placement, Version};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::lock::{lock_exclusive, LockGuard};
use crate::record::Record;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The directory store of DESIGN.md §3.
#[derive(Debug)]
pub struct FsBackend {
    dir: PathBuf,
    location: Location,
}

impl FsBackend {
    /// Opens (creating, 0700) the directory.
    pub fn open(dir: &Path) -> Result<FsBackend> {
        if dir.as_os_str().is_empty() {
            return Err(Error::invalid("the store directory path is empty"));
        }
        crate::sys::private_dir(fs::DirBuilder::new().recursive(true))
            .create(dir)
            .map_err(|e| Error::io("creating the store directory", dir, &e))?;
        let dir = crate::sys::canonical(dir)
            .map_err(|e| Error::io("resolving the store directory", dir, &e))?;
        if !dir.is_dir() {
            let e = crate::sys::not_a_directory();
            return Err(Error::io("opening the store directory", &dir, &e));
        }
        Ok(FsBackend {
            location: Location::Dir(dir.clone()),
            dir,
        })
    }

    fn record_path(&self, key: &Key) -> PathBuf {
        self.dir.join(format!("{}.json", key.stem()))
    }

    fn lock_path(&self, key: &Key) -> PathBuf {
        self.dir.join(format!("{}.lock", key.stem()))
    }
}

/// Reads the record of `key` at `path`: `None` when there is none; `Corrupt` when it does not
/// parse or holds another key (both with the path).
fn read_record(key: &Key, path: &Path) -> Result<Option<(Record, Version)>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("opening the record", path, &e)),
    };
    let stamp = crate::sys::stamp(&file).map_err(|e| Error::io("reading the record", path, &e))?;
    let mut bytes = Vec::with_capacity(stamp.size as usize + 1);
    // Through `Take`: `File::read_to_end` would ask the size and the position again (a
    // `statx` and an `lseek`), which the stamp just told; every woken waiter reads once.
    Read::by_ref(&mut file)
        .take(u64::MAX)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("reading the record", path, &e))?;
    let record = Record::parse(&bytes).map_err(|e| with_place(e, path))?;
    check_key(&record, key).map_err(|e| with_place(e, path))?;
    Ok(Some((record, version_of(stamp))))
}

/// The version of the file `stamp` describes.
fn version_of(stamp: crate::sys::Stamp) -> Version {
    Version::file(stamp.dev, stamp.ino, stamp.mtime_ns, stamp.size)
}

use crate::sys::sync_dir;

/// The name of a writer's temp file, `.<record>.<pid>.<seq>.tmp`: built and recognised here
/// only, so that the cleanup matches exactly the names `write_atomically` makes, and never
/// another record's (the temp files of `a.json.x.json` also start with `.a.json.`).
struct TempName;

impl TempName {
    fn build(record: &str, pid: u32, seq: u64) -> String {
        format!(".{record}.{pid}.{seq}.tmp")
    }

    /// The record `file` is a temp file of, if it has exactly the shape `build` makes.
    fn record_of(file: &str) -> Option<&str> {
        let inner = file.strip_prefix('.')?.strip_suffix(".tmp")?;
        let mut parts = inner.rsplitn(3, '.');
        let (seq, pid, record) = (parts.next()?, parts.next()?, parts.next()?);
        let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        (number(seq) && number(pid) && !record.is_empty()).then_some(record)
    }
}

/// Temp files of this record left by writers killed before their rename (G6). Every writer
/// of this record holds its lock, so while we hold it any such file is a dead writer's;
/// removing them keeps a crash-prone machine's store from filling up. Only this record's:
/// another record's writer holds another lock and may be between its fsync and its rename.
/// Best effort: they are never read as records either way.
fn remove_stale_temp_files(dir: &Path, path: &Path) {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        if file.to_str().and_then(TempName::record_of) == Some(name) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Temp file → write → fsync → rename over the record → fsync the directory.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<Committed> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .expect("a record path has a file name")
        .to_string_lossy();
    let tmp = dir.join(TempName::build(
        &name,
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
    ));
    let written = (|| {
        let mut f =
            crate::sys::private_file(OpenOptions::new().write(true).create_new(true), 0o600)
                .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        let stamp = crate::sys::stamp(&f)?;
        // Closed before the replace: Windows cannot rename a file open without
        // FILE_SHARE_DELETE, and the stamp is read already.
        drop(f);
        #[cfg(feature = "fault-injection")]
        crate::fault::hit("before-rename");
        crate::sys::replace(&tmp, path)?;
        Ok::<_, std::io::Error>(version_of(stamp))
    })();
    match written {
        Ok(v) => {
            #[cfg(feature = "fault-injection")]
            crate::fault::hit("before-dir-sync");
            // The rename happened: the record is committed whatever the sync says.
            let not_durable = sync_dir(dir)
                .err()
                .map(|e| Error::io("syncing the store directory", dir, &e));
            Ok(Committed {
                version: v,
                not_durable,
            })
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(Error::io("writing the record", path, &e))
        }
    }
}

impl FsBackend {
    fn locked(&self, key: &Key, guard: LockGuard) -> Box<dyn Locked> {
        Box::new(FsLocked {
            key: key.clone(),
            dir: self.dir.clone(),
            path: self.record_path(key),
            guard,
        })
    }
}

impl Backend for FsBackend {
    fn location(&self) -> &Location {
        &self.location
    }

    fn place(&self, key: &Key) -> PathBuf {
        self.record_path(key)
    }

    fn read(&self, key: &Key) -> Result<Option<(Record, Version)>> {
        read_record(key, &self.record_path(key))
    }

    fn version(&self, key: &Key) -> Result<Option<Version>> {
        let path = self.record_path(key);
        match crate::sys::stamp_path(&path, true) {
            Ok(s) => Ok(Some(version_of(s))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("checking the record", &path, &e)),
        }
    }

    fn lock(&self, key: &Key, timeout: Duration) -> Result<Box<dyn Locked>> {
        let guard = lock_exclusive(&self.lock_path(key), timeout)?;
        Ok(self.locked(key, guard))
    }

    fn try_lock(&self, key: &Key) -> Result<Option<Box<dyn Locked>>> {
        Ok(crate::lock::try_lock_exclusive(&self.lock_path(key))?.map(|g| self.locked(key, g)))
    }

    fn wait_released(
        &self,
        key: &Key,
        timeout: Duration,
        on_release: super::AtRelease,
    ) -> futures_util::future::BoxFuture<'static, Result<Duration>> {
        let path = self.lock_path(key);
        // The file is re-read by the callback, on the thread that saw the release.
        let mut on_release: Option<crate::lock::OnRelease> =
            Some(Box::new(move || on_release(None)));
        Box::pin(async move {
            let watching = crate::lock::wait_released_watching(&path, timeout, &mut on_release);
            if let Some(waited) = watching.await {
                return waited;
            }
            crate::lock::wait_released(&path, timeout, on_release).await
        })
    }

    fn list(&self) -> Result<Vec<Key>> {
        let entries =
            fs::read_dir(&self.dir).map_err(|e| Error::io("listing the store", &self.dir, &e))?;
        let mut keys: Vec<Key> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                Key::from_stem(name.strip_suffix(".json")?)
            })
            .collect();
        keys.sort();
        Ok(keys)
    }

    fn placement(&self, key: &Key) -> Placement {
        let loose = crate::sys::loose_permissions;
        Placement {
            insecure_permissions: loose(&self.dir) || loose(&self.record_path(key)),
            network_fs: on_network_fs(&self.dir),
            server: None,
        }
    }
}

struct FsLocked {
    key: Key,
    dir: PathBuf,
    path: PathBuf,
    guard: LockGuard,
}

impl Locked for FsLocked {
    fn waited(&self) -> Duration {
        self.guard.waited
    }

    fn read(&mut self) -> Result<Option<(Record, Version)>> {
        read_record(&self.key, &self.path)
    }

    fn write(&mut self, record: &Record) -> Result<Committed> {
        remove_stale_temp_files(&self.dir, &self.path);
        write_atomically(&self.dir, &self.path, &record.to_bytes())
    }

    fn remove(&mut self) -> Result<bool> {
        let existed = match fs::remove_file(&self.path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::io("removing the record", &self.path, &e)),
        };
        sync_dir(&self.dir).map_err(|e| Error::io("syncing the store directory", &self.dir, &e))?;
        Ok(existed)
    }
}

use crate::sys::on_network_fs;
