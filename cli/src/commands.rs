//! The store commands of the CLI: thin translations to `oauth_lock::Store` calls.

use oauth_lock::{Credential, SaveOptions, Status, Store};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Why a command failed: an oauth-lock error (exit 10 + code) or anything else (exit 1).
pub enum Failure {
    OAuthLock(oauth_lock::Error),
    Other(String),
}

impl From<oauth_lock::Error> for Failure {
    fn from(e: oauth_lock::Error) -> Self {
        Failure::OAuthLock(e)
    }
}

pub type Outcome = Result<ExitCode, Failure>;

pub fn open(dir: Option<PathBuf>) -> Result<Store, Failure> {
    Ok(match dir {
        Some(d) => Store::open(d)?,
        None => Store::open_default()?,
    })
}

#[derive(clap::Args, Debug)]
pub struct KeyArg {
    /// The credential's key, e.g. anthropic:work
    pub key: String,
}

#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    pub key: String,
    /// The resource server answered 401 to this token: get a different one (one refresh
    /// across all processes)
    #[arg(long, value_name = "TOKEN")]
    pub reject: Option<String>,
    /// Print JSON: access_token, token_type, expires_at_ms, generation
    #[arg(long)]
    pub json: bool,
}

pub fn token(dir: Option<PathBuf>, a: TokenArgs) -> Outcome {
    let source = open(dir)?.source(&a.key)?;
    let token = match &a.reject {
        Some(bad) => source.reject_blocking(bad)?,
        None => source.access_token_blocking()?,
    };
    if a.json {
        let v = serde_json::json!({
            "access_token": token.value(),
            "token_type": token.token_type(),
            "expires_at_ms": token.expires_at_ms(),
            "generation": token.generation(),
        });
        println!("{v}");
    } else {
        println!("{}", token.value());
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// One credential; all of them if omitted
    pub key: Option<String>,
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
}

pub fn status(dir: Option<PathBuf>, a: StatusArgs) -> Outcome {
    let store = open(dir)?;
    let all = match &a.key {
        Some(k) => vec![store.status(k)?],
        None => store.list()?,
    };
    if a.json {
        let out = if a.key.is_some() {
            serde_json::to_string_pretty(&all[0])
        } else {
            serde_json::to_string_pretty(&all)
        };
        println!("{}", out.map_err(|e| Failure::Other(e.to_string()))?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("store: {}", store.location());
    if let Some(server) = all.iter().find_map(|s| s.server.as_deref()) {
        println!("server: {server}");
    }
    if all.is_empty() {
        println!("(no credentials)");
        return Ok(ExitCode::SUCCESS);
    }
    let now = now_ms();
    let rows: Vec<[String; 6]> = all.iter().map(|s| row(s, now)).collect();
    let head = [
        "KEY",
        "STATE",
        "GEN",
        "ACCESS TOKEN",
        "REFRESH TOKEN",
        "NOTES",
    ]
    .map(String::from);
    let mut widths = head.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&head).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

fn row(s: &Status, now: i64) -> [String; 6] {
    let mut notes = Vec::new();
    if let Some(p) = &s.problem {
        notes.push(format!("{}: unreadable", p.code));
    }
    if let Some(e) = &s.last_error {
        notes.push(format!("last error: {}", e.code));
    }
    if s.insecure_permissions {
        notes.push("INSECURE permissions (readable by others)".into());
    }
    if s.network_fs {
        notes.push("on a network file system: locks do not hold across machines".into());
    }
    if let Some(until) = s.backoff_until_ms.filter(|&u| u > now) {
        notes.push(format!("backing off for {}", human(until - now)));
    }
    if let (Some(path), Some(shape)) = (&s.mirror_path, s.mirror_shape) {
        notes.push(format!("mirror: {} ({})", path.display(), shape.program()));
    }
    if s.exists && s.problem.is_none() && !s.has_refresh_config {
        notes.push("no refresh config".into());
    }
    let access = match (s.has_access_token, s.expires_at_ms) {
        (false, _) => "none".to_owned(),
        (true, None) => "no expiry".to_owned(),
        (true, Some(e)) if e > now => format!("expires in {}", human(e - now)),
        (true, Some(e)) => format!("expired {} ago", human(now - e)),
    };
    let refresh = match (s.has_refresh_token, s.refresh_token_issued_at_ms) {
        (false, _) => "none".to_owned(),
        (true, Some(t)) => format!("rotated {} ago", human(now - t)),
        (true, None) => "yes".to_owned(),
    };
    [
        s.key.clone(),
        s.state.map_or("-", |st| st.as_str()).to_owned(),
        s.generation.map_or("-".into(), |g| g.to_string()),
        access,
        refresh,
        notes.join("; "),
    ]
}

fn human(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d", s / 86_400),
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(clap::Args, Debug)]
pub struct SaveArgs {
    pub key: String,
    /// Replace a credential that has a refresh token with one that has none
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Add a `refresh` config: the provider's token endpoint
    #[arg(long, value_name = "URL", requires = "client_id")]
    pub token_url: Option<String>,
    /// The OAuth client id for the `refresh` config
    #[arg(long, value_name = "ID", requires = "token_url")]
    pub client_id: Option<String>,
    /// How the refresh request is encoded
    #[arg(long, value_enum, default_value = "form", requires = "token_url")]
    pub body: BodyArg,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum BodyArg {
    Form,
    Json,
}

pub fn save(dir: Option<PathBuf>, a: SaveArgs) -> Outcome {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Failure::Other(format!("reading stdin: {e}")))?;
    let mut value: serde_json::Value = serde_json::from_str(&input).map_err(|e| {
        Failure::OAuthLock(oauth_lock::Error::InvalidArgument {
            ctx: oauth_lock::Context {
                key: Some(a.key.clone()),
                path: None,
            },
            reason: format!(
                "stdin is not JSON (line {} column {})",
                e.line(),
                e.column()
            ),
        })
    })?;
    if let (Some(url), Some(id), Some(obj)) = (&a.token_url, &a.client_id, value.as_object_mut()) {
        let body = match a.body {
            BodyArg::Form => "form",
            BodyArg::Json => "json",
        };
        obj.insert(
            "refresh".into(),
            serde_json::json!({"token_url": url, "client_id": id, "body": body}),
        );
    }
    let store = open(dir)?;
    let path = store.path_of(&a.key)?;
    let credential = Credential::from_json(&value).map_err(|e| e.with_context(&a.key, &path))?;
    let options = SaveOptions {
        allow_downgrade: a.allow_downgrade,
        ..Default::default()
    };
    let st = store.save_blocking(&a.key, credential, options)?;
    eprintln!(
        "saved {:?} (generation {}{})",
        st.key,
        st.generation.unwrap_or(0),
        if st.has_refresh_token {
            ""
        } else {
            "; no refresh token: it cannot be refreshed"
        }
    );
    Ok(ExitCode::SUCCESS)
}

pub fn clear(dir: Option<PathBuf>, a: KeyArg) -> Outcome {
    let existed = open(dir)?.clear_blocking(&a.key)?;
    eprintln!(
        "{} {:?}",
        if existed {
            "cleared"
        } else {
            "nothing stored under"
        },
        a.key
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct CopyArgs {
    /// The store to copy from: a directory or a postgresql:// URL
    #[arg(long, value_name = "LOCATION")]
    pub from: PathBuf,
    /// The store to copy into: a directory or a postgresql:// URL
    #[arg(long, value_name = "LOCATION")]
    pub to: PathBuf,
    /// The keys to copy [default: every key of --from]
    pub keys: Vec<String>,
}

pub fn copy(a: CopyArgs) -> Outcome {
    let (from, to) = (Store::open(&a.from)?, Store::open(&a.to)?);
    let copied = from.copy_to(&to, &a.keys)?;
    for key in &copied {
        eprintln!(
            "copied {key:?} from {} to {}",
            from.location(),
            to.location()
        );
    }
    if copied.is_empty() {
        eprintln!("nothing to copy: {} holds no credentials", from.location());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify(dir: Option<PathBuf>, a: KeyArg) -> Outcome {
    let t = open(dir)?.verify_blocking(&a.key)?;
    eprintln!(
        "ok: {:?} refreshed (generation {}{})",
        a.key,
        t.generation(),
        expiry_note(t.expires_at_ms())
    );
    Ok(ExitCode::SUCCESS)
}

pub fn expiry_note(expires_at_ms: Option<i64>) -> String {
    expires_at_ms
        .map(|e| format!(", expires in {}", human(e - now_ms())))
        .unwrap_or_default()
}

#[derive(clap::Args, Debug)]
pub struct RefreshArgs {
    pub key: String,
    /// Refresh only if the access token expires within this long (e.g. 10m)
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub if_expiring_within: Duration,
}

pub fn refresh(dir: Option<PathBuf>, a: RefreshArgs) -> Outcome {
    let store = open(dir)?;
    let before = store.status(&a.key)?.generation;
    let t = store
        .source(&a.key)?
        .access_token_valid_for_blocking(a.if_expiring_within)?;
    let what = if Some(t.generation()) == before {
        "still fresh"
    } else {
        "refreshed"
    };
    eprintln!(
        "{:?}: {what} (generation {}{})",
        a.key,
        t.generation(),
        expiry_note(t.expires_at_ms())
    );
    Ok(ExitCode::SUCCESS)
}

pub fn mock_server(o: crate::mock_server::MockOptions) -> Outcome {
    let rt = tokio::runtime::Runtime::new().map_err(|e| Failure::Other(e.to_string()))?;
    rt.block_on(crate::mock_server::run(o))
        .map_err(|e| Failure::Other(format!("mock-server: {e}")))?;
    Ok(ExitCode::SUCCESS)
}
