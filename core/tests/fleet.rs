//! The protocol on both backends (DESIGN.md §4 on §3's directory and §10's PostgreSQL), and
//! the fleet store's own faults. The PostgreSQL half runs against `OAUTH_LOCK_TEST_PG_URL`
//! (scripts/pg-cluster starts one); under `CI=true` a missing server fails these tests.

mod support;

use oauth_lock::backend::{Backend, FsBackend, Locked, PgBackend};
use oauth_lock::{refresher_fn, Credential, ErrorCode, SaveOptions, SourceOptions, Store};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use support::*;

/// One store to run a test on: a fresh directory, or a fresh schema in the test database.
struct Loc {
    name: &'static str,
    location: String,
    /// The test database's URL as given (no `schema`), for raw row access.
    pg_url: Option<String>,
    schema: String,
    _dir: Option<tempfile::TempDir>,
}

fn pg_url() -> Option<String> {
    server_url("OAUTH_LOCK_TEST_PG_URL", "PostgreSQL")
}

/// The URL a test server's variable holds (scripts/pg-cluster starts them); `None` (the test
/// skips its part) only outside CI: under `CI=true` a missing server fails the test.
fn server_url(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "CI=true and {var} is unset: these tests need {what} (scripts/pg-cluster starts \
             it); they never skip in CI"
        ),
        _ => {
            eprintln!("{var} is unset: the {what} part of this test is skipped");
            None
        }
    }
}

/// A schema of its own for each store, so that tests never see each other's rows.
fn fresh_schema() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

fn locations() -> Vec<Loc> {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![Loc {
        name: "directory",
        location: dir.path().join("store").display().to_string(),
        pg_url: None,
        schema: String::new(),
        _dir: Some(dir),
    }];
    if let Some(url) = pg_url() {
        let schema = fresh_schema();
        all.push(Loc {
            name: "postgresql",
            location: with_param(&url, &format!("schema={schema}")),
            pg_url: Some(url),
            schema,
            _dir: None,
        });
    }
    all
}

fn pg_only() -> Option<Loc> {
    locations().into_iter().find(|l| l.pg_url.is_some())
}

impl Loc {
    fn store(&self) -> Store {
        Store::open(&self.location).unwrap()
    }

    fn backend(&self) -> Arc<dyn Backend> {
        if self.pg_url.is_some() {
            PgBackend::open(&self.location).unwrap()
        } else {
            Arc::new(FsBackend::open(std::path::Path::new(&self.location)).unwrap())
        }
    }

    /// Runs SQL on the test database (not through oauth-lock).
    fn sql<T: Send + 'static>(
        &self,
        f: impl FnOnce(tokio_postgres::Client) -> futures_util::future::BoxFuture<'static, T>
            + Send
            + 'static,
    ) -> T {
        let url = self.pg_url.clone().expect("a PostgreSQL location");
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                f(client).await
            })
        })
        .join()
        .unwrap()
    }

    /// The record's stored text, exactly: the file, or the row's `record` column.
    fn raw(&self, store: &Store, key: &str) -> Option<String> {
        if self.pg_url.is_none() {
            return std::fs::read_to_string(store.path_of(key).unwrap()).ok();
        }
        let (sql, key) = (
            format!("SELECT record FROM {}.records WHERE key = $1", self.schema),
            key.to_owned(),
        );
        self.sql(move |c| {
            Box::pin(async move {
                c.query_opt(&sql, &[&key])
                    .await
                    .unwrap()
                    .map(|r| r.get::<_, String>(0))
            })
        })
    }

    /// Replaces the stored text behind oauth-lock's back (a corrupt row, a foreign writer).
    fn set_raw(&self, store: &Store, key: &str, text: &str) {
        if self.pg_url.is_none() {
            std::fs::write(store.path_of(key).unwrap(), text).unwrap();
            return;
        }
        let (sql, key, text) = (
            format!(
                "UPDATE {}.records SET record = $2, stamp = nextval('{}.stamps') WHERE key = $1",
                self.schema, self.schema
            ),
            key.to_owned(),
            text.to_owned(),
        );
        let n = self
            .sql(move |c| Box::pin(async move { c.execute(&sql, &[&key, &text]).await.unwrap() }));
        assert_eq!(n, 1);
    }

    fn record(&self, store: &Store, key: &str) -> Value {
        serde_json::from_str(&self.raw(store, key).expect("a record")).unwrap()
    }
}

#[test]
fn many_threads_and_stores_at_expiry_cause_one_refresh() {
    for loc in locations() {
        let store = loc.store();
        save_expired(&store, "k");
        let provider = Rotating::new("rt-0", Duration::from_millis(50));
        let barrier = Arc::new(Barrier::new(16));
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let source = Store::open(&loc.location)
                    .unwrap()
                    .source_with("k", provider.as_refresher())
                    .unwrap();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    source.access_token_blocking().unwrap().value().to_owned()
                })
            })
            .collect();
        let tokens: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(provider.calls.load(Ordering::SeqCst), 1, "{}", loc.name);
        assert_eq!(provider.replays.load(Ordering::SeqCst), 0, "{}", loc.name);
        assert!(
            tokens.iter().all(|t| t == "at-1"),
            "{}: {tokens:?}",
            loc.name
        );
        let rec = loc.record(&store, "k");
        assert_eq!(rec["generation"], 2, "{}", loc.name);
        assert_eq!(rec["refresh_token"], "rt-1", "{}", loc.name);
    }
}

