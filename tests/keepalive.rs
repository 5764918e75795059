//! `oauth-lock keepalive` and `oauth-lock import` as a user runs them (DESIGN.md §6.1, issue
//! 13): against the strict mock provider, counting at the provider; the process sleeps
//! between deadlines, backs off in an outage, says `needs_login` once, picks up a re-login,
//! stops on SIGTERM, and never prints a token.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::*;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Rewrites fields of a record on disk as another writer would (a new generation).
fn patch(dir: &Path, stem: &str, fields: Value) {
    let path = dir.join(format!("{stem}.json"));
    let mut rec = record(dir, stem);
    rec["generation"] = json!(rec["generation"].as_u64().unwrap() + 1);
    for (k, v) in fields.as_object().unwrap() {
        rec[k] = v.clone();
    }
    fs::write(path, serde_json::to_vec(&rec).unwrap()).unwrap();
}

/// Every token seen so far: the login answers and the records' tokens.
#[derive(Default)]
struct Tokens(BTreeSet<String>);

impl Tokens {
    fn add_answer(&mut self, answer: &Value) {
        for f in ["access_token", "refresh_token"] {
            if let Some(t) = answer[f].as_str() {
                self.0.insert(t.to_owned());
            }
        }
    }

    fn add_record(&mut self, dir: &Path, stem: &str) {
        self.add_answer(&record(dir, stem));
    }

    /// Panics if `text` contains any token (without printing it).
    fn assert_absent(&self, what: &str, text: &str) {
        assert!(!self.0.is_empty());
        let leaked = self.0.iter().filter(|t| text.contains(t.as_str())).count();
        assert_eq!(leaked, 0, "{what} contains {leaked} token(s)");
    }
}

/// A running `oauth-lock keepalive`, its output going to files.
struct Keeper {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Keeper {
    fn start(dir: &Path, logs: &Path, args: &[&str]) -> Keeper {
        let out = logs.join(format!("keepalive-{}.out", now_ms()));
        let err = out.with_extension("err");
        let child = cmd(dir, &[&["keepalive"], args].concat())
            .stdout(Stdio::from(fs::File::create(&out).unwrap()))
            .stderr(Stdio::from(fs::File::create(&err).unwrap()))
            .spawn()
            .unwrap();
        Keeper { child, out, err }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap()
    }

    fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap()
    }

