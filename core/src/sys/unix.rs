//! Unix: modes, `O_NOFOLLOW`, inodes, `rename(2)`, `statfs` and the at-fork handler.

use super::Stamp;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// Opens as the store's own files are opened: created with `mode`, never through a symlink,
/// not inherited by `exec`.
pub(crate) fn private_file(opts: &mut OpenOptions, mode: u32) -> &mut OpenOptions {
    opts.mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
}

/// Creates directories readable only by the user (0700).
pub(crate) fn private_dir(builder: &mut DirBuilder) -> &mut DirBuilder {
    builder.mode(0o700)
}

/// The error for a store path that is not a directory.
pub(crate) fn not_a_directory() -> std::io::Error {
    std::io::Error::from_raw_os_error(libc::ENOTDIR)
}

/// The permission bits of a file (`0o777`).
pub(crate) fn mode_of(meta: &fs::Metadata) -> u32 {
    meta.permissions().mode() & 0o777
}

/// Sets the permission bits exactly (the umask narrowed the mode given at creation).
pub(crate) fn set_mode(file: &File, mode: u32) -> std::io::Result<()> {
    file.set_permissions(fs::Permissions::from_mode(mode))
}

/// Whether group or others may read the file (`status` reports it).
pub(crate) fn loose_permissions(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o077 != 0)
        .unwrap_or(false)
}

fn stamp_of(meta: &fs::Metadata) -> Stamp {
    Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        mtime_ns: meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        size: meta.size(),
    }
}

/// The stamp of an open file.
pub(crate) fn stamp(file: &File) -> std::io::Result<Stamp> {
    Ok(stamp_of(&file.metadata()?))
}

/// The stamp of `path`, following a final symlink when `follow`.
pub(crate) fn stamp_path(path: &Path, follow: bool) -> std::io::Result<Stamp> {
    let meta = if follow {
        fs::metadata(path)?
    } else {
        fs::symlink_metadata(path)?
    };
    Ok(stamp_of(&meta))
}

/// The absolute path with every link resolved (a store's identity, a mirror's real directory).
pub(crate) fn canonical(path: &Path) -> std::io::Result<std::path::PathBuf> {
    fs::canonicalize(path)
}

/// Opens a directory to read its stamp or set its times.
pub(crate) fn open_dir(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

/// Replaces `to` with `from` atomically (`rename(2)`).
pub(crate) fn replace(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::rename(from, to)
}

/// Makes a rename in `dir` durable: fsync of the directory.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The descriptor a forked child must close, to track for the at-fork handler.
pub(crate) fn fork_fd(file: &File) -> Option<i32> {
    Some(file.as_raw_fd())
}

/// Closes a descriptor inherited across fork (async-signal-safe).
pub(crate) fn close_fd(fd: i32) {
    // SAFETY: the caller took `fd` out of its table, so it is closed once; close(2) has no
    // memory-safety preconditions and is async-signal-safe, as an at-fork child handler needs.
    unsafe { libc::close(fd) };
}

/// Registers `child` to run in the child of every `fork`.
pub(crate) fn at_fork_child(child: extern "C" fn()) {
    // SAFETY: `child` is an `extern "C" fn()` that lives for the whole program; the caller
    // promises it does only async-signal-safe work, as a child handler must.
    unsafe {
        libc::pthread_atfork(None, None, Some(child));
    }
}

/// Ends this process at once, as a crash would (test fault points).
#[cfg(feature = "fault-injection")]
pub(crate) fn kill_self() {
    // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

/// Whether `dir` is on a network file system (NFS, SMB, …), whose locks may not be reliable.
#[cfg(target_os = "linux")]
pub(crate) fn on_network_fs(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    const NETWORK: [i64; 9] = [
        0x6969,      // NFS
        0x517B,      // SMB
        0xFF53_4D42, // CIFS
        0xFE53_4D42, // SMB2
        0x5346_414F, // AFS
        0x7375_7245, // CODA
        0x00C3_6400, // Ceph
        0x0BD0_0BD0, // Lustre
        0x0102_1997, // 9P
    ];
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `statfs` is plain old data (integers and arrays of them), for which all-zero
    // bytes are a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated string that outlives the call, and `st` is a valid,
    // exclusively borrowed `statfs` for the kernel to fill.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    NETWORK.contains(&(st.f_type as i64))
}

/// Whether `dir` is on a network file system: not known on this Unix.
#[cfg(not(target_os = "linux"))]
pub(crate) fn on_network_fs(_dir: &Path) -> bool {
    false
}

/// A stream to a database's local socket (a Unix-domain socket).
pub(crate) type LocalStream = tokio::net::UnixStream;

/// Connects to a server's Unix-domain socket at `path`.
pub(crate) async fn connect_local(path: &str) -> std::io::Result<LocalStream> {
    tokio::net::UnixStream::connect(path).await
}

/// A socket's descriptor, tracked for a forked child to close.
pub(crate) trait ForkFd {
    /// The descriptor, if this platform forks.
    fn fork_fd(&self) -> Option<i32>;
}

impl<T: AsRawFd> ForkFd for T {
    fn fork_fd(&self) -> Option<i32> {
        Some(self.as_raw_fd())
    }
}

/// Bounds how long sent data may stay unacknowledged before the connection is dropped.
pub(crate) fn set_tcp_user_timeout(sock: &socket2::SockRef<'_>, timeout: std::time::Duration) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = sock.set_tcp_user_timeout(Some(timeout));
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (sock, timeout);
}
