//! `oauth-lock-bench`: the Rust figures of docs/BENCHMARKS.md (distributions over repeated
//! runs, with a hand-written peer measured in the same run), written as JSON to
//! `$BENCH_RESULTS/rust.json` for bench/report.py. Figures, not tests: nothing here asserts.

use oauth_lock::lock::{blocked_waits, lock_exclusive};
use oauth_lock::{Credential, SaveOptions, Store};
use serde_json::json;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn save(store: &Store, key: &str, v: serde_json::Value) {
    store
        .save_blocking(
            key,
            Credential::from_json(&v).unwrap(),
            SaveOptions::default(),
        )
        .unwrap();
}

fn fresh(store: &Store, key: &str) {
    save(
        store,
        key,
        json!({"access_token": format!("at-{key}"), "refresh_token": "rt", "expires_in": 3600}),
    );
}

/// One measurement in `rust.json`: the distribution of `samples_ns` (per-round means for the
/// per-call loops, one sample per round otherwise), summarised for the renderer.
fn measurement(label: &str, samples: &[f64]) -> serde_json::Value {
    let mut s = samples.to_vec();
    json!({
        "label": label,
        "median_ns": median(&mut s),
        "p99_ns": pct(&mut s, 0.99),
        "min_ns": s[0],
        "max_ns": s[s.len() - 1],
        "n": s.len(),
        "samples_ns": s,
    })
}

/// Per-round mean ns per call of `f`: `rounds` rounds of `iters` calls.
fn rounds_of(rounds: usize, iters: u64, mut f: impl FnMut()) -> Vec<f64> {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect()
}

fn main() {
    // BENCH_QUICK=1: a smoke run with few rounds (figures are then only indicative).
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let (rounds, calls) = if quick { (3, 100_000) } else { (15, 1_000_000) };
    let scale = |full: usize| if quick { full / 10 } else { full };
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("store")).unwrap();
    let mut m = serde_json::Map::new();

    // Hot path.
    fresh(&store, "hot");
    let source = store.source("hot").unwrap();
    source.access_token_blocking().unwrap();
    let blocking = rounds_of(rounds, calls, || {
        black_box(source.access_token_blocking().unwrap());
    });
    m.insert(
        "hot".into(),
        measurement("`access_token_blocking()`", &blocking),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let asynch = rt.block_on(async {
        let mut samples = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            for _ in 0..calls {
                black_box(source.access_token().await.unwrap());
            }
            samples.push(t.elapsed().as_nanos() as f64 / calls as f64);
        }
        samples
    });
    m.insert(
        "hot_async".into(),
        measurement("`access_token().await`", &asynch),
    );
    let path = store.path_of("hot").unwrap();
    let by_hand = rounds_of(rounds, calls / 50, || {
        // What people write: read and parse the file on every call.
        let bytes = std::fs::read(&path).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        black_box(v["access_token"].as_str().unwrap().len());
    });
    m.insert(
        "peer_read_parse".into(),
        measurement("read + parse the JSON file per call (by hand)", &by_hand),
    );

    // Cold read: the first call in a process (empty slot) on a fresh record.
    // Written directly, as another process would: this process has never seen these keys.
    let keys: Vec<String> = (0..scale(400)).map(|i| format!("cold-{i}")).collect();
    for k in &keys {
        let rec = json!({"format": 1, "key": k, "generation": 1, "access_token": format!("at-{k}"),
            "refresh_token": "rt", "issued_at_ms": now_ms(), "expires_at_ms": now_ms() + 3_600_000});
        std::fs::write(
            store.path_of(k).unwrap(),
            serde_json::to_vec_pretty(&rec).unwrap(),
        )
        .unwrap();
    }
    let cold: Vec<f64> = keys
        .iter()
        .map(|k| {
            let s = store.source(k).unwrap();
            let t = Instant::now();
            black_box(s.access_token_blocking().unwrap());
            t.elapsed().as_nanos() as f64
        })
        .collect();
    m.insert(
        "cold_read".into(),
        measurement("first `access_token_blocking()` of a fresh record", &cold),
    );

    // Kernel lock hand-off: holder releases → blocked waiter returns.
    let lock_path = tmp.path().join("handoff.lock");
    let lock = lock_handoffs(&lock_path, scale(300));
    m.insert(
        "lock_handoff".into(),
        measurement("lock hand-off (release → blocked waiter returns)", &lock),
    );

    // Protocol hand-off: a winner commits and unlocks; a loser blocked in access_token()
    // re-reads under the lock, adopts and returns.
    let proto = protocol_handoffs(&store, scale(200));
    m.insert(
        "handoff".into(),
        measurement(
            "release → blocked `access_token_blocking()` returns the new token",
            &proto,
        ),
    );

    // Full refresh against the local mock provider.
    match mock_binary() {
        Some(bin) => {
            let full = full_refreshes(&bin, &store, scale(200));
            m.insert(
                "full_refresh".into(),
                measurement("`verify_blocking()` against the local mock", &full),
            );
        }
        None => eprintln!("skipped the full refresh: build the CLI first (cargo build --release -p oauth-lock-cli)"),
    }

    println!("{:<16} {:>14} {:>14}", "rust", "median", "p99");
    for (id, v) in &m {
        println!(
            "{id:<16} {:>11.1} ns {:>11.1} ns",
            v["median_ns"].as_f64().unwrap(),
            v["p99_ns"].as_f64().unwrap()
        );
    }
    let out = json!({
        "lang": "rust",
        "quick": quick,
        "recorded_at_ms": now_ms(),
        "versions": {"oauth-lock": env!("CARGO_PKG_VERSION")},
        "measurements": m,
    });
    if let Ok(dir) = std::env::var("BENCH_RESULTS") {
        let file = Path::new(&dir).join("rust.json");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&file, serde_json::to_vec_pretty(&out).unwrap()).unwrap();
        println!("wrote {}", file.display());
    }
}