#[test]
fn the_record_is_stored_as_its_exact_text_and_unknown_fields_survive() {
    for loc in locations() {
        let store = loc.store();
        save_expired(&store, "k");
        // A field this version does not know, with a float that must come back byte-exact.
        let text = loc.raw(&store, "k").unwrap();
        let with_unknown = text.replacen('{', "{\"future\":{\"ratio\":1.10,\"n\":[1e3]},", 1);
        loc.set_raw(&store, "k", &with_unknown);
        let provider = Rotating::new("rt-0", Duration::ZERO);
        let source = store.source_with("k", provider.as_refresher()).unwrap();
        assert_eq!(source.access_token_blocking().unwrap().value(), "at-1");
        let after = loc.raw(&store, "k").unwrap();
        let v: Value = serde_json::from_str(&after).unwrap();
        assert_eq!(
            v["future"],
            json!({"ratio": 1.1, "n": [1000.0]}),
            "{}",
            loc.name
        );
        // The stored text is the record's format-1 text, exactly as a file holds it.
        let parsed = oauth_lock::Record::parse(after.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(parsed.to_bytes()).unwrap(),
            after,
            "{}",
            loc.name
        );
        let status = store.status("k").unwrap();
        assert_eq!(status.generation, Some(2));
    }
}

#[test]
fn invalid_grant_marks_needs_login_once_and_a_save_revives() {
    for loc in locations() {
        let store = loc.store();
        save_expired(&store, "k");
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let dead = refresher_fn(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            async { Err(oauth_lock::classify_oauth_error("invalid_grant", None)) }
        });
        let source = store.source_with("k", dead.clone()).unwrap();
        let e = source.access_token_blocking().unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidGrant, "{}: {e}", loc.name);
        assert_eq!(loc.record(&store, "k")["state"], "needs_login");
        let other = Store::open(&loc.location)
            .unwrap()
            .source_with("k", dead)
            .unwrap();
        assert_eq!(
            other.access_token_blocking().unwrap_err().code(),
            ErrorCode::NeedsLogin
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{}", loc.name);
        save(
            &store,
            "k",
            json!({"access_token": "at-new", "refresh_token": "rt-new", "expires_in": 3600}),
        );
        assert_eq!(other.access_token_blocking().unwrap().value(), "at-new");
    }
}

#[test]
fn a_record_that_does_not_parse_is_corrupt_and_left_unchanged() {
    for loc in locations() {
        let store = loc.store();
        save_expired(&store, "k");
        loc.set_raw(&store, "k", "{\"format\": 1, \"key\": \"k\", not json");
        let provider = Rotating::new("rt-0", Duration::ZERO);
        let source = store.source_with("k", provider.as_refresher()).unwrap();
        let e = source.access_token_blocking().unwrap_err();
        assert_eq!(e.code(), ErrorCode::Corrupt, "{}: {e}", loc.name);
        let place = store.path_of("k").unwrap().display().to_string();
        assert!(e.to_string().contains(&place), "{}: {e}", loc.name);
        assert_eq!(
            loc.raw(&store, "k").unwrap(),
            "{\"format\": 1, \"key\": \"k\", not json"
        );
        let status = store.status("k").unwrap();
        assert!(status.exists, "{}", loc.name);
        assert_eq!(status.problem.unwrap().code, ErrorCode::Corrupt);
        // A save without a refresh token may not replace it; one with a refresh token does.
        let e = store
            .save_blocking(
                "k",
                Credential::from_json(&json!({"access_token": "a"})).unwrap(),
                SaveOptions::default(),
            )
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::Corrupt);
        save(
            &store,
            "k",
            json!({"access_token": "a", "refresh_token": "r"}),
        );
        assert_eq!(loc.record(&store, "k")["generation"], 1);
        assert_eq!(provider.calls.load(Ordering::SeqCst), 0);
    }
}

#[test]
fn clear_is_a_logout_and_list_sees_every_key() {
    for loc in locations() {
        let store = loc.store();
        save_expired(&store, "b");
        save_expired(&store, "a:1");
        let keys: Vec<String> = store.list().unwrap().into_iter().map(|s| s.key).collect();
        assert_eq!(keys, ["a:1", "b"], "{}", loc.name);
        let source = store.source("b").unwrap();
        assert!(store.clear_blocking("b").unwrap());
        assert!(!store.clear_blocking("b").unwrap());
        assert_eq!(
            source.access_token_blocking().unwrap_err().code(),
            ErrorCode::NeedsLogin
        );
        assert!(loc.raw(&store, "b").is_none());
        // Generations start again after a logout.
        save_expired(&store, "b");
        assert_eq!(loc.record(&store, "b")["generation"], 1);
    }
}

/// `k` saved with an expired token, and its lock held through `loc`'s backend.
fn expired_and_held(loc: &Loc) -> (Store, Box<dyn Locked>) {
    let store = loc.store();
    save_expired(&store, "k");
    let key = oauth_lock::Key::new("k").unwrap();
    let held = loc.backend().lock(&key, Duration::from_secs(5)).unwrap();
    (store, held)
}

