//! A strict mock OAuth provider that every test, in every language, runs against.

mod state;
#[cfg(test)]
mod tests;
mod wire;

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State as Shared;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use state::State;

/// How long `run` lets in-flight requests finish after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Command-line switches of `oauth-lock mock-server`.
#[derive(clap::Args, Debug, Clone)]
pub struct MockOptions {
    /// Port on 127.0.0.1 (0 = pick a free one)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Access-token lifetime, e.g. "1s", "500ms", "1h"
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub lifetime: Duration,
    /// Grace window during which a just-rotated refresh token may be presented again without
    /// revoking the family; the reuse returns the tokens that the first use issued. "0s" = strict
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// Do not rotate: the same refresh token stays valid (non-rotating provider)
    #[arg(long)]
    pub no_rotate: bool,
    /// Delay before answering each token request
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency: Duration,
    /// Answer every Nth token request with HTTP 503 (0 = never)
    #[arg(long, default_value_t = 0)]
    pub fail_every: u64,
    /// Answer every Nth token request with HTTP 200 and a body that is not an OAuth response
    /// (0 = never)
    #[arg(long, default_value_t = 0)]
    pub malformed_every: u64,
    /// Token request bodies accepted
    #[arg(long, value_enum, default_value = "any")]
    pub body: BodyKind,
    /// Required client_id (requests with another get 401 invalid_client)
    #[arg(long, default_value = "oauth-lock-demo")]
    pub client_id: String,
    /// Required client secret (HTTP Basic or client_secret in the body); none if unset
    #[arg(long)]
    pub client_secret: Option<String>,
    /// Issue access tokens shaped like a JWT, as OpenAI's (Codex reads the expiry from the
    /// token): `base64url(header).base64url({"exp", "iat", "jti"}).base64url(signature)`,
    /// unpadded; `exp` in Unix seconds, rounded down so that a client never thinks a token
    /// lives longer than the provider accepts it
    #[arg(long)]
    pub jwt: bool,
}

/// Which token request bodies the provider accepts.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/x-www-form-urlencoded` only (the RFC 6749 default)
    Form,
    /// `application/json` only (as some providers, such as Anthropic's, expect)
    Json,
    /// Either, chosen by Content-Type
    Any,
}

/// What the provider has seen so far, served at `GET /stats`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Every `POST /oauth/token`.
    pub token_requests: u64,
    /// New families: `POST /login`, or an `authorization_code` or `password` grant.
    pub logins: u64,
    /// Successful `refresh_token` grants, grace reuses not included.
    pub refreshes: u64,
    /// Presentations of an already spent refresh token, inside or outside the grace window.
    pub replays: u64,
    /// Replays answered successfully because they came within `--grace`.
    pub grace_reuses: u64,
    /// Families revoked because of a replay.
    pub revoked_families: u64,
    /// Every `invalid_grant` answer: unknown token, replay, revoked family.
    pub invalid_grants: u64,
    /// 503 answers injected by `--fail-every`.
    pub injected_failures: u64,
    /// Malformed answers injected by `--malformed-every`.
    pub malformed: u64,
    /// Other 4xx answers of the token endpoint: invalid_request, invalid_client,
    /// unsupported_grant_type, wrong body kind.
    pub bad_requests: u64,
    /// `GET /resource` answered 200.
    pub resource_ok: u64,
    /// `GET /resource` answered 401.
    pub resource_unauthorized: u64,
    /// Families revoked through `POST /admin/revoke-family`.
    pub admin_revocations: u64,
    /// Token requests answered 503 during an outage (`POST /admin/outage`).
    #[serde(default)]
    pub outage_failures: u64,
}

/// A running provider; dropping it stops it too, without waiting.
pub struct MockServer {
    /// Where it listens.
    pub addr: SocketAddr,
    app: Arc<App>,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<io::Result<()>>,
}

impl MockServer {
    /// Starts the server on the current tokio runtime; it is bound to 127.0.0.1 on return.
    pub async fn start(opts: MockOptions) -> io::Result<MockServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, opts.port)).await?;
        let addr = listener.local_addr()?;
        let app = Arc::new(App {
            opts,
            state: Mutex::default(),
            outage: Mutex::default(),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let routes = router(Arc::clone(&app));
        let serving = tokio::spawn(async move {
            axum::serve(listener, routes)
                .with_graceful_shutdown(async {
                    // A dropped sender means the same as a sent stop.
                    stopped.await.ok();
                })
                .await
        });
        Ok(MockServer {
            addr,
            app,
            stop,
            serving,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token endpoint, `http://127.0.0.1:PORT/oauth/token`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.url())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.app.state().stats.clone()
    }

    /// Stops accepting connections and waits for the requests in flight to be answered.
    pub async fn shutdown(self) {
        // The receiver is gone only if the server already stopped, which is what we want.
        self.stop.send(()).ok();
        match self.serving.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "mock server stopped with an error"),
            Err(error) => tracing::warn!(%error, "mock server task failed"),
        }
    }
}

/// `oauth-lock mock-server`: serves until SIGINT or SIGTERM, after printing exactly one line,
/// `listening on http://127.0.0.1:PORT`, which is how spawning tests learn the port.
pub async fn run(opts: MockOptions) -> io::Result<()> {
    let server = MockServer::start(opts).await?;
    {
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "listening on {}", server.url())?;
        stdout.flush()?;
    }
    stop_signal().await?;
    // A client that never finishes its request must not keep the process alive.
    if tokio::time::timeout(SHUTDOWN_GRACE, server.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("mock server stopped with requests still in flight");
    }
    Ok(())
}

