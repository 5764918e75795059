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

/// Opens read-only as [`private_file`] does, creating the file if it is missing: a lock
/// file's contenders, since `flock` needs no write access and the close of a read-only
/// descriptor is no `IN_CLOSE_WRITE`, the event that close watches take for a release.
#[cfg(target_os = "linux")]
pub(crate) fn private_file_read_only(opts: &mut OpenOptions, mode: u32) -> &mut OpenOptions {
    opts.read(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_CREAT)
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

/// A watch on lock files that wakes when a descriptor opened for writing on one is closed:
/// what a holder does at its release (it unlocks, then closes its beacon, the only writable
/// descriptor on a lock file; a holder that dies is closed by the kernel). It lets the shared
/// wait of DESIGN.md §4 step 2.3 block the caller's own thread with a timeout, which
/// `flock(2)` has not, so that a woken process has one thread to wake, not two (Linux's
/// inotify; other platforms wait on a thread of their own).
#[cfg(target_os = "linux")]
pub(crate) struct CloseWatch {
    fd: std::os::fd::OwnedFd,
    /// The watch descriptor of the file watched now (-1: none yet).
    wd: std::sync::atomic::AtomicI32,
}

#[cfg(target_os = "linux")]
impl CloseWatch {
    /// A watch with nothing watched yet ([`watch`](Self::watch)); fails when the user's
    /// inotify instances are used up, and the caller then waits as other platforms do.
    pub(crate) fn new() -> std::io::Result<CloseWatch> {
        use std::os::fd::{FromRawFd, OwnedFd};
        // SAFETY: inotify_init1 takes flags only; a non-negative result is a new descriptor
        // that nothing else owns.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by inotify_init1 and is owned here alone.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(CloseWatch {
            fd,
            wd: std::sync::atomic::AtomicI32::new(-1),
        })
    }

    /// Watches `path` (not through a symlink; again is a no-op), and no longer the file watched
    /// before, which a pooled watch would otherwise wake on for every lock file its process
    /// ever waited on; forgets the closes seen so far, so that the next [`wait`](Self::wait)
    /// returns on a close of `path` from now on.
    pub(crate) fn watch(&self, path: &Path) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: `fd` is a live inotify descriptor and `c` a NUL-terminated path that outlives
        // the call.
        let wd = unsafe {
            libc::inotify_add_watch(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::IN_CLOSE_WRITE | libc::IN_DONT_FOLLOW,
            )
        };
        if wd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let before = self.wd.swap(wd, std::sync::atomic::Ordering::Relaxed);
        if before >= 0 && before != wd {
            // SAFETY: `fd` is a live inotify descriptor; a watch descriptor gone already (its
            // file deleted) gives EINVAL, which changes nothing.
            unsafe { libc::inotify_rm_watch(self.fd.as_raw_fd(), before) };
        }
        self.drain();
        Ok(())
    }

    /// Reads every event queued (the descriptor does not block).
    pub(crate) fn drain(&self) {
        use std::os::fd::AsRawFd;
        /// Room for one more event, the longest a watch can queue (a name only comes with a
        /// directory's watch): a read that leaves this much of the buffer unused took every
        /// event queued, so the `EAGAIN` read after it is saved (one system call less for
        /// every woken waiter). An event queued after the read wakes the next wait, which
        /// checks the lock again: never missed, at worst a recheck.
        const ONE_MORE: usize =
            std::mem::size_of::<libc::inotify_event>() + libc::NAME_MAX as usize + 1;
        let mut buf = [0u8; 1024];
        loop {
            // SAFETY: `buf` is a writable buffer of the length given, borrowed for the call.
            let r = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            match usize::try_from(r) {
                Ok(n) if n > 0 && n + ONE_MORE > buf.len() => {}
                _ => return,
            }
        }
    }

    /// Blocks until a writer's descriptor on the file was closed since the last call, or
    /// `timeout` passed (then `false`). A `true` may be another process's close, not a
    /// release: the caller checks the lock again.
    pub(crate) fn wait(&self, timeout: std::time::Duration) -> std::io::Result<bool> {
        use std::os::fd::AsRawFd;
        let fd = self.fd.as_raw_fd();
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // Rounded up, so that a wait short of a millisecond does not spin.
        let ms = i32::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        // SAFETY: `pfd` is one valid pollfd, exclusively borrowed for the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            // A signal: the caller checks the lock and its deadline, then waits again.
            return if e.kind() == std::io::ErrorKind::Interrupted {
                Ok(true)
            } else {
                Err(e)
            };
        }
        if n == 0 {
            return Ok(false);
        }
        // Drained, so that the next wait blocks until the next close.
        self.drain();
        Ok(true)
    }
}

/// For the runtime's reactor (an async wait).
#[cfg(target_os = "linux")]
impl std::os::fd::AsRawFd for CloseWatch {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
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