#[test]
fn a_held_lock_gives_busy_naming_the_record_and_a_release_lets_the_next_in() {
    for loc in locations() {
        let (store, held) = expired_and_held(&loc);
        let started = Instant::now();
        let e = store
            .save_blocking(
                "k",
                Credential::from_json(&json!({"access_token": "a", "refresh_token": "r"})).unwrap(),
                SaveOptions {
                    write_lock_timeout: Duration::from_millis(300),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::Busy, "{}: {e}", loc.name);
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "{}",
            loc.name
        );
        let m = e.to_string();
        assert!(m.contains(&store.location().to_string()), "{m}");
        assert!(!m.contains(&password_of(&loc.location)), "{m}");
        // Released: the next holder goes on at once.
        let t = std::thread::spawn({
            let location = loc.location.clone();
            move || {
                let started = Instant::now();
                save(
                    &Store::open(location).unwrap(),
                    "k",
                    json!({"access_token": "a2", "refresh_token": "r2"}),
                );
                started.elapsed()
            }
        });
        std::thread::sleep(Duration::from_millis(200));
        drop(held);
        let waited = t.join().unwrap();
        assert!(waited < Duration::from_secs(3), "{}: {waited:?}", loc.name);
        assert_eq!(loc.record(&store, "k")["refresh_token"], "r2");
    }
}

/// The password in a URL (for checking that no message shows it); a marker for directories.
fn password_of(location: &str) -> String {
    url::Url::parse(location)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
        .unwrap_or_else(|| "no-password-in-a-directory".into())
}

#[test]
fn status_names_the_location_without_the_password_and_the_server() {
    for loc in locations() {
        let store = loc.store();
        save_expired(&store, "k");
        let status = store.status("k").unwrap();
        let shown = serde_json::to_string(&status).unwrap();
        assert!(!shown.contains(&password_of(&loc.location)), "{shown}");
        assert_eq!(status.location, store.location().to_string());
        if loc.pg_url.is_some() {
            assert!(status.location.starts_with("postgresql://"), "{shown}");
            assert!(
                status
                    .server
                    .as_deref()
                    .unwrap_or("")
                    .starts_with("PostgreSQL "),
                "{shown}"
            );
            assert!(!format!("{store:?}").contains(&password_of(&loc.location)));
        } else {
            assert_eq!(status.server, None);
        }
    }
}

/// `k` saved with a 1 h `access_token` (refresh token `rt-<n>`), and a source on it that
/// revalidates every 50 ms, having read it.
fn logged_in(store: &Store, access_token: &str) -> oauth_lock::TokenSource {
    let refresh_token = access_token.replace("at-", "rt-");
    save(
        store,
        "k",
        json!({"access_token": access_token, "refresh_token": refresh_token, "expires_in": 3600}),
    );
    let options = SourceOptions {
        revalidate: Duration::from_millis(50),
        ..Default::default()
    };
    let source = store.source_with_options("k", None, options).unwrap();
    assert_eq!(
        source.access_token_blocking().unwrap().value(),
        access_token
    );
    source
}

