//! Windows: `MoveFileExW`, file ids from `GetFileInformationByHandle`, directories opened with
//! backup semantics, and no fork.

use super::Stamp;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::path::Path;
use std::time::{Duration, Instant};
use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_DIRECTORY, ERROR_LOCK_VIOLATION, ERROR_SHARING_VIOLATION,
};
use windows_sys::Win32::Storage::FileSystem::{
    GetDriveTypeW, GetFileInformationByHandle, MoveFileExW, BY_HANDLE_FILE_INFORMATION,
    FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT, FILE_READ_ATTRIBUTES,
    FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_WRITE_ATTRIBUTES,
    MOVEFILE_REPLACE_EXISTING, MOVEFILE_WRITE_THROUGH,
};

/// How long a replace is retried while another handle keeps the record from being replaced
/// (a reader without `FILE_SHARE_DELETE`, an antivirus scan, Wine's rename over an open file):
/// a failed commit is a lost rotation, so it is worth waiting for.
const REPLACE_RETRY_FOR: Duration = Duration::from_secs(5);

/// Opens as the store's own files are opened. Windows has no mode bits: the file gets the ACL
/// it inherits from its directory (under `%LOCALAPPDATA%`, the user's own). Every share mode,
/// so that our readers never keep a writer from replacing the record.
pub(crate) fn private_file(opts: &mut OpenOptions, _mode: u32) -> &mut OpenOptions {
    opts.share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
}

/// Creates directories; they inherit their parent's ACL (see `private_file`).
pub(crate) fn private_dir(builder: &mut DirBuilder) -> &mut DirBuilder {
    builder
}

/// The error for a store path that is not a directory.
pub(crate) fn not_a_directory() -> std::io::Error {
    std::io::Error::from_raw_os_error(ERROR_DIRECTORY as i32)
}

/// Windows has no permission bits: a mirror's file is written as 0o600 would say, with the
/// ACL it inherits.
pub(crate) fn mode_of(_meta: &fs::Metadata) -> u32 {
    0o600
}