fn lock_handoffs(path: &Path, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let held = lock_exclusive(path, Duration::from_secs(5)).unwrap();
            let before = blocked_waits();
            let p = path.to_owned();
            let waiter = std::thread::spawn(move || {
                let g = lock_exclusive(&p, Duration::from_secs(5)).unwrap();
                let t = Instant::now();
                drop(g);
                t
            });
            while blocked_waits() == before {
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_millis(2));
            let released = Instant::now();
            drop(held);
            waiter.join().unwrap().duration_since(released).as_nanos() as f64
        })
        .collect()
}

fn protocol_handoffs(store: &Store, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let key = format!("handoff-{i}");
            save(
                store,
                &key,
                json!({"access_token": "old", "refresh_token": "rt", "expires_in": 0}),
            );
            let record_path = store.path_of(&key).unwrap();
            let lock_path = record_path.with_extension("lock");
            let held = lock_exclusive(&lock_path, Duration::from_secs(5)).unwrap();
            let before = blocked_waits();
            let source = Store::open(store.dir()).unwrap().source(&key).unwrap();
            let (tx, rx) = mpsc::channel();
            let loser = std::thread::spawn(move || {
                let t = source.access_token_blocking().unwrap();
                tx.send(Instant::now()).unwrap();
                t
            });
            while blocked_waits() == before {
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_millis(2));
            // The winner's commit: an atomically replaced record with a fresh token.
            let mut rec: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
            rec["generation"] = json!(rec["generation"].as_u64().unwrap() + 1);
            rec["access_token"] = json!("new");
            rec["expires_at_ms"] = json!(now_ms() + 3_600_000);
            rec["issued_at_ms"] = json!(now_ms());
            let tmp = record_path.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec(&rec).unwrap()).unwrap();
            std::fs::rename(&tmp, &record_path).unwrap();
            let released = Instant::now();
            drop(held);
            let returned = rx.recv().unwrap();
            assert_eq!(loser.join().unwrap().value(), "new");
            returned.duration_since(released).as_nanos() as f64
        })
        .collect()
}

fn mock_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.join("oauth-lock");
    bin.exists().then_some(bin)
}

fn full_refreshes(bin: &Path, store: &Store, n: usize) -> Vec<f64> {
    let mut child = Command::new(bin)
        .args(["mock-server", "--lifetime", "1h"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut login: serde_json::Value = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{url}/login"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    login["refresh"] = json!({"token_url": format!("{url}/oauth/token"), "client_id": "oauth-lock-demo", "body": "json"});
    save(store, "full", login);
    let source = store.source("full").unwrap();
    source.verify_blocking().unwrap();
    let out = (0..n)
        .map(|_| {
            let t = Instant::now();
            black_box(source.verify_blocking().unwrap());
            t.elapsed().as_nanos() as f64
        })
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    out
}
