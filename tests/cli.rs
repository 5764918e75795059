//! The `oauth-lock` command as a user meets it: exit codes, messages that name the key and
//! path, status output, keep-alive refresh, events on stderr without tokens.

mod support;

use serde_json::{json, Value};
use support::*;

#[test]
fn a_missing_credential_exits_11_naming_key_and_path() {
    let (_d, dir) = store_dir();
    let o = run(&dir, &["token", "anthropic:work"]);
    assert_eq!(o.status.code(), Some(11));
    let err = stderr(&o);
    assert!(err.contains("error[NeedsLogin]"), "{err}");
    assert!(err.contains("\"anthropic:work\""), "{err}");
    assert!(err.contains("anthropic%3Awork.json"), "{err}");
}

#[test]
fn bad_input_gets_its_code_and_changes_nothing() {
    let (_d, dir) = store_dir();
    assert_eq!(
        run_with_stdin(&dir, &["save", "k"], "{not json")
            .status
            .code(),
        Some(20)
    );
    assert_eq!(
        run_with_stdin(&dir, &["save", "k"], r#"{"token_type": "Bearer"}"#)
            .status
            .code(),
        Some(20)
    );
    assert_eq!(
        run_with_stdin(&dir, &["save", ".hidden"], r#"{"access_token": "a"}"#)
            .status
            .code(),
        Some(20)
    );
    let insecure = json!({"access_token": "a", "refresh": {"token_url": "http://auth.example.com/t", "client_id": "c"}});
    assert_eq!(
        run_with_stdin(&dir, &["save", "k"], &insecure.to_string())
            .status
            .code(),
        Some(21)
    );
    assert!(!dir.join("k.json").exists());
    // Downgrade: exit 16, file unchanged; --allow-downgrade forces it.
    assert!(run_with_stdin(
        &dir,
        &["save", "k"],
        r#"{"access_token": "a", "refresh_token": "r"}"#
    )
    .status
    .success());
    let before = std::fs::read(dir.join("k.json")).unwrap();
    let o = run_with_stdin(&dir, &["save", "k"], r#"{"access_token": "b"}"#);
    assert_eq!(o.status.code(), Some(16), "{}", stderr(&o));
    assert_eq!(std::fs::read(dir.join("k.json")).unwrap(), before);
    assert!(run_with_stdin(
        &dir,
        &["save", "k", "--allow-downgrade"],
        r#"{"access_token": "b"}"#
    )
    .status
    .success());
    // A corrupt record: exit 17 naming the path, bytes unchanged.
    std::fs::write(
        dir.join("torn.json"),
        b"{\"format\": 1, \"key\": \"torn\", \"gen",
    )
    .unwrap();
    let o = run(&dir, &["token", "torn"]);
    assert_eq!(o.status.code(), Some(17));
    assert!(stderr(&o).contains("torn.json"));
    assert_eq!(
        std::fs::read(dir.join("torn.json")).unwrap(),
        b"{\"format\": 1, \"key\": \"torn\", \"gen"
    );
}

#[test]
fn status_shows_a_table_and_json() {
    let (_d, dir) = store_dir();
    let cred = json!({"access_token": "at-x", "refresh_token": "rt-x", "expires_in": 3600,
        "refresh": {"token_url": "https://auth.example.com/t", "client_id": "c"}});
    assert!(
        run_with_stdin(&dir, &["save", "anthropic:work"], &cred.to_string())
            .status
            .success()
    );
    let table = stdout(&run(&dir, &["status"]));
    assert!(
        table.contains("KEY") && table.contains("anthropic:work") && table.contains("expires in"),
        "{table}"
    );
    assert!(
        !table.contains("at-x") && !table.contains("rt-x"),
        "no tokens in status"
    );
    let one: Value =
        serde_json::from_str(&stdout(&run(&dir, &["status", "anthropic:work", "--json"]))).unwrap();
    assert_eq!(one["generation"], 1);
    assert_eq!(one["state"], "ok");
    assert_eq!(one["has_refresh_token"], true);
    assert_eq!(one["insecure_permissions"], false);
    let all: Value = serde_json::from_str(&stdout(&run(&dir, &["status", "--json"]))).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1);
}

#[test]
fn refresh_if_expiring_within_only_refreshes_when_needed() {
    let mock = Mock::start(&["--lifetime", "1h"]);
    let (_d, dir) = store_dir();
    login_and_save(&mock, &dir, "cron", None);
    let o = run(&dir, &["refresh", "cron", "--if-expiring-within", "10m"]);
    assert!(
        o.status.success() && stderr(&o).contains("still fresh"),
        "{}",
        stderr(&o)
    );
    assert_eq!(mock.stat("refreshes"), 0);
    // A token with 20 minutes left is refreshed by "within 30m".
    let mut cred = mock.login();
    cred["refresh"] = mock.refresh_config();
    let rec_before = record(&dir, "cron");
    cred["expires_in"] = json!(20 * 60);
    assert!(run_with_stdin(&dir, &["save", "cron"], &cred.to_string())
        .status
        .success());
    let o = run(&dir, &["refresh", "cron", "--if-expiring-within", "30m"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("refreshed"), "{}", stderr(&o));
    assert_eq!(mock.stat("refreshes"), 1);
    assert_ne!(record(&dir, "cron")["generation"], rec_before["generation"]);
}

#[test]
fn verify_rotates_and_clear_logs_out() {
    let mock = Mock::start(&["--lifetime", "1h"]);
    let (_d, dir) = store_dir();
    let cred = login_and_save(&mock, &dir, "v", None);
    let o = run(&dir, &["verify", "v"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mock.stat("refreshes"), 1);
    assert_ne!(
        record(&dir, "v")["refresh_token"],
        cred["refresh_token"],
        "rotated"
    );
    assert!(run(&dir, &["clear", "v"]).status.success());
    assert_eq!(run(&dir, &["token", "v"]).status.code(), Some(11));
    assert!(dir.join("v.lock").exists());
}

#[test]
fn verbose_prints_events_and_never_a_token() {
    let mock = Mock::start(&["--lifetime", "1h"]);
    let (_d, dir) = store_dir();
    let cred = login_and_save(&mock, &dir, "e", Some(0.0));
    let o = run(&dir, &["-v", "token", "e"]);
    assert!(o.status.success());
    let err = stderr(&o);
    assert!(err.contains("refreshed"), "{err}");
    let new = stdout(&o);
    for secret in [
        new.as_str(),
        cred["refresh_token"].as_str().unwrap(),
        cred["access_token"].as_str().unwrap(),
    ] {
        assert!(!err.contains(secret), "a token reached stderr: {err}");
    }
    let new_rt = record(&dir, "e")["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!err.contains(&new_rt));
}

#[test]
fn oauth_lock_dir_environment_variable_selects_the_store() {
    let (_d, dir) = store_dir();
    let o = std::process::Command::new(bin())
        .args(["status", "--json"])
        .env("OAUTH_LOCK_DIR", &dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.is_dir(), "the store directory was created");
}

/// The README's main job, scaled down: the demo passes with 0 replays, and the naive run
/// shows what oauth-lock prevents.
#[test]
fn the_demo_passes_and_the_naive_run_shows_replays() {
    let (_d, dir) = store_dir();
    let args = [
        "demo",
        "--processes",
        "3",
        "--threads",
        "2",
        "--duration",
        "2s",
        "--lifetime",
        "1s",
    ];
    let o = run(&dir, &args);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    assert!(out.contains("PASS"), "{out}");
    let count = |label: &str| -> u64 {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("{label}: {out}"));
        line.split_whitespace()
            .find_map(|w| w.parse().ok())
            .unwrap()
    };
    assert_eq!(count("replays at the provider"), 0);
    assert_eq!(count("errors in the clients"), 0);
    assert!(count("refreshes at the provider") >= 2, "{out}");
    let mut naive = args.to_vec();
    naive.push("--naive");
    let o = run(&dir, &naive);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("WITHOUT oauth-lock"));
}

/// `oauth-lock import`: a file without a login is exit 20 naming the file, an insecure token
/// URL exit 21, and neither writes anything; without `--file` the program's own directory
/// variable is honoured (`CLAUDE_CONFIG_DIR`, `CODEX_HOME`).
#[test]
fn import_refuses_bad_files_and_finds_the_programs_default_file() {
    let (d, dir) = store_dir();
    let api_key_only = d.path().join("auth.json");
    std::fs::write(
        &api_key_only,
        br#"{"OPENAI_API_KEY": "sk-secret", "tokens": null}"#,
    )
    .unwrap();
    let stub = d.path().join("stub.json");
    std::fs::write(
        &stub,
        br#"{"claudeAiOauth": {"accessToken": "", "refreshToken": "", "expiresAt": 0}}"#,
    )
    .unwrap();
    let missing = d.path().join("missing.json");
    for (program, file) in [
        ("codex", &api_key_only),
        ("claude-code", &stub),
        ("claude-code", &missing),
    ] {
        let before = std::fs::read(file).ok();
        let o = run(&dir, &["import", program, "--file", file.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(20), "{program} {file:?}: {err}");
        assert!(err.contains("error[InvalidArgument]"), "{err}");
        assert!(err.contains(&file.display().to_string()), "{err}");
        assert!(!err.contains("sk-secret"), "{err}");
        assert_eq!(std::fs::read(file).ok(), before, "{file:?} unchanged");
    }
    let config = d.path().join("claude-config");
    std::fs::create_dir(&config).unwrap();
    let file = config.join(".credentials.json");
    let expires = 4_000_000_000_000i64;
    let creds = json!({"claudeAiOauth": {"accessToken": "cc-at", "refreshToken": "cc-rt",
        "expiresAt": expires}});
    std::fs::write(&file, creds.to_string()).unwrap();
    let o = run(
        &dir,
        &[
            "import",
            "claude-code",
            "--file",
            file.to_str().unwrap(),
            "--token-url",
            "http://auth.example.com/oauth/token",
        ],
    );
    assert_eq!(o.status.code(), Some(21), "{}", stderr(&o));
    let stored = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .map(|r| r.flatten().count())
            .unwrap_or(0)
    };
    assert_eq!(stored(&dir), 0, "nothing stored");

    let o = cmd(
        &dir,
        &[
            "import",
            "claude-code",
            "--token-url",
            "http://127.0.0.1:9/t",
        ],
    )
    .env("CLAUDE_CONFIG_DIR", &config)
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("cc-at") && !stderr(&o).contains("cc-rt"));
    let rec = record(&dir, "claude-code");
    assert_eq!(rec["mirror"], json!({"path": file, "shape": "claude_code"}));
    assert_eq!(rec["expires_at_ms"], expires);
    // A relative --file is stored absolute, as given (not resolved through links).
    std::os::unix::fs::symlink(".credentials.json", config.join("link.json")).unwrap();
    let o = cmd(
        &dir,
        &[
            "import",
            "claude-code",
            "--key",
            "relative",
            "--file",
            "claude-config/link.json",
            "--token-url",
            "http://127.0.0.1:9/t",
        ],
    )
    .current_dir(d.path())
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        record(&dir, "relative")["mirror"]["path"],
        json!(config.join("link.json"))
    );
    let codex_home = d.path().join("codex-home");
    std::fs::create_dir(&codex_home).unwrap();
    std::fs::write(
        codex_home.join("auth.json"),
        json!({"tokens": {"access_token": "cx-at", "refresh_token": "cx-rt"}}).to_string(),
    )
    .unwrap();
    let o = cmd(
        &dir,
        &[
            "import",
            "codex",
            "--key",
            "openai",
            "--token-url",
            "http://127.0.0.1:9/t",
        ],
    )
    .env("CODEX_HOME", &codex_home)
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        record(&dir, "openai")["mirror"],
        json!({"path": codex_home.join("auth.json"), "shape": "codex"})
    );
}

/// `oauth-lock keepalive --once` exits 1 when a due credential could not be refreshed.
#[test]
fn keepalive_once_exits_1_when_a_refresh_fails() {
    let (_d, dir) = store_dir();
    let cred = json!({"access_token": "at-x", "refresh_token": "rt-x", "expires_in": 0,
        "refresh": {"token_url": "http://127.0.0.1:9/oauth/token", "client_id": "c"}});
    assert!(run_with_stdin(&dir, &["save", "k"], &cred.to_string())
        .status
        .success());
    let o = run(&dir, &["keepalive", "--once"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("error[Transient]"), "{err}");
    assert!(!err.contains("at-x") && !err.contains("rt-x"), "{err}");
    assert_eq!(record(&dir, "k")["refresh_token"], "rt-x");
}