/// No mode bits to set on Windows (see `private_file`).
pub(crate) fn set_mode(_file: &File, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// Not checked on Windows: the files inherit the ACL of their directory, and `status`
/// reports them as not loose (documented in README "Windows").
pub(crate) fn loose_permissions(_path: &Path) -> bool {
    false
}

/// The stamp of an open file: volume serial, file index, last-write time and size.
pub(crate) fn stamp(file: &File) -> std::io::Result<Stamp> {
    // SAFETY: the structure is plain old data, valid when all zero.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: the handle is open for as long as `file` is borrowed, and `info` is a valid,
    // exclusively borrowed structure for the call to fill.
    if unsafe { GetFileInformationByHandle(file.as_raw_handle() as _, &mut info) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    let wide = |hi: u32, lo: u32| (u64::from(hi) << 32) | u64::from(lo);
    let write = wide(
        info.ftLastWriteTime.dwHighDateTime,
        info.ftLastWriteTime.dwLowDateTime,
    );
    Ok(Stamp {
        dev: u64::from(info.dwVolumeSerialNumber),
        ino: wide(info.nFileIndexHigh, info.nFileIndexLow),
        // FILETIME counts 100 ns.
        mtime_ns: i64::try_from(write).unwrap_or(i64::MAX).saturating_mul(100),
        size: wide(info.nFileSizeHigh, info.nFileSizeLow),
    })
}

/// Opens `path` (a file or a directory) for its attributes only, so that it can be stamped
/// or have its times set without keeping anyone from replacing or removing it.
fn open_attributes(path: &Path, follow: bool) -> std::io::Result<File> {
    let flags = FILE_FLAG_BACKUP_SEMANTICS
        | if follow {
            0
        } else {
            FILE_FLAG_OPEN_REPARSE_POINT
        };
    OpenOptions::new()
        .access_mode(FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
        .custom_flags(flags)
        .open(path)
}

/// The stamp of `path`, following a final symlink when `follow`.
pub(crate) fn stamp_path(path: &Path, follow: bool) -> std::io::Result<Stamp> {
    stamp(&open_attributes(path, follow)?)
}

/// The absolute path with every link resolved (a store's identity, a mirror's real directory),
/// in its plain form where that names the same file ([`super::plain_windows_path`]): what a
/// user, `status` and Node's `realpath` (Claude Code's lock directory) all write.
pub(crate) fn canonical(path: &Path) -> std::io::Result<std::path::PathBuf> {
    let verbatim = fs::canonicalize(path)?;
    Ok(verbatim
        .to_str()
        .and_then(super::plain_windows_path)
        .map_or(verbatim, std::path::PathBuf::from))
}

/// Opens a directory to read its stamp or set its times (backup semantics: `File::open`
/// cannot open a directory on Windows).
pub(crate) fn open_dir(path: &Path) -> std::io::Result<File> {
    open_attributes(path, true)
}

fn wide(path: &Path) -> Vec<u16> {
    path.as_os_str().encode_wide().chain(Some(0)).collect()
}

/// Replaces `to` with `from` atomically and durably (`MoveFileExW` with
/// `MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH`). A sharing violation or access denied
/// (another handle has `to` open without `FILE_SHARE_DELETE`, which readers and scanners do
/// for a moment; Wine 8 refuses a rename over any open file) is retried for a bounded time.
pub(crate) fn replace(from: &Path, to_path: &Path) -> std::io::Result<()> {
    let (from, to) = (wide(from), wide(to_path));
    let start = Instant::now();
    let mut nap = Duration::from_millis(1);
    loop {
        // SAFETY: both are NUL-terminated UTF-16 strings that outlive the call.
        let moved = unsafe {
            MoveFileExW(
                from.as_ptr(),
                to.as_ptr(),
                MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH,
            )
        };
        if moved != 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        let transient = matches!(
            e.raw_os_error().map(|c| c as u32),
            Some(ERROR_SHARING_VIOLATION | ERROR_ACCESS_DENIED | ERROR_LOCK_VIOLATION)
        );
        // A directory in the way gives access denied too, and waiting will not move it.
        let blocked_for_good = fs::symlink_metadata(to_path).is_ok_and(|m| m.is_dir());
        if !transient || blocked_for_good || start.elapsed() >= REPLACE_RETRY_FOR {
            return Err(e);
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(50));
    }
}

/// Nothing to do: `MOVEFILE_WRITE_THROUGH` returns only once the rename is on disk (a
/// directory cannot be flushed on Windows).
pub(crate) fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// No fork on Windows: nothing to track.
pub(crate) fn fork_fd(_file: &File) -> Option<i32> {
    None
}

/// Never called on Windows (nothing is tracked).
pub(crate) fn close_fd(_fd: i32) {}

/// No fork on Windows: nothing to register.
pub(crate) fn at_fork_child(_child: extern "C" fn()) {}

/// Ends this process at once, as a crash would (test fault points).
#[cfg(feature = "fault-injection")]
pub(crate) fn kill_self() {
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, TerminateProcess};
    // SAFETY: the pseudo-handle of our own process is always valid.
    unsafe { TerminateProcess(GetCurrentProcess(), 137) };
}

/// Whether `dir` is on a network share (a UNC path or a mapped network drive), whose locks
/// may not be reliable.
pub(crate) fn on_network_fs(dir: &Path) -> bool {
    let s = dir.as_os_str().to_string_lossy();
    if s.starts_with(r"\\?\UNC\") || (s.starts_with(r"\\") && !s.starts_with(r"\\?\")) {
        return true;
    }
    let Some(root) = dir.ancestors().last() else {
        return false;
    };
    let mut root = wide(root);
    // GetDriveTypeW wants the root with its trailing backslash.
    if root.len() >= 2 && root[root.len() - 2] != u16::from(b'\\') {
        root.insert(root.len() - 1, u16::from(b'\\'));
    }
    const DRIVE_REMOTE: u32 = 4;
    // SAFETY: `root` is a NUL-terminated UTF-16 string that outlives the call.
    unsafe { GetDriveTypeW(root.as_ptr()) == DRIVE_REMOTE }
}

/// Windows has no Unix-domain sockets for a database: never connected (see `connect_local`).
pub(crate) type LocalStream = tokio::net::TcpStream;

/// A socket-directory host (`host=/run/postgresql`) names a Unix-domain socket, which a
/// PostgreSQL client on Windows does not reach.
pub(crate) async fn connect_local(path: &str) -> std::io::Result<LocalStream> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("{path}: a Unix-domain socket host is not supported on Windows; use a TCP host"),
    ))
}

