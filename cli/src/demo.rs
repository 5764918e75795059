//! `oauth-lock demo`: the strict mock provider, one credential, N processes × M threads
//! hammering it with short-lived tokens, and a report read at the provider; `--naive` runs
//! the same without the lock to show what oauth-lock prevents. The hidden `worker`
//! subcommand is one of those processes (the multi-process tests spawn it too).

use crate::commands::{open, Failure, Outcome};
use crate::mock_server::{MockOptions, MockServer, Stats};
use clap::Parser;
use oauth_lock::{Credential, OAuth2, OAuth2Config, Record, Refresher, SaveOptions, Store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Worker processes
    #[arg(long, default_value_t = 8)]
    pub processes: usize,
    /// Threads in each process
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// How long the workers run
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Access-token lifetime at the mock provider
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub lifetime: Duration,
    /// Run without oauth-lock: read the file, refresh when expired, write it back, no lock
    #[arg(long)]
    pub naive: bool,
}

#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    #[arg(long)]
    pub key: String,
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// The mock provider's protected resource, called with each token (401 → reject)
    #[arg(long)]
    pub resource: Option<String>,
    /// No lock, no protocol: what people write by hand
    #[arg(long)]
    pub naive: bool,
}

/// What one worker process reports (one JSON line on stdout).
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct WorkerReport {
    pub calls: u64,
    pub errors: BTreeMap<String, u64>,
    pub resource_ok: u64,
    pub resource_unauthorized: u64,
    pub rejects: u64,
    /// A sample of `token` call latencies, in nanoseconds.
    pub latencies_ns: Vec<u64>,
    pub max_latency_ns: u64,
}

const SAMPLE: usize = 20_000;