    /// SIGTERM; it must exit 0 within a second.
    fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(
            unsafe { libc::kill(self.pid() as libc::pid_t, libc::SIGTERM) },
            0
        );
        let start = Instant::now();
        let status = wait_timeout(&mut self.child, Duration::from_secs(3))
            .unwrap_or_else(|| panic!("no exit 3 s after SIGTERM: {}", self.stderr()));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "exited {:?} after SIGTERM",
            start.elapsed()
        );
        assert_eq!(status.code(), Some(0), "{}", self.stderr());
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User plus system CPU time of `pid` so far, in clock ticks (`/proc/PID/stat` fields 14, 15).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Polls `cond` every 20 ms for at most `limit`.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Item 6: one pass refreshes what expires within `--ahead` and leaves the rest alone.
#[test]
fn once_refreshes_only_what_is_due_within_ahead() {
    let mock = Mock::start(&["--lifetime", "1h"]);
    let (d, dir) = store_dir();
    let mut tokens = Tokens::default();
    tokens.add_answer(&login_and_save(&mock, &dir, "due", Some(600.0)));
    tokens.add_answer(&login_and_save(&mock, &dir, "fresh", Some(3600.0)));
    // "due" was issued 50 minutes before its 10 minutes left: 30 min ahead is not capped by
    // half its lifetime.
    patch(&dir, "due", json!({"issued_at_ms": now_ms() - 50 * 60_000}));
    let (due_before, fresh_before) = (record(&dir, "due"), record(&dir, "fresh"));

    let o = run(&dir, &["keepalive", "--once", "--ahead", "30m"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(mock.stat("token_requests"), 1, "{err}");
    assert_eq!(mock.stat("refreshes"), 1);
    let due = record(&dir, "due");
    assert_eq!(
        due["generation"].as_u64(),
        due_before["generation"].as_u64().map(|g| g + 1)
    );
    assert_ne!(due["refresh_token"], due_before["refresh_token"]);
    assert!(due["expires_at_ms"].as_i64().unwrap() > now_ms() + 50 * 60_000);
    assert_eq!(record(&dir, "fresh"), fresh_before, "not due: untouched");
    assert!(err.contains("\"due\": refreshed"), "{err}");
    assert!(err.contains("\"fresh\": fresh"), "{err}");
    tokens.add_record(&dir, "due");
    tokens.assert_absent("stderr", &err);
    tokens.assert_absent("stdout", &stdout(&o));

    // With --ahead 5m nothing is due: no request.
    let o = run(
        &dir,
        &["keepalive", "--once", "--ahead", "5m", "due", "fresh"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mock.stat("token_requests"), 1);
    assert_eq!(mock.stat("replays"), 0);
    drop(d);
}

/// Item 6: a dead credential is reported once and never sent; a re-login (`save`) while the
/// keep-alive runs is picked up and kept fresh.
#[test]
fn needs_login_is_said_once_and_a_relogin_is_picked_up() {
    let mock = Mock::start(&["--lifetime", "2s"]);
    let (d, dir) = store_dir();
    let mut tokens = Tokens::default();
    let cred = login_and_save(&mock, &dir, "dead", Some(0.0));
    tokens.add_answer(&cred);
    // The provider revokes the family; the next refresh marks the record needs_login.
    let (status, _) = http(
        "POST",
        &format!("{}/admin/revoke-family", mock.url),
        None,
        Some(&json!({"refresh_token": cred["refresh_token"]}).to_string()),
    );
    assert_eq!(status, 200);
    assert_eq!(run(&dir, &["token", "dead"]).status.code(), Some(12));
    assert_eq!(record(&dir, "dead")["state"], "needs_login");
    let requests = mock.stat("token_requests");

    let mut keeper = Keeper::start(&dir, d.path(), &["--check-every", "200ms"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        mock.stat("token_requests"),
        requests,
        "a dead credential is never sent: {}",
        keeper.stderr()
    );
    let said = keeper.stderr().matches("\"dead\": needs login").count();
    assert_eq!(
        said,
        1,
        "said once over several passes: {}",
        keeper.stderr()
    );

    // A re-login.
    let relogin = login_and_save(&mock, &dir, "dead", None);
    tokens.add_answer(&relogin);
    let generation = record(&dir, "dead")["generation"].as_u64().unwrap();
    let kept_fresh = eventually(Duration::from_secs(6), || {
        let rec = record(&dir, "dead");
        rec["generation"].as_u64().unwrap() >= generation + 2 && mock.stat("refreshes") >= 2
    });
    assert!(kept_fresh, "{}; {}", mock.stats(), keeper.stderr());
    let rec = record(&dir, "dead");
    assert_eq!(rec["state"], "ok");
    assert!(rec["expires_at_ms"].as_i64().unwrap() > now_ms());
    tokens.add_record(&dir, "dead");
    keeper.stop();
    let stats = mock.stats();
    assert_eq!(stats["replays"], 0, "{stats}");
    assert_eq!(
        stats["invalid_grants"], 1,
        "only the refresh that found it dead: {stats}"
    );
    tokens.add_record(&dir, "dead");
    tokens.assert_absent("stderr", &keeper.stderr());
    tokens.assert_absent("stdout", &keeper.stdout());
}

/// Item 6: in a provider outage the keep-alive backs off (a handful of requests, no busy
/// loop) and recovers when it ends.
#[test]
fn an_outage_is_backed_off_and_recovered_from() {
    let mock = Mock::start(&["--lifetime", "2s"]);
    let (d, dir) = store_dir();
    let mut tokens = Tokens::default();
    tokens.add_answer(&login_and_save(&mock, &dir, "k", None));
    let mut keeper = Keeper::start(&dir, d.path(), &["--check-every", "1s"]);
    assert!(
        eventually(Duration::from_secs(4), || mock.stat("refreshes") >= 1),
        "{}",
        keeper.stderr()
    );
    tokens.add_record(&dir, "k");
    let before = mock.stats();
    let (status, _) = http(
        "POST",
        &format!("{}/admin/outage", mock.url),
        None,
        Some(r#"{"ms": 3000}"#),
    );
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(3000));
    let during = mock.stats();
    let failed = during["outage_failures"].as_u64().unwrap();
    let requests =
        during["token_requests"].as_u64().unwrap() - before["token_requests"].as_u64().unwrap();
    assert!(
        (1..=3).contains(&failed) && requests == failed,
        "{failed} failed of {requests} requests in a 3 s outage: {}",
        keeper.stderr()
    );
    // Recovers: refreshing resumes (the last backoff is at most 4 s) and the backoff clears.
    let refreshes = during["refreshes"].as_u64().unwrap();
    assert!(
        eventually(Duration::from_secs(8), || {
            // The provider counts the refresh before the keep-alive has written it.
            mock.stat("refreshes") > refreshes && record(&dir, "k")["backoff"].is_null()
        }),
        "no refresh after the outage: {}; {}",
        mock.stats(),
        keeper.stderr()
    );
    let rec = record(&dir, "k");
    assert_eq!(rec["state"], "ok");
    assert_eq!(rec["backoff"], Value::Null);
    tokens.add_record(&dir, "k");
    keeper.stop();
    let stats = mock.stats();
    assert_eq!(stats["replays"], 0, "{stats}");
    assert_eq!(stats["revoked_families"], 0, "{stats}");
    tokens.add_record(&dir, "k");
    let err = keeper.stderr();
    assert!(err.contains("Transient"), "the outage is reported: {err}");
    tokens.assert_absent("stderr", &err);
    tokens.assert_absent("stdout", &keeper.stdout());
}

/// Item 6: with nothing due, a running keep-alive sleeps: no request, almost no CPU; SIGTERM
/// ends it at once with status 0.
#[test]
fn a_running_keepalive_sleeps_and_exits_0_on_sigterm() {
    let mock = Mock::start(&["--lifetime", "1h"]);
    let (d, dir) = store_dir();
    let mut tokens = Tokens::default();
    tokens.add_answer(&login_and_save(&mock, &dir, "k", None));
    let mut keeper = Keeper::start(&dir, d.path(), &["--check-every", "1s", "k"]);
    assert!(
        eventually(Duration::from_secs(3), || keeper
            .stderr()
            .contains("\"k\": fresh")),
        "{}",
        keeper.stderr()
    );
    let start_ticks = cpu_ticks(keeper.pid());
    std::thread::sleep(Duration::from_millis(3200));
    let used = cpu_ticks(keeper.pid()) - start_ticks;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    assert!(
        used * 1000 / hz <= 50,
        "{used} ticks ({hz}/s) of CPU in 3.2 s of sleeping"
    );
    assert_eq!(mock.stat("token_requests"), 0);
    keeper.stop();
    let err = keeper.stderr();
    assert_eq!(err.matches("\"k\": fresh").count(), 1, "said once: {err}");
    assert!(err.contains("keepalive: stopped"), "{err}");
    tokens.add_record(&dir, "k");
    tokens.assert_absent("stderr", &err);
    tokens.assert_absent("stdout", &keeper.stdout());
}

/// Item 7, end to end: Claude Code's file behind a symlink, imported, kept fresh with 4 s
/// tokens for 6 s by a running keep-alive, as Claude Code's own provider wants it (JSON body,
/// its client id). The file always parses, ends with the record's tokens, stays a link; the
/// provider sees no replay; Claude Code's locks are released.
#[test]
fn import_then_keepalive_keeps_a_symlinked_claude_code_file_fresh() {
    let mock = Mock::start(&[
        "--lifetime",
        "4s",
        "--body",
        "json",
        "--client-id",
        "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
    ]);
    let (d, dir) = store_dir();
    let claude = d.path().join("claude");
    let dotfiles = d.path().join("dotfiles");
    fs::create_dir(&claude).unwrap();
    fs::create_dir(&dotfiles).unwrap();
    let target = dotfiles.join("claude-credentials.json");
    let link = claude.join(".credentials.json");
    symlink("../dotfiles/claude-credentials.json", &link);
    let login = mock.login();
    let mut tokens = Tokens::default();
    tokens.add_answer(&login);
    let file = json!({
        "claudeAiOauth": {
            "accessToken": login["access_token"], "refreshToken": login["refresh_token"],
            "expiresAt": now_ms() + 4000, "scopes": ["user:inference"],
            "subscriptionType": "max", "rateLimitTier": "default_claude_max_20x"
        },
        "mcpOAuth": {"srv": {"accessToken": "mcp"}}
    });
    fs::write(&target, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();

    let o = run(
        &dir,
        &[
            "import",
            "claude-code",
            "--file",
            link.to_str().unwrap(),
            "--token-url",
            &mock.token_url(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    tokens.assert_absent("import's stderr", &stderr(&o));
    assert_eq!(record(&dir, "claude-code")["refresh"]["body"], "json");

    // A reader that parses the file all the time, as Claude Code sessions do.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let poller = {
        let (stop, reads, link) = (stop.clone(), reads.clone(), link.clone());
        std::thread::spawn(move || -> Result<(), String> {
            while !stop.load(Ordering::Relaxed) {
                let bytes = fs::read(&link).map_err(|e| format!("read: {e}"))?;
                let v: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("did not parse ({} bytes): {e}", bytes.len()))?;
                let o = &v["claudeAiOauth"];
                let ok = o["accessToken"].as_str().is_some_and(|s| !s.is_empty())
                    && o["refreshToken"].as_str().is_some_and(|s| !s.is_empty())
                    && o["expiresAt"].as_i64().is_some_and(|e| e > 0)
                    && v["mcpOAuth"]["srv"]["accessToken"] == "mcp";
                if !ok {
                    return Err("a stub or a lost field".into());
                }
                reads.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(())
        })
    };
    let mut keeper = Keeper::start(&dir, d.path(), &["--check-every", "1s"]);
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(6);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        tokens.add_record(&dir, "claude-code");
        let rec = record(&dir, "claude-code");
        seen = seen.max(rec["generation"].as_u64().unwrap());
    }
    keeper.stop();
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap().unwrap();
    assert!(reads.load(Ordering::Relaxed) > 100);

    let stats = mock.stats();
    assert_eq!(stats["replays"], 0, "{stats}");
    assert_eq!(stats["revoked_families"], 0, "{stats}");
    assert_eq!(
        stats["bad_requests"], 0,
        "JSON body, Claude Code's client id: {stats}"
    );
    assert!(
        stats["refreshes"].as_u64().unwrap() >= 2,
        "kept fresh: {stats}; {}",
        keeper.stderr()
    );
    let rec = record(&dir, "claude-code");
    tokens.add_record(&dir, "claude-code");
    assert_eq!(rec["state"], "ok");
    let m: Value = serde_json::from_slice(&fs::read(&target).unwrap()).unwrap();
    assert_eq!(m["claudeAiOauth"]["accessToken"], rec["access_token"]);
    assert_eq!(m["claudeAiOauth"]["refreshToken"], rec["refresh_token"]);
    assert_eq!(m["claudeAiOauth"]["expiresAt"], rec["expires_at_ms"]);
    assert_eq!(m["claudeAiOauth"]["subscriptionType"], "max");
    assert_eq!(
        m["claudeAiOauth"]["rateLimitTier"],
        "default_claude_max_20x"
    );
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::read_link(&link).unwrap(),
        PathBuf::from("../dotfiles/claude-credentials.json")
    );
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&target).unwrap().permissions())
            & 0o777,
        0o600
    );
    for lock in [
        claude.join(".oauth_refresh.lock"),
        d.path().join("claude.lock"),
    ] {
        assert!(!lock.exists(), "{lock:?} left behind");
    }
    let names: Vec<_> = fs::read_dir(&dotfiles).unwrap().flatten().collect();
    assert_eq!(names.len(), 1, "no temp file left beside the target");
    tokens.assert_absent("stderr", &keeper.stderr());
    tokens.assert_absent("stdout", &keeper.stdout());
    assert!(seen >= 3, "generation {seen}");
}

fn symlink(to: &str, at: &Path) {
    std::os::unix::fs::symlink(to, at).unwrap();
}

/// Claude Code refreshing by itself (under its own locks, writing its file with temp + rename)
/// while the keep-alive runs: the keep-alive takes the program's rotations from the file
/// instead of replaying the spent token, and the two never refresh the same token.
#[test]
fn rotations_by_claude_code_itself_are_adopted_by_a_running_keepalive() {
    let client_id = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";
    let mock = Mock::start(&[
        "--lifetime",
        "4s",
        "--body",
        "json",
        "--client-id",
        client_id,
    ]);
    let (d, dir) = store_dir();
    let claude = d.path().join("claude");
    fs::create_dir(&claude).unwrap();
    let file = claude.join(".credentials.json");
    let login = mock.login();
    let mut tokens = Tokens::default();
    tokens.add_answer(&login);
    let write_file = |at: &Value, rt: &Value, expires_at: i64| {
        let v = json!({"claudeAiOauth": {"accessToken": at, "refreshToken": rt,
            "expiresAt": expires_at, "scopes": ["user:inference"]}, "mcpOAuth": {}});
        let tmp = claude.join(format!(".credentials.json.tmp.{}", now_ms()));
        fs::write(&tmp, serde_json::to_vec(&v).unwrap()).unwrap();
        fs::rename(&tmp, &file).unwrap();
    };
    write_file(
        &login["access_token"],
        &login["refresh_token"],
        now_ms() + 4000,
    );
    let o = run(
        &dir,
        &[
            "import",
            "claude-code",
            "--file",
            file.to_str().unwrap(),
            "--token-url",
            &mock.token_url(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut keeper = Keeper::start(&dir, d.path(), &["--check-every", "300ms"]);
    let mut real = fs::canonicalize(&claude).unwrap().into_os_string();
    real.push(".lock");
    let locks = [claude.join(".oauth_refresh.lock"), PathBuf::from(real)];
    let mut own_refreshes = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        // Claude Code's refresh: its two mkdir locks, re-read, refresh, temp + rename, unlock.
        for lock in &locks {
            assert!(
                eventually(Duration::from_secs(5), || fs::create_dir(lock).is_ok()),
                "{lock:?} never free"
            );
        }
        let current: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        let rt = &current["claudeAiOauth"]["refreshToken"];
        let body = json!({"grant_type": "refresh_token", "refresh_token": rt,
            "client_id": client_id});
        let (status, answer) = http("POST", &mock.token_url(), None, Some(&body.to_string()));
        assert_eq!(
            status,
            200,
            "Claude Code's refresh failed: {}",
            mock.stats()
        );
        tokens.add_answer(&answer);
        write_file(
            &answer["access_token"],
            &answer["refresh_token"],
            now_ms() + answer["expires_in"].as_i64().unwrap() * 1000,
        );
        own_refreshes += 1;
        for lock in locks.iter().rev() {
            fs::remove_dir(lock).unwrap();
        }
        tokens.add_record(&dir, "claude-code");
        std::thread::sleep(Duration::from_millis(900));
    }
    // Let the keep-alive see the last one.
    std::thread::sleep(Duration::from_millis(700));
    keeper.stop();
    tokens.add_record(&dir, "claude-code");
    let stats = mock.stats();
    assert_eq!(stats["replays"], 0, "{stats}; {}", keeper.stderr());
    assert_eq!(stats["revoked_families"], 0, "{stats}");
    assert!(own_refreshes >= 4);
    let err = keeper.stderr();
    assert!(
        err.contains("took the tokens the program rotated"),
        "the keep-alive adopted Claude Code's rotations: {err}"
    );
    let rec = record(&dir, "claude-code");
    let m: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(m["claudeAiOauth"]["refreshToken"], rec["refresh_token"]);
    assert_eq!(m["claudeAiOauth"]["accessToken"], rec["access_token"]);
    tokens.assert_absent("stderr", &err);
    tokens.assert_absent("stdout", &keeper.stdout());
}

/// Codex's file kept fresh by a running keep-alive against a provider that issues JWTs (Codex
/// reads the expiry from the token): `tokens.*` and `last_refresh` follow the record, the
/// other fields stay, and the provider sees no replay.
#[test]
fn a_codex_file_is_kept_fresh_with_jwt_tokens() {
    let client_id = "app_EMoamEEZ73f0CkXaXp7hrann";
    let mock = Mock::start(&["--lifetime", "3s", "--jwt", "--client-id", client_id]);
    let (d, dir) = store_dir();
    let codex = d.path().join("codex");
    fs::create_dir(&codex).unwrap();
    let file = codex.join("auth.json");
    let login = mock.login();
    let mut tokens = Tokens::default();
    tokens.add_answer(&login);
    let content = json!({"OPENAI_API_KEY": null, "auth_mode": "chatgpt",
        "tokens": {"id_token": "id-from-codex", "access_token": login["access_token"],
            "refresh_token": login["refresh_token"], "account_id": "acct-1"},
        "last_refresh": "2026-01-01T00:00:00Z"});
    fs::write(&file, serde_json::to_vec_pretty(&content).unwrap()).unwrap();
    let o = run(
        &dir,
        &[
            "import",
            "codex",
            "--file",
            file.to_str().unwrap(),
            "--token-url",
            &mock.token_url(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let rec = record(&dir, "codex");
    assert!(
        rec["expires_at_ms"].as_i64().unwrap() > now_ms(),
        "the expiry is read from the JWT"
    );
    let mut keeper = Keeper::start(&dir, d.path(), &["--check-every", "1s", "codex"]);
    let generation = rec["generation"].as_u64().unwrap();
    assert!(
        eventually(Duration::from_secs(6), || {
            record(&dir, "codex")["generation"].as_u64().unwrap() >= generation + 2
        }),
        "{}; {}",
        mock.stats(),
        keeper.stderr()
    );
    keeper.stop();
    tokens.add_record(&dir, "codex");
    let stats = mock.stats();
    assert_eq!(stats["replays"], 0, "{stats}");
    assert_eq!(stats["bad_requests"], 0, "{stats}");
    let rec = record(&dir, "codex");
    let m: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(m["tokens"]["access_token"], rec["access_token"]);
    assert_eq!(m["tokens"]["refresh_token"], rec["refresh_token"]);
    assert_eq!(m["tokens"]["account_id"], "acct-1");
    assert_eq!(m["auth_mode"], "chatgpt");
    assert!(m.as_object().unwrap().contains_key("OPENAI_API_KEY"));
    assert_ne!(m["last_refresh"], "2026-01-01T00:00:00Z");
    tokens.assert_absent("stderr", &keeper.stderr());
    tokens.assert_absent("stdout", &keeper.stdout());
}
