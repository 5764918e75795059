//! `oauth-lock probe` (hidden): one `access_token` call by one process, reported with the
//! core's lock counters, for the tests and benchmarks of the hand-off (DESIGN.md §4 step 2.3):
//! they start many at one instant behind a slow refresh and check who took the exclusive lock
//! and when each returned. Prints one JSON line; never the token, only its fingerprint.

use crate::commands::{open, Failure, Outcome};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    pub key: String,
    /// Start at this Unix time in nanoseconds (so that many processes start at one instant)
    #[arg(long)]
    pub start_at_ns: Option<u128>,
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

pub fn probe(dir: Option<PathBuf>, a: ProbeArgs) -> Outcome {
    let source = open(dir)?.source(&a.key)?;
    if let Some(at) = a.start_at_ns {
        let wait = at.saturating_sub(now_ns());
        std::thread::sleep(Duration::from_nanos(u64::try_from(wait).unwrap_or(0)));
    }
    let started_ns = now_ns();
    let token = source.access_token_blocking();
    let returned_ns = now_ns();
    let (generation, fingerprint, error) = match &token {
        Ok(t) => (Some(t.generation()), Some(t.fingerprint()), None),
        Err(e) => (None, None, Some(e.code().as_str())),
    };
    let report = serde_json::json!({
        "pid": std::process::id(),
        "generation": generation,
        "fingerprint": fingerprint,
        "error": error,
        "started_ns": started_ns.to_string(),
        "returned_ns": returned_ns.to_string(),
        "exclusive_locks": oauth_lock::lock::exclusive_acquisitions(),
        "shared_waits": oauth_lock::lock::shared_waits(),
        "on_release_runs": oauth_lock::lock::on_release_runs(),
        "own_thread_releases": oauth_lock::lock::own_thread_releases(),
        "releases_seen_at_close": oauth_lock::lock::releases_seen_at_close(),
    });
    println!("{report}");
    match token {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(Failure::OAuthLock(e)),
    }
}
