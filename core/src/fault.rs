//! Test-only crash points, compiled only with the cargo feature `fault-injection` (never in a
//! normal or release build): the crash tests (`tests/crash.rs`) must see a process die at
//! exact moments of the protocol — holding the lock, after the provider answered but before
//! the commit, between the temp file's fsync and the rename, between the rename and the
//! directory fsync — which random kills hit too rarely to prove G3 and G6.
//!
//! `OAUTH_LOCK_FAULT=<point>` arms one of [`POINTS`]. When the process reaches it, it sends
//! itself `SIGKILL`; or, if `OAUTH_LOCK_FAULT_MARKER=<file>` is set too, it creates that file
//! (holding its pid) and sleeps, so that the test can look at the store at that very moment
//! and kill it itself (after a minute it kills itself, so that no orphan lingers).
//!
//! `OAUTH_LOCK_FAULT_RESUME=<file>` (with the marker) parks the process instead of dooming it:
//! after creating the marker it waits until `<file>` exists and then returns from the point
//! and goes on normally, so that a test can make something happen at that very moment (another
//! writer's commit, say) and then see how the parked one fares. If the file does not appear
//! within a minute, it kills itself as above.

use std::time::Duration;

/// The crash points, in protocol order.
pub(crate) const POINTS: [&str; 4] = ["locked", "answered", "before-rename", "before-dir-sync"];

/// Dies here if `OAUTH_LOCK_FAULT` names `point`; otherwise returns at once.
pub(crate) fn hit(point: &'static str) {
    debug_assert!(POINTS.contains(&point), "unknown fault point {point}");
    if std::env::var_os("OAUTH_LOCK_FAULT").is_none_or(|armed| armed != point) {
        return;
    }
    if let Some(marker) = std::env::var_os("OAUTH_LOCK_FAULT_MARKER") {
        // The test only waits for the file to exist; its content is for a human reading it.
        let _ = std::fs::write(marker, std::process::id().to_string());
        match std::env::var_os("OAUTH_LOCK_FAULT_RESUME") {
            Some(resume) => {
                let parked = std::time::Instant::now();
                while parked.elapsed() < Duration::from_secs(60) {
                    if std::path::Path::new(&resume).exists() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            None => std::thread::sleep(Duration::from_secs(60)),
        }
    }
    crate::sys::kill_self();
    // SIGKILL is delivered before kill() returns to a single-threaded caller, but other
    // threads may run a moment longer; this one must not go on past the point.
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    /// Unless `OAUTH_LOCK_FAULT` names it, a point returns at once (test builds have them all).
    #[test]
    fn points_that_are_not_armed_return() {
        if std::env::var_os("OAUTH_LOCK_FAULT").is_none() {
            for point in super::POINTS {
                super::hit(point);
            }
        }
    }
}