#[test]
fn another_processs_login_and_logout_reach_the_hot_path() {
    // Across processes: a change notice (or a directory's stat) within `revalidate`.
    for loc in locations() {
        let store = loc.store();
        let source = logged_in(&store, "at-1");
        helper(&loc.location, "login", |_| {});
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let t = source.access_token_blocking().unwrap();
            if t.value() == "at-2" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: the login was not noticed",
                loc.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        helper(&loc.location, "logout", |_| {});
        let deadline = Instant::now() + Duration::from_secs(3);
        while source.access_token_blocking().is_ok() {
            assert!(
                Instant::now() < deadline,
                "{}: the logout was not noticed",
                loc.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_holder_killed_while_holding_the_lock_frees_it() {
    for loc in locations() {
        let store = loc.store();
        save_expired(&store, "k");
        helper(&loc.location, "hold", |child| {
            // The child holds the lock: a refresh here waits, then the kill frees it.
            let provider = Rotating::new("rt-0", Duration::ZERO);
            let source = store.source_with("k", provider.as_refresher()).unwrap();
            let t = std::thread::spawn(move || {
                let started = Instant::now();
                let token = source.access_token_blocking().map(|t| t.value().to_owned());
                (token, started.elapsed())
            });
            std::thread::sleep(Duration::from_millis(300));
            assert!(!t.is_finished(), "{}: the lock was not held", loc.name);
            let killed = Instant::now();
            child.kill().unwrap();
            let (token, _) = t.join().unwrap();
            assert_eq!(token.unwrap(), "at-1", "{}", loc.name);
            // The server (or kernel) freed it as the process died, not after a timeout.
            assert!(
                killed.elapsed() < Duration::from_secs(5),
                "{}: {:?}",
                loc.name,
                killed.elapsed()
            );
            assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
        });
    }
}

#[test]
fn a_lock_held_at_a_fork_dies_with_its_holder_not_with_the_child() {
    for loc in locations() {
        let store = loc.store();
        save_expired(&store, "k");
        let mut forked = 0;
        helper_with(&loc.location, "fork-hold", &mut forked, |child| {
            child.kill().unwrap();
        });
        assert!(forked > 0, "{}", loc.name);
        // The holder is dead, its child alive: the lock is free at once.
        let source = store
            .source_with("k", Rotating::new("rt-0", Duration::ZERO).as_refresher())
            .unwrap();
        let started = Instant::now();
        let got = std::thread::spawn(move || {
            source.access_token_blocking().map(|t| t.value().to_owned())
        });
        while !got.is_finished() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: `forked` is the pid the helper forked (and no other process's).
        let alive = unsafe { libc::kill(forked, 0) } == 0;
        // SAFETY: as above.
        unsafe { libc::kill(forked, libc::SIGKILL) };
        assert!(alive, "{}: the forked child died early", loc.name);
        assert!(
            got.is_finished(),
            "{}: the lock outlived its holder while the forked child lived",
            loc.name
        );
        assert_eq!(got.join().unwrap().unwrap(), "at-1", "{}", loc.name);
        assert!(started.elapsed() < Duration::from_secs(5), "{}", loc.name);
    }
}

fn helper_with(
    location: &str,
    what: &str,
    forked: &mut i32,
    during: impl FnOnce(&mut std::process::Child),
) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FLEET_HELPER", what)
        .env("FLEET_LOCATION", location)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("the helper said nothing").unwrap();
        if let Some(pid) = line.split("CHILD ").nth(1) {
            *forked = pid.trim().parse().unwrap();
        }
        if line.ends_with("READY") {
            break;
        }
    }
    during(&mut child);
    let _ = child.wait();
}

/// Runs `what` in a child process (this test binary, the `helper_process` test) on
/// `location`; `during` runs once the child says it is ready, then the child is waited for
/// (or was killed by `during`); `forked` gets the pid of a process the child forked.
fn helper(location: &str, what: &str, during: impl FnOnce(&mut std::process::Child)) {
    let mut forked = 0;
    helper_with(location, what, &mut forked, |child| {
        during(child);
        if what != "hold" {
            let status = child.wait().unwrap();
            assert!(status.success(), "helper {what} failed");
        }
    });
}

/// Not a test on its own: the child side of [`helper`].
#[test]
fn helper_process() {
    let (Ok(what), Ok(location)) = (
        std::env::var("FLEET_HELPER"),
        std::env::var("FLEET_LOCATION"),
    ) else {
        return;
    };
    let store = Store::open(&location).unwrap();
    match what.as_str() {
        "login" => save(
            &store,
            "k",
            json!({"access_token": "at-2", "refresh_token": "rt-2", "expires_in": 3600}),
        ),
        "logout" => {
            store.clear_blocking("k").unwrap();
        }
        "hold" => {
            let backend: Arc<dyn Backend> = if location.contains("://") {
                PgBackend::open(&location).unwrap()
            } else {
                Arc::new(FsBackend::open(std::path::Path::new(&location)).unwrap())
            };
            let _held = backend
                .lock(&oauth_lock::Key::new("k").unwrap(), Duration::from_secs(5))
                .unwrap();
            println!("READY");
            std::thread::sleep(Duration::from_secs(120));
            return;
        }
        "fork-hold" => {
            let backend: Arc<dyn Backend> = if location.contains("://") {
                PgBackend::open(&location).unwrap()
            } else {
                Arc::new(FsBackend::open(std::path::Path::new(&location)).unwrap())
            };
            let _held = backend
                .lock(&oauth_lock::Key::new("k").unwrap(), Duration::from_secs(5))
                .unwrap();
            // A child forked while the lock is held (a pre-forking server's worker) outlives
            // this process; it must not keep the lock.
            // SAFETY: the child only sleeps and exits (async-signal-safe calls).
            let child = unsafe { libc::fork() };
            if child == 0 {
                // SAFETY: as above.
                unsafe {
                    libc::sleep(30);
                    libc::_exit(0);
                }
            }
            println!("CHILD {child}");
            println!("READY");
            std::thread::sleep(Duration::from_secs(120));
            return;
        }
        "refresh-slow" => {
            // Refreshes k (rt-0 → at-1) with a provider that takes 2 s, the lock held.
            let provider = Rotating::new("rt-0", Duration::from_secs(2));
            let source = store.source_with("k", provider.as_refresher()).unwrap();
            println!("READY");
            assert_eq!(source.access_token_blocking().unwrap().value(), "at-1");
            return;
        }
        "refresh-stay" => {
            // Refreshes k (rt-0 → at-1) at once, then stays, its sessions open.
            let provider = Rotating::new("rt-0", Duration::ZERO);
            let source = store.source_with("k", provider.as_refresher()).unwrap();
            assert_eq!(source.reject_blocking("at-0").unwrap().value(), "at-1");
            println!("READY");
            std::thread::sleep(Duration::from_secs(3));
            return;
        }
        other => panic!("unknown helper {other}"),
    }
    println!("READY");
}

// PostgreSQL only from here: the URL, the server's faults, fencing.

#[test]
fn bad_locations_are_invalid_arguments_that_never_show_the_password() {
    for (location, says) in [
        ("postgresql://u:hunter2@h:99999/d", "malformed"),
        ("postgresql://u:hunter2@h/d?sslmode=maybe", "sslmode"),
        ("postgresql://u:hunter2@h/d?sslmode=verify-ca", "sslmode"),
        ("postgresql://u:hunter2@h/d?pool=1", "unknown parameter"),
        ("mysql://u:hunter2@h/d", "postgresql://"),
    ] {
        let e = Store::open(location).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{location}: {e}");
        let m = e.to_string();
        assert!(m.contains(says), "{location}: {m}");
        assert!(!m.contains("hunter2"), "{location}: {m}");
    }
    // A bad parameter's error names the store as far as its URL parsed.
    let e = Store::open("postgresql://u:hunter2@h/d?password=hunter2&sslmode=maybe").unwrap_err();
    let m = e.to_string();
    assert!(m.contains("postgresql://u@h/d"), "{m}");
    assert!(!m.contains("hunter2"), "{m}");
}

#[test]
fn an_unreachable_database_is_transient_for_tokens_and_io_for_saves() {
    // A port nobody listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let location = format!("postgresql://app:hunter2@127.0.0.1:{port}/db?sslmode=disable");
    let store = Store::open(&location).unwrap();
    let e = store
        .source("k")
        .unwrap()
        .access_token_blocking()
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Transient, "{e}");
    let m = e.to_string();
    assert!(
        m.contains(&format!("postgresql://app@127.0.0.1:{port}/db")),
        "{m}"
    );
    assert!(!m.contains("hunter2"), "{m}");
    let e = store
        .save_blocking(
            "k",
            Credential::from_json(&json!({"access_token": "a", "refresh_token": "r"})).unwrap(),
            SaveOptions::default(),
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Io, "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert_eq!(store.clear_blocking("k").unwrap_err().code(), ErrorCode::Io);
    let status = store.status("k").unwrap();
    assert_eq!(status.problem.unwrap().code, ErrorCode::Transient);
}

#[test]
fn a_database_that_never_answers_costs_each_call_one_connect_timeout() {
    // A server that accepts and never answers (a hung host): every call fails `Transient`
    // after `connect_timeout` (+1 s), once. The process's watch task also tries to connect,
    // on the same reading session; a call that waited on that attempt takes its outcome
    // instead of starting its own after it (two timeouts).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            held.push(c);
        }
    });
    let location =
        format!("postgresql://app:hunter2@127.0.0.1:{port}/db?sslmode=disable&connect_timeout=1");
    let store = Store::open(&location).unwrap();
    let source = store.source("k").unwrap();
    for call in 0..3 {
        let started = Instant::now();
        let e = source.access_token_blocking().unwrap_err();
        assert_eq!(e.code(), ErrorCode::Transient, "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(2800),
            "call {call} took {took:?}: more than one connect timeout (2 s)"
        );
    }
}

