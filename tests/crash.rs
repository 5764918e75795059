//! Crash injection (DESIGN.md §2 G3 and G6, §9): `oauth-lock token` and `worker` processes are
//! SIGKILLed several hundred times against the strict mock provider — at random moments, and at
//! the core's test-only crash points (cargo feature `fault-injection`, core/src/fault.rs, which
//! `cargo test` turns on through cli/Cargo.toml's dev-dependency): waiting for the lock,
//! holding it, with the token request in flight (a slow provider), after the provider answered,
//! between the temp file's fsync and the rename, between the rename and the directory fsync.
//!
//! After every kill: the record parses and `status` reports no problem, no lock is held, and
//! the next caller gets a token. The one exception is the window G3 cannot close: the provider
//! rotated the refresh token and the answer died with the process before the rename (a
//! successful refresh that nobody saw and that was never committed). Then the store still holds
//! the spent token, byte-for-byte as before, and the next caller's refresh is a replay that a
//! strict provider answers with `invalid_grant`: that caller gets one `InvalidGrant`, the record
//! is marked dead (G5) and later callers get `NeedsLogin` without a network call. With a
//! provider grace window (`--grace`) that caller recovers instead. Replays at the provider
//! equal those lost answers exactly, and are 0 wherever the request was not yet sent or the
//! answer was committed: none is caused by oauth-lock.
//!
//! Then a full disk (`RLIMIT_FSIZE`, and a tiny tmpfs) and a read-only store during the commit:
//! the old record is intact and the caller gets `Io`.
//!
//! And a writer parked (not killed) before its rename while another key's writer cleans up its
//! own stale temp files: the parked writer's temp file survives and its save goes through.
//!
//! Each test writes its tally straight to stderr (visible without `--nocapture`).

mod support;

use oauth_lock::ErrorCode;
use rand::Rng;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::*;

const KEY: &str = "crash";
/// Longest any single process of these tests may take before the test calls it hung.
const HUNG: Duration = Duration::from_secs(20);

/// The `oauth-lock` binary these tests run: a hard link (or copy) of the one cargo built for
/// them, taken once, so that a concurrent `cargo build` (which relinks `target/debug/oauth-lock`
/// without the test-only feature) cannot swap it mid-run; checked to carry the crash points.
fn pinned_bin() -> &'static std::path::Path {
    static PINNED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PINNED.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(&dir).unwrap();
        // Links of earlier runs whose process is gone would keep their old binaries on disk.
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("crash-oauth-lock-") {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let pinned = dir.join(format!("crash-oauth-lock-{}", std::process::id()));
        let _ = std::fs::remove_file(&pinned);
        if std::fs::hard_link(bin(), &pinned).is_err() {
            std::fs::copy(bin(), &pinned).unwrap();
        }
        let has_hooks = Command::new("grep")
            .args(["-q", "-a", "OAUTH_LOCK_FAULT_MARKER"])
            .arg(&pinned)
            .status()
            .map(|s| s.success())
            .unwrap_or(true);
        assert!(
            has_hooks,
            "{} has no crash points: it was built without the `fault-injection` feature \
             (cli/Cargo.toml's dev-dependency turns it on for `cargo test`; did a concurrent \
             `cargo build` relink it?)",
            bin()
        );
        pinned
    })
}

/// `oauth-lock --dir DIR args…`, with the pinned binary.
fn cmd(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(pinned_bin());
    c.arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("OAUTH_LOCK_DIR");
    c
}

fn run(dir: &std::path::Path, args: &[&str]) -> Output {
    cmd(dir, args).output().unwrap()
}

/// The CLI's exit status for an oauth-lock error (see cli/src/main.rs).
fn exit_for(code: ErrorCode) -> i32 {
    10 + i32::from(code.number())
}

/// A child process that is killed (SIGKILL) and reaped if the test fails before it does.
struct Proc(Option<Child>);

impl Proc {
    fn spawn(mut command: Command) -> Proc {
        Proc(Some(command.spawn().expect("spawning oauth-lock")))
    }

    fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    fn running(&mut self) -> bool {
        self.0.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    /// SIGKILL (if still running), then reap: whether the signal is what ended it.
    fn kill(mut self) -> Ended {
        let mut child = self.0.take().unwrap();
        let _ = child.kill();
        let status = wait_timeout(&mut child, HUNG).expect("a killed process is reaped");
        Ended::from(status)
    }

    /// Waits for it to end by itself.
    fn wait(mut self) -> Ended {
        let mut child = self.0.take().unwrap();
        match wait_timeout(&mut child, HUNG) {
            Some(status) => Ended::from(status),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("an oauth-lock process hung for {HUNG:?}");
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug, PartialEq)]
enum Ended {
    Killed,
    Exited(i32),
}

impl From<std::process::ExitStatus> for Ended {
    fn from(status: std::process::ExitStatus) -> Ended {
        match (status.signal(), status.code()) {
            (Some(libc::SIGKILL), _) => Ended::Killed,
            (_, Some(code)) => Ended::Exited(code),
            (signal, _) => panic!("ended by signal {signal:?}, not SIGKILL"),
        }
    }
}

/// What happened at one kind of kill, over all its rounds.
#[derive(Default, Debug)]
struct Tally {
    /// Processes killed (by the test or by themselves at the crash point).
    kills: u64,
    /// Random-moment victims that finished before the kill arrived.
    finished_first: u64,
    /// Kills before the provider rotated anything.
    no_rotation: u64,
    /// Kills after the new tokens were committed (renamed into place).
    committed: u64,
    /// Kills after the provider rotated but before the commit: the answer died.
    lost_answers: u64,
    /// Next callers that got a valid token.
    recovered: u64,
    /// Next callers that got `InvalidGrant` (then `NeedsLogin`) after a lost answer.
    needs_login_after_lost: u64,
    /// Lost answers recovered through the provider's grace window.
    grace_reuses: u64,
    /// Replays the provider counted after the kill (the next caller's).
    replays: u64,
    /// Temp files left behind by the kill (never read as records; the next write removes them).
    stray_temp_files: u64,
}

/// Writes a table past the test harness's capture, so that `cargo test` shows it.
fn print_summary(title: &str, tallies: &BTreeMap<String, Tally>) {
    let mut out = format!(
        "\n{title}\n{:<30} {:>5} {:>8} {:>11} {:>9} {:>11} {:>9} {:>22} {:>12} {:>7} {:>10}\n",
        "kill point",
        "kills",
        "finished",
        "no-rotation",
        "committed",
        "lost-answer",
        "recovered",
        "needs-login-after-lost",
        "grace-reuses",
        "replays",
        "stray-temp"
    );
    let mut total = Tally::default();
    for (name, t) in tallies {
        out.push_str(&row(name, t));
        total.kills += t.kills;
        total.finished_first += t.finished_first;
        total.no_rotation += t.no_rotation;
        total.committed += t.committed;
        total.lost_answers += t.lost_answers;
        total.recovered += t.recovered;
        total.needs_login_after_lost += t.needs_login_after_lost;
        total.grace_reuses += t.grace_reuses;
        total.replays += t.replays;
        total.stray_temp_files += t.stray_temp_files;
    }
    out.push_str(&row("total", &total));
    let _ = std::io::stderr().write_all(out.as_bytes());
}

fn row(name: &str, t: &Tally) -> String {
    format!(
        "{:<30} {:>5} {:>8} {:>11} {:>9} {:>11} {:>9} {:>22} {:>12} {:>7} {:>10}\n",
        name,
        t.kills,
        t.finished_first,
        t.no_rotation,
        t.committed,
        t.lost_answers,
        t.recovered,
        t.needs_login_after_lost,
        t.grace_reuses,
        t.replays,
        t.stray_temp_files
    )
}

/// How a round's victim dies.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// At a crash point of core/src/fault.rs: it stops there (marker file), the test checks that
    /// it holds the lock, then kills it.
    Paused(&'static str),
    /// At a crash point, by its own SIGKILL.
    Itself(&'static str),
    /// After the provider received its token request, at a random moment of `--latency`.
    InFlight(Duration),
    /// At a random moment of its life, up to the given time after the spawn.
    Random(Duration),
}

impl Kill {
    fn label(&self) -> String {
        match self {
            Kill::Paused(p) | Kill::Itself(p) => format!("at {p}"),
            Kill::InFlight(_) => "request in flight".into(),
            Kill::Random(_) => "random moment".into(),
        }
    }

    fn point(&self) -> Option<&'static str> {
        match self {
            Kill::Paused(p) | Kill::Itself(p) => Some(p),
            _ => None,
        }
    }
}

/// One store with one logged-in credential, and its provider.
struct Rig {
    mock: Mock,
    tmp: tempfile::TempDir,
    dir: PathBuf,
    grace: bool,
    /// The provider's `--latency`: how long to let a request the victim left behind finish.
    latency: Duration,
    markers: u64,
}

fn counter(stats: &Value, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}"))
}

impl Rig {
    fn new(mock_args: &[&str]) -> Rig {
        let mock = Mock::start(mock_args);
        let (tmp, dir) = store_dir();
        login_and_save(&mock, &dir, KEY, None);
        let flag = |name: &str| {
            mock_args
                .iter()
                .position(|a| *a == name)
                .map(|i| humantime::parse_duration(mock_args[i + 1]).unwrap())
                .unwrap_or_default()
        };
        Rig {
            grace: !flag("--grace").is_zero(),
            latency: flag("--latency"),
            mock,
            tmp,
            dir,
            markers: 0,
        }
    }

    fn record_path(&self) -> PathBuf {
        self.dir.join(format!("{KEY}.json"))
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(self.record_path()).expect("the record exists")
    }

