//! Shared helpers of the process-level tests: the `oauth-lock` binary, a mock provider
//! process, and a store with a logged-in credential.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_oauth-lock")
}

/// `oauth-lock --dir DIR args…`
pub fn cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("OAUTH_LOCK_DIR");
    c
}

pub fn run(dir: &Path, args: &[&str]) -> Output {
    cmd(dir, args).output().unwrap()
}

pub fn run_with_stdin(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = cmd(dir, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A running `oauth-lock mock-server` process, killed on drop.
pub struct Mock {
    child: Child,
    pub url: String,
}

impl Mock {
    pub fn start(args: &[&str]) -> Mock {
        let mut child = Command::new(bin())
            .arg("mock-server")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("mock said {line:?}"))
            .to_owned();
        Mock { child, url }
    }

    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.url)
    }

    pub fn stats(&self) -> Value {
        http("GET", &format!("{}/stats", self.url), None, None).1
    }

    pub fn stat(&self, name: &str) -> u64 {
        self.stats()[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {name}"))
    }

    /// A new token family: the token response of a login.
    pub fn login(&self) -> Value {
        let (status, body) = http("POST", &format!("{}/login", self.url), None, None);
        assert_eq!(status, 200, "{body}");
        body
    }

    pub fn resource_status(&self, token: &str) -> u16 {
        http("GET", &format!("{}/resource", self.url), Some(token), None).0
    }

    pub fn revoke_access_tokens(&self) {
        let (status, _) = http(
            "POST",
            &format!("{}/admin/revoke-access", self.url),
            None,
            Some("{}"),
        );
        assert_eq!(status, 200);
    }

    /// The `refresh` config for a record, pointing at this provider.
    pub fn refresh_config(&self) -> Value {
        json!({"token_url": self.token_url(), "client_id": "oauth-lock-demo", "body": "json"})
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny blocking HTTP/1.1 client for loopback (status, JSON body or Null).
pub fn http(method: &str, url: &str, bearer: Option<&str>, body: Option<&str>) -> (u16, Value) {
    use std::io::Read;
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(t) = bearer {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    req.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp);
    let status = text[9..12].parse().unwrap();
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let payload = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(payload)
    } else {
        payload.to_owned()
    };
    (
        status,
        serde_json::from_str(&payload).unwrap_or(Value::Null),
    )
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// A fresh store directory.
pub fn store_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("store");
    (d, p)
}

/// Logs in at the mock and saves the credential (through the CLI) with its refresh config;
/// `expires_in` overrides the provider's lifetime (0 = already expired).
pub fn login_and_save(mock: &Mock, dir: &Path, key: &str, expires_in: Option<f64>) -> Value {
    let mut cred = mock.login();
    cred["refresh"] = mock.refresh_config();
    if let Some(e) = expires_in {
        cred["expires_in"] = json!(e);
    }
    let o = run_with_stdin(dir, &["save", key], &cred.to_string());
    assert!(o.status.success(), "save failed: {}", stderr(&o));
    cred
}

pub fn record(dir: &Path, stem: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join(format!("{stem}.json"))).unwrap()).unwrap()
}

/// Whether nobody holds the credential's lock: a non-blocking exclusive `flock` on
/// `<stem>.lock` succeeds (and is released at once). A missing lock file counts as free.
pub fn lock_is_free(dir: &Path, stem: &str) -> bool {
    use std::os::unix::io::AsRawFd;
    let Ok(file) = std::fs::File::open(dir.join(format!("{stem}.lock"))) else {
        return true;
    };
    // SAFETY: flock on a descriptor we own; closing the file releases it.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Whether process `pid` waits for a lock: some thread is blocked in the `flock` system call
/// (the exclusive wait, and the shared wait on a waiter thread), or in `poll` with an inotify
/// descriptor open (the shared wait on a blocking caller's own thread, on its lock file's
/// close watch); read from `/proc/PID/task/*/syscall` and `/proc/PID/fdinfo`. `None` when the
/// kernel does not tell.
pub fn blocked_in_flock(pid: u32) -> Option<bool> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut readable = false;
    let mut polling = false;
    for task in tasks.flatten() {
        let Ok(line) = std::fs::read_to_string(task.path().join("syscall")) else {
            continue;
        };
        readable = true;
        let number = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .parse::<i64>()
            .ok();
        if number == Some(libc::SYS_flock) {
            return Some(true);
        }
        polling |= number == Some(libc::SYS_poll) || number == Some(libc::SYS_ppoll);
    }
    if polling && watches_a_file(pid) {
        return Some(true);
    }
    readable.then_some(false)
}

/// Whether process `pid` has an inotify descriptor with a watch.
fn watches_a_file(pid: u32) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_to_string(fd.path()).is_ok_and(|info| info.contains("inotify wd:")))
}

/// Waits for `child` at most `limit`; `None` if it is still running.
pub fn wait_timeout(
    child: &mut Child,
    limit: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Temp files (`.<stem>.json.*.tmp`) that a writer killed between creating and renaming left.
pub fn temp_files(dir: &Path, stem: &str) -> Vec<String> {
    let prefix = format!(".{stem}.json.");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix) && n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