impl WorkerReport {
    fn merge(&mut self, other: WorkerReport) {
        self.calls += other.calls;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.resource_ok += other.resource_ok;
        self.resource_unauthorized += other.resource_unauthorized;
        self.rejects += other.rejects;
        self.latencies_ns.extend(other.latencies_ns);
        self.max_latency_ns = self.max_latency_ns.max(other.max_latency_ns);
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn record_latency(&mut self, ns: u64) {
        self.max_latency_ns = self.max_latency_ns.max(ns);
        // Reservoir-free thinning: keep every call until full, then every 16th.
        if self.latencies_ns.len() < SAMPLE || self.calls % 16 == 0 {
            self.latencies_ns.push(ns);
        }
    }
}

pub fn worker(dir: Option<PathBuf>, a: WorkerArgs) -> Outcome {
    let store = open(dir)?;
    let path = store.path_of(&a.key)?;
    let total = Arc::new(Mutex::new(WorkerReport::default()));
    let deadline = Instant::now() + a.duration;
    let naive_rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| Failure::Other(e.to_string()))?,
    );
    let threads: Vec<_> = (0..a.threads.max(1))
        .map(|_| {
            let (store, key, path, resource, total, rt) = (
                store.clone(),
                a.key.clone(),
                path.clone(),
                a.resource.clone(),
                total.clone(),
                naive_rt.clone(),
            );
            let naive = a.naive;
            std::thread::spawn(move || {
                let mut r = WorkerReport::default();
                let source = store.source(&key).expect("key validated above");
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let got = if naive {
                        naive_token(&rt, &path)
                    } else {
                        source.access_token_blocking().map(|t| t.value().to_owned())
                    };
                    r.calls += 1;
                    r.record_latency(started.elapsed().as_nanos() as u64);
                    let token = match got {
                        Ok(t) => t,
                        Err(e) => {
                            *r.errors.entry(e.code().to_string()).or_default() += 1;
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                    };
                    let Some(url) = &resource else { continue };
                    match get_status(url, &token) {
                        Some(200) => r.resource_ok += 1,
                        Some(401) => {
                            r.resource_unauthorized += 1;
                            if !naive {
                                r.rejects += 1;
                                if let Err(e) = source.reject_blocking(&token) {
                                    *r.errors.entry(e.code().to_string()).or_default() += 1;
                                }
                            }
                        }
                        _ => *r.errors.entry("ResourceUnreachable".into()).or_default() += 1,
                    }
                }
                total.lock().unwrap().merge(r);
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| Failure::Other("a worker thread panicked".into()))?;
    }
    let report = std::mem::take(&mut *total.lock().unwrap());
    println!(
        "{}",
        serde_json::to_string(&report).map_err(|e| Failure::Other(e.to_string()))?
    );
    Ok(ExitCode::SUCCESS)
}

/// What a hand-written refresh looks like without oauth-lock: no lock, no re-read under a
/// lock, a plain write. It is here only as the demo's contrast.
fn naive_token(rt: &tokio::runtime::Runtime, path: &Path) -> oauth_lock::Result<String> {
    let bytes = std::fs::read(path).map_err(|e| oauth_lock::Error::Io {
        ctx: Default::default(),
        op: "read".into(),
        kind: e.kind(),
        os_code: e.raw_os_error(),
        message: e.to_string(),
    })?;
    let mut record = Record::parse(&bytes)?;
    let now = crate::commands::now_ms();
    if record.is_fresh(now, 300_000) {
        return Ok(record
            .access_token
            .as_ref()
            .map(|t| t.expose().to_owned())
            .unwrap_or_default());
    }
    let config =
        OAuth2Config::from_json(record.refresh.as_ref().unwrap_or(&serde_json::Value::Null))?;
    let fields = rt.block_on(OAuth2::new(config)?.refresh(&record))?;
    let previous = record.generation;
    record.apply_refresh(fields, now);
    record.stamp(previous, crate::commands::now_ms());
    let _ = std::fs::write(path, record.to_bytes());
    Ok(record
        .access_token
        .as_ref()
        .map(|t| t.expose().to_owned())
        .unwrap_or_default())
}

/// `GET url` with a bearer token over a plain loopback connection; the status code.
pub fn get_status(url: &str, token: &str) -> Option<u16> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut s = TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

#[derive(Parser)]
struct MockArgs {
    #[command(flatten)]
    options: MockOptions,
}

/// Runs `processes` workers on one store against a fresh mock provider; the merged report,
/// the provider's counters and the number of rotations recorded in the store.
pub struct Run {
    pub report: WorkerReport,
    pub stats: Stats,
    pub rotations: u64,
    pub elapsed: Duration,
}

fn run_demo(a: &DemoArgs) -> Result<Run, Failure> {
    let other = |e: &dyn std::fmt::Display| Failure::Other(e.to_string());
    let rt = tokio::runtime::Runtime::new().map_err(|e| other(&e))?;
    let lifetime = humantime::format_duration(a.lifetime).to_string();
    let options = MockArgs::parse_from(["mock", "--lifetime", &lifetime]).options;
    let server: MockServer = rt
        .block_on(MockServer::start(options))
        .map_err(|e| other(&e))?;
    let dir = tempdir()?;
    let store = Store::open(&dir)?;
    let login: serde_json::Value = rt
        .block_on(async {
            reqwest::Client::new()
                .post(format!("{}/login", server.url()))
                .send()
                .await?
                .json()
                .await
        })
        .map_err(|e| other(&e))?;
    let mut credential = login.clone();
    credential["refresh"] = serde_json::json!({"token_url": server.token_url(), "client_id": "oauth-lock-demo", "body": "json"});
    let saved = store.save_blocking(
        "demo",
        Credential::from_json(&credential)?,
        SaveOptions::default(),
    )?;
    let exe = std::env::current_exe().map_err(|e| other(&e))?;
    let started = Instant::now();
    let children: Vec<_> = (0..a.processes)
        .map(|_| {
            let mut cmd = Command::new(&exe);
            cmd.arg("--dir")
                .arg(&dir)
                .args(["worker", "--key", "demo", "--threads"])
                .arg(a.threads.to_string());
            cmd.arg("--duration")
                .arg(humantime::format_duration(a.duration).to_string());
            cmd.arg("--resource")
                .arg(format!("{}/resource", server.url()));
            if a.naive {
                cmd.arg("--naive");
            }
            cmd.stdout(Stdio::piped()).spawn()
        })
        .collect::<Result<_, _>>()
        .map_err(|e| other(&e))?;
    let mut report = WorkerReport::default();
    for child in children {
        let out = child.wait_with_output().map_err(|e| other(&e))?;
        let r: WorkerReport = serde_json::from_slice(&out.stdout)
            .map_err(|e| other(&format!("a worker failed ({}): {e}", out.status)))?;
        report.merge(r);
    }
    let elapsed = started.elapsed();
    let stats = server.stats();
    let generation = store.status("demo")?.generation.unwrap_or(0);
    rt.block_on(server.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Run {
        report,
        stats,
        rotations: generation.saturating_sub(saved.generation.unwrap_or(0)),
        elapsed,
    })
}

fn tempdir() -> Result<PathBuf, Failure> {
    let dir = std::env::temp_dir().join(format!(
        "oauth-lock-demo-{}-{}",
        std::process::id(),
        crate::commands::now_ms()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| Failure::Other(format!("{}: {e}", dir.display())))?;
    Ok(dir)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn human_ns(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        _ => format!("{:.1} ms", ns as f64 / 1e6),
    }
}

pub fn demo(a: DemoArgs) -> Outcome {
    let mode = if a.naive {
        "WITHOUT oauth-lock (--naive: read, refresh when expired, write back; no lock)"
    } else {
        "with oauth-lock"
    };
    println!(
        "oauth-lock demo, {mode}\n  {} processes × {} threads share one credential; the strict mock provider issues {} tokens,\n  rotates the refresh token on every refresh and revokes the whole family when a spent one comes back.\n  Running for {}…\n",
        a.processes,
        a.threads,
        humantime::format_duration(a.lifetime),
        humantime::format_duration(a.duration)
    );
    let run = run_demo(&a)?;
    let mut lat = run.report.latencies_ns.clone();
    lat.sort_unstable();
    let s = &run.stats;
    let errors = run.report.error_count();
    let row = |label: &str, value: String, note: String| {
        println!(
            "{}",
            format!("  {label:<28}{value:>10}   {note}").trim_end()
        )
    };
    row(
        "token requests served",
        run.report.calls.to_string(),
        format!(
            "p50 {}, p99 {}, max {}",
            human_ns(percentile(&lat, 0.5)),
            human_ns(percentile(&lat, 0.99)),
            human_ns(run.report.max_latency_ns)
        ),
    );
    row(
        "refreshes at the provider",
        s.refreshes.to_string(),
        format!("{} rotations committed to the store", run.rotations),
    );
    row(
        "replays at the provider",
        s.replays.to_string(),
        "spent refresh tokens presented again".into(),
    );
    row(
        "token families revoked",
        s.revoked_families.to_string(),
        "each one is a user logged out".into(),
    );
    let detail: Vec<String> = run
        .report
        .errors
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    row(
        "errors in the clients",
        errors.to_string(),
        detail.join(", "),
    );
    row(
        "resource calls",
        (run.report.resource_ok + run.report.resource_unauthorized).to_string(),
        format!(
            "{} ok, {} unauthorized",
            run.report.resource_ok, run.report.resource_unauthorized
        ),
    );
    println!("  (took {:.1} s)\n", run.elapsed.as_secs_f64());
    if a.naive {
        println!("Without the lock, processes refresh at the same moment with the same refresh token: the provider\nsees replays, revokes the family, and every process is logged out. Run `oauth-lock demo` to compare.");
        return Ok(ExitCode::SUCCESS);
    }
    let good =
        s.replays == 0 && s.revoked_families == 0 && errors == 0 && s.refreshes == run.rotations;
    if good {
        println!("PASS: every refresh token was spent exactly once; one refresh per rotation; no errors.\nRun `oauth-lock demo --naive` to see the same load without oauth-lock.");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("FAIL: the provider saw replays or the clients saw errors.");
        Ok(ExitCode::from(1))
    }
}