/// A socket's descriptor for a forked child to close: none, without fork.
pub(crate) trait ForkFd {
    /// Always `None` on Windows.
    fn fork_fd(&self) -> Option<i32>;
}

impl<T> ForkFd for T {
    fn fork_fd(&self) -> Option<i32> {
        None
    }
}

/// Windows has no `TCP_USER_TIMEOUT`; the keepalives bound a vanished peer.
pub(crate) fn set_tcp_user_timeout(_sock: &socket2::SockRef<'_>, _timeout: std::time::Duration) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record `to` with "old", and "new" in `from`, in a fresh directory.
    fn old_and_new() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let (from, to) = (d.path().join(".rec.tmp"), d.path().join("rec.json"));
        fs::write(&to, b"old").unwrap();
        fs::write(&from, b"new").unwrap();
        (d, from, to)
    }

    /// Holds `file` open for `ms`, on a thread of its own.
    fn hold(file: File, ms: u64) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            let mut old = Vec::new();
            std::io::Read::read_to_end(&mut { file }, &mut old).unwrap();
            old
        })
    }

    /// A reader that opened the record without `FILE_SHARE_DELETE` (as some scanners do):
    /// Windows and Wine alike refuse the replace while it is open; the replace waits for it.
    #[test]
    fn a_replace_waits_for_a_reader_without_share_delete() {
        let (_d, from, to) = old_and_new();
        let reader = OpenOptions::new()
            .read(true)
            .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
            .open(&to)
            .unwrap();
        let held = hold(reader, 300);
        let start = Instant::now();
        replace(&from, &to).unwrap();
        assert!(
            start.elapsed() >= Duration::from_millis(250),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            held.join().unwrap(),
            b"old",
            "the reader read the old record"
        );
        assert_eq!(fs::read(&to).unwrap(), b"new");
        assert!(!from.exists());
    }

    /// A reader with every share mode (std's default, and ours). Wine 8 refuses a rename over
    /// any open file, so there the replace waits for the reader to close
    /// (`OAUTH_LOCK_TEST_UNDER_WINE=1`, set by scripts/test-windows); Windows may accept it at
    /// once. Either way the replace succeeds and the reader keeps the old content.
    #[test]
    fn a_replace_over_a_reader_with_every_share_mode_succeeds() {
        let (_d, from, to) = old_and_new();
        let reader = File::open(&to).unwrap();
        let held = hold(reader, 300);
        let start = Instant::now();
        replace(&from, &to).unwrap();
        let waited = start.elapsed();
        if std::env::var_os("OAUTH_LOCK_TEST_UNDER_WINE").is_some() {
            assert!(waited >= Duration::from_millis(250), "Wine: {waited:?}");
        }
        assert_eq!(held.join().unwrap(), b"old");
        assert_eq!(fs::read(&to).unwrap(), b"new");
    }

    /// A directory where the record should be: access denied that no wait cures, so the
    /// replace fails at once and leaves both in place.
    #[test]
    fn a_directory_in_the_way_fails_at_once() {
        let (_d, from, to) = old_and_new();
        fs::remove_file(&to).unwrap();
        fs::create_dir(&to).unwrap();
        let start = Instant::now();
        assert!(replace(&from, &to).is_err());
        assert!(start.elapsed() < REPLACE_RETRY_FOR);
        assert!(to.is_dir() && from.is_file());
    }

    /// The stamp: the same file keeps its id through a replace; a new file gets another.
    #[test]
    fn a_stamp_follows_the_file_through_a_replace() {
        let (_d, from, to) = old_and_new();
        let before = stamp_path(&to, true).unwrap();
        let moved = stamp_path(&from, true).unwrap();
        assert_ne!(before.ino, moved.ino);
        assert_eq!(moved.size, 3);
        replace(&from, &to).unwrap();
        let after = stamp_path(&to, true).unwrap();
        assert_eq!((after.dev, after.ino), (moved.dev, moved.ino));
        assert_eq!(stamp(&File::open(&to).unwrap()).unwrap(), after);
    }
}
