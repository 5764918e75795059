//! The platform layer: every call that differs between Unix and Windows lives here, so that
//! the rest of the core (the lock, the stores, the mirrors) is written once for both.
//!
//! What each platform gives (DESIGN.md §3, §4):
//! - files: Unix creates them 0600 (directories 0700) with `O_NOFOLLOW | O_CLOEXEC`; Windows
//!   creates them with the ACL they inherit from their directory (`%LOCALAPPDATA%` is the
//!   user's own), opened with every share mode so that a reader never blocks a commit.
//! - the replace: `rename(2)` on Unix; `MoveFileExW(REPLACE_EXISTING | WRITE_THROUGH)` on
//!   Windows, retried for a bounded time while another handle (a reader, an antivirus) keeps
//!   the record open without `FILE_SHARE_DELETE`.
//! - the version of a record: device + inode + mtime + size on Unix; volume serial + file
//!   index + last-write time + size on Windows.
//! - fork: only Unix has it; the at-fork handler closes inherited lock descriptors.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

/// What identifies one version of a file: a replace makes a new file (a new id), an edit in
/// place a new last-write time or size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// The device (Unix) or volume serial number (Windows).
    pub dev: u64,
    /// The inode (Unix) or file index (Windows).
    pub ino: u64,
    /// The last write, in nanoseconds (since 1970 on Unix, since 1601 on Windows).
    pub mtime_ns: i64,
    pub size: u64,
}