#[test]
fn a_wrong_password_is_an_invalid_argument_that_does_not_show_it() {
    let Some(loc) = pg_only() else { return };
    let mut url = url::Url::parse(&loc.location).unwrap();
    url.set_password(Some("not-the-password")).unwrap();
    let store = Store::open(url.as_str()).unwrap();
    let e = store
        .source("k")
        .unwrap()
        .access_token_blocking()
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    assert!(!e.to_string().contains("not-the-password"), "{e}");
    assert!(
        e.to_string().contains("password authentication failed"),
        "{e}"
    );
}

/// Ends the session holding `key`'s lock in `loc`'s schema, as the server does to a holder
/// past B or at a restart (only that one: other tests hold locks of their own meanwhile).
fn end_holder_session(loc: &Loc, key: &str) {
    let id = format!("oauth-lock:{}:{key}", loc.schema);
    let ended = loc.sql(move |c| {
        Box::pin(async move {
            c.query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks \
                 WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
                 AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)",
                &[&id],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
        })
    });
    assert_eq!(ended, 1);
    std::thread::sleep(Duration::from_millis(200));
}

#[test]
fn a_holder_that_waited_reads_what_the_one_before_it_committed() {
    // The read under the lock comes after the grant. The directory store reads after its
    // flock; the PostgreSQL store pipelines the read behind the lock request, and the server
    // runs it only once the lock is granted. So a holder that waited sees the commit of the
    // one before it, never the row as it was when it asked (it would refresh with a spent
    // token).
    for loc in locations() {
        let (_store, mut held) = expired_and_held(&loc);
        let (mut record, _) = held.read().unwrap().unwrap();
        let next = std::thread::spawn({
            let backend = loc.backend();
            move || {
                let key = oauth_lock::Key::new("k").unwrap();
                let mut next = backend.lock(&key, Duration::from_secs(20)).unwrap();
                next.read().unwrap().unwrap().0.generation
            }
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        if loc.pg_url.is_some() {
            while !advisory_locks(&loc, "k")
                .iter()
                .any(|(_, granted)| !granted)
            {
                assert!(Instant::now() < deadline, "the next holder never waited");
                std::thread::sleep(Duration::from_millis(10));
            }
        } else {
            std::thread::sleep(Duration::from_millis(300));
        }
        record.stamp(record.generation, 0);
        held.write(&record).unwrap();
        drop(held);
        assert_eq!(next.join().unwrap(), record.generation, "{}", loc.name);
    }
}

#[test]
fn a_holder_whose_session_ended_cannot_commit_over_a_later_writer() {
    let Some(loc) = pg_only() else { return };
    let (store, mut held) = expired_and_held(&loc);
    let (mut record, _) = held.read().unwrap().unwrap();
    end_holder_session(&loc, "k");
    // The lock is free: another writer takes it and commits.
    save(
        &store,
        "k",
        json!({"access_token": "at-other", "refresh_token": "rt-other", "expires_in": 3600}),
    );
    let after_other = loc.raw(&store, "k").unwrap();
    // The old holder's commit is fenced: it does not land over the other's.
    record.stamp(record.generation, 0);
    let e = held.write(&record).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Io, "{e}");
    assert_eq!(loc.raw(&store, "k").unwrap(), after_other);
    drop(held);
    assert_eq!(
        store
            .source("k")
            .unwrap()
            .access_token_blocking()
            .unwrap()
            .value(),
        "at-other"
    );
}

#[test]
fn a_holder_whose_session_ended_commits_on_a_new_one_when_nobody_wrote() {
    // A restart or a cut connection before B: the answer the provider gave is not lost.
    let Some(loc) = pg_only() else { return };
    let (store, mut held) = expired_and_held(&loc);
    let (mut record, _) = held.read().unwrap().unwrap();
    end_holder_session(&loc, "k");
    record.stamp(record.generation, 0);
    held.write(&record).unwrap();
    assert_eq!(loc.record(&store, "k")["generation"], 2);
    // It holds the lock again meanwhile: others wait for it.
    let e = store
        .save_blocking(
            "k",
            Credential::from_json(&json!({"access_token": "a", "refresh_token": "r"})).unwrap(),
            SaveOptions {
                write_lock_timeout: Duration::from_millis(200),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Busy, "{e}");
    drop(held);
    save(
        &store,
        "k",
        json!({"access_token": "a", "refresh_token": "r"}),
    );
    assert_eq!(loc.record(&store, "k")["generation"], 3);
}

#[test]
fn a_role_that_may_not_create_the_schema_is_told_the_sql() {
    let Some(loc) = pg_only() else { return };
    let Ok(admin) = std::env::var("OAUTH_LOCK_TEST_PG_ADMIN") else {
        return;
    };
    let admin_loc = Loc {
        name: "admin",
        location: admin.clone(),
        pg_url: Some(admin),
        schema: String::new(),
        _dir: None,
    };
    let role = format!("ro_{}", fresh_schema());
    let sql = format!("CREATE ROLE {role} LOGIN PASSWORD 'ro-pass'");
    admin_loc.sql(move |c| Box::pin(async move { c.batch_execute(&sql).await.unwrap() }));
    let mut url = url::Url::parse(&loc.location).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(Some("ro-pass")).unwrap();
    let store = Store::open(url.as_str()).unwrap();
    let e = store
        .source("k")
        .unwrap()
        .access_token_blocking()
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    let m = e.to_string();
    assert!(m.contains("CREATE SCHEMA IF NOT EXISTS"), "{m}");
    assert!(m.contains(&loc.schema), "{m}");
    assert!(!m.contains("ro-pass"), "{m}");
}

/// The test location with another host and TLS settings.
fn tls_location(loc: &Loc, host: &str, sslmode: &str, ca: Option<&str>) -> String {
    let mut url = url::Url::parse(&loc.location).unwrap();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "sslmode")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_host(Some(host)).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.clear();
        q.extend_pairs(kept);
        q.append_pair("sslmode", sslmode);
        if let Some(ca) = ca {
            q.append_pair("sslrootcert", ca);
        }
    }
    url.to_string()
}

