//! Multi-process tests: real `oauth-lock` processes on one store against the strict mock
//! provider, with counts asserted at the provider (DESIGN.md §9).

mod support;

use serde_json::Value;
use std::process::Stdio;
use support::*;

/// G1 + G2: 16 processes that all find the token expired cause exactly one refresh.
#[test]
fn sixteen_processes_racing_at_expiry_refresh_exactly_once() {
    let mock = Mock::start(&["--lifetime", "1h", "--latency", "50ms"]);
    let (_d, dir) = store_dir();
    login_and_save(&mock, &dir, "race", Some(0.0));
    let children: Vec<_> = (0..16)
        .map(|_| {
            cmd(&dir, &["token", "race"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outputs {
        assert!(o.status.success(), "{}", stderr(o));
    }
    let tokens: std::collections::BTreeSet<String> = outputs.iter().map(stdout).collect();
    assert_eq!(tokens.len(), 1, "everyone got the one new token");
    assert_eq!(mock.stat("refreshes"), 1);
    assert_eq!(mock.stat("replays"), 0);
    assert_eq!(mock.resource_status(tokens.iter().next().unwrap()), 200);
    assert_eq!(record(&dir, "race")["generation"], 2);
}

/// The soak: 8 processes × 4 threads for 20 s with 1 s tokens — 0 replays, 0 errors, and
/// one refresh per rotation.
#[test]
fn eight_processes_by_four_threads_for_twenty_seconds_never_replay() {
    let mock = Mock::start(&["--lifetime", "1s"]);
    let (_d, dir) = store_dir();
    login_and_save(&mock, &dir, "soak", None);
    let gen0 = record(&dir, "soak")["generation"].as_u64().unwrap();
    let resource = format!("{}/resource", mock.url);
    let children: Vec<_> = (0..8)
        .map(|_| {
            cmd(
                &dir,
                &[
                    "worker",
                    "--key",
                    "soak",
                    "--threads",
                    "4",
                    "--duration",
                    "20s",
                    "--resource",
                    &resource,
                ],
            )
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut calls = 0;
    let mut resource_ok = 0;
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success());
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(r["errors"], serde_json::json!({}), "no client errors");
        calls += r["calls"].as_u64().unwrap();
        resource_ok += r["resource_ok"].as_u64().unwrap();
    }
    let stats = mock.stats();
    let rotations = record(&dir, "soak")["generation"].as_u64().unwrap() - gen0;
    let refreshes = stats["refreshes"].as_u64().unwrap();
    eprintln!("soak: {calls} token calls, {resource_ok} resource calls, {refreshes} refreshes, {rotations} rotations");
    assert_eq!(stats["replays"], 0, "{stats}");
    assert_eq!(stats["revoked_families"], 0, "{stats}");
    assert_eq!(stats["invalid_grants"], 0, "{stats}");
    assert!(
        refreshes.abs_diff(rotations) <= 1,
        "refreshes {refreshes} vs rotations {rotations}"
    );
    assert!(
        rotations >= 20,
        "1 s tokens over 20 s rotate at least 20 times, got {rotations}"
    );
    assert!(calls > 1000);
}

/// Processes that all get a 401 with the same token cause one refresh between them.
#[test]
fn reject_after_a_401_refreshes_once_across_processes() {
    let mock = Mock::start(&["--lifetime", "1h", "--latency", "50ms"]);
    let (_d, dir) = store_dir();
    login_and_save(&mock, &dir, "r", None);
    let first = stdout(&run(&dir, &["token", "r"]));
    assert_eq!(mock.resource_status(&first), 200);
    mock.revoke_access_tokens();
    assert_eq!(
        mock.resource_status(&first),
        401,
        "the token still looks fresh but is refused"
    );
    let children: Vec<_> = (0..6)
        .map(|_| {
            cmd(&dir, &["token", "r", "--reject", &first])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let tokens: std::collections::BTreeSet<String> = children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
            stdout(&o)
        })
        .collect();
    assert_eq!(tokens.len(), 1);
    let second = tokens.into_iter().next().unwrap();
    assert_ne!(second, first);
    assert_eq!(mock.resource_status(&second), 200);
    assert_eq!(mock.stat("refreshes"), 1);
    assert_eq!(mock.stat("replays"), 0);
    // A late process rejecting the old token gets the new one without another refresh.
    assert_eq!(
        stdout(&run(&dir, &["token", "r", "--reject", &first])),
        second
    );
    assert_eq!(mock.stat("refreshes"), 1);
}

/// G5: a dead refresh token is sent once; every process gets NeedsLogin or InvalidGrant;
/// a new login revives the credential at once.
#[test]
fn a_dead_refresh_token_is_tried_once_and_a_login_revives_it() {
    let mock = Mock::start(&["--lifetime", "1h", "--latency", "30ms"]);
    let (_d, dir) = store_dir();
    let mut cred = mock.login();
    cred["refresh_token"] = "rt-that-the-provider-never-issued".into();
    cred["expires_in"] = 0.into();
    cred["refresh"] = mock.refresh_config();
    assert!(run_with_stdin(&dir, &["save", "dead"], &cred.to_string())
        .status
        .success());
    let children: Vec<_> = (0..8)
        .map(|_| {
            cmd(&dir, &["token", "dead"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut codes: Vec<i32> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
        .collect();
    codes.sort();
    assert_eq!(
        codes.iter().filter(|&&c| c == 12).count(),
        1,
        "one InvalidGrant (exit 12): {codes:?}"
    );
    assert!(
        codes.iter().all(|&c| c == 11 || c == 12),
        "the rest NeedsLogin (exit 11): {codes:?}"
    );
    assert_eq!(
        mock.stat("token_requests"),
        1,
        "the provider saw the dead token once"
    );
    let rec = record(&dir, "dead");
    assert_eq!(rec["state"], "needs_login");
    assert_eq!(rec["last_error"]["code"], "invalid_grant");
    // Still dead for later processes, with no network call.
    assert_eq!(run(&dir, &["token", "dead"]).status.code(), Some(11));
    assert_eq!(mock.stat("token_requests"), 1);
    // A login revives it immediately.
    login_and_save(&mock, &dir, "dead", None);
    let o = run(&dir, &["token", "dead"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mock.resource_status(&stdout(&o)), 200);
}

/// A provider that answers garbage or 503 gives Transient; the tokens are untouched and only
/// the shared backoff is added, which a second process honours without a request.
#[test]
fn malformed_or_failing_token_responses_are_transient_and_keep_the_record() {
    for switch in ["--malformed-every", "--fail-every"] {
        let mock = Mock::start(&["--lifetime", "1h", switch, "1"]);
        let (_d, dir) = store_dir();
        login_and_save(&mock, &dir, "t", Some(0.0));
        let path = dir.join("t.json");
        let before = std::fs::read(&path).unwrap();
        let o = run(&dir, &["token", "t"]);
        assert_eq!(
            o.status.code(),
            Some(14),
            "{switch}: exit 14 = Transient; {}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("error[Transient]"), "{}", stderr(&o));
        let mut old: Value = serde_json::from_slice(&before).unwrap();
        let mut new: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(new["generation"], old["generation"].as_u64().unwrap() + 1);
        assert_eq!(new["backoff"]["failures"], 1, "{switch}: {new}");
        for volatile in ["generation", "updated_at_ms", "updated_by", "backoff"] {
            old.as_object_mut().unwrap().remove(volatile);
            new.as_object_mut().unwrap().remove(volatile);
        }
        assert_eq!(new, old, "{switch}: nothing else changed");
        assert_eq!(mock.stat("refreshes"), 0);
        let requests = mock.stat("token_requests");
        assert_eq!(run(&dir, &["token", "t"]).status.code(), Some(14));
        assert_eq!(
            mock.stat("token_requests"),
            requests,
            "{switch}: backing off"
        );
    }
}

/// The built-in refresher speaks form and JSON bodies, and sends a client secret by Basic
/// auth or in the body.
#[test]
fn form_json_basic_and_body_client_auth_all_refresh() {
    let cases = [
        (vec!["--body", "form"], serde_json::json!({"body": "form"})),
        (vec!["--body", "json"], serde_json::json!({"body": "json"})),
        (
            vec!["--client-secret", "s3cret"],
            serde_json::json!({"client_secret": "s3cret", "client_auth": "basic"}),
        ),
        (
            vec!["--client-secret", "s3cret"],
            serde_json::json!({"client_secret": "s3cret", "client_auth": "body", "body": "form"}),
        ),
    ];
    for (args, extra) in cases {
        let mut all = vec!["--lifetime", "1h"];
        all.extend(&args);
        let mock = Mock::start(&all);
        let (_d, dir) = store_dir();
        let mut cred = mock.login();
        let mut refresh =
            serde_json::json!({"token_url": mock.token_url(), "client_id": "oauth-lock-demo"});
        for (k, v) in extra.as_object().unwrap() {
            refresh[k] = v.clone();
        }
        cred["refresh"] = refresh;
        cred["expires_in"] = 0.into();
        assert!(run_with_stdin(&dir, &["save", "k"], &cred.to_string())
            .status
            .success());
        let o = run(&dir, &["token", "k"]);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert_eq!(mock.stat("refreshes"), 1, "{args:?}");
        assert!(
            record(&dir, "k")["extra"]["account"]["uuid"].is_string(),
            "provider extras kept"
        );
    }
    // A wrong client secret is a terminal error (exit 13) and marks the record.
    let mock = Mock::start(&["--client-secret", "right"]);
    let (_d, dir) = store_dir();
    let mut cred = mock.login();
    cred["refresh"] = serde_json::json!({"token_url": mock.token_url(), "client_id": "oauth-lock-demo", "client_secret": "s3cr3t-wr0ng-value"});
    cred["expires_in"] = 0.into();
    assert!(run_with_stdin(&dir, &["save", "k"], &cred.to_string())
        .status
        .success());
    let o = run(&dir, &["token", "k"]);
    assert_eq!(o.status.code(), Some(13), "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid_client"));
    assert!(
        !stderr(&o).contains("s3cr3t-wr0ng-value"),
        "the secret is never printed: {}",
        stderr(&o)
    );
}

/// Starts `n` worker processes (`threads` each) on `key` for `duration`.
fn workers(
    dir: &std::path::Path,
    key: &str,
    n: usize,
    threads: &str,
    duration: &str,
) -> Vec<std::process::Child> {
    (0..n)
        .map(|_| {
            cmd(
                dir,
                &[
                    "worker",
                    "--key",
                    key,
                    "--threads",
                    threads,
                    "--duration",
                    duration,
                ],
            )
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect()
}

/// The workers' reports, merged: (token calls, errors by code).
fn reports(children: Vec<std::process::Child>) -> (u64, std::collections::BTreeMap<String, u64>) {
    let mut calls = 0;
    let mut errors = std::collections::BTreeMap::new();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success());
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        calls += r["calls"].as_u64().unwrap();
        for (code, n) in r["errors"].as_object().unwrap() {
            *errors.entry(code.clone()).or_default() += n.as_u64().unwrap();
        }
    }
    (calls, errors)
}

/// Issue 11 item 5: a provider failing every request for 3 s under 8 processes × 4 threads
/// gets a handful of requests (the backoff every process reads from the record: 1 s, 2 s, …),
/// not one per cache miss; afterwards refreshing resumes and the backoff is cleared.
#[test]
fn a_provider_outage_under_eight_processes_gets_a_handful_of_requests() {
    let mock = Mock::start(&["--lifetime", "1s"]);
    let (_d, dir) = store_dir();
    login_and_save(&mock, &dir, "outage", None);
    let children = workers(&dir, "outage", 8, "4", "8s");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let before = mock.stats();
    let (status, _) = http(
        "POST",
        &format!("{}/admin/outage", mock.url),
        None,
        Some(r#"{"ms": 3000}"#),
    );
    assert_eq!(status, 200);
    let (calls, errors) = reports(children);
    let stats = mock.stats();
    let failed = stats["outage_failures"].as_u64().unwrap();
    let refreshes_after =
        stats["refreshes"].as_u64().unwrap() - before["refreshes"].as_u64().unwrap();
    eprintln!("outage: {calls} calls, errors {errors:?}, {failed} requests failed in the outage, {refreshes_after} refreshes since; {stats}");
    assert!(
        (1..=6).contains(&failed),
        "{failed} token requests during a 3 s outage"
    );
    assert!(
        refreshes_after >= 2,
        "refreshing resumed after the outage: {stats}"
    );
    assert_eq!(stats["replays"], 0, "{stats}");
    assert_eq!(stats["revoked_families"], 0, "{stats}");
    assert!(calls > 1000);
    let rec = record(&dir, "outage");
    assert_eq!(rec["state"], "ok");
    assert_eq!(
        rec["backoff"],
        Value::Null,
        "cleared by the first good refresh"
    );
}

/// Issue 11 item 5: a provider's `Retry-After` is honoured by every process: one request
/// during a 2 s outage that asks for 4 s, then none until those 4 s have passed.
#[test]
fn a_retry_after_is_honoured_by_every_process() {
    let mock = Mock::start(&["--lifetime", "1s"]);
    let (_d, dir) = store_dir();
    login_and_save(&mock, &dir, "later", None);
    let children = workers(&dir, "later", 4, "2", "7s");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (status, _) = http(
        "POST",
        &format!("{}/admin/outage", mock.url),
        None,
        Some(r#"{"ms": 2000, "retry_after_s": 4}"#),
    );
    assert_eq!(status, 200);
    let (_, _) = reports(children);
    let stats = mock.stats();
    assert_eq!(stats["outage_failures"], 1, "{stats}");
    assert_eq!(stats["replays"], 0, "{stats}");
    assert!(
        stats["refreshes"].as_u64().unwrap() >= 2,
        "resumed: {stats}"
    );
}
