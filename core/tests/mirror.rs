//! Mirrors (DESIGN.md §6): a Claude Code credentials file kept in step with the store.

use oauth_lock::{
    refresher_fn, Credential, ErrorCode, Refresher, SaveOptions, Secret, Store, TokenFields,
};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn setup(mirror: Option<Value>) -> (tempfile::TempDir, Store, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path().join("store")).unwrap();
    let mirror_path = d.path().join("credentials.json");
    if let Some(m) = mirror {
        std::fs::write(&mirror_path, serde_json::to_vec(&m).unwrap()).unwrap();
    }
    let cred = json!({"access_token": "at-0", "refresh_token": "rt-0", "expires_in": 0,
        "mirror": {"path": mirror_path, "shape": "claude_code"}});
    store
        .save_blocking(
            "claude",
            Credential::from_json(&cred).unwrap(),
            SaveOptions::default(),
        )
        .unwrap();
    (d, store, mirror_path)
}

/// A provider that accepts only `accepts` and answers with `at-N`/`rt-N`.
fn provider(accepts: &'static str, calls: Arc<AtomicUsize>) -> Arc<dyn Refresher> {
    refresher_fn(move |rec| {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if rec.refresh_token.as_ref().map(Secret::expose) != Some(accepts) {
                return Err(oauth_lock::classify_oauth_error("invalid_grant", None));
            }
            Ok(TokenFields {
                access_token: Some(Secret::new(format!("at-{n}"))),
                refresh_token: Some(Secret::new(format!("rt-{n}"))),
                expires_in_ms: Some(3_600_000),
                ..Default::default()
            })
        }
    })
}