#[test]
fn tls_is_used_and_verify_full_checks_the_certificate_and_the_host_name() {
    let Some(loc) = pg_only() else { return };
    let ca = match std::env::var("OAUTH_LOCK_TEST_PG_CA") {
        Ok(ca) if !ca.is_empty() => ca,
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and OAUTH_LOCK_TEST_PG_CA is unset: scripts/pg-cluster sets up TLS")
        }
        _ => return,
    };
    for (host, sslmode, ca) in [
        ("127.0.0.1", "require", None),
        ("localhost", "verify-full", Some(ca.as_str())),
    ] {
        let store = Store::open(tls_location(&loc, host, sslmode, ca)).unwrap();
        save_expired(&store, "k");
        let source = store
            .source_with("k", Rotating::new("rt-0", Duration::ZERO).as_refresher())
            .unwrap();
        assert_eq!(source.access_token_blocking().unwrap().value(), "at-1");
        // The server says oauth-lock's sessions are encrypted (only this test asks for TLS).
        let encrypted = loc.sql(|c| {
            Box::pin(async move {
                c.query_one(
                    "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                     WHERE a.application_name = 'oauth-lock' AND s.ssl",
                    &[],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
            })
        });
        assert!(encrypted >= 1, "{sslmode}: no encrypted session");
        store.clear_blocking("k").unwrap();
    }
    // A certificate for "localhost" does not name 127.0.0.1; an unknown CA is refused.
    for (host, ca, says) in [
        ("127.0.0.1", Some(ca.as_str()), "certificate"),
        ("localhost", None, "certificate"),
    ] {
        let store = Store::open(tls_location(&loc, host, "verify-full", ca)).unwrap();
        let e = store
            .source("k")
            .unwrap()
            .access_token_blocking()
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::Transient, "{host}: {e}");
        assert!(e.to_string().to_lowercase().contains(says), "{host}: {e}");
        assert!(!e.to_string().contains(&password_of(&loc.location)), "{e}");
    }
}

#[test]
fn events_name_the_record_by_its_location_without_the_password() {
    for loc in locations() {
        let store = loc.store();
        save_expired(&store, "ev");
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let listener = oauth_lock::interop::add_listener(move |e| {
            if e.key == "ev" {
                s.lock().unwrap().push(serde_json::to_string(e).unwrap());
            }
        });
        let source = store
            .source_with("ev", Rotating::new("rt-0", Duration::ZERO).as_refresher())
            .unwrap();
        assert_eq!(source.access_token_blocking().unwrap().value(), "at-1");
        oauth_lock::interop::remove_listener(listener);
        let seen = seen.lock().unwrap();
        let place = store.path_of("ev").unwrap().display().to_string();
        assert!(
            seen.iter().any(|e| e.contains("\"refreshed\"")),
            "{}: {seen:?}",
            loc.name
        );
        for e in seen.iter() {
            let v: Value = serde_json::from_str(e).unwrap();
            assert_eq!(v["path"], place.as_str(), "{}", loc.name);
            assert!(!e.contains(&password_of(&loc.location)), "{e}");
        }
    }
}

