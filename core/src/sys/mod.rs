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

/// The plain form of a verbatim Windows path (`\\?\C:\…` → `C:\…`, `\\?\UNC\host\share\…` →
/// `\\host\share\…`), which `fs::canonicalize` returns on Windows: the plain form names the
/// same file and is what users see everywhere else (Explorer, Node's `realpath`). `None` when the
/// plain form could mean another file or be refused by Win32's path rules: a component that is
/// `.`, `..`, a device name or ends in a dot or a space, or a path of `MAX_PATH` (260) or more.
#[cfg_attr(unix, allow(dead_code))] // Unix uses it only in its tests
pub(crate) fn plain_windows_path(verbatim: &str) -> Option<String> {
    let plain = if let Some(rest) = verbatim.strip_prefix(r"\\?\UNC\") {
        format!(r"\\{rest}")
    } else {
        let rest = verbatim.strip_prefix(r"\\?\")?;
        match rest.as_bytes() {
            [d, b':', b'\\', ..] if d.is_ascii_alphabetic() => rest.to_string(),
            _ => return None,
        }
    };
    const MAX_PATH: usize = 260;
    let mut components = plain.trim_start_matches('\\').split('\\').skip(1);
    let ok = plain.encode_utf16().count() < MAX_PATH
        && !plain.contains('/')
        && components.all(|c| {
            c != "." && c != ".." && !c.ends_with(['.', ' ']) && !crate::key::is_device_name(c)
        });
    ok.then_some(plain)
}

#[cfg(test)]
mod tests {
    use super::plain_windows_path as plain;

    #[test]
    fn verbatim_paths_become_plain_when_they_name_the_same_file() {
        assert_eq!(
            plain(r"\\?\C:\Users\me\AppData\Local\oauth-lock").as_deref(),
            Some(r"C:\Users\me\AppData\Local\oauth-lock")
        );
        assert_eq!(plain(r"\\?\c:\").as_deref(), Some(r"c:\"));
        assert_eq!(
            plain(r"\\?\UNC\host\share\store").as_deref(),
            Some(r"\\host\share\store")
        );
    }

    #[test]
    fn verbatim_paths_stay_when_the_plain_form_would_differ() {
        for p in [
            r"C:\already\plain",
            r"\\?\Volume{0b1c}\store",
            r"\\?\C:\store\trailing.",
            r"\\?\C:\store\trailing ",
            r"\\?\C:\store\..\up",
            r"\\?\C:\store\.\here",
            r"\\?\C:\dev\con",
            r"\\?\C:\dev\LPT1.txt",
            r"\\?\C:\a/b",
        ] {
            assert_eq!(plain(p), None, "{p}");
        }
        let long = format!(r"\\?\C:\{}", "d".repeat(257));
        assert_eq!(plain(&long), None);
        let fits = format!(r"\\?\C:\{}", "d".repeat(256));
        assert_eq!(plain(&fits).map(|p| p.len()), Some(259));
    }
}