    /// The record's access token (handed to `--reject`; never printed).
    fn access_token(bytes: &[u8]) -> String {
        let v: Value = serde_json::from_slice(bytes).unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    fn generation(bytes: &[u8]) -> u64 {
        let v: Value = serde_json::from_slice(bytes).unwrap();
        v["generation"].as_u64().unwrap()
    }

    /// `oauth-lock token KEY --reject TOKEN`: a forced refresh, as after an HTTP 401.
    fn reject(&self, token: &str) -> Command {
        let mut c = cmd(&self.dir, &["token", KEY, "--reject", token]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    }

    fn quiet(mut c: Command) -> Command {
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    }

    fn new_marker(&mut self) -> PathBuf {
        self.markers += 1;
        self.tmp.path().join(format!("marker-{}", self.markers))
    }

    /// G6 after a kill: the record parses, `status` sees no problem, the temp files are never
    /// taken for credentials, and nobody holds the lock.
    fn assert_sound(&self, context: &str) {
        let bytes = self.bytes();
        if let Err(e) = oauth_lock::Record::parse(&bytes) {
            panic!("{context}: the record does not parse: {e}");
        }
        let o = run(&self.dir, &["status", KEY, "--json"]);
        assert!(o.status.success(), "{context}: status: {}", stderr(&o));
        let status: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(status["exists"], true, "{context}");
        assert!(
            status["problem"].is_null(),
            "{context}: status reports {}",
            status["problem"]
        );
        let o = run(&self.dir, &["status", "--json"]);
        let all: Value = serde_json::from_slice(&o.stdout).unwrap();
        let keys: Vec<&str> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, [KEY], "{context}: only the credential is listed");
        assert!(
            lock_is_free(&self.dir, KEY),
            "{context}: the lock is still held after the kill"
        );
    }

    /// A normal caller must get a token the provider accepts.
    fn assert_token_works(&self, o: &Output, context: &str) {
        assert!(o.status.success(), "{context}: {}", stderr(o));
        let token = stdout(o);
        assert_eq!(
            self.mock.resource_status(&token),
            200,
            "{context}: the token is accepted"
        );
    }

    /// One round: a victim forced to refresh dies as `how` says; the store is checked; the next
    /// caller's outcome is held to what the provider saw.
    fn round(&mut self, how: Kill, tally: &mut Tally) {
        let context = how.label();
        let context = context.as_str();
        let before = self.mock.stats();
        let bytes0 = self.bytes();
        let temps0 = temp_files(&self.dir, KEY).len();
        let mut victim = Self::quiet(self.reject(&Self::access_token(&bytes0)));
        let marker = self.new_marker();
        match how {
            Kill::Paused(point) => {
                victim
                    .env("OAUTH_LOCK_FAULT", point)
                    .env("OAUTH_LOCK_FAULT_MARKER", &marker);
            }
            Kill::Itself(point) => {
                victim.env("OAUTH_LOCK_FAULT", point);
            }
            _ => {}
        }
        let mut victim = Proc::spawn(victim);
        let ended = match how {
            Kill::Paused(point) => {
                let deadline = Instant::now() + HUNG;
                while !marker.exists() {
                    assert!(
                        victim.running(),
                        "the victim ended before crash point {point} (no crash points compiled in?)"
                    );
                    assert!(
                        Instant::now() < deadline,
                        "crash point {point} never reached: is oauth-lock built with the \
                         fault-injection feature (cli dev-dependency)?"
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
                assert!(
                    !lock_is_free(&self.dir, KEY),
                    "{context}: the victim holds the lock at this point"
                );
                victim.kill()
            }
            Kill::Itself(point) => {
                let ended = victim.wait();
                assert_eq!(ended, Ended::Killed, "it killed itself at {point}");
                ended
            }
            Kill::InFlight(latency) => {
                let sent = counter(&before, "token_requests");
                let deadline = Instant::now() + HUNG;
                while counter(&self.mock.stats(), "token_requests") == sent {
                    assert!(victim.running(), "the victim ended without a token request");
                    assert!(Instant::now() < deadline, "no token request arrived");
                    std::thread::sleep(Duration::from_millis(1));
                }
                let wait = rand::rng().random_range(Duration::ZERO..latency);
                std::thread::sleep(wait);
                victim.kill()
            }
            Kill::Random(max) => {
                std::thread::sleep(rand::rng().random_range(Duration::ZERO..max));
                victim.kill()
            }
        };
        match ended {
            Ended::Killed => tally.kills += 1,
            Ended::Exited(0) => tally.finished_first += 1,
            Ended::Exited(code) => panic!("{context}: the victim failed with exit code {code}"),
        }
        // A request the victim left behind (possibly still unread in the provider's socket
        // buffer) is answered or dropped by now; at a crash point the answer had arrived.
        if how.point().is_none() {
            std::thread::sleep(self.latency + Duration::from_millis(100));
        }

        let after = self.mock.stats();
        let delta = |name: &str| counter(&after, name) - counter(&before, name);
        let bytes1 = self.bytes();
        self.assert_sound(context);
        assert_eq!(
            delta("replays"),
            0,
            "{context}: a lone victim replays nothing"
        );
        let rotated = delta("refreshes");
        assert!(rotated <= 1, "{context}: one victim, at most one rotation");
        let committed = Self::generation(&bytes1) > Self::generation(&bytes0);
        if committed {
            assert_eq!(Self::generation(&bytes1), Self::generation(&bytes0) + 1);
            assert_eq!(rotated, 1, "{context}: a commit follows a rotation");
            tally.committed += 1;
        } else {
            assert!(
                bytes1 == bytes0,
                "{context}: no commit, so the record is byte-for-byte unchanged"
            );
        }
        let lost = rotated == 1 && !committed;
        if rotated == 0 {
            tally.no_rotation += 1;
        }
        let new_temps = temp_files(&self.dir, KEY).len().saturating_sub(temps0);
        tally.stray_temp_files += new_temps as u64;
        match how.point() {
            Some("locked") => assert_eq!(rotated, 0, "{context}: nothing was sent yet"),
            Some("answered") => assert!(lost, "{context}: the provider rotated, nobody saved"),
            Some("before-rename") => {
                assert!(lost, "{context}: the provider rotated, nothing was renamed");
                assert_eq!(
                    new_temps, 1,
                    "{context}: the fsynced temp file stays behind"
                );
            }
            Some("before-dir-sync") => assert!(committed, "{context}: renamed is committed"),
            _ => {}
        }
        if how.point() != Some("before-rename") {
            assert!(new_temps <= 1, "{context}: at most the victim's temp file");
        }
        if ended != Ended::Killed {
            assert!(committed, "{context}: a victim that finished committed");
        }

        // The next caller, also forced to refresh the token it finds.
        let next = self.reject(&Self::access_token(&bytes1)).output().unwrap();
        let after_next = self.mock.stats();
        let replays = counter(&after_next, "replays") - counter(&after, "replays");
        let grace_reuses = counter(&after_next, "grace_reuses") - counter(&after, "grace_reuses");
        tally.replays += replays;
        if !lost {
            assert_eq!(replays, 0, "{context}: no lost answer, so no replay");
            self.assert_token_works(&next, context);
            tally.recovered += 1;
        } else {
            tally.lost_answers += 1;
            assert_eq!(
                replays, 1,
                "{context}: the spent token is presented once, by the next caller"
            );
            if self.grace {
                assert_eq!(grace_reuses, 1, "{context}: the provider's grace window");
                assert!(next.status.success(), "{context}: {}", stderr(&next));
                // The recovered refresh token is live: one more refresh works, no replay.
                let proof = self.reject(&stdout(&next)).output().unwrap();
                self.assert_token_works(&proof, context);
                assert_eq!(self.mock.stat("replays"), counter(&after_next, "replays"));
                tally.recovered += 1;
                tally.grace_reuses += 1;
            } else {
                self.assert_dead_once(&next, context);
                tally.needs_login_after_lost += 1;
                login_and_save(&self.mock, &self.dir, KEY, None);
            }
        }
        assert_eq!(
            temp_files(&self.dir, KEY),
            Vec::<String>::new(),
            "{context}: the next write under the lock removes a dead writer's temp file"
        );
        self.assert_sound(context);
    }

    /// After a lost answer at a strict provider: this caller gets `InvalidGrant`, the record
    /// says so (G5), and the next caller gets `NeedsLogin` without asking the provider.
    fn assert_dead_once(&self, next: &Output, context: &str) {
        assert_eq!(
            next.status.code(),
            Some(exit_for(ErrorCode::InvalidGrant)),
            "{context}: {}",
            stderr(next)
        );
        let message = stderr(next);
        assert!(message.contains("error[InvalidGrant]"), "{message}");
        assert!(message.contains(KEY), "the error names the key: {message}");
        let record = record(&self.dir, KEY);
        assert_eq!(record["state"], "needs_login", "{context}");
        let sent = self.mock.stat("token_requests");
        let again = run(&self.dir, &["token", KEY]);
        assert_eq!(
            again.status.code(),
            Some(exit_for(ErrorCode::NeedsLogin)),
            "{context}: {}",
            stderr(&again)
        );
        assert_eq!(
            self.mock.stat("token_requests"),
            sent,
            "{context}: a dead credential is not sent again"
        );
    }

    /// Waits until the record's access token is no longer fresh (margin: half its lifetime).
    fn wait_until_stale(&self) {
        let record = record(&self.dir, KEY);
        let expires = record["expires_at_ms"].as_i64().unwrap();
        let issued = record["issued_at_ms"].as_i64().unwrap();
        let stale_at = expires - (expires - issued) / 2 + 20;
        let now = now_ms();
        if stale_at > now {
            std::thread::sleep(Duration::from_millis((stale_at - now) as u64));
        }
    }

    /// Holder paused at `locked`; `token` and multi-threaded `worker` processes blocked in
    /// `flock` behind it, each killed while it waits; then the holder killed.
    fn lock_round(&mut self, tallies: &mut BTreeMap<String, Tally>, proc_syscall: bool) {
        self.wait_until_stale();
        let before = self.mock.stats();
        let bytes0 = self.bytes();
        let marker = self.new_marker();
        let mut holder = Self::quiet(cmd(&self.dir, &["token", KEY]));
        holder
            .env("OAUTH_LOCK_FAULT", "locked")
            .env("OAUTH_LOCK_FAULT_MARKER", &marker);
        let mut holder = Proc::spawn(holder);
        let deadline = Instant::now() + HUNG;
        while !marker.exists() {
            assert!(holder.running(), "the holder ended before taking the lock");
            assert!(
                Instant::now() < deadline,
                "crash point `locked` never reached: is oauth-lock built with the \
                 fault-injection feature?"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!lock_is_free(&self.dir, KEY), "the holder holds the lock");

        let mut waiters: Vec<(&str, Proc)> = (0..3)
            .map(|_| {
                (
                    "token",
                    Proc::spawn(Self::quiet(cmd(&self.dir, &["token", KEY]))),
                )
            })
            .collect();
        let worker = cmd(
            &self.dir,
            &[
                "worker",
                "--key",
                KEY,
                "--threads",
                "3",
                "--duration",
                "30s",
            ],
        );
        waiters.push(("worker", Proc::spawn(Self::quiet(worker))));
        let deadline = Instant::now() + HUNG;
        for (_, w) in &mut waiters {
            if proc_syscall {
                while blocked_in_flock(w.pid()) != Some(true) {
                    assert!(w.running(), "a waiter ended while the lock was held");
                    assert!(Instant::now() < deadline, "a waiter never blocked in flock");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        if !proc_syscall {
            std::thread::sleep(Duration::from_millis(300));
        }
        // Kill them in a random order, a few milliseconds apart.
        let mut rng = rand::rng();
        while !waiters.is_empty() {
            let (kind, mut w) = waiters.swap_remove(rng.random_range(0..waiters.len()));
            std::thread::sleep(Duration::from_millis(rng.random_range(0..5)));
            assert!(w.running(), "a {kind} waiter got past a held lock");
            assert_eq!(w.kill(), Ended::Killed);
            tallies
                .entry(format!("waiting for the lock ({kind})"))
                .or_default()
                .kills += 1;
        }
        assert!(
            !lock_is_free(&self.dir, KEY),
            "the holder still holds the lock"
        );
        assert_eq!(holder.kill(), Ended::Killed);
        let t = tallies.entry("holding the lock".into()).or_default();
        t.kills += 1;
        t.no_rotation += 1;

        self.assert_sound("lock round");
        assert!(
            self.bytes() == bytes0,
            "nobody wrote: byte-for-byte unchanged"
        );
        let after = self.mock.stats();
        for name in ["token_requests", "refreshes", "replays"] {
            assert_eq!(counter(&after, name), counter(&before, name), "{name}");
        }
        let next = run(&self.dir, &["token", KEY]);
        self.assert_token_works(&next, "after the lock round");
        assert_eq!(self.mock.stat("replays"), 0);
        t.recovered += 1;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// How long an uninterrupted forced refresh takes here (the median of 5), to spread random
/// kills over it.
fn typical_refresh(rig: &Rig) -> Duration {
    let mut took: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            let o = rig
                .reject(&Rig::access_token(&rig.bytes()))
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
            started.elapsed()
        })
        .collect();
    took.sort();
    took[2]
}

/// G6: 40 rounds of a holder paused with the lock and 4 processes (3 `token`, 1 `worker` with
/// 3 threads) blocked in `flock` behind it, all killed: 200 kills, no stale lock, no write, no
/// request, and the next caller refreshes normally.
#[test]
fn killed_while_waiting_for_the_lock_or_holding_it() {
    let mut rig = Rig::new(&["--lifetime", "1s"]);
    let proc_syscall = blocked_in_flock(std::process::id()).is_some();
    if !proc_syscall {
        let _ = writeln!(
            std::io::stderr(),
            "note: /proc/PID/task/*/syscall is unreadable; waiters get 300 ms to block instead"
        );
    }
    let mut tallies = BTreeMap::new();
    for _ in 0..40 {
        rig.lock_round(&mut tallies, proc_syscall);
    }
    let stats = rig.mock.stats();
    print_summary(
        "crash injection: waiting for and holding the lock (mock --lifetime 1s)",
        &tallies,
    );
    assert_eq!(counter(&stats, "replays"), 0);
    assert_eq!(counter(&stats, "revoked_families"), 0);
    assert_eq!(tallies.values().map(|t| t.kills).sum::<u64>(), 200);
}

/// G3 + G6 at a strict provider: victims killed at every crash point (paused there, checked
/// to hold the lock, then killed) and at random moments. Lost answers (after `answered`,
/// before the rename) end in one `InvalidGrant` then `NeedsLogin`; everything else recovers;
/// replays == lost answers.
#[test]
fn killed_at_the_commit_points_and_at_random_with_a_strict_provider() {
    let mut rig = Rig::new(&["--lifetime", "1s"]);
    let span = typical_refresh(&rig);
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let points = ["locked", "answered", "before-rename", "before-dir-sync"];
    for i in 0..40 {
        for point in points {
            let how = if i % 2 == 0 {
                Kill::Paused(point)
            } else {
                Kill::Itself(point)
            };
            rig.round(how, tallies.entry(format!("at {point}")).or_default());
        }
        rig.round(
            Kill::Random(span),
            tallies.entry("random moment".into()).or_default(),
        );
    }
    print_summary(
        &format!(
            "crash injection: strict provider (mock --lifetime 1s; random kills within {span:?})"
        ),
        &tallies,
    );
    let stats = rig.mock.stats();
    let lost: u64 = tallies.values().map(|t| t.lost_answers).sum();
    assert_eq!(
        counter(&stats, "replays"),
        lost,
        "every replay is a lost answer's"
    );
    assert_eq!(counter(&stats, "revoked_families"), lost);
    for point in ["locked", "before-dir-sync"] {
        let t = &tallies[&format!("at {point}")];
        assert_eq!((t.lost_answers, t.replays), (0, 0), "{point}");
    }
    for point in ["answered", "before-rename"] {
        let t = &tallies[&format!("at {point}")];
        assert_eq!(t.lost_answers, t.kills, "{point}");
        assert_eq!(t.needs_login_after_lost, t.kills, "{point}");
    }
    let kills: u64 = tallies.values().map(|t| t.kills).sum();
    assert!(kills >= 160, "{kills} kills");
}

/// The same window with a provider grace window (`--grace 60s`): the next caller's reuse of
/// the spent token is answered with the lost tokens, so every lost answer recovers.
#[test]
fn killed_at_the_commit_points_with_a_grace_window_recovers() {
    let mut rig = Rig::new(&["--lifetime", "1s", "--grace", "60s"]);
    let span = typical_refresh(&rig);
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for _ in 0..25 {
        for point in ["answered", "before-rename", "before-dir-sync"] {
            rig.round(
                Kill::Itself(point),
                tallies.entry(format!("at {point}")).or_default(),
            );
        }
        rig.round(
            Kill::Random(span),
            tallies.entry("random moment".into()).or_default(),
        );
    }
    print_summary(
        "crash injection: provider with a grace window (mock --lifetime 1s --grace 60s)",
        &tallies,
    );
    let stats = rig.mock.stats();
    let lost: u64 = tallies.values().map(|t| t.lost_answers).sum();
    assert!(
        lost >= 50,
        "answered and before-rename always lose the answer"
    );
    assert_eq!(
        counter(&stats, "grace_reuses"),
        lost,
        "each recovered by grace"
    );
    assert_eq!(counter(&stats, "replays"), lost);
    assert_eq!(counter(&stats, "revoked_families"), 0);
    assert_eq!(
        tallies
            .values()
            .map(|t| t.needs_login_after_lost)
            .sum::<u64>(),
        0
    );
}

/// A slow provider (`--latency 100ms`) widens the moment between sending the request and
/// committing the answer: victims killed while their request is in flight, and at random.
#[test]
fn killed_with_the_request_in_flight_at_a_slow_provider() {
    let latency = Duration::from_millis(100);
    let mut rig = Rig::new(&["--lifetime", "1s", "--latency", "100ms"]);
    let span = typical_refresh(&rig);
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for _ in 0..30 {
        rig.round(
            Kill::InFlight(latency),
            tallies.entry("request in flight".into()).or_default(),
        );
        rig.round(
            Kill::Random(span),
            tallies.entry("random moment".into()).or_default(),
        );
    }
    print_summary(
        &format!("crash injection: slow strict provider (mock --lifetime 1s --latency 100ms; random kills within {span:?})"),
        &tallies,
    );
    let stats = rig.mock.stats();
    let lost: u64 = tallies.values().map(|t| t.lost_answers).sum();
    assert_eq!(
        counter(&stats, "replays"),
        lost,
        "every replay is a lost answer's"
    );
    assert!(tallies["request in flight"].kills >= 25);
}

/// Runs a forced refresh whose commit cannot write a byte past `limit` (RLIMIT_FSIZE, SIGXFSZ
/// ignored, so write(2) fails with EFBIG).
fn reject_with_file_size_limit(rig: &Rig, token: &str, limit: u64) -> Output {
    let mut c = rig.reject(token);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(move || {
            let rlimit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &rlimit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    c.output().unwrap()
}

/// A full disk during the commit (RLIMIT_FSIZE): `Io`, the error says the refresh was not
/// saved, the old record is byte-for-byte intact, no temp file is left, and the next caller
/// succeeds (at a strict provider the lost answer is the G3 window: `InvalidGrant`, then a
/// login).
#[test]
fn full_disk_during_the_commit_keeps_the_old_record_and_says_io() {
    for grace in [true, false] {
        let args: &[&str] = if grace {
            &["--lifetime", "1s", "--grace", "60s"]
        } else {
            &["--lifetime", "1s"]
        };
        let rig = Rig::new(args);
        let bytes0 = rig.bytes();
        let token = Rig::access_token(&bytes0);
        let o = reject_with_file_size_limit(&rig, &token, 64);
        assert_eq!(
            o.status.code(),
            Some(exit_for(ErrorCode::Io)),
            "{}",
            stderr(&o)
        );
        let message = stderr(&o);
        assert!(message.contains("error[Io]"), "{message}");
        assert!(message.contains("NOT saved"), "{message}");
        assert!(
            message.contains(&rig.record_path().display().to_string()),
            "names the path: {message}"
        );
        assert!(message.contains(KEY), "names the key: {message}");
        assert!(
            rig.bytes() == bytes0,
            "the old record is byte-for-byte intact"
        );
        assert_eq!(temp_files(&rig.dir, KEY), Vec::<String>::new());
        rig.assert_sound("after EFBIG");
        assert_eq!(rig.mock.stat("refreshes"), 1, "the provider did rotate");

        let next = rig.reject(&token).output().unwrap();
        if grace {
            rig.assert_token_works(&next, "after EFBIG");
            assert_eq!(rig.mock.stat("grace_reuses"), 1);
        } else {
            rig.assert_dead_once(&next, "after EFBIG");
            login_and_save(&rig.mock, &rig.dir, KEY, None);
            let after_login = run(&rig.dir, &["token", KEY]);
            rig.assert_token_works(&after_login, "after a new login");
        }
        assert_eq!(rig.mock.stat("replays"), 1, "only the lost answer's token");
        rig.assert_sound("after recovery");
        let _ = writeln!(
            std::io::stderr(),
            "full disk (RLIMIT_FSIZE=64, EFBIG) during the commit, {} provider: exit {} (Io), \
             record unchanged, no temp file; next caller: {}",
            if grace { "grace" } else { "strict" },
            exit_for(ErrorCode::Io),
            if grace {
                "token (grace reuse)"
            } else {
                "InvalidGrant, then NeedsLogin until a login"
            }
        );
    }
}

/// A tiny tmpfs that fills up (ENOSPC) and a store remounted read-only (EROFS), in a private
/// mount namespace (`unshare -m`, needs root); skipped with a reason where that is not allowed.
#[test]
fn tiny_and_read_only_file_systems_during_the_commit() {
    let probe = Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg("d=$(mktemp -d) && mount -t tmpfs -o size=16k tmpfs \"$d\" && umount \"$d\"; rc=$?; rmdir \"$d\"; exit $rc")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.map(|s| s.success()).unwrap_or(false) {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED tiny_and_read_only_file_systems_during_the_commit: this sandbox does not \
             allow `unshare -m` + a tmpfs mount (needs root / CAP_SYS_ADMIN); the RLIMIT_FSIZE \
             test covers the full disk"
        );
        return;
    }
    let mock = Mock::start(&["--lifetime", "1s", "--grace", "60s"]);
    let tmp = tempfile::tempdir().unwrap();
    let fs = tmp.path().join("fs");
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&fs).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let mut cred = mock.login();
    cred["refresh"] = mock.refresh_config();
    std::fs::write(out.join("cred.json"), cred.to_string()).unwrap();
    // Everything that needs the mount runs inside the namespace; what the test checks is
    // copied out to `out` (outside the tmpfs, visible to both sides).
    let script = r#"
set -u
mount -t tmpfs -o size=16k,mode=0700 tmpfs "$FS" || exit 99
S="$FS/store"
"$BIN" --dir "$S" save "$KEY" < "$OUT/cred.json" || exit 98
cp "$S/$KEY.json" "$OUT/full-before.json"
dd if=/dev/zero of="$FS/filler" bs=1k 2>/dev/null
"$BIN" --dir "$S" token "$KEY" --reject "$AT" >/dev/null 2>"$OUT/full.err"
echo $? > "$OUT/full.rc"
cp "$S/$KEY.json" "$OUT/full-after.json"
ls -a "$S" > "$OUT/full.ls"
rm "$FS/filler"
"$BIN" --dir "$S" token "$KEY" --reject "$AT" > "$OUT/full-next.out" 2>"$OUT/full-next.err"
echo $? > "$OUT/full-next.rc"
cp "$S/$KEY.json" "$OUT/ro-before.json"
mount -o remount,ro "$FS" || exit 97
"$BIN" --dir "$S" token "$KEY" --reject "$(cat "$OUT/full-next.out")" >/dev/null 2>"$OUT/ro.err"
echo $? > "$OUT/ro.rc"
cp "$S/$KEY.json" "$OUT/ro-after.json"
mount -o remount,rw "$FS" || exit 96
"$BIN" --dir "$S" token "$KEY" --reject "$(cat "$OUT/full-next.out")" > "$OUT/ro-next.out" 2>"$OUT/ro-next.err"
echo $? > "$OUT/ro-next.rc"
"$BIN" --dir "$S" status "$KEY" --json > "$OUT/status.json"
"#;
    let mut ns = Command::new("unshare");
    ns.args(["-m", "sh", "-c", script])
        .env("FS", &fs)
        .env("OUT", &out)
        .env("BIN", pinned_bin())
        .env("KEY", KEY)
        .env("AT", cred["access_token"].as_str().unwrap())
        .env_remove("OAUTH_LOCK_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let o = ns.output().unwrap();
    assert!(o.status.success(), "namespace script: {o:?}");
    let read = |name: &str| std::fs::read(out.join(name)).unwrap();
    let text = |name: &str| String::from_utf8(read(name)).unwrap().trim().to_owned();
    let io = exit_for(ErrorCode::Io).to_string();

    // Full tmpfs: ENOSPC while writing the temp file.
    assert_eq!(text("full.rc"), io, "{}", text("full.err"));
    assert!(
        text("full.err").contains("NOT saved"),
        "{}",
        text("full.err")
    );
    assert!(read("full-after.json") == read("full-before.json"));
    let listing = text("full.ls");
    assert!(!listing.contains(".tmp"), "no temp file left: {listing}");
    oauth_lock::Record::parse(&read("full-after.json")).unwrap();
    assert_eq!(text("full-next.rc"), "0", "{}", text("full-next.err"));
    assert_eq!(
        mock.stat("grace_reuses"),
        1,
        "the lost answer, recovered by grace"
    );

    // Read-only: the lock file cannot be opened for writing, so nothing is sent.
    assert_eq!(text("ro.rc"), io, "{}", text("ro.err"));
    assert!(text("ro.err").contains("error[Io]"), "{}", text("ro.err"));
    assert!(read("ro-after.json") == read("ro-before.json"));
    assert_eq!(text("ro-next.rc"), "0", "{}", text("ro-next.err"));
    assert_eq!(mock.resource_status(&text("ro-next.out")), 200);
    let status: Value = serde_json::from_slice(&read("status.json")).unwrap();
    assert!(status["problem"].is_null());
    assert_eq!(mock.stat("replays"), 1, "only the full disk's lost answer");
    // Sent: the full disk's refresh (lost), its grace reuse, the refresh after read-only.
    assert_eq!(
        mock.stat("token_requests"),
        3,
        "nothing was sent from the read-only store"
    );
    assert_eq!(mock.stat("refreshes"), 2);
    let _ = writeln!(
        std::io::stderr(),
        "tiny tmpfs (16k, ENOSPC) and read-only remount (EROFS) during the commit: exit {io} \
         (Io) both, records unchanged, no temp file; next callers got tokens"
    );
}

/// `oauth-lock save KEY` with `credential` on its stdin (stdin closed after it).
fn spawn_save(mut c: Command, credential: &Value) -> Proc {
    c.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn(c);
    let mut stdin = p.0.as_mut().unwrap().stdin.take().unwrap();
    stdin.write_all(credential.to_string().as_bytes()).unwrap();
    drop(stdin);
    p
}

/// A writer cleans up only its own record's temp files: the writer of key `a` (record
/// `a.json`, temp files `.a.json.<pid>.<seq>.tmp`) must not remove the in-flight temp file of
/// key `a.json.x` (`.a.json.x.json.<pid>.<seq>.tmp`), whose writer holds another lock and is
/// parked between its fsync and its rename (crash point `before-rename`, resumed through
/// `OAUTH_LOCK_FAULT_RESUME`). That writer's rename then still succeeds: no rotation is lost.
#[test]
fn a_write_leaves_another_records_temp_file_alone() {
    let (tmp, dir) = store_dir();
    let marker = tmp.path().join("parked");
    let resume = tmp.path().join("resume");
    let mut parked = cmd(&dir, &["save", "a.json.x"]);
    parked
        .env("OAUTH_LOCK_FAULT", "before-rename")
        .env("OAUTH_LOCK_FAULT_MARKER", &marker)
        .env("OAUTH_LOCK_FAULT_RESUME", &resume);
    let theirs =
        serde_json::json!({"access_token": "at-x1", "refresh_token": "rt-x1", "expires_in": 3600});
    let mut parked = spawn_save(parked, &theirs);
    let deadline = Instant::now() + HUNG;
    while !marker.exists() {
        assert!(
            parked.running(),
            "the writer of a.json.x ended before crash point before-rename (no crash points \
             compiled in?)"
        );
        assert!(
            Instant::now() < deadline,
            "crash point before-rename never reached"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let in_flight = |stem: &str| -> Vec<String> {
        std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| {
                n.strip_prefix(&format!(".{stem}.json."))
                    .and_then(|rest| rest.strip_suffix(".tmp"))
                    .is_some_and(|rest| {
                        let parts: Vec<&str> = rest.split('.').collect();
                        parts.len() == 2
                            && parts
                                .iter()
                                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    })
            })
            .collect()
    };
    let temp = in_flight("a.json.x");
    assert_eq!(temp.len(), 1, "the parked writer's temp file: {temp:?}");

    // Meanwhile, a write of key `a`: another record, another lock, not blocked by the parked one.
    let ours =
        serde_json::json!({"access_token": "at-a1", "refresh_token": "rt-a1", "expires_in": 3600});
    let o = spawn_save(cmd(&dir, &["save", "a"]), &ours);
    assert_eq!(o.wait(), Ended::Exited(0), "the save of key a");
    assert_eq!(
        in_flight("a.json.x"),
        temp,
        "the write of key a left a.json.x's in-flight temp file alone"
    );

    std::fs::write(&resume, b"").unwrap();
    let mut parked = parked;
    let stderr_of_parked = parked.0.as_mut().unwrap().stderr.take().unwrap();
    let ended = parked.wait();
    let mut message = String::new();
    std::io::Read::read_to_string(&mut { stderr_of_parked }, &mut message).unwrap();
    assert_eq!(
        ended,
        Ended::Exited(0),
        "the parked save succeeded: {message}"
    );
    let record_x = record(&dir, "a.json.x");
    assert_eq!(record_x["key"], "a.json.x");
    assert!(
        record_x["access_token"] == "at-x1" && record_x["refresh_token"] == "rt-x1",
        "key a.json.x's record holds the tokens its writer saved (values not shown)"
    );
    let record_a = record(&dir, "a");
    assert_eq!(record_a["key"], "a");
    assert!(
        record_a["access_token"] == "at-a1" && record_a["refresh_token"] == "rt-a1",
        "key a's record holds its own tokens (values not shown)"
    );
    assert_eq!(
        in_flight("a.json.x"),
        Vec::<String>::new(),
        "renamed into place"
    );
    assert_eq!(in_flight("a"), Vec::<String>::new());
}