/// The advisory locks on key `k` of `loc`'s schema, by mode and whether granted.
fn advisory_locks(loc: &Loc, key: &str) -> Vec<(String, bool)> {
    let id = format!("oauth-lock:{}:{key}", loc.schema);
    loc.sql(move |c| {
        Box::pin(async move {
            c.query(
                "SELECT mode, granted FROM pg_locks WHERE locktype = 'advisory' \
                 AND objsubid = 1 \
                 AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)",
                &[&id],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, bool>(1)))
            .collect()
        })
    })
}

#[test]
fn a_waiter_adopts_what_the_holder_committed_at_the_release_without_the_lock() {
    // The waiter's re-read is pipelined behind its shared wait on the server: it must see the
    // holder's commit (a statement after the wait, so a snapshot after the release), adopt it
    // without its own refresh, and never queue for the exclusive lock.
    let Some(loc) = pg_only() else { return };
    let store = loc.store();
    save_expired(&store, "k");
    let place = store.path_of("k").unwrap().display().to_string();
    helper(&loc.location, "refresh-slow", |_child| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !advisory_locks(&loc, "k").contains(&("ExclusiveLock".into(), true)) {
            assert!(Instant::now() < deadline, "the helper never took the lock");
            std::thread::sleep(Duration::from_millis(10));
        }
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let p = place.clone();
        let listener = oauth_lock::interop::add_listener(move |e| {
            if e.key == "k" && e.path == p {
                s.lock().unwrap().push(serde_json::to_value(e).unwrap());
            }
        });
        let mine = Rotating::new("rt-0", Duration::ZERO);
        let source = store.source_with("k", mine.as_refresher()).unwrap();
        let waiter = std::thread::spawn(move || source.access_token_blocking());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !advisory_locks(&loc, "k").contains(&("ShareLock".into(), false)) {
            assert!(
                Instant::now() < deadline,
                "the waiter never waited on the shared lock"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let token = waiter.join().unwrap().unwrap();
        oauth_lock::interop::remove_listener(listener);
        assert_eq!(token.value(), "at-1", "the holder's token");
        assert_eq!(mine.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
        let seen = seen.lock().unwrap();
        let adopted: Vec<&Value> = seen.iter().filter(|e| e["event"] == "adopted").collect();
        assert_eq!(adopted.len(), 1, "{seen:?}");
        assert_eq!(adopted[0]["fields"]["under_lock"], false, "{seen:?}");
        assert!(
            !seen.iter().any(|e| e["event"] == "refreshed"),
            "this process did not refresh: {seen:?}"
        );
    });
}

#[test]
fn a_refresh_releases_the_lock_with_its_commit_and_its_notice_reaches_the_hot_path() {
    // The commit, the release and the change notice go in one pipeline: after the refresh the
    // holder's session (still open) holds no lock, and another process's hot path sees the
    // new token well before the periodic check could have told it.
    let Some(loc) = pg_only() else { return };
    let store = loc.store();
    let source = logged_in(&store, "at-0");
    helper(&loc.location, "refresh-stay", |_child| {
        assert_eq!(
            advisory_locks(&loc, "k"),
            [],
            "the lock outlived the commit"
        );
        let deadline = Instant::now() + oauth_lock::backend::postgres::POLL_EVERY / 2;
        while source.access_token_blocking().unwrap().value() != "at-1" {
            assert!(Instant::now() < deadline, "the refresh's notice never came");
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

/// The server's sessions whose last statement names `loc`'s schema (this test's own: each
/// test has a schema of its own); ends them if `end`.
fn sessions_on(loc: &Loc, end: bool) -> Vec<i32> {
    let pattern = format!("%{}%", loc.schema);
    let sql = if end {
        "SELECT pid FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid() \
         AND pg_terminate_backend(pid)"
    } else {
        "SELECT pid FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()"
    };
    loc.sql(move |c| {
        Box::pin(async move {
            c.query(sql, &[&pattern])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, i32>(0))
                .collect()
        })
    })
}

#[test]
fn a_reading_session_the_server_ended_is_replaced_and_listens_again() {
    // A process's reading session is also its listening one. When the server ends it, the
    // watch task makes a new one at once and listens on it, so another process's login still
    // reaches the hot path by its notice, long before the periodic check would.
    let Some(loc) = pg_only() else { return };
    let store = loc.store();
    let source = logged_in(&store, "at-1");
    let ended = sessions_on(&loc, true);
    assert!(!ended.is_empty(), "no session of this store was found");
    let deadline = Instant::now() + Duration::from_secs(2);
    while sessions_on(&loc, false)
        .iter()
        .all(|pid| ended.contains(pid))
    {
        assert!(
            Instant::now() < deadline,
            "no new reading session after the old one ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let changed = Instant::now();
    helper(&loc.location, "login", |_| {});
    let deadline = changed + oauth_lock::backend::postgres::POLL_EVERY / 2;
    while source.access_token_blocking().unwrap().value() != "at-2" {
        assert!(
            Instant::now() < deadline,
            "the login's notice never came on the new session"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_change_that_sent_no_notice_reaches_the_hot_path_by_the_periodic_check() {
    // DESIGN.md §10: notices with a periodic check as the fallback. A row changed with no
    // notice (a holder killed between its commit and its release) is still seen, within
    // `POLL_EVERY` of the listening session's last check.
    let Some(loc) = pg_only() else { return };
    let store = loc.store();
    let source = logged_in(&store, "at-1");
    let text = loc
        .raw(&store, "k")
        .unwrap()
        .replace("\"at-1\"", "\"at-2\"");
    loc.set_raw(&store, "k", &text);
    let deadline =
        Instant::now() + oauth_lock::backend::postgres::POLL_EVERY + Duration::from_secs(3);
    while source.access_token_blocking().unwrap().value() != "at-2" {
        assert!(
            Instant::now() < deadline,
            "the periodic check never saw the change"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn waiters_wait_on_the_shared_lock_in_the_server_and_wake_at_the_release() {
    let Some(loc) = pg_only() else { return };
    let store = loc.store();
    save_expired(&store, "k");
    helper(&loc.location, "hold", |child| {
        let provider = Rotating::new("rt-0", Duration::ZERO);
        let source = store.source_with("k", provider.as_refresher()).unwrap();
        let t = std::thread::spawn(move || {
            source.access_token_blocking().map(|t| t.value().to_owned())
        });
        // The waiter's session waits for a ShareLock on the key's advisory lock (step 2.3),
        // not for the exclusive lock.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let waiting: Vec<String> = advisory_locks(&loc, "k")
                .into_iter()
                .filter(|(_, granted)| !granted)
                .map(|(mode, _)| mode)
                .collect();
            if !waiting.is_empty() {
                assert_eq!(waiting, ["ShareLock"]);
                break;
            }
            assert!(Instant::now() < deadline, "no waiter appeared");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        // Released (the holder died): the waiter re-read, found it still stale, refreshed.
        assert_eq!(t.join().unwrap().unwrap(), "at-1");
        assert_eq!(provider.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    });
}

#[test]
fn a_caller_that_asks_the_cache_first_still_sees_another_processs_login() {
    // The bindings call `cached()` and then the blocking call: the first may spend the
    // revalidation check and find a change; the second must not answer from the old slot.
    for loc in locations() {
        let store = loc.store();
        save(
            &store,
            "k",
            json!({"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 3600}),
        );
        let source = store.source("k").unwrap();
        assert_eq!(source.access_token_blocking().unwrap().value(), "at-1");
        helper(&loc.location, "login", |_| {});
        // Past the default `revalidate` (1 s) and any notice's way.
        std::thread::sleep(Duration::from_millis(1300));
        assert!(
            source.cached().is_none(),
            "{}: the change went unseen",
            loc.name
        );
        assert_eq!(
            source.access_token_blocking().unwrap().value(),
            "at-2",
            "{}: the old token after another process's login",
            loc.name
        );
    }
}

/// DESIGN.md §10: session locks must not pass through a transaction-pooling proxy. Through
/// PgBouncer in transaction mode, a second client's request for a held lock can land on the
/// holder's server session, where an advisory lock is re-entrant and would be granted: two
/// holders, two refreshes with one refresh token. The core sees that the session already held
/// a lock and refuses (`InvalidArgument` naming the pooler and the location, without the
/// password), before any refresh; the holder's lock stays its own, and once it is released a
/// direct connection refreshes as usual.
#[test]
fn a_transaction_pooling_proxy_is_refused_before_a_second_holder_refreshes() {
    let (Some(direct), Some(pooled)) = (
        pg_only(),
        server_url("OAUTH_LOCK_TEST_PGBOUNCER_URL", "PgBouncer"),
    ) else {
        return;
    };
    let through_pooler = with_param(&pooled, &format!("schema={}", direct.schema));
    let store = Store::open(&through_pooler).unwrap();
    save_expired(&store, "k");
    let key = oauth_lock::Key::new("k").unwrap();
    let backend = PgBackend::open(&through_pooler).unwrap();
    let held = backend.lock(&key, Duration::from_secs(5)).unwrap();
    assert_eq!(advisory_locks(&direct, "k").len(), 1, "the holder holds it");

    let refreshes = Arc::new(AtomicUsize::new(0));
    let counted = refreshes.clone();
    let refresher = refresher_fn(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Err(oauth_lock::Error::transient("never called")) }
    });
    let source = store.source_with("k", refresher.clone()).unwrap();
    let e = source.access_token_blocking().unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    let m = e.to_string();
    assert!(m.contains("transaction-pooling proxy"), "{m}");
    assert!(m.contains(&store.location().to_string()), "{m}");
    assert_eq!(e.key(), Some("k"), "{e}");
    let e = backend.try_lock(&key).map(|_| ()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    assert_eq!(refreshes.load(Ordering::SeqCst), 0, "no refresh was sent");
    assert_eq!(
        advisory_locks(&direct, "k"),
        [("ExclusiveLock".to_owned(), true)],
        "nothing more was taken; the holder's lock is still its own"
    );
    let before = direct.record(&direct.store(), "k");
    drop(held);
    assert_eq!(
        direct.record(&direct.store(), "k"),
        before,
        "the record is unchanged"
    );

    // A direct connection is fine.
    let ok = refresher_fn(|_| async {
        Ok(oauth_lock::TokenFields {
            access_token: Some(oauth_lock::Secret::new("at-direct")),
            refresh_token: Some(oauth_lock::Secret::new("rt-direct")),
            expires_in_ms: Some(3_600_000),
            ..Default::default()
        })
    });
    let direct_source = direct.store().source_with("k", ok).unwrap();
    assert_eq!(
        direct_source.access_token_blocking().unwrap().value(),
        "at-direct"
    );
}