async fn stop_signal() -> io::Result<()> {
    crate::sys::stop_requested().await
}

/// What every handler shares.
struct App {
    opts: MockOptions,
    state: Mutex<State>,
    outage: Mutex<Option<Outage>>,
}

/// Every token request fails with 503 until `until` (a provider's bad minutes).
#[derive(Clone, Copy)]
struct Outage {
    until: Instant,
    /// The `Retry-After` header sent with each 503, in seconds, if any.
    retry_after_s: Option<u64>,
}

impl App {
    fn state(&self) -> MutexGuard<'_, State> {
        // Keep serving after a handler panicked: a poisoned lock would turn every later request
        // into a panic too and bury the first failure.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/login", post(login))
        .route("/resource", get(resource))
        .route("/stats", get(stats))
        .route("/admin/revoke-access", post(revoke_access))
        .route("/admin/revoke-family", post(revoke_family))
        .route("/admin/outage", post(outage))
        .with_state(app)
}

/// `POST /oauth/token`.
async fn token(Shared(app): Shared<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let number = app.state().count_token_request();
    if !app.opts.latency.is_zero() {
        tokio::time::sleep(app.opts.latency).await;
    }
    let outage = *app.outage.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(o) = outage.filter(|o| Instant::now() < o.until) {
        app.state().stats.outage_failures += 1;
        let body = Json(json!({ "error": "temporarily_unavailable" }));
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
        if let Some(s) = o.retry_after_s {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        return response;
    }
    if is_nth(number, app.opts.fail_every) {
        app.state().stats.injected_failures += 1;
        let body = Json(json!({ "error": "temporarily_unavailable" }));
        return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    }
    if is_nth(number, app.opts.malformed_every) {
        app.state().stats.malformed += 1;
        // What a captive portal or a misconfigured proxy would answer.
        return Html("<html>not json</html>").into_response();
    }
    let request = wire::decode_token_request(&headers, &body, &app.opts);
    let outcome = app.state().grant(request, &app.opts, Instant::now());
    match outcome {
        Ok(issued) => wire::token_response(&issued, app.opts.lifetime),
        Err(error) => error.into_response(),
    }
}

/// Whether the `number`th request is one of every `every`th (never when `every` is 0).
fn is_nth(number: u64, every: u64) -> bool {
    every != 0 && number % every == 0
}

/// `POST /login`: a login without the ceremony, for tests and the demo.
async fn login(Shared(app): Shared<Arc<App>>) -> Response {
    let issued = app.state().login(&app.opts, Instant::now());
    wire::token_response(&issued, app.opts.lifetime)
}

/// `GET /resource`: a protected resource, to see whether an access token still works.
async fn resource(Shared(app): Shared<Arc<App>>, headers: HeaderMap) -> Response {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let mut state = app.state();
    if let Some(family) = state.authorize(presented, Instant::now()) {
        return Json(json!({ "ok": true, "family": family })).into_response();
    }
    // RFC 6750 §3.1: a request without credentials gets no error code.
    let challenge = match presented {
        Some(_) => "Bearer error=\"invalid_token\"",
        None => "Bearer realm=\"oauth-lock-mock\"",
    };
    let body = Json(json!({ "error": "invalid_token" }));
    (
        StatusCode::UNAUTHORIZED,
        [(WWW_AUTHENTICATE, challenge)],
        body,
    )
        .into_response()
}

/// `GET /stats`.
async fn stats(Shared(app): Shared<Arc<App>>) -> Json<Stats> {
    Json(app.state().stats.clone())
}

/// `POST /admin/revoke-access`: makes every access token fail at `/resource` while it still
/// looks fresh to its holder.
async fn revoke_access(Shared(app): Shared<Arc<App>>) -> Json<serde_json::Value> {
    let revoked = app.state().revoke_access(Instant::now());
    Json(json!({ "revoked": revoked }))
}

#[derive(Deserialize)]
struct OutageRequest {
    /// How long from now every token request fails.
    ms: u64,
    /// A `Retry-After` (seconds) to send with each failure.
    #[serde(default)]
    retry_after_s: Option<u64>,
}

/// `POST /admin/outage {"ms": 3000, "retry_after_s": 5}`: every token request fails with 503
/// `temporarily_unavailable` for `ms` from now, as a provider's bad minutes would.
async fn outage(Shared(app): Shared<Arc<App>>, Json(request): Json<OutageRequest>) -> Response {
    let until = Instant::now() + Duration::from_millis(request.ms);
    *app.outage.lock().unwrap_or_else(PoisonError::into_inner) = Some(Outage {
        until,
        retry_after_s: request.retry_after_s,
    });
    Json(json!({ "outage_ms": request.ms })).into_response()
}

#[derive(Deserialize)]
struct RevokeFamily {
    refresh_token: String,
}

/// `POST /admin/revoke-family`: revokes a family as a user signing out everywhere would.
async fn revoke_family(
    Shared(app): Shared<Arc<App>>,
    Json(request): Json<RevokeFamily>,
) -> Response {
    match app.state().revoke_family_of(&request.refresh_token) {
        Some((family, revoked)) => {
            Json(json!({ "family": family, "revoked": revoked })).into_response()
        }
        None => {
            let body = Json(json!({ "error": "unknown refresh token" }));
            (StatusCode::NOT_FOUND, body).into_response()
        }
    }
}