fn read(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_token_in_the_mirror_is_adopted_instead_of_refreshing() {
    let mirror = json!({"claudeAiOauth": {"accessToken": "at-cc", "refreshToken": "rt-cc", "expiresAt": now_ms() + 3_600_000}});
    let (_d, store, _) = setup(Some(mirror));
    let calls = Arc::new(AtomicUsize::new(0));
    let source = store
        .source_with("claude", provider("rt-0", calls.clone()))
        .unwrap();
    assert_eq!(source.access_token().await.unwrap().value(), "at-cc");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no refresh: the mirror had a newer token"
    );
    let rec = read(&store.path_of("claude").unwrap());
    assert_eq!(rec["refresh_token"], "rt-cc");
    assert_eq!(rec["generation"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_is_written_back_keeping_the_mirrors_other_fields() {
    let mirror = json!({"claudeAiOauth": {"accessToken": "at-0", "refreshToken": "rt-0", "expiresAt": 1,
        "scopes": ["user:inference"], "subscriptionType": "max"}, "mcpOAuth": {"keep": true}});
    let (_d, store, path) = setup(Some(mirror));
    let calls = Arc::new(AtomicUsize::new(0));
    let t = store
        .source_with("claude", provider("rt-0", calls.clone()))
        .unwrap()
        .access_token()
        .await
        .unwrap();
    assert_eq!(t.value(), "at-1");
    let m = read(&path);
    assert_eq!(m["claudeAiOauth"]["accessToken"], "at-1");
    assert_eq!(m["claudeAiOauth"]["refreshToken"], "rt-1");
    assert_eq!(m["claudeAiOauth"]["expiresAt"], json!(t.expires_at_ms()));
    assert_eq!(m["claudeAiOauth"]["scopes"], json!(["user:inference"]));
    assert_eq!(m["claudeAiOauth"]["subscriptionType"], "max");
    assert_eq!(m["mcpOAuth"], json!({"keep": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_recovers_with_a_token_the_mirrors_program_rotated() {
    // The other program (which does not take our lock) rotates rt-0 → rt-cc while our refresh
    // is on its way, so the provider refuses rt-0; the mirror's newer token rescues the
    // credential and is adopted without another request.
    let (_d, store, path) = setup(Some(
        json!({"claudeAiOauth": {"accessToken": "at-0", "refreshToken": "rt-0", "expiresAt": 1}}),
    ));
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let racing = refresher_fn(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        let path = path.clone();
        async move {
            let rotated = json!({"claudeAiOauth": {"accessToken": "at-cc", "refreshToken": "rt-cc",
                "expiresAt": now_ms() + 3_600_000}});
            std::fs::write(&path, serde_json::to_vec(&rotated).unwrap()).unwrap();
            Err(oauth_lock::classify_oauth_error("invalid_grant", None))
        }
    });
    let t = store
        .source_with("claude", racing)
        .unwrap()
        .access_token()
        .await
        .unwrap();
    assert_eq!(t.value(), "at-cc", "the mirror's newer token");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no second request");
    let rec = read(&store.path_of("claude").unwrap());
    assert_eq!(rec["state"], "ok");
    assert_eq!(rec["refresh_token"], "rt-cc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merely_different_older_token_in_the_mirror_is_never_adopted() {
    // The mirror missed a write-back: it holds a different refresh token whose expiry is older
    // than the record's. Adopting it would present a spent token; it must not be sent, neither
    // up front nor as a recovery after invalid_grant.
    let mirror = json!({"claudeAiOauth": {"accessToken": "at-old", "refreshToken": "rt-old", "expiresAt": 1}});
    let (_d, store, path) = setup(Some(mirror));
    let before = std::fs::read(&path).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let err = store
        .source_with("claude", provider("rt-old", calls.clone()))
        .unwrap()
        .access_token()
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidGrant, "{err}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "rt-0 was tried once; rt-old never was"
    );
    let rec = read(&store.path_of("claude").unwrap());
    assert_eq!(rec["state"], "needs_login");
    assert_eq!(rec["refresh_token"], "rt-0");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "mirror left as it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_mirror_is_created_and_a_bad_mirror_config_is_refused() {
    let (_d, store, path) = setup(None);
    let calls = Arc::new(AtomicUsize::new(0));
    store
        .source_with("claude", provider("rt-0", calls))
        .unwrap()
        .access_token()
        .await
        .unwrap();
    assert_eq!(read(&path)["claudeAiOauth"]["refreshToken"], "rt-1");
    for mirror in [
        json!({"path": "relative.json", "shape": "claude_code"}),
        json!({"path": "/tmp/x.json", "shape": "vscode"}),
    ] {
        let bad = json!({"access_token": "a", "refresh_token": "r", "mirror": mirror});
        let cred = Credential::from_json(&bad).unwrap();
        let err = store
            .save_blocking("x", cred, SaveOptions::default())
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{mirror}");
    }
    assert!(!store.path_of("x").unwrap().exists());
    assert_eq!(
        store.status("claude").unwrap().mirror_path.as_deref(),
        Some(path.as_path())
    );
}

// ---------------------------------------------------------------------------------------------
// Issue 13: the Claude Code and Codex shapes, symlinks, stubs, Claude Code's own locks,
// sync_mirror and import (DESIGN.md §6.1).
// ---------------------------------------------------------------------------------------------

use base64::Engine;
use oauth_lock::{ImportOptions, MirrorShape, MirrorSync, SourceOptions, TokenSource};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A store beside a mirror at `mirror_path` (not written here) and a record `key` holding
/// `at-0`/`rt-0`, plus `cred`'s fields (e.g. `expires_in`).
fn store_with(root: &Path, key: &str, mirror_path: &Path, shape: &str, cred: Value) -> Store {
    let store = Store::open(root.join("store")).unwrap();
    let mut c = json!({"access_token": "at-0", "refresh_token": "rt-0", "expires_in": 0,
        "mirror": {"path": mirror_path, "shape": shape}});
    for (k, v) in cred.as_object().unwrap() {
        c[k] = v.clone();
    }
    store
        .save_blocking(
            key,
            Credential::from_json(&c).unwrap(),
            SaveOptions::default(),
        )
        .unwrap();
    store
}

fn write_json(p: &Path, v: &Value) {
    fs::write(p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn record_bytes(store: &Store, key: &str) -> Vec<u8> {
    fs::read(store.path_of(key).unwrap()).unwrap()
}

/// Asserts that the only change between two record files is the shared backoff of a failed
/// refresh (DESIGN.md §4 step 9) and the stamp of that write: the tokens are untouched.
fn assert_only_backoff_added(before: &[u8], after: &[u8]) {
    let strip = |bytes: &[u8]| {
        let mut v: Value = serde_json::from_slice(bytes).unwrap();
        let o = v.as_object_mut().unwrap();
        for k in [
            "backoff",
            "generation",
            "updated_at_ms",
            "updated_by",
            "last_error",
        ] {
            o.remove(k);
        }
        v
    };
    let a: Value = serde_json::from_slice(after).unwrap();
    assert!(a["backoff"]["until_ms"].is_i64(), "a backoff is recorded");
    assert_eq!(strip(before), strip(after), "only the backoff changed");
}

/// Rewrites fields of a record on disk, as another writer could (a new generation).
fn patch_record(store: &Store, key: &str, patch: Value) {
    let path = store.path_of(key).unwrap();
    let mut rec = read(&path);
    rec["generation"] = json!(rec["generation"].as_u64().unwrap() + 1);
    for (k, v) in patch.as_object().unwrap() {
        rec[k] = v.clone();
    }
    fs::write(&path, serde_json::to_vec(&rec).unwrap()).unwrap();
}

fn source_opts(
    store: &Store,
    key: &str,
    refresher: Arc<dyn Refresher>,
    foreign_lock_timeout: Duration,
) -> TokenSource {
    let options = SourceOptions {
        foreign_lock_timeout,
        ..SourceOptions::default()
    };
    store
        .source_with_options(key, Some(refresher), options)
        .unwrap()
}

/// Claude Code's lock directories for a mirror in `dir`: `<dir>/.oauth_refresh.lock` and
/// `<realpath(dir)>.lock`.
fn claude_locks(dir: &Path) -> [PathBuf; 2] {
    let mut real = fs::canonicalize(dir).unwrap().into_os_string();
    real.push(".lock");
    [dir.join(".oauth_refresh.lock"), PathBuf::from(real)]
}

fn set_mtime(dir: &Path, when: SystemTime) {
    fs::File::open(dir)
        .unwrap()
        .set_times(fs::FileTimes::new().set_modified(when).set_accessed(when))
        .unwrap();
}

/// A JWT as OpenAI issues them (unpadded base64url; Codex reads `exp`).
fn jwt(exp_s: i64, jti: &str) -> String {
    let enc = |v: Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap())
    };
    format!(
        "{}.{}.{}",
        enc(json!({"alg": "RS256", "typ": "JWT"})),
        enc(json!({"exp": exp_s, "iat": exp_s - 3600, "jti": jti})),
        enc(json!("signature"))
    )
}

fn claude_file(at: &str, rt: &str, expires_at: i64) -> Value {
    json!({
        "claudeAiOauth": {
            "accessToken": at, "refreshToken": rt, "expiresAt": expires_at,
            "scopes": ["user:inference", "user:profile"],
            "subscriptionType": "max", "rateLimitTier": "default_claude_max_20x",
            "futureField": {"nested": [1, 2.5, "x"]}
        },
        "mcpOAuth": {"server-a": {"accessToken": "mcp-token", "expiresAt": 1}},
        "unknownTop": true
    })
}

const STUB: &str = r#"{"claudeAiOauth":{"accessToken":"","refreshToken":"","expiresAt":0,"scopes":[],"subscriptionType":"max"},"mcpOAuth":{"keep":1}}"#;

/// Item 1: a write through a symlink replaces the final target, keeps the link and the
/// target's mode, and keeps every field oauth-lock does not own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_back_through_a_symlink_keeps_the_link_the_mode_and_foreign_fields() {
    for target_mode in [0o640, 0o660, 0o600] {
        let d = tempfile::tempdir().unwrap();
        let claude = d.path().join("claude");
        let real = d.path().join("dotfiles");
        fs::create_dir_all(&claude).unwrap();
        fs::create_dir_all(&real).unwrap();
        let target = real.join("credentials.json");
        write_json(&target, &claude_file("at-0", "rt-0", 1));
        fs::set_permissions(&target, fs::Permissions::from_mode(target_mode)).unwrap();
        // A chain: .credentials.json -> hop.json -> ../dotfiles/credentials.json (relative).
        let link = claude.join(".credentials.json");
        symlink("hop.json", &link).unwrap();
        symlink("../dotfiles/credentials.json", claude.join("hop.json")).unwrap();
        let store = store_with(d.path(), "claude", &link, "claude_code", json!({}));
        let calls = Arc::new(AtomicUsize::new(0));
        let t = store
            .source_with("claude", provider("rt-0", calls.clone()))
            .unwrap()
            .access_token()
            .await
            .unwrap();
        assert_eq!(t.value(), "at-1");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        for (l, to) in [
            (&link, "hop.json"),
            (&claude.join("hop.json"), "../dotfiles/credentials.json"),
        ] {
            assert!(fs::symlink_metadata(l).unwrap().file_type().is_symlink());
            assert_eq!(fs::read_link(l).unwrap(), PathBuf::from(to));
        }
        assert_eq!(mode(&target), target_mode, "the target's mode is kept");
        let m = read(&target);
        let o = &m["claudeAiOauth"];
        assert_eq!(o["accessToken"], "at-1");
        assert_eq!(o["refreshToken"], "rt-1");
        assert_eq!(o["expiresAt"], json!(t.expires_at_ms().unwrap()));
        assert_eq!(o["scopes"], json!(["user:inference", "user:profile"]));
        assert_eq!(o["subscriptionType"], "max");
        assert_eq!(o["rateLimitTier"], "default_claude_max_20x");
        assert_eq!(o["futureField"], json!({"nested": [1, 2.5, "x"]}));
        assert_eq!(m["mcpOAuth"], claude_file("", "", 0)["mcpOAuth"]);
        assert_eq!(m["unknownTop"], true);
        let names: Vec<_> = fs::read_dir(&real)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            ["credentials.json"],
            "no temp file left, nothing else"
        );
        let names: Vec<_> = fs::read_dir(&claude)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "only the links: {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_created_by_oauth_lock_is_0600() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir(d.path().join("claude")).unwrap();
    let path = d.path().join("claude").join(".credentials.json");
    let store = store_with(d.path(), "claude", &path, "claude_code", json!({}));
    let calls = Arc::new(AtomicUsize::new(0));
    store
        .source_with("claude", provider("rt-0", calls))
        .unwrap()
        .access_token()
        .await
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(read(&path)["claudeAiOauth"]["refreshToken"], "rt-1");
}

/// Item 2: a blanked stub is no credential: the refresher is called and its answer used, and
/// the write-back repairs the stub, keeping the program's other fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blanked_stub_is_never_adopted_and_the_write_back_repairs_it() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("credentials.json");
    fs::write(&path, STUB).unwrap();
    let store = store_with(d.path(), "claude", &path, "claude_code", json!({}));
    let calls = Arc::new(AtomicUsize::new(0));
    let t = store
        .source_with("claude", provider("rt-0", calls.clone()))
        .unwrap()
        .access_token()
        .await
        .unwrap();
    assert_eq!(t.value(), "at-1", "the provider's answer");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the refresher was called");
    let m = read(&path);
    assert_eq!(m["claudeAiOauth"]["accessToken"], "at-1");
    assert_eq!(m["claudeAiOauth"]["refreshToken"], "rt-1");
    assert_eq!(m["claudeAiOauth"]["expiresAt"], json!(t.expires_at_ms()));
    assert_eq!(m["claudeAiOauth"]["subscriptionType"], "max");
    assert_eq!(m["mcpOAuth"], json!({"keep": 1}));
    let rec = read(&store.path_of("claude").unwrap());
    assert_eq!(rec["refresh_token"], "rt-1");
}

/// A stub is not "another writer rotated it": invalid_grant with a stub in the mirror marks
/// the credential dead instead of adopting blank tokens, and leaves the stub as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stub_never_makes_invalid_grant_recovery_adopt() {
    for stub in [
        STUB.to_owned(),
        // Blank tokens with a future expiry, and tokens with expiresAt 0.
        json!({"claudeAiOauth": {"accessToken": "", "refreshToken": "", "expiresAt": now_ms() + 3_600_000}}).to_string(),
        json!({"claudeAiOauth": {"accessToken": "at-x", "refreshToken": "rt-x", "expiresAt": 0}}).to_string(),
    ] {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("credentials.json");
        fs::write(&path, &stub).unwrap();
        let store = store_with(d.path(), "claude", &path, "claude_code", json!({}));
        let calls = Arc::new(AtomicUsize::new(0));
        let err = store
            .source_with("claude", provider("rt-nobody-has", calls.clone()))
            .unwrap()
            .access_token()
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidGrant, "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one request, no recovery");
        let rec = read(&store.path_of("claude").unwrap());
        assert_eq!(rec["state"], "needs_login");
        assert_eq!(rec["refresh_token"], "rt-0");
        assert_eq!(rec["access_token"], "at-0");
        assert_eq!(fs::read_to_string(&path).unwrap(), stub, "stub left as it was");
        // And from then on: NeedsLogin, no request.
        let err = store
            .source_with("claude", provider("rt-0", calls.clone()))
            .unwrap()
            .access_token()
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NeedsLogin, "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mirror_repairs_a_stub_at_once_without_a_refresh() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("credentials.json");
    fs::write(&path, STUB).unwrap();
    let store = store_with(
        d.path(),
        "claude",
        &path,
        "claude_code",
        json!({"expires_in": 3600}),
    );
    let before = read(&store.path_of("claude").unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let source = store
        .source_with("claude", provider("rt-0", calls.clone()))
        .unwrap();
    assert_eq!(source.sync_mirror().await.unwrap(), MirrorSync::Repaired);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no refresh");
    let m = read(&path);
    assert_eq!(m["claudeAiOauth"]["accessToken"], "at-0");
    assert_eq!(m["claudeAiOauth"]["refreshToken"], "rt-0");
    assert_eq!(m["claudeAiOauth"]["expiresAt"], before["expires_at_ms"]);
    assert_eq!(m["claudeAiOauth"]["subscriptionType"], "max");
    assert_eq!(m["mcpOAuth"], json!({"keep": 1}));
    let after = read(&store.path_of("claude").unwrap());
    assert_eq!(
        after["generation"], before["generation"],
        "the record is not rewritten"
    );
    assert_eq!(source.sync_mirror().await.unwrap(), MirrorSync::InStep);

    // An older copy (a missed write-back) is rewritten from the record too; a missing file
    // (the program's logout removes it) is left alone.
    write_json(&path, &claude_file("at-old", "rt-old", 1));
    assert_eq!(source.sync_mirror().await.unwrap(), MirrorSync::Repaired);
    assert_eq!(read(&path)["claudeAiOauth"]["refreshToken"], "rt-0");
    assert_eq!(read(&path)["mcpOAuth"], claude_file("", "", 0)["mcpOAuth"]);
    fs::remove_file(&path).unwrap();
    assert_eq!(source.sync_mirror().await.unwrap(), MirrorSync::Missing);
    assert!(!path.exists(), "a logout is not undone");
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // Foreign JSON is reported, never "repaired".
    for junk in ["[1, 2]", "{not json", ""] {
        fs::write(&path, junk).unwrap();
        assert!(
            matches!(
                source.sync_mirror().await.unwrap(),
                MirrorSync::Unreadable(_)
            ),
            "{junk}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), junk);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mirror_adopts_a_newer_token_and_says_in_step_when_equal() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("credentials.json");
    let store = store_with(
        d.path(),
        "claude",
        &path,
        "claude_code",
        json!({"expires_in": 3600}),
    );
    let later = now_ms() + 7_200_000;
    write_json(&path, &claude_file("at-cc", "rt-cc", later));
    let calls = Arc::new(AtomicUsize::new(0));
    let source = store
        .source_with("claude", provider("rt-0", calls.clone()))
        .unwrap();
    assert_eq!(
        source.sync_mirror().await.unwrap(),
        MirrorSync::Adopted { generation: 2 }
    );
    let rec = read(&store.path_of("claude").unwrap());
    assert_eq!(rec["access_token"], "at-cc");
    assert_eq!(rec["refresh_token"], "rt-cc");
    assert_eq!(rec["expires_at_ms"], later);
    assert_eq!(rec["scope"], "user:inference user:profile");
    assert_eq!(source.access_token().await.unwrap().value(), "at-cc");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let mirror_before = fs::read(&path).unwrap();
    assert_eq!(source.sync_mirror().await.unwrap(), MirrorSync::InStep);
    assert_eq!(fs::read(&path).unwrap(), mirror_before);

    // In step: no lock at all. With Claude Code's lock held and ours held by another open
    // file description, it still answers at once.
    let [claude_lock, _] = claude_locks(d.path());
    fs::create_dir(&claude_lock).unwrap();
    let ours = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(store.dir().join("claude.lock"))
        .unwrap();
    // SAFETY: flock on a descriptor we own; closing it releases the lock.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&ours), libc::LOCK_EX) },
        0
    );
    let options = SourceOptions {
        lock_timeout: Duration::from_secs(3),
        foreign_lock_timeout: Duration::from_secs(3),
        ..SourceOptions::default()
    };
    let blocked = store.source_with_options("claude", None, options).unwrap();
    let start = Instant::now();
    assert_eq!(blocked.sync_mirror().await.unwrap(), MirrorSync::InStep);
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "took {:?}: it waited for a lock",
        start.elapsed()
    );
    drop(ours);
    assert!(claude_lock.is_dir(), "the program's lock is left alone");
}

/// Item 3: Claude Code's two proper-lockfile locks are held around the refresh and removed
/// after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_codes_locks_are_held_around_the_refresh_and_removed_after() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("claude");
    fs::create_dir(&dir).unwrap();
    let path = dir.join(".credentials.json");
    write_json(&path, &claude_file("at-0", "rt-0", 1));
    let store = store_with(d.path(), "claude", &path, "claude_code", json!({}));
    let locks = claude_locks(&dir);
    let seen = Arc::new(parking_lot::Mutex::new(None));
    let (l, s) = (locks.clone(), seen.clone());
    let refresher = refresher_fn(move |_| {
        *s.lock() = Some(l.iter().map(|p| p.is_dir()).collect::<Vec<_>>());
        async move {
            Ok(TokenFields {
                access_token: Some(Secret::new("at-1")),
                refresh_token: Some(Secret::new("rt-1")),
                expires_in_ms: Some(3_600_000),
                ..Default::default()
            })
        }
    });
    let t = store
        .source_with("claude", refresher)
        .unwrap()
        .access_token()
        .await
        .unwrap();
    assert_eq!(t.value(), "at-1");
    assert_eq!(
        seen.lock().clone(),
        Some(vec![true, true]),
        "both locks held during the refresh: {locks:?}"
    );
    for lock in &locks {
        assert!(!lock.exists(), "{lock:?} released");
    }
    assert_eq!(read(&path)["claudeAiOauth"]["refreshToken"], "rt-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_claude_code_lock_gives_busy_or_the_old_token_and_sends_nothing() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("claude");
    fs::create_dir(&dir).unwrap();
    let path = dir.join(".credentials.json");
    write_json(&path, &claude_file("at-0", "rt-0", 1));
    let store = store_with(d.path(), "claude", &path, "claude_code", json!({}));
    let [held, second] = claude_locks(&dir);
    fs::create_dir(&held).unwrap();
    let record_before = record_bytes(&store, "claude");
    let mirror_before = fs::read(&path).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let wait = Duration::from_millis(300);

    // Expired: Busy naming the program's lock, after the bounded wait.
    let source = source_opts(&store, "claude", provider("rt-0", calls.clone()), wait);
    let start = Instant::now();
    let err = source.access_token().await.unwrap_err();
    let waited = start.elapsed();
    assert_eq!(err.code(), ErrorCode::Busy, "{err}");
    let message = err.to_string();
    assert!(message.contains(&held.display().to_string()), "{message}");
    assert!(message.contains("Claude Code"), "{message}");
    assert!(
        waited >= wait && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the refresher never ran");
    // A backoff, so that the other processes do not each wait for the program's lock in turn.
    assert_only_backoff_added(&record_before, &record_bytes(&store, "claude"));
    assert_eq!(fs::read(&path).unwrap(), mirror_before, "mirror unchanged");
    assert!(held.is_dir(), "the holder's lock is left alone");
    assert!(
        !second.exists(),
        "the second lock is never taken before the first"
    );

    // Unexpired but due (60 s left, inside the 5 min margin): the old token, no refresh.
    let exp = now_ms() + 60_000;
    patch_record(
        &store,
        "claude",
        json!({"expires_at_ms": exp, "issued_at_ms": null, "backoff": null}),
    );
    let record_before = record_bytes(&store, "claude");
    let source = source_opts(&store, "claude", provider("rt-0", calls.clone()), wait);
    let t = source.access_token().await.unwrap();
    assert_eq!(t.value(), "at-0");
    assert_eq!(t.expires_at_ms(), Some(exp));
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no refresh");
    assert_only_backoff_added(&record_before, &record_bytes(&store, "claude"));
    assert_eq!(fs::read(&path).unwrap(), mirror_before, "mirror unchanged");
    assert!(held.is_dir());
}

/// A crashed holder's lock (mtime 61 s ago) and one with an mtime 10 minutes in the future
/// (a clock stepped back; proper-lockfile would wait on it forever) are taken: the documented
/// decision (core/src/mirror/foreign_lock.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_or_future_claude_code_lock_is_taken_and_the_refresh_succeeds() {
    for (what, offset_s) in [("61 s old", -61i64), ("10 min in the future", 600)] {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("claude");
        fs::create_dir(&dir).unwrap();
        let path = dir.join(".credentials.json");
        write_json(&path, &claude_file("at-0", "rt-0", 1));
        let store = store_with(d.path(), "claude", &path, "claude_code", json!({}));
        let locks = claude_locks(&dir);
        for lock in &locks {
            fs::create_dir(lock).unwrap();
            let when = if offset_s < 0 {
                SystemTime::now() - Duration::from_secs(offset_s.unsigned_abs())
            } else {
                SystemTime::now() + Duration::from_secs(offset_s as u64)
            };
            set_mtime(lock, when);
        }
        let calls = Arc::new(AtomicUsize::new(0));
        let source = source_opts(
            &store,
            "claude",
            provider("rt-0", calls.clone()),
            Duration::from_millis(300),
        );
        let start = Instant::now();
        let t = source
            .access_token()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(t.value(), "at-1", "{what}");
        assert!(
            start.elapsed() < Duration::from_millis(300),
            "{what}: at once"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{what}");
        for lock in &locks {
            assert!(!lock.exists(), "{what}: {lock:?} released");
        }
        assert_eq!(read(&path)["claudeAiOauth"]["refreshToken"], "rt-1");
    }
}

// Codex ----------------------------------------------------------------------------------------

fn codex_file(at: &str, rt: &str) -> Value {
    json!({
        "OPENAI_API_KEY": null,
        "auth_mode": "chatgpt",
        "tokens": {"id_token": "id-0", "access_token": at, "refresh_token": rt,
            "account_id": "acct-42"},
        "last_refresh": "2026-01-01T00:00:00.000000Z",
        "future": {"x": [1, 2]}
    })
}

/// A Codex-like provider: accepts `accepts`, answers with JWT access tokens and no id token.
fn jwt_provider(accepts: &'static str, calls: Arc<AtomicUsize>) -> Arc<dyn Refresher> {
    refresher_fn(move |rec| {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if rec.refresh_token.as_ref().map(Secret::expose) != Some(accepts) {
                return Err(oauth_lock::classify_oauth_error("invalid_grant", None));
            }
            Ok(TokenFields {
                access_token: Some(Secret::new(jwt(now_ms() / 1000 + 3600, &format!("j{n}")))),
                refresh_token: Some(Secret::new(format!("rt-{n}"))),
                expires_in_ms: Some(3_600_000),
                ..Default::default()
            })
        }
    })
}

/// Item 4: a newer JWT (later `exp`) with another refresh token in Codex's file is adopted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_a_newer_jwt_in_the_file_is_adopted_instead_of_refreshing() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("auth.json");
    let exp_s = now_ms() / 1000 + 7200;
    let access = jwt(exp_s, "codex-own");
    write_json(&path, &codex_file(&access, "rt-cx"));
    let store = store_with(d.path(), "codex", &path, "codex", json!({}));
    let calls = Arc::new(AtomicUsize::new(0));
    let t = store
        .source_with("codex", jwt_provider("rt-0", calls.clone()))
        .unwrap()
        .access_token()
        .await
        .unwrap();
    assert_eq!(t.value(), access);
    assert_eq!(t.expires_at_ms(), Some(exp_s * 1000), "expiry from the JWT");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no refresh");
    let rec = read(&store.path_of("codex").unwrap());
    assert_eq!(rec["refresh_token"], "rt-cx");
    assert_eq!(rec["id_token"], "id-0");
    assert_eq!(rec["generation"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_write_back_updates_tokens_and_last_refresh_and_keeps_the_rest() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("auth.json");
    let old = jwt(now_ms() / 1000 - 60, "old");
    write_json(&path, &codex_file(&old, "rt-0"));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let store = store_with(
        d.path(),
        "codex",
        &path,
        "codex",
        json!({"access_token": old}),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let before = SystemTime::now();
    let t = store
        .source_with("codex", jwt_provider("rt-0", calls.clone()))
        .unwrap()
        .access_token()
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let m = read(&path);
    assert_eq!(m["tokens"]["access_token"], t.value());
    assert_eq!(m["tokens"]["refresh_token"], "rt-1");
    assert_eq!(
        m["tokens"]["id_token"], "id-0",
        "no id token in the answer: kept"
    );
    assert_eq!(m["tokens"]["account_id"], "acct-42");
    assert_eq!(m["auth_mode"], "chatgpt");
    assert!(m.as_object().unwrap().contains_key("OPENAI_API_KEY"));
    assert_eq!(m["OPENAI_API_KEY"], Value::Null);
    assert_eq!(m["future"], json!({"x": [1, 2]}));
    let last = m["last_refresh"].as_str().unwrap();
    let when = humantime::parse_rfc3339(last).unwrap_or_else(|e| panic!("{last}: {e}"));
    assert!(
        when >= before - Duration::from_secs(1) && when <= SystemTime::now(),
        "{last}"
    );
    assert_eq!(mode(&path), 0o600);
    assert_eq!(m.as_object().unwrap().len(), 5, "no field added: {m}");
}

/// Codex truncates and rewrites its file in place: a reader that finds it empty retries for
/// a moment and reads the complete file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_a_torn_file_is_read_after_the_retry() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("auth.json");
    let exp_s = now_ms() / 1000 + 7200;
    let access = jwt(exp_s, "codex-own");
    let complete = serde_json::to_vec(&codex_file(&access, "rt-cx")).unwrap();
    let store = store_with(d.path(), "codex", &path, "codex", json!({}));
    fs::write(&path, b"").unwrap();
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            fs::write(&path, complete).unwrap();
        })
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let t = store
        .source_with("codex", jwt_provider("rt-0", calls.clone()))
        .unwrap()
        .access_token()
        .await
        .unwrap();
    writer.join().unwrap();
    assert_eq!(t.value(), access, "the complete file's newer token");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "read, not mistaken for unreadable"
    );
}

// Import ---------------------------------------------------------------------------------------

const LOOPBACK: &str = "http://127.0.0.1:9/oauth/token";

fn import(
    store: &Store,
    shape: MirrorShape,
    file: &Path,
    key: Option<&str>,
) -> oauth_lock::Result<oauth_lock::Status> {
    store.import_blocking(
        shape,
        ImportOptions {
            key: key.map(str::to_owned),
            file: Some(file.to_owned()),
            token_url: Some(LOOPBACK.into()),
        },
    )
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Item 5: a Claude Code file makes a record with the program's refresh config and the mirror.
#[test]
fn import_a_claude_code_file_then_again_then_with_the_record_ahead() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("claude");
    fs::create_dir(&dir).unwrap();
    let path = dir.join(".credentials.json");
    // Half an hour left: a refresh (one hour) moves the expiry past the file's.
    let exp = now_ms() + 1_800_000;
    write_json(&path, &claude_file("cc-at-1", "cc-rt-1", exp));
    let store = Store::open(d.path().join("store")).unwrap();
    let status = import(&store, MirrorShape::ClaudeCode, &path, None).unwrap();
    assert_eq!(status.key, "claude-code");
    assert_eq!(status.mirror_path.as_deref(), Some(path.as_path()));
    assert_eq!(status.mirror_shape, Some(MirrorShape::ClaudeCode));
    assert_eq!(status.expires_at_ms, Some(exp));
    let rec = read(&store.path_of("claude-code").unwrap());
    assert_eq!(rec["access_token"], "cc-at-1");
    assert_eq!(rec["refresh_token"], "cc-rt-1");
    assert_eq!(rec["expires_at_ms"], exp);
    assert_eq!(rec["scope"], "user:inference user:profile");
    assert_eq!(rec["refresh"]["token_url"], LOOPBACK);
    assert_eq!(
        rec["refresh"]["client_id"],
        "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
    );
    assert_eq!(rec["refresh"]["body"], "json");
    assert_eq!(rec["mirror"], json!({"path": path, "shape": "claude_code"}));
    assert_eq!(rec["generation"], 1);
    assert_eq!(rec["state"], "ok");

    // Claude Code logged in again: importing again takes the new tokens.
    let exp2 = exp + 1000;
    write_json(&path, &claude_file("cc-at-2", "cc-rt-2", exp2));
    import(&store, MirrorShape::ClaudeCode, &path, None).unwrap();
    let rec = read(&store.path_of("claude-code").unwrap());
    assert_eq!(rec["generation"], 2);
    assert_eq!(rec["access_token"], "cc-at-2");
    assert_eq!(rec["refresh_token"], "cc-rt-2");
    assert_eq!(rec["expires_at_ms"], exp2);

    // The record rotates (its write-back reaches the file), then the file is restored from an
    // old copy: a re-import keeps the record's newer tokens and rewrites the file.
    let calls = Arc::new(AtomicUsize::new(0));
    let t = store
        .source_with("claude-code", provider("cc-rt-2", calls.clone()))
        .unwrap()
        .verify_blocking()
        .unwrap();
    assert_eq!(t.value(), "at-1");
    assert_eq!(read(&path)["claudeAiOauth"]["refreshToken"], "rt-1");
    write_json(&path, &claude_file("cc-at-2", "cc-rt-2", exp2));
    import(&store, MirrorShape::ClaudeCode, &path, None).unwrap();
    let rec = read(&store.path_of("claude-code").unwrap());
    assert_eq!(
        rec["access_token"], "at-1",
        "the record's newer tokens stay"
    );
    assert_eq!(rec["refresh_token"], "rt-1");
    assert_eq!(rec["expires_at_ms"], json!(t.expires_at_ms()));
    let m = read(&path);
    assert_eq!(
        m["claudeAiOauth"]["accessToken"], "at-1",
        "the file is rewritten"
    );
    assert_eq!(m["claudeAiOauth"]["refreshToken"], "rt-1");
    assert_eq!(m["claudeAiOauth"]["expiresAt"], json!(t.expires_at_ms()));
    assert_eq!(m["mcpOAuth"], claude_file("", "", 0)["mcpOAuth"]);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn import_a_codex_file_under_another_key_through_a_symlink() {
    let d = tempfile::tempdir().unwrap();
    let real = d.path().join("auth.real.json");
    let link = d.path().join("auth.json");
    let exp_s = now_ms() / 1000 + 3600;
    let access = jwt(exp_s, "imported");
    write_json(&real, &codex_file(&access, "cx-rt-1"));
    symlink(&real, &link).unwrap();
    let store = Store::open(d.path().join("store")).unwrap();
    let status = import(&store, MirrorShape::Codex, &link, Some("openai:work")).unwrap();
    assert_eq!(status.key, "openai:work");
    assert_eq!(
        status.mirror_path.as_deref(),
        Some(link.as_path()),
        "the link as given"
    );
    assert_eq!(status.mirror_shape, Some(MirrorShape::Codex));
    let rec = read(&store.path_of("openai:work").unwrap());
    assert_eq!(rec["access_token"], access);
    assert_eq!(rec["refresh_token"], "cx-rt-1");
    assert_eq!(rec["id_token"], "id-0");
    assert_eq!(rec["expires_at_ms"], exp_s * 1000);
    assert_eq!(rec["refresh"]["token_url"], LOOPBACK);
    assert_eq!(rec["refresh"]["client_id"], "app_EMoamEEZ73f0CkXaXp7hrann");
    assert_eq!(rec["refresh"]["body"], "json");
    assert_eq!(rec["mirror"], json!({"path": link, "shape": "codex"}));
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    // Without --token-url: the program's own endpoint.
    let status = store
        .import_blocking(
            MirrorShape::Codex,
            ImportOptions {
                key: Some("openai:work".into()),
                file: Some(link.clone()),
                token_url: None,
            },
        )
        .unwrap();
    assert_eq!(status.generation, Some(2));
    let rec = read(&store.path_of("openai:work").unwrap());
    assert_eq!(
        rec["refresh"]["token_url"],
        "https://auth.openai.com/oauth/token"
    );
}

#[test]
fn import_refuses_files_without_a_login_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let store_dir = d.path().join("store");
    let store = Store::open(&store_dir).unwrap();
    let at = jwt(now_ms() / 1000 + 3600, "x");
    let cases: Vec<(&str, MirrorShape, Option<Vec<u8>>)> = vec![
        (
            "api-key-only codex",
            MirrorShape::Codex,
            Some(
                br#"{"OPENAI_API_KEY": "sk-test", "tokens": null, "last_refresh": null}"#.to_vec(),
            ),
        ),
        (
            "codex stub",
            MirrorShape::Codex,
            Some(serde_json::to_vec(&codex_file("", "")).unwrap()),
        ),
        (
            "claude stub",
            MirrorShape::ClaudeCode,
            Some(STUB.as_bytes().to_vec()),
        ),
        (
            "claude without claudeAiOauth",
            MirrorShape::ClaudeCode,
            Some(br#"{"mcpOAuth": {}}"#.to_vec()),
        ),
        (
            "malformed claude",
            MirrorShape::ClaudeCode,
            Some(b"{\"claudeAiOauth\": {".to_vec()),
        ),
        (
            "malformed codex",
            MirrorShape::Codex,
            Some(format!("{{\"tokens\": {{\"access_token\": \"{at}\"").into_bytes()),
        ),
        (
            "non-object",
            MirrorShape::ClaudeCode,
            Some(b"[\"claudeAiOauth\"]".to_vec()),
        ),
        ("empty", MirrorShape::Codex, Some(Vec::new())),
        ("missing", MirrorShape::ClaudeCode, None),
    ];
    for (what, shape, content) in cases {
        let file = d.path().join(format!("{}.json", what.replace(' ', "_")));
        if let Some(bytes) = &content {
            fs::write(&file, bytes).unwrap();
        }
        let err = import(&store, shape, &file, None).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{what}: {err}");
        let message = err.to_string();
        assert!(
            message.contains(&file.display().to_string()),
            "{what}: {message}"
        );
        assert!(
            !message.contains("sk-test") && !message.contains(&at),
            "{what}: {message}"
        );
        assert_eq!(
            listing(&store_dir),
            Vec::<String>::new(),
            "{what}: nothing stored"
        );
        match &content {
            Some(bytes) => assert_eq!(&fs::read(&file).unwrap(), bytes, "{what}: file unchanged"),
            None => assert!(!file.exists(), "{what}: no file made"),
        }
    }

    // A plain-http token URL that is not loopback: Insecure, nothing written.
    let file = d.path().join("good.json");
    write_json(&file, &claude_file("cc-at", "cc-rt", now_ms() + 3_600_000));
    let before = fs::read(&file).unwrap();
    let err = store
        .import_blocking(
            MirrorShape::ClaudeCode,
            ImportOptions {
                key: None,
                file: Some(file.clone()),
                token_url: Some("http://auth.example.com/oauth/token".into()),
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Insecure, "{err}");
    assert_eq!(listing(&store_dir), Vec::<String>::new());
    assert_eq!(fs::read(&file).unwrap(), before);
}

/// `MirrorShape::default_path` and an import without `--file` honour `CLAUDE_CONFIG_DIR`,
/// `CODEX_HOME` and `HOME`. Environment variables are process-wide, so the checks run in a
/// child process (this test binary, running only `default_paths_child`).
#[test]
fn default_paths_honour_the_programs_env_vars() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("home");
    let claude_dir = d.path().join("claude-config");
    let codex_home = d.path().join("codex-home");
    for dir in [&home, &claude_dir, &codex_home] {
        fs::create_dir_all(dir).unwrap();
    }
    let run = |claude: Option<&Path>, codex: Option<&Path>| {
        let mut c = std::process::Command::new(std::env::current_exe().unwrap());
        c.args([
            "default_paths_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OAUTH_LOCK_TEST_DEFAULT_PATHS_CHILD", d.path())
        .env("HOME", &home)
        .env_remove("OAUTH_LOCK_DIR");
        match claude {
            Some(p) => c.env("CLAUDE_CONFIG_DIR", p),
            None => c.env("CLAUDE_CONFIG_DIR", ""),
        };
        match codex {
            Some(p) => c.env("CODEX_HOME", p),
            None => c.env_remove("CODEX_HOME"),
        };
        let out = c.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = text
            .lines()
            .find_map(|l| l.split_once("DEFAULT_PATHS ").map(|(_, v)| v))
            .unwrap_or_else(|| panic!("child said {text}"))
            .to_owned();
        let v: Value = serde_json::from_str(&line).unwrap();
        v
    };
    let set = run(Some(&claude_dir), Some(&codex_home));
    assert_eq!(set["claude"], json!(claude_dir.join(".credentials.json")));
    assert_eq!(set["codex"], json!(codex_home.join("auth.json")));
    assert_eq!(
        set["imported_claude"],
        json!(claude_dir.join(".credentials.json"))
    );
    assert_eq!(set["imported_codex"], json!(codex_home.join("auth.json")));
    let unset = run(None, None);
    assert_eq!(
        unset["claude"],
        json!(home.join(".claude").join(".credentials.json"))
    );
    assert_eq!(unset["codex"], json!(home.join(".codex").join("auth.json")));
    assert_eq!(
        unset["imported_claude"],
        json!(home.join(".claude").join(".credentials.json"))
    );
    assert_eq!(
        unset["imported_codex"],
        json!(home.join(".codex").join("auth.json"))
    );
}

/// The child half of `default_paths_honour_the_programs_env_vars`; passes trivially when run
/// with the other tests.
#[test]
fn default_paths_child() {
    let Some(root) = std::env::var_os("OAUTH_LOCK_TEST_DEFAULT_PATHS_CHILD") else {
        return;
    };
    let claude = MirrorShape::ClaudeCode.default_path().unwrap();
    let codex = MirrorShape::Codex.default_path().unwrap();
    fs::create_dir_all(claude.parent().unwrap()).unwrap();
    fs::create_dir_all(codex.parent().unwrap()).unwrap();
    write_json(
        &claude,
        &claude_file("cc-at", "cc-rt", now_ms() + 3_600_000),
    );
    write_json(
        &codex,
        &codex_file(&jwt(now_ms() / 1000 + 3600, "d"), "cx-rt"),
    );
    let store =
        Store::open(PathBuf::from(root).join(format!("store-{}", std::process::id()))).unwrap();
    let imported = |shape| {
        store
            .import_blocking(
                shape,
                ImportOptions {
                    token_url: Some(LOOPBACK.into()),
                    ..ImportOptions::default()
                },
            )
            .unwrap()
            .mirror_path
            .unwrap()
    };
    let out = json!({
        "claude": claude,
        "codex": codex,
        "imported_claude": imported(MirrorShape::ClaudeCode),
        "imported_codex": imported(MirrorShape::Codex),
    });
    println!("DEFAULT_PATHS {out}");
}

/// A mirror whose directory is gone (the program was uninstalled, its config directory
/// removed): there is no program to serialize with, so the refresh goes on; the write-back
/// fails (a warning) and makes no directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_in_a_missing_directory_does_not_stop_the_refresh() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("claude");
    let path = dir.join(".credentials.json");
    let store = store_with(d.path(), "claude", &path, "claude_code", json!({}));
    let calls = Arc::new(AtomicUsize::new(0));
    let t = source_opts(
        &store,
        "claude",
        provider("rt-0", calls.clone()),
        Duration::from_millis(300),
    )
    .access_token()
    .await
    .unwrap();
    assert_eq!(t.value(), "at-1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(!dir.exists(), "no directory is made");
    for lock in [
        dir.join(".oauth_refresh.lock"),
        d.path().join("claude.lock"),
    ] {
        assert!(!lock.exists(), "{lock:?}");
    }
}

/// `sync_mirror` honours Claude Code's lock like a refresh does: busy → `Busy` naming it,
/// the file untouched; a stale one is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mirror_waits_for_claude_codes_lock_and_takes_a_stale_one() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("claude");
    fs::create_dir(&dir).unwrap();
    let path = dir.join(".credentials.json");
    fs::write(&path, STUB).unwrap();
    let store = store_with(
        d.path(),
        "claude",
        &path,
        "claude_code",
        json!({"expires_in": 3600}),
    );
    let [held, second] = claude_locks(&dir);
    fs::create_dir(&held).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let source = source_opts(
        &store,
        "claude",
        provider("rt-0", calls.clone()),
        Duration::from_millis(300),
    );
    let err = source.sync_mirror().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Busy, "{err}");
    assert!(
        err.to_string().contains(&held.display().to_string()),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), STUB, "untouched");
    assert!(held.is_dir() && !second.exists());
    set_mtime(&held, SystemTime::now() - Duration::from_secs(61));
    assert_eq!(source.sync_mirror().await.unwrap(), MirrorSync::Repaired);
    assert_eq!(read(&path)["claudeAiOauth"]["refreshToken"], "rt-0");
    assert!(!held.exists() && !second.exists());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

/// The keep-alive's passes in the core: the mirror's repair, the program's rotation and an
/// unreadable file are reported (the last once), and nothing is refreshed while fresh.
#[test]
fn keepalive_passes_repair_adopt_and_report_the_mirror_once() {
    use oauth_lock::{Keepalive, KeepaliveAction, KeepaliveOptions};
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("credentials.json");
    fs::write(&path, STUB).unwrap();
    let store = store_with(
        d.path(),
        "claude",
        &path,
        "claude_code",
        json!({"expires_in": 3600,
            "refresh": {"token_url": LOOPBACK, "client_id": "c", "body": "json"}}),
    );
    let options = KeepaliveOptions {
        check_every: Duration::from_secs(60),
        ..KeepaliveOptions::default()
    };
    let mut keeper = Keepalive::new(store.clone(), Vec::new(), options);
    let actions = |keeper: &mut Keepalive| {
        let pass = keeper.pass().unwrap();
        assert_eq!(pass.failures, 0);
        assert!(
            pass.sleep > Duration::from_secs(50) && pass.sleep <= Duration::from_secs(60),
            "{:?}",
            pass.sleep
        );
        pass.reports
            .into_iter()
            .map(|r| {
                assert_eq!(r.key, "claude");
                r.action
            })
            .collect::<Vec<_>>()
    };
    let a = actions(&mut keeper);
    assert!(matches!(a[..], [KeepaliveAction::RepairedMirror]), "{a:?}");
    assert_eq!(read(&path)["claudeAiOauth"]["refreshToken"], "rt-0");
    let a = actions(&mut keeper);
    assert!(matches!(a[..], [KeepaliveAction::Fresh { .. }]), "{a:?}");
    assert!(actions(&mut keeper).is_empty(), "fresh again: said once");

    write_json(&path, &claude_file("at-cc", "rt-cc", now_ms() + 7_200_000));
    let a = actions(&mut keeper);
    assert!(
        matches!(
            a[..],
            [KeepaliveAction::AdoptedFromMirror { generation: 2 }]
        ),
        "{a:?}"
    );
    assert_eq!(
        read(&store.path_of("claude").unwrap())["refresh_token"],
        "rt-cc"
    );

    fs::write(&path, "{torn").unwrap();
    let a = actions(&mut keeper);
    assert!(
        matches!(a[..], [KeepaliveAction::MirrorUnreadable(_)]),
        "{a:?}"
    );
    assert!(actions(&mut keeper).is_empty(), "said once");
    assert_eq!(fs::read_to_string(&path).unwrap(), "{torn");
}
