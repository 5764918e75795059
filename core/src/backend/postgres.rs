//! The fleet store of DESIGN.md §10: the same records and protocol in PostgreSQL, where a
//! credential's lock belongs to one database session (the server frees it when the session
//! dies) and every commit goes through that session, so a holder whose session ended cannot
//! commit. Machines that share a credential cannot use a directory: network file systems do
//! not give reliable locks.
//!
//! - The lock is a session-level advisory lock, `pg_advisory_lock(hashtextextended(…))`, taken
//!   on a connection of its own that nothing else uses while it is held. Waiters block in the
//!   server and wake at its release; `lock_timeout` turns a long wait into `Busy`.
//! - The holder bound `B` ([`HOLDER_BOUND`]): the lock's session sets `idle_session_timeout`
//!   and TCP keepalives / `tcp_user_timeout`, so the server ends a vanished or hung holder's
//!   session, and frees its lock, within `B`, which is longer than the longest a protocol
//!   holder stays idle (foreign lock 15 s + refresh 30 s + late answer 4 s).
//! - Fencing: a write is one transaction on the lock's own session, conditional on the row's
//!   stamp as the holder read it. A session the server ended has no connection to commit on.
//! - Change notices: a holder sends `NOTIFY` after its release, pipelined behind it (the
//!   woken waiters, who re-read for themselves, come first); each process's reading session
//!   also listens, and keeps a map of versions that the hot path reads (no network), and
//!   re-reads the versions of the keys it knows every [`POLL_EVERY`] in case a notice was
//!   lost. A process has that one session besides its lock sessions: every session costs
//!   the server a process at its start and at its end, which one-shot commands pay each time.
//! - Records are stored as their exact format-1 JSON text (a `text` column, not `jsonb`, so
//!   unknown fields and floats survive byte-exact), with the key and generation as columns.
//!
//! Session-level locks need a session per client connection: a transaction-pooling proxy
//! (PgBouncer in `pool_mode = transaction`) would hand the lock's session to someone else.
//! Connect to PostgreSQL directly, or through a proxy in session mode. A lock request that
//! lands on a server session already holding a lock is refused (`request_lock`).

use super::{check_key, with_place, Backend, Committed, Location, Locked, Placement, Version};
use crate::error::{Context, Error, ErrorCode, Result};
use crate::key::Key;
use crate::record::Record;
use crate::runtime::{self, this_side, ForkSide};
use crate::secret::Secret;
use arc_swap::ArcSwapOption;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{AsyncMessage, Client};

/// The holder bound `B` of DESIGN.md §10: the server ends a lock holder's session that has
/// been idle this long (hung, or its machine gone), which releases the lock. Longer than the
/// longest a holder waits idle under the protocol's defaults: a mirror's foreign lock (15 s),
/// then the refresh (30 s) and its late answer (4 s).
pub const HOLDER_BOUND: Duration = Duration::from_secs(60);

/// How often a process re-reads the versions of the credentials it uses, in case a change
/// notice was lost (the listening session dropped, or the server restarted).
pub const POLL_EVERY: Duration = Duration::from_secs(5);

/// The schema this version creates and understands.
const SCHEMA_VERSION: i64 = 1;

/// How a connection protects itself, as libpq spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, certificate not checked (libpq's default).
    Prefer,
    /// TLS, certificate not checked.
    Require,
    /// TLS, the certificate checked against the roots (`sslrootcert`, else the web's) and the
    /// host name.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode> {
        match s {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => Err(Error::invalid(format!(
                "sslmode {other:?} is not supported: use disable, prefer, require or verify-full"
            ))),
        }
    }
}

/// A parsed `postgresql://` location. Holds the password; shows it nowhere (`Display` and
/// `Debug` are the URL without it).
pub struct PgConfig {
    redacted: String,
    host: String,
    port: u16,
    user: String,
    password: Option<Secret>,
    dbname: String,
    schema: String,
    sslmode: SslMode,
    sslrootcert: Option<PathBuf>,
    connect_timeout: Duration,
}

impl PartialEq for PgConfig {
    fn eq(&self, other: &Self) -> bool {
        self.redacted == other.redacted
    }
}
impl Eq for PgConfig {}
impl std::hash::Hash for PgConfig {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.redacted.hash(state)
    }
}

impl fmt::Display for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgConfig({})", self.redacted)
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl PgConfig {
    /// Parses `postgresql://user[:password]@host[:port]/db[?schema=…&sslmode=…]`. Errors never
    /// quote the URL (it may hold a password).
    pub fn parse(location: &str) -> Result<PgConfig> {
        let url = url::Url::parse(location).map_err(|e| {
            Error::invalid(format!(
                "the store URL is malformed ({e}); expected \
                 postgresql://user[:password]@host[:port]/database[?schema=…&sslmode=…]"
            ))
        })?;
        // What a bad parameter's error names: the URL as far as it parsed, never its
        // password nor its parameters (a `password=` may be among them).
        let mut named = url.clone();
        let _ = named.set_password(None);
        named.set_query(None);
        named.set_fragment(None);
        Self::parse_url(&url).map_err(|mut e| {
            if let Error::InvalidArgument { ctx, .. } = &mut e {
                ctx.path
                    .get_or_insert_with(|| PathBuf::from(named.as_str()));
            }
            e
        })
    }

    fn parse_url(url: &url::Url) -> Result<PgConfig> {
        if !matches!(url.scheme(), "postgresql" | "postgres") {
            return Err(Error::invalid(format!(
                "a store URL must start with postgresql:// or postgres://, not {}://",
                url.scheme()
            )));
        }
        let mut params: HashMap<String, String> = HashMap::new();
        for (k, v) in url.query_pairs() {
            const KNOWN: [&str; 9] = [
                "schema",
                "sslmode",
                "sslrootcert",
                "connect_timeout",
                "host",
                "port",
                "dbname",
                "user",
                "password",
            ];
            if !KNOWN.contains(&k.as_ref()) {
                return Err(Error::invalid(format!(
                    "unknown parameter {k:?} in the store URL (known: {})",
                    KNOWN.join(", ")
                )));
            }
            params.insert(k.into_owned(), v.into_owned());
        }
        let user = Some(decode(url.username()))
            .filter(|u| !u.is_empty())
            .or_else(|| params.get("user").cloned())
            .or_else(|| env("PGUSER"))
            .or_else(|| env("USER"))
            .ok_or_else(|| Error::invalid("the store URL names no user (and PGUSER is unset)"))?;
        let password = url
            .password()
            .map(decode)
            .or_else(|| params.get("password").cloned())
            .or_else(|| env("PGPASSWORD"))
            .map(Secret::new);
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
            .or_else(|| params.get("host").cloned())
            .or_else(|| env("PGHOST"))
            .unwrap_or_else(|| "localhost".to_owned());
        let port = match url.port() {
            Some(p) => p,
            None => match params.get("port").cloned().or_else(|| env("PGPORT")) {
                Some(p) => p.parse().map_err(|_| {
                    Error::invalid(format!("the store URL's port {p:?} is not a port"))
                })?,
                None => 5432,
            },
        };
        let dbname = Some(decode(url.path().trim_start_matches('/')))
            .filter(|d| !d.is_empty())
            .or_else(|| params.get("dbname").cloned())
            .or_else(|| env("PGDATABASE"))
            .unwrap_or_else(|| user.clone());
        let schema = params
            .get("schema")
            .cloned()
            .unwrap_or_else(|| "oauth_lock".to_owned());
        let valid_schema = !schema.is_empty()
            && schema.len() <= 63
            && schema
                .bytes()
                .enumerate()
                .all(|(i, b)| b == b'_' || b.is_ascii_lowercase() || (i > 0 && b.is_ascii_digit()));
        if !valid_schema {
            return Err(Error::invalid(format!(
                "schema {schema:?} is not a plain lower-case SQL name ([a-z_][a-z0-9_]*, at most 63)"
            )));
        }
        let sslmode = match params.get("sslmode") {
            Some(m) => SslMode::parse(m)?,
            None => SslMode::Prefer,
        };
        let connect_timeout = match params.get("connect_timeout") {
            Some(s) => Duration::from_secs(s.parse().map_err(|_| {
                Error::invalid(format!("connect_timeout {s:?} is not a number of seconds"))
            })?),
            None => Duration::from_secs(10),
        };
        let sslrootcert = params.get("sslrootcert").map(PathBuf::from);
        // The URL as every message shows it: no password, the parameters that say which
        // store it is and how it is reached.
        // Only what would change the URL's meaning is escaped (`oauth_lock` stays readable).
        const PART: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
            .add(b' ')
            .add(b'@')
            .add(b':')
            .add(b'/')
            .add(b'?')
            .add(b'#')
            .add(b'%')
            .add(b'[')
            .add(b']');
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, PART).to_string();
        let mut redacted = if host.starts_with('/') {
            format!("postgresql://{}@:{port}/{}", enc(&user), enc(&dbname))
        } else if host.contains(':') {
            format!(
                "postgresql://{}@[{host}]:{port}/{}",
                enc(&user),
                enc(&dbname)
            )
        } else {
            format!("postgresql://{}@{host}:{port}/{}", enc(&user), enc(&dbname))
        };
        let mut shown = Vec::new();
        if host.starts_with('/') {
            shown.push(format!("host={host}"));
        }
        if schema != "oauth_lock" {
            shown.push(format!("schema={schema}"));
        }
        if let Some(m) = params.get("sslmode") {
            shown.push(format!("sslmode={m}"));
        }
        if let Some(c) = params.get("sslrootcert") {
            shown.push(format!("sslrootcert={c}"));
        }
        if !shown.is_empty() {
            redacted = format!("{redacted}?{}", shown.join("&"));
        }
        Ok(PgConfig {
            redacted,
            host,
            port,
            user,
            password,
            dbname,
            schema,
            sslmode,
            sslrootcert,
            connect_timeout,
        })
    }

    /// The URL without its password.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The schema the records live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The start-up settings (the socket is ours: see `PgBackend::connect`).
    fn client_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("oauth-lock")
            .ssl_mode(match self.sslmode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
            });
        if let Some(p) = &self.password {
            c.password(p.expose());
        }
        c
    }

    fn tls(&self) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::invalid(format!("TLS setup failed: {e}")))?;
        Ok(match self.sslmode {
            SslMode::VerifyFull => {
                let mut roots = rustls::RootCertStore::empty();
                match &self.sslrootcert {
                    Some(path) => {
                        use rustls_pki_types::pem::PemObject;
                        let certs =
                            rustls_pki_types::CertificateDer::pem_file_iter(path).map_err(|e| {
                                Error::invalid(format!(
                                    "sslrootcert {}: cannot read it: {e}",
                                    path.display()
                                ))
                            })?;
                        for cert in certs {
                            let cert = cert.map_err(|e| {
                                Error::invalid(format!("sslrootcert {}: {e}", path.display()))
                            })?;
                            roots.add(cert).map_err(|e| {
                                Error::invalid(format!("sslrootcert {}: {e}", path.display()))
                            })?;
                        }
                    }
                    None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            _ => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
                .with_no_client_auth(),
        })
    }
}

/// `sslmode=require` / `prefer`: encrypted, the certificate not checked (libpq's meaning).
/// Signatures are still verified, so the handshake itself is sound.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Runs `fut` on the core's runtime from a synchronous backend call, wherever that call is
/// made: on one of the runtime's own workers (a leader) the worker hands its other tasks
/// over while it waits (`block_in_place`), so the connections' tasks always have a thread.
fn wait<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    let process = runtime::process();
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| process.runtime.block_on(fut))
        }
        // A caller's single-threaded runtime: it cannot hand its tasks over, so a scoped
        // thread outside any runtime waits instead.
        Ok(_) => std::thread::scope(|s| {
            s.spawn(|| process.runtime.block_on(fut))
                .join()
                .expect("oauth-lock: a database call panicked")
        }),
        Err(_) => process.runtime.block_on(fut),
    }
}

/// Per-process state of one database location, rebuilt on the child's side of a `fork()`
/// (the parent's connections' tasks do not exist there).
struct Sessions {
    /// The session for unlocked reads and listings (pipelined, shared), which also listens
    /// for change notices (`watch`).
    reader: tokio::sync::Mutex<Reader>,
    /// Attempts to connect the reading session so far (see `reader`).
    reader_attempts: AtomicU64,
    /// Where the reading sessions send their notices, and `None` when one ends.
    notices: Notices,
    /// The receiving end, taken by the watch task when it starts.
    notices_rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Option<String>>>>,
    /// Lock sessions not holding a lock, kept for the next lock.
    idle: Mutex<Vec<Client>>,
    /// The last version of each key this process has seen (read, written or notified);
    /// `None`: no record. What the hot path checks.
    versions: Mutex<HashMap<Key, Option<Version>>>,
    watching: AtomicBool,
    schema_ready: AtomicBool,
}

/// The reading session, or how the last attempt to connect it failed.
#[derive(Default)]
struct Reader {
    client: Option<Arc<Client>>,
    failed: Option<Error>,
}

/// A session's change notices, then `None` when it ends, for the watch task.
type Notices = tokio::sync::mpsc::UnboundedSender<Option<String>>;

/// A poisoned lock only means a panic elsewhere; the data it guards stays consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The PostgreSQL store of DESIGN.md §10.
pub struct PgBackend {
    location: Location,
    config: Arc<PgConfig>,
    sessions: ArcSwapOption<ForkSide<Sessions>>,
    server: OnceLock<String>,
    me: Weak<PgBackend>,
}

impl fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgBackend({})", self.config)
    }
}

/// The backends of this side of a fork by location (with its password), so that every
/// `Store` on one database shares its sessions and its change notices. A child opens its own
/// (a store it inherited keeps working, with sessions of the child's own).
type Open = ForkSide<Mutex<Vec<(String, Weak<PgBackend>)>>>;
static OPEN: ArcSwapOption<Open> = ArcSwapOption::const_empty();

impl PgBackend {
    /// The store at `url` (`postgresql://…`); connects lazily, at the first call that needs
    /// the database, so opening never waits on the network.
    pub fn open(url: &str) -> Result<Arc<PgBackend>> {
        let config = Arc::new(PgConfig::parse(url)?);
        let side = this_side(&OPEN, Default::default);
        let mut open = lock(&side.state);
        open.retain(|(_, w)| w.strong_count() > 0);
        if let Some(b) = open
            .iter()
            .find(|(u, _)| u == url)
            .and_then(|(_, w)| w.upgrade())
        {
            return Ok(b);
        }
        let backend = Arc::new_cyclic(|me| PgBackend {
            location: Location::Postgres(config.clone()),
            config,
            sessions: ArcSwapOption::empty(),
            server: OnceLock::new(),
            me: me.clone(),
        });
        open.push((url.to_owned(), Arc::downgrade(&backend)));
        Ok(backend)
    }

    /// This side of the fork's sessions.
    fn sessions(&self) -> Arc<ForkSide<Sessions>> {
        this_side(&self.sessions, || {
            let (notices, rx) = tokio::sync::mpsc::unbounded_channel();
            Sessions {
                reader: tokio::sync::Mutex::new(Reader::default()),
                reader_attempts: AtomicU64::new(0),
                notices,
                notices_rx: Mutex::new(Some(rx)),
                idle: Mutex::new(Vec::new()),
                versions: Mutex::new(HashMap::new()),
                watching: AtomicBool::new(false),
                schema_ready: AtomicBool::new(false),
            }
        })
    }

    fn place_of(&self, key: &Key) -> PathBuf {
        PathBuf::from(format!("{}#{}", self.config, key.stem()))
    }

    fn table(&self) -> String {
        format!("{}.records", self.config.schema)
    }

    fn channel(&self) -> String {
        format!("oauth_lock:{}", self.config.schema)
    }

    fn lock_id(&self, key: &Key) -> String {
        format!("oauth-lock:{}:{}", self.config.schema, key.as_str())
    }

    /// The error for a failed database call. Unreachable → `Transient` (save and clear turn
    /// it into `Io`); a login the server refuses, a missing database → `InvalidArgument`.
    /// Messages name the location without its password.
    /// The error of a lock request that found its server session shared (see [`request_lock`]).
    fn pooled_error(&self, key: &Key) -> Error {
        Error::InvalidArgument {
            ctx: Context {
                key: Some(key.as_str().to_owned()),
                path: Some(self.place_of(key)),
            },
            reason: format!(
                "the database session that asked for the lock already held an advisory lock, \
                 so another client uses it too: a transaction-pooling proxy (PgBouncer with \
                 pool_mode = transaction) is between this process and the database at {}, and \
                 session locks cannot work through it (nothing was taken); connect to \
                 PostgreSQL directly, or through a pooler in session mode",
                self.config
            ),
        }
    }

    fn db_error(&self, what: &str, e: &tokio_postgres::Error) -> Error {
        let code = e.code();
        let refused = [
            SqlState::INVALID_PASSWORD,
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            SqlState::INVALID_CATALOG_NAME,
        ];
        if code.is_some_and(|c| refused.contains(c)) {
            return Error::InvalidArgument {
                ctx: Context {
                    key: None,
                    path: Some(PathBuf::from(&self.config.redacted)),
                },
                reason: format!("{what}: the database refused: {}", db_message(e)),
            };
        }
        Error::Transient {
            ctx: Context {
                key: None,
                path: Some(PathBuf::from(&self.config.redacted)),
            },
            reason: format!(
                "{what}: the database at {} cannot be used now: {}",
                self.config,
                db_message(e)
            ),
            retry_after: None,
        }
    }

    /// A new session, its connection driven on the core's runtime; notices go to `notices`.
    async fn connect(&self, notices: Option<Notices>) -> Result<Client> {
        // The socket is opened here, not by tokio-postgres, so that its descriptor is known:
        // a forked child closes its copy at once (see `close_inherited_sockets`).
        let connecting = async {
            let host = &self.config.host;
            if host.starts_with('/') {
                let path = format!("{host}/.s.PGSQL.{}", self.config.port);
                let stream = crate::sys::connect_local(&path)
                    .await
                    .map_err(ConnectError::Socket)?;
                self.handshake(stream, notices).await
            } else {
                let stream = tokio::net::TcpStream::connect((host.as_str(), self.config.port))
                    .await
                    .map_err(ConnectError::Socket)?;
                // B: a peer that vanished is noticed from this side too.
                let keepalive = socket2::TcpKeepalive::new()
                    .with_time(Duration::from_secs(5))
                    .with_interval(Duration::from_secs(2))
                    .with_retries(3);
                let sock = socket2::SockRef::from(&stream);
                let _ = sock.set_tcp_keepalive(&keepalive);
                crate::sys::set_tcp_user_timeout(&sock, Duration::from_secs(15));
                let _ = stream.set_nodelay(true);
                self.handshake(stream, notices).await
            }
        };
        let client = match tokio::time::timeout(
            self.config.connect_timeout + Duration::from_secs(1),
            connecting,
        )
        .await
        {
            Ok(Ok(client)) => client,
            Ok(Err(ConnectError::Setup(e))) => return Err(e),
            Ok(Err(ConnectError::Db(e))) => return Err(self.db_error("connecting", &e)),
            Ok(Err(ConnectError::Socket(e))) => {
                return Err(Error::Transient {
                    ctx: Context {
                        key: None,
                        path: Some(PathBuf::from(&self.config.redacted)),
                    },
                    reason: format!(
                        "connecting: the database at {} cannot be reached: {e}",
                        self.config
                    ),
                    retry_after: None,
                })
            }
            Err(_) => {
                return Err(Error::Transient {
                    ctx: Context {
                        key: None,
                        path: Some(PathBuf::from(&self.config.redacted)),
                    },
                    reason: format!(
                        "connecting: the database at {} did not answer within {} s",
                        self.config,
                        self.config.connect_timeout.as_secs()
                    ),
                    retry_after: None,
                })
            }
        };
        if self.server.get().is_none() {
            if let Ok(row) = client.query_one("SHOW server_version", &[]).await {
                let _ = self.server.set(row.get::<_, String>(0));
            }
        }
        self.ensure_schema(&client).await?;
        Ok(client)
    }

    /// The protocol's start-up (TLS as `sslmode` says) on an open socket; its connection is
    /// driven on the core's runtime, its descriptor tracked for a forked child to close.
    async fn handshake<S>(
        &self,
        stream: S,
        notices: Option<Notices>,
    ) -> std::result::Result<Client, ConnectError>
    where
        S: tokio::io::AsyncRead
            + tokio::io::AsyncWrite
            + crate::sys::ForkFd
            + Unpin
            + Send
            + 'static,
    {
        let fd = stream.fork_fd();
        let config = self.config.client_config();
        let process = runtime::process();
        if self.config.sslmode == SslMode::Disable {
            let (client, conn) = config.connect_raw(stream, tokio_postgres::NoTls).await?;
            process.runtime.spawn(drive(conn, notices, fd));
            Ok(client)
        } else {
            let mut make = tokio_postgres_rustls::MakeRustlsConnect::new(
                self.config.tls().map_err(ConnectError::Setup)?,
            );
            let tls = tokio_postgres::tls::MakeTlsConnect::<S>::make_tls_connect(
                &mut make,
                &self.config.host,
            )
            .unwrap_or_else(|never| match never {});
            let (client, conn) = config.connect_raw(stream, tls).await?;
            process.runtime.spawn(drive(conn, notices, fd));
            Ok(client)
        }
    }

    /// Creates the schema on first use, or checks the one there (a version row).
    async fn ensure_schema(&self, client: &Client) -> Result<()> {
        let sessions = self.sessions();
        if sessions.schema_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let s = &self.config.schema;
        let check = format!("SELECT value FROM {s}.meta WHERE name = 'schema_version'");
        let found = match client.query_opt(&check, &[]).await {
            Ok(row) => row.map(|r| r.get::<_, String>(0)),
            Err(e)
                if e.code() == Some(&SqlState::UNDEFINED_TABLE)
                    || e.code() == Some(&SqlState::INVALID_SCHEMA_NAME) =>
            {
                None
            }
            Err(e) => return Err(self.db_error("checking the schema", &e)),
        };
        match found {
            Some(v) if v.parse::<i64>().ok() == Some(SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(Error::UnsupportedFormat {
                    ctx: Context {
                        key: None,
                        path: Some(PathBuf::from(&self.config.redacted)),
                    },
                    format: v.parse().unwrap_or(u64::MAX),
                })
            }
            None => {
                let sql = schema_sql(s);
                // One creator at a time (CREATE … IF NOT EXISTS races on the catalog).
                let run = format!(
                    "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('oauth-lock:schema', 0)); {sql} COMMIT;"
                );
                if let Err(e) = client.batch_execute(&run).await {
                    let _ = client.batch_execute("ROLLBACK").await;
                    if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
                        return Err(Error::InvalidArgument {
                            ctx: Context {
                                key: None,
                                path: Some(PathBuf::from(&self.config.redacted)),
                            },
                            reason: format!(
                                "the role {:?} may not create the store's schema ({}); have an \
                                 owner of the database run this once, then grant the role \
                                 USAGE on the schema and SELECT, INSERT, UPDATE, DELETE on its \
                                 tables and USAGE on its sequence:\n{sql}",
                                self.config.user,
                                db_message(&e)
                            ),
                        });
                    }
                    return Err(self.db_error("creating the schema", &e));
                }
            }
        }
        sessions.schema_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// The shared reading session, connected if needed; its notices go to the watch task,
    /// which makes it listen. One attempt at a time, and a caller that waited on another's
    /// (the watch task's, say) takes its outcome: a database that never answers costs a call
    /// one connect timeout, not one per caller queued before it.
    async fn reader(&self) -> Result<Arc<Client>> {
        let sessions = self.sessions();
        let before = sessions.reader_attempts.load(Ordering::Acquire);
        let mut reader = sessions.reader.lock().await;
        if let Some(c) = reader.client.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        if sessions.reader_attempts.load(Ordering::Acquire) != before {
            if let Some(e) = &reader.failed {
                return Err(e.clone());
            }
        }
        let outcome = self.connect(Some(sessions.notices.clone())).await;
        sessions.reader_attempts.fetch_add(1, Ordering::AcqRel);
        match outcome {
            Ok(client) => {
                let client = Arc::new(client);
                *reader = Reader {
                    client: Some(client.clone()),
                    failed: None,
                };
                Ok(client)
            }
            Err(e) => {
                reader.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// A session for a lock: an idle one, else a new one with the holder bound set.
    async fn lock_session(&self) -> Result<Client> {
        let sessions = self.sessions();
        loop {
            let Some(c) = lock(&sessions.idle).pop() else {
                break;
            };
            if !c.is_closed() {
                return Ok(c);
            }
        }
        let client = self.connect(None).await?;
        // B: the server ends this session when its holder stays idle this long (hung, or its
        // machine gone), which frees its lock; TCP keepalives notice a vanished peer sooner.
        // `idle_session_timeout` needs PostgreSQL 14; older servers keep the TCP bounds only.
        let idle = format!(
            "SET idle_session_timeout = {ms}",
            ms = HOLDER_BOUND.as_millis()
        );
        // A read of no row loads this server session's caches of the records table, so that
        // a waiter's re-read at the release is not its first statement on it (a new process's
        // session would pay that inside the hand-off).
        let warm = format!("SELECT record FROM {} WHERE key = ''", self.table());
        // Pipelined, one round trip; separate statements, so that one refused (the timeout
        // before PostgreSQL 14, the table before the schema exists) leaves the others.
        let _ = futures_util::join!(
            client.batch_execute(&idle),
            client.batch_execute(
                "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; \
                 SET tcp_keepalives_count = 3; SET tcp_user_timeout = 15000",
            ),
            client.query_typed(&warm, &[]),
        );
        Ok(client)
    }

    fn remember(&self, key: &Key, version: Option<Version>) {
        lock(&self.sessions().versions).insert(key.clone(), version);
    }

    /// A change notice: news only for a key this process uses (the others' are not kept,
    /// so that a store of many credentials costs a process only the ones it reads).
    fn noticed(&self, key: &Key, version: Option<Version>) {
        if let Some(v) = lock(&self.sessions().versions).get_mut(key) {
            *v = version;
        }
    }

    /// Starts this process's watch task, which makes the reading session listen (once per
    /// fork side).
    fn watch(&self) {
        let sessions = self.sessions();
        // A load first: the hot path calls this, and a swap would write a shared cache line.
        if sessions.watching.load(Ordering::Acquire)
            || sessions.watching.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let Some(notices) = lock(&sessions.notices_rx).take() else {
            return;
        };
        let me = self.me.clone();
        let epoch = sessions.epoch;
        runtime::process().runtime.spawn(async move {
            watch(me, epoch, notices).await;
        });
    }

    async fn read_row(&self, client: &Client, key: &Key) -> Result<Option<Row>> {
        let sql = format!(
            "SELECT record, generation, stamp FROM {} WHERE key = $1",
            self.table()
        );
        let row = client
            .query_typed(&sql, &[(&key.as_str(), Type::TEXT)])
            .await
            .map_err(|e| self.db_error("reading the record", &e))?
            .into_iter()
            .next();
        Ok(row.map(|r| Row {
            text: r.get(0),
            generation: r.get(1),
            stamp: r.get(2),
        }))
    }

    /// An unlocked read's answer from the row it found: remembered for the hot path.
    fn finish_read(&self, key: &Key, row: Option<Row>) -> Result<Option<(Record, Version)>> {
        match row {
            None => {
                self.remember(key, None);
                Ok(None)
            }
            Some(row) => {
                self.remember(key, Some(row.version()));
                self.parse_row(key, &row).map(Some)
            }
        }
    }

    /// The record of a row, checked like a file's: `Corrupt` (the row left as it is) when it
    /// does not parse or holds another key.
    fn parse_row(&self, key: &Key, row: &Row) -> Result<(Record, Version)> {
        let place = self.place_of(key);
        let record = Record::parse(row.text.as_bytes()).map_err(|e| with_place(e, &place))?;
        check_key(&record, key).map_err(|e| with_place(e, &place))?;
        Ok((record, row.version()))
    }

    /// Re-reads the versions of the keys this process knows (the notices' fallback).
    async fn poll_versions(&self, client: &Client) -> Result<()> {
        let sessions = self.sessions();
        let keys: Vec<String> = lock(&sessions.versions)
            .keys()
            .map(|k| k.as_str().to_owned())
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT key, generation, stamp FROM {} WHERE key = ANY($1)",
            self.table()
        );
        let rows = client
            .query(&sql, &[&keys])
            .await
            .map_err(|e| self.db_error("checking for changes", &e))?;
        let mut found: HashMap<String, Version> = rows
            .iter()
            .map(|r| {
                let generation: i64 = r.get(1);
                (
                    r.get::<_, String>(0),
                    Version::row(generation.max(0) as u64, r.get(2)),
                )
            })
            .collect();
        let mut versions = lock(&sessions.versions);
        for (k, v) in versions.iter_mut() {
            *v = found.remove(k.as_str());
        }
        Ok(())
    }
}

/// The DDL of the store, run once by a role that may (or printed for an owner to run).
fn schema_sql(s: &str) -> String {
    format!(
        "CREATE SCHEMA IF NOT EXISTS {s};\n\
         CREATE TABLE IF NOT EXISTS {s}.meta (name text PRIMARY KEY, value text NOT NULL);\n\
         CREATE SEQUENCE IF NOT EXISTS {s}.stamps;\n\
         CREATE TABLE IF NOT EXISTS {s}.records (key text PRIMARY KEY, generation bigint NOT NULL, \
         stamp bigint NOT NULL DEFAULT nextval('{s}.stamps'), record text NOT NULL, \
         updated_at timestamptz NOT NULL DEFAULT now());\n\
         INSERT INTO {s}.meta (name, value) VALUES ('schema_version', '{SCHEMA_VERSION}') \
         ON CONFLICT (name) DO NOTHING;\n"
    )
}

/// Waits for the shared advisory lock `id` at most `timeout_ms` (then `LOCK_NOT_AVAILABLE`) and
/// gives it back in the same statement, only to learn of the release (DESIGN.md §4 step 2.3):
/// one round trip. The statement sets `lock_timeout` before it waits (`set_config` outlives
/// the statement, which is harmless: every wait sets its own).
async fn wait_for_release(
    client: &Client,
    id: &str,
    timeout_ms: u128,
) -> std::result::Result<(), tokio_postgres::Error> {
    const SHARED_THEN_FREE: &str = "WITH timeout AS MATERIALIZED \
        (SELECT set_config('lock_timeout', $2, false)), \
        granted AS MATERIALIZED \
        (SELECT pg_advisory_lock_shared(hashtextextended($1, 0)) FROM timeout) \
        SELECT pg_advisory_unlock_shared(hashtextextended($1, 0)) FROM granted";
    let ms = timeout_ms.to_string();
    let rows = client
        .query_typed(SHARED_THEN_FREE, &[(&id, Type::TEXT), (&ms, Type::TEXT)])
        .await?;
    // One row, or none if the statement did not wait (which would be a bug in this SQL).
    debug_assert_eq!(rows.len(), 1, "one row from the lock's statement");
    Ok(())
}

/// What a lock session's request for a credential's exclusive lock found.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Taken,
    /// Held by another session (at once, or still after the wait: `LOCK_NOT_AVAILABLE`).
    NotFree,
    /// This server session already held an advisory lock, so another client uses it too:
    /// nothing was taken (see [`request_lock`]).
    SharedSession,
}

/// Asks for the exclusive advisory lock `id`: at once (`wait_ms` `None`), or waiting at most
/// `wait_ms`, in one round trip (the statement sets `lock_timeout` first). The same statement
/// first counts the advisory locks this server session holds. An idle lock session of ours
/// holds none, so one that holds any is a server session that another client uses too: a
/// transaction-pooling proxy (PgBouncer in `pool_mode = transaction`) is in between. Nothing
/// is taken then, because an advisory lock is re-entrant in its session: the request would
/// succeed for a second holder while the first still refreshes (two refreshes with one
/// refresh token).
async fn request_lock(
    client: &Client,
    id: &str,
    wait_ms: Option<u128>,
) -> std::result::Result<Request, tokio_postgres::Error> {
    const MINE: &str = "mine AS MATERIALIZED (SELECT count(*) AS held FROM pg_locks \
        WHERE locktype = 'advisory' AND pid = pg_backend_pid())";
    let rows = match wait_ms {
        None => {
            let sql = format!(
                "WITH {MINE} SELECT held, CASE WHEN held = 0 THEN \
                 pg_try_advisory_lock(hashtextextended($1, 0)) END FROM mine"
            );
            client.query_typed(&sql, &[(&id, Type::TEXT)]).await
        }
        Some(ms) => {
            let sql = format!(
                "WITH timeout AS MATERIALIZED (SELECT set_config('lock_timeout', $2, false)), \
                 {MINE} SELECT held, CASE WHEN held = 0 THEN \
                 pg_advisory_lock(hashtextextended($1, 0)) IS NOT NULL END FROM mine, timeout"
            );
            let ms = ms.to_string();
            client
                .query_typed(&sql, &[(&id, Type::TEXT), (&ms, Type::TEXT)])
                .await
        }
    };
    let rows = match rows {
        Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => return Ok(Request::NotFree),
        other => other?,
    };
    let Some(row) = rows.first() else {
        return Ok(Request::NotFree);
    };
    if row.get::<_, i64>(0) > 0 {
        return Ok(Request::SharedSession);
    }
    Ok(if row.get::<_, Option<bool>>(1) == Some(true) {
        Request::Taken
    } else {
        Request::NotFree
    })
}

/// The boolean a one-row, one-column answer holds (`pg_try_advisory_lock…`).
fn first_bool(
    rows: std::result::Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>,
) -> std::result::Result<bool, tokio_postgres::Error> {
    Ok(rows?.first().is_some_and(|r| r.get::<_, bool>(0)))
}

/// The server's own words for a failure (its message, not the URL we were given).
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut m = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                m = format!("{m}: {s}");
                source = s.source();
            }
            m
        }
    }
}

enum ConnectError {
    Setup(Error),
    Socket(std::io::Error),
    Db(tokio_postgres::Error),
}

/// The descriptors of this process's database sockets. A child of `fork()` shares them with
/// its parent: were it to keep them, a lock its parent holds would outlive the parent for as
/// long as the child lives (the server frees it only when every copy of the socket is
/// closed). The child's at-fork handler closes them at once, as it does the lock files
/// (DESIGN.md §4, Fork). Lock-free: the handler may only use atomics and close(2).
const MAX_SOCKETS: usize = 1024;
static SOCKETS: [AtomicI32; MAX_SOCKETS] = [const { AtomicI32::new(-1) }; MAX_SOCKETS];

/// A tracked socket; untracked when dropped, which happens before its connection closes it.
struct Tracked(Option<usize>);

impl Tracked {
    /// Tracks `fd`; `None` (no fork on this platform) tracks nothing.
    fn new(fd: Option<i32>) -> Tracked {
        let Some(fd) = fd else {
            return Tracked(None);
        };
        Tracked(SOCKETS.iter().position(|s| {
            s.compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        }))
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(i) = self.0 {
            SOCKETS[i].store(-1, Ordering::Release);
        }
    }
}

/// In a forked child (the at-fork handler): closes the copies of the parent's database
/// sockets. Only atomics and close(2): async-signal-safe.
pub(crate) fn close_inherited_sockets() {
    for s in SOCKETS.iter() {
        let fd = s.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // `fd` is a socket this process's parent opened and this child inherited;
            // nothing in the child uses the parent's connections (they belong to its epoch),
            // so closing the descriptor cannot pull it from under anyone.
            crate::sys::close_fd(fd);
        }
    }
}

impl From<tokio_postgres::Error> for ConnectError {
    fn from(e: tokio_postgres::Error) -> Self {
        ConnectError::Db(e)
    }
}

/// Drives one connection, handing its notices on, then `None` once it has ended; `fd` is its
/// socket, tracked meanwhile.
async fn drive<S, T>(
    mut conn: tokio_postgres::Connection<S, T>,
    notices: Option<Notices>,
    fd: Option<i32>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let tracked = Tracked::new(fd);
    loop {
        match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(n))) => {
                if let Some(tx) = &notices {
                    let _ = tx.send(Some(n.payload().to_owned()));
                }
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    // Untracked before the socket closes (a forked child must not close a reused number);
    // the end is told once the client says closed.
    drop(tracked);
    drop(conn);
    if let Some(tx) = &notices {
        let _ = tx.send(None);
    }
}

/// The watch task: makes the reading session listen, applies change notices to the versions
/// map, re-reads the versions every [`POLL_EVERY`] (and after a new reading session listens),
/// until the backend is gone or the process forked.
async fn watch(
    backend: Weak<PgBackend>,
    epoch: u64,
    mut notices: tokio::sync::mpsc::UnboundedReceiver<Option<String>>,
) {
    loop {
        if runtime::epoch() != epoch {
            return;
        }
        let client = {
            let Some(b) = backend.upgrade() else { return };
            match b.reader().await {
                Ok(c) => {
                    let listen = format!("LISTEN \"{}\"", b.channel());
                    match c.batch_execute(&listen).await {
                        Ok(()) => {
                            let _ = b.poll_versions(&c).await;
                            Some(c)
                        }
                        Err(_) => None,
                    }
                }
                Err(_) => None,
            }
        };
        let Some(client) = client else {
            tokio::time::sleep(POLL_EVERY).await;
            continue;
        };
        loop {
            tokio::select! {
                notice = notices.recv() => match notice {
                    Some(Some(payload)) => {
                        let Some(b) = backend.upgrade() else { return };
                        if let Some((key, version)) = parse_notice(&payload) {
                            b.noticed(&key, version);
                        }
                    }
                    // A reading session ended: if it is this one, listen on the next.
                    Some(None) if client.is_closed() => break,
                    Some(None) => {}
                    None => return, // the backend is gone
                },
                _ = tokio::time::sleep(POLL_EVERY) => {
                    let Some(b) = backend.upgrade() else { return };
                    if runtime::epoch() != epoch || b.poll_versions(&client).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
}

/// A notice's payload: `<generation> <stamp> <key>`; stamp 0 says the record was removed.
fn notice(key: &Key, version: Option<(u64, i64)>) -> String {
    let (generation, stamp) = version.unwrap_or((0, 0));
    format!("{generation} {stamp} {}", key.as_str())
}

fn parse_notice(payload: &str) -> Option<(Key, Option<Version>)> {
    let mut parts = payload.splitn(3, ' ');
    let generation: u64 = parts.next()?.parse().ok()?;
    let stamp: i64 = parts.next()?.parse().ok()?;
    let key = Key::new(parts.next()?).ok()?;
    Some((key, (stamp != 0).then(|| Version::row(generation, stamp))))
}

struct Row {
    text: String,
    generation: i64,
    stamp: i64,
}

impl Row {
    fn version(&self) -> Version {
        Version::row(self.generation.max(0) as u64, self.stamp)
    }
}

impl Backend for PgBackend {
    fn location(&self) -> &Location {
        &self.location
    }

    fn place(&self, key: &Key) -> PathBuf {
        self.place_of(key)
    }

    fn read(&self, key: &Key) -> Result<Option<(Record, Version)>> {
        self.watch();
        let row = wait(async {
            let client = self.reader().await?;
            self.read_row(&client, key).await
        })?;
        self.finish_read(key, row)
    }

    fn version(&self, key: &Key) -> Result<Option<Version>> {
        // The hot path: what the notices (or the last read) said, never the network. An
        // unknown key reads as "changed", so its caller takes the slow path once.
        self.watch();
        Ok(lock(&self.sessions().versions)
            .get(key)
            .copied()
            .unwrap_or(None))
    }

    fn lock(&self, key: &Key, timeout: Duration) -> Result<Box<dyn Locked>> {
        let started = Instant::now();
        let id = self.lock_id(key);
        let place = self.place_of(key);
        let busy = |waited: Duration| Error::Busy {
            ctx: Context {
                key: Some(key.as_str().to_owned()),
                path: Some(place.clone()),
            },
            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            foreign: None,
        };
        let client = wait(async {
            // A pooled session the server has ended since is replaced once.
            for attempt in 0..2 {
                let client = self.lock_session().await?;
                let wait_ms =
                    (!timeout.is_zero()).then(|| timeout.as_millis().clamp(1, i32::MAX as u128));
                // The holder's re-read is pipelined behind the request: the server runs it
                // once the lock is granted (it is the read under the lock), and the holder
                // has the record with the grant, one round trip fewer. Not taken: unused.
                let (requested, row) = futures_util::join!(
                    request_lock(&client, &id, wait_ms),
                    self.read_row(&client, key),
                );
                match requested {
                    Ok(Request::Taken) => return Ok(Some((client, row))),
                    Ok(Request::NotFree) => {
                        lock(&self.sessions().idle).push(client);
                        return Ok(None);
                    }
                    // The session is dropped: its server session is another client's too.
                    Ok(Request::SharedSession) => return Err(self.pooled_error(key)),
                    Err(e) if e.is_closed() && attempt == 0 => continue,
                    Err(e) => return Err(self.db_error("taking the lock", &e)),
                }
            }
            unreachable!("the loop returns")
        })?;
        let Some((client, row)) = client else {
            return Err(busy(started.elapsed()));
        };
        Ok(Box::new(PgLocked {
            backend: self.me.upgrade().expect("a backend in use is alive"),
            key: key.clone(),
            client: Some(client),
            read_at_grant: Some(row),
            epoch: runtime::epoch(),
            waited: if timeout.is_zero() {
                Duration::ZERO
            } else {
                started.elapsed()
            },
            seen: Seen::Unknown,
            taken_at: Instant::now(),
            notice: None,
            release_with_commit: false,
            released: false,
        }))
    }

    /// The shared wait of DESIGN.md §4 step 2.3 on the server: a shared advisory lock, which
    /// the holder's exclusive one blocks, so every waiting process (on any machine) wakes at
    /// the release, takes nothing, and re-reads; only one that still finds the record stale
    /// queues for the exclusive lock. (A shared request also waits behind an exclusive one
    /// queued before it: PostgreSQL grants in order.)
    fn wait_released(
        &self,
        key: &Key,
        timeout: Duration,
        on_release: super::AtRelease,
    ) -> futures_util::future::BoxFuture<'static, Result<Duration>> {
        let backend = self.me.upgrade().expect("a backend in use is alive");
        let key = key.clone();
        Box::pin(async move {
            let started = Instant::now();
            let id = backend.lock_id(&key);
            let client = backend.lock_session().await?;
            let failed = |e: tokio_postgres::Error| backend.db_error("waiting for the lock", &e);
            // Taken only to learn of the release, and given back in the same statement, so
            // that a waiter goes on at the grant without another round trip.
            let free = first_bool(
                client
                    .query_typed(
                        "SELECT CASE WHEN pg_try_advisory_lock_shared(hashtextextended($1, 0)) \
                         THEN pg_advisory_unlock_shared(hashtextextended($1, 0)) ELSE false END",
                        &[(&id, Type::TEXT)],
                    )
                    .await,
            )
            .map_err(failed)?;
            if free {
                lock(&backend.sessions().idle).push(client);
                return Ok(Duration::ZERO);
            }
            let ms = timeout.as_millis().clamp(1, i32::MAX as u128);
            // The re-read is pipelined behind the wait on the same session: the server runs it
            // (in a snapshot of its own) as soon as the wait's statement ends, so the waiter
            // has the record at the release with no round trip of its own.
            let (waited, row) = futures_util::join!(
                wait_for_release(&client, &id, ms),
                backend.read_row(&client, &key),
            );
            match waited {
                Ok(()) => lock(&backend.sessions().idle).push(client),
                Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
                    lock(&backend.sessions().idle).push(client);
                    return Err(Error::Busy {
                        ctx: Context {
                            key: Some(key.as_str().to_owned()),
                            path: Some(backend.place_of(&key)),
                        },
                        waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                        foreign: None,
                    });
                }
                Err(e) => return Err(failed(e)),
            }
            on_release(Some(row.and_then(|row| backend.finish_read(&key, row))));
            Ok(started.elapsed())
        })
    }

    fn list(&self) -> Result<Vec<Key>> {
        let sql = format!("SELECT key FROM {} ORDER BY key", self.table());
        let rows = wait(async {
            let client = self.reader().await?;
            client
                .query(&sql, &[])
                .await
                .map_err(|e| self.db_error("listing the store", &e))
        })?;
        Ok(rows
            .iter()
            .filter_map(|r| Key::new(r.get::<_, &str>(0)).ok())
            .collect())
    }

    fn placement(&self, _key: &Key) -> Placement {
        // Learnt at the first connection (status reads the record first); never a network
        // call of its own, so that an unreachable database costs `status` one timeout.
        Placement {
            server: self.server.get().map(|v| format!("PostgreSQL {v}")),
            ..Placement::default()
        }
    }
}

/// What the holder last saw of the row: the write is fenced on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    /// Not read under this lock: the write replaces whatever is there.
    Unknown,
    /// No row.
    Absent,
    /// The row with this stamp.
    Row(i64),
}

struct PgLocked {
    backend: Arc<PgBackend>,
    key: Key,
    /// The session holding the lock; taken by `Drop`.
    client: Option<Client>,
    /// The row as read right after the grant (pipelined behind the request); the first
    /// `read` takes it.
    read_at_grant: Option<Result<Option<Row>>>,
    epoch: u64,
    waited: Duration,
    seen: Seen,
    /// When the lock was taken: past `B` a holder abandons what it has (DESIGN.md §10).
    taken_at: Instant,
    /// The change notice of this holder's last commit, sent after its release (`Drop`).
    notice: Option<String>,
    /// The next commit releases the lock too (`Locked::release_with_next_write`).
    release_with_commit: bool,
    /// The lock was released with a commit: `Drop` has only the session to give back.
    released: bool,
}

/// Why a commit did not happen, and whether the lock's session is gone with it.
struct Failed {
    error: Error,
    session_lost: bool,
}

/// Whether `e` says the session ended (a restart, a terminated backend, a cut connection).
fn session_lost(e: &tokio_postgres::Error) -> bool {
    const ENDED: [&str; 4] = ["57P01", "57P02", "57P03", "57P05"];
    e.is_closed() || e.code().is_some_and(|c| ENDED.contains(&c.code()))
}

impl PgLocked {
    fn client(&self) -> &Client {
        self.client.as_ref().expect("held until dropped")
    }

    /// A failed commit: nothing was written (the transaction did not commit, or the lock's
    /// session is gone and with it any chance to).
    fn commit_error(&self, op: &str, message: String) -> Error {
        Error::Io {
            ctx: Context {
                key: Some(self.key.as_str().to_owned()),
                path: Some(self.backend.place_of(&self.key)),
            },
            op: op.to_owned(),
            kind: std::io::ErrorKind::Other,
            os_code: None,
            message,
        }
    }

    /// Runs `sql` in one transaction on the lock's session, in one round trip: `BEGIN`, the
    /// statement and `COMMIT` are pipelined (sent together, run in order by the server);
    /// `sql` returns the new `stamp`, or no row when fenced out. A failed statement makes the
    /// pipelined `COMMIT` a rollback, and a transaction never outlives the call. The change
    /// notice goes out after the release: in `Drop`, or here when this commit releases the
    /// lock (`release_with_commit`: the unlock and the notice follow `COMMIT` in the same
    /// pipeline, so the waiters wake as it lands). Also says whether the lock was released.
    async fn commit(
        &self,
        op: &str,
        sql: &str,
        params: &[(&(dyn tokio_postgres::types::ToSql + Sync), Type)],
    ) -> (std::result::Result<Option<i64>, Failed>, bool) {
        let client = self.client();
        let fail = |e: tokio_postgres::Error| {
            let lost = session_lost(&e) || client.is_closed();
            let why = if lost {
                format!(
                    "the lock's database session ended (fenced: not committed): {}",
                    db_message(&e)
                )
            } else {
                db_message(&e)
            };
            Failed {
                error: self.commit_error(op, why),
                session_lost: lost,
            }
        };
        let release = self.release_with_commit;
        // tokio-postgres sends each request at its future's first poll, in `join!`'s order.
        let (begun, changed, committed, unlocked) = futures_util::join!(
            client.batch_execute("BEGIN"),
            client.query_typed(sql, params),
            client.batch_execute("COMMIT"),
            async {
                if !release {
                    return false;
                }
                let b = &self.backend;
                let (channel, key) = (b.channel(), self.key.as_str());
                // The notice is made by the server from the row, if it holds this session's
                // stamp: a fenced-out or failed change sends none, nor does a later holder's.
                let notify = format!(
                    "SELECT pg_notify($1, generation || ' ' || stamp || ' ' || key) FROM {} \
                     WHERE key = $2 AND stamp = currval('{}.stamps')",
                    b.table(),
                    b.config.schema
                );
                let unlock = client.batch_execute("SELECT pg_advisory_unlock_all()");
                let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
                    [(&channel, Type::TEXT), (&key, Type::TEXT)];
                let notice = client.query_typed(&notify, &params);
                let (unlocked, _) = futures_util::join!(unlock, notice);
                unlocked.is_ok()
            },
        );
        let outcome = (|| {
            begun.map_err(fail)?;
            let row = changed.map_err(fail)?.into_iter().next();
            committed.map_err(fail)?;
            Ok(row.map(|r| r.get::<_, i64>(0)))
        })();
        (outcome, unlocked)
    }
}

impl PgLocked {
    /// Takes the lock again on a new session (the old one ended), waiting at most what is
    /// left of `B`; a server that is restarting is retried meanwhile.
    fn relock(&mut self) -> Result<()> {
        let b = self.backend.clone();
        let id = b.lock_id(&self.key);
        let deadline = self.taken_at + HOLDER_BOUND;
        let client = wait(async {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::transient(
                        "the lock could not be taken again within B",
                    ));
                }
                let attempt = async {
                    let client = b.lock_session().await?;
                    let ms = left.as_millis().clamp(1, i32::MAX as u128);
                    match request_lock(&client, &id, Some(ms)).await {
                        Ok(Request::Taken) => Ok(client),
                        Ok(Request::SharedSession) => Err(b.pooled_error(&self.key)),
                        Ok(Request::NotFree) => Err(Error::transient("the lock is held")),
                        Err(e) => Err(b.db_error("taking the lock again", &e)),
                    }
                };
                match attempt.await {
                    Ok(client) => return Ok(client),
                    Err(e) if e.code() == ErrorCode::InvalidArgument => return Err(e),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        })?;
        self.client = Some(client);
        Ok(())
    }
}

impl Locked for PgLocked {
    fn waited(&self) -> Duration {
        self.waited
    }

    fn read(&mut self) -> Result<Option<(Record, Version)>> {
        let b = self.backend.clone();
        let row = match self.read_at_grant.take() {
            Some(row) => row?,
            None => wait(b.read_row(self.client(), &self.key))?,
        };
        match row {
            None => {
                self.seen = Seen::Absent;
                b.remember(&self.key, None);
                Ok(None)
            }
            Some(row) => {
                self.seen = Seen::Row(row.stamp);
                b.remember(&self.key, Some(row.version()));
                b.parse_row(&self.key, &row).map(Some)
            }
        }
    }

    fn write(&mut self, record: &Record) -> Result<Committed> {
        let b = self.backend.clone();
        let text = String::from_utf8(record.to_bytes()).map_err(|_| {
            self.commit_error(
                "writing the record",
                "the record is not UTF-8 (a bug)".into(),
            )
        })?;
        let generation = i64::try_from(record.generation).unwrap_or(i64::MAX);
        let t = b.table();
        let s = &b.config.schema;
        let key = self.key.as_str().to_owned();
        let seen = self.seen;
        let seen_stamp = match seen {
            Seen::Row(stamp) => stamp,
            _ => 0,
        };
        type Param<'a> = (&'a (dyn tokio_postgres::types::ToSql + Sync), Type);
        let (sql, params): (String, Vec<Param>) = match seen {
            // Fenced on the row as this holder read it.
            Seen::Row(_) => (
                format!(
                    "UPDATE {t} SET record = $2, generation = $3, stamp = nextval('{s}.stamps'), \
                     updated_at = now() WHERE key = $1 AND stamp = $4 RETURNING stamp"
                ),
                vec![
                    (&key, Type::TEXT),
                    (&text, Type::TEXT),
                    (&generation, Type::INT8),
                    (&seen_stamp, Type::INT8),
                ],
            ),
            // Fenced on there being no row, as this holder read it.
            Seen::Absent => (
                format!(
                    "INSERT INTO {t} (key, record, generation) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO NOTHING RETURNING stamp"
                ),
                vec![
                    (&key, Type::TEXT),
                    (&text, Type::TEXT),
                    (&generation, Type::INT8),
                ],
            ),
            // Not read under this lock: replaces whatever is there (the lock is the fence).
            Seen::Unknown => (
                format!(
                    "INSERT INTO {t} (key, record, generation) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET record = EXCLUDED.record, \
                     generation = EXCLUDED.generation, stamp = nextval('{s}.stamps'), \
                     updated_at = now() RETURNING stamp"
                ),
                vec![
                    (&key, Type::TEXT),
                    (&text, Type::TEXT),
                    (&generation, Type::INT8),
                ],
            ),
        };
        let op = "writing the record";
        let (outcome, released) = wait(self.commit(op, &sql, &params));
        self.released = released;
        let stamp = match outcome {
            Ok(stamp) => stamp,
            // The lock's session ended under this holder (a server restart, a dropped
            // connection) before B: it takes the lock again on a new session and makes the
            // same write, which lands only if nobody wrote since its read (the fence is the
            // condition, not the session). A refresh the provider answered is not lost to a
            // restart that way.
            Err(f)
                if f.session_lost
                    && seen != Seen::Unknown
                    && self.taken_at.elapsed() < HOLDER_BOUND =>
            {
                self.relock().map_err(|_| f.error)?;
                let (outcome, released) = wait(self.commit(op, &sql, &params));
                self.released = released;
                outcome.map_err(|f| f.error)?
            }
            Err(f) => return Err(f.error),
        };
        let Some(stamp) = stamp else {
            return Err(self.commit_error(
                "writing the record",
                "the row changed under the lock (a writer that does not lock?); nothing was \
                 written"
                    .into(),
            ));
        };
        let version = Version::row(record.generation, stamp);
        if !self.released {
            self.notice = Some(notice(&self.key, Some((record.generation, stamp))));
        }
        self.seen = Seen::Row(stamp);
        b.remember(&self.key, Some(version));
        Ok(Committed {
            version,
            not_durable: None,
        })
    }

    fn release_with_next_write(&mut self) {
        self.release_with_commit = true;
    }

    fn remove(&mut self) -> Result<bool> {
        let b = self.backend.clone();
        let sql = format!("DELETE FROM {} WHERE key = $1 RETURNING stamp", b.table());
        let key = self.key.as_str();
        let (outcome, released) =
            wait(self.commit("removing the record", &sql, &[(&key, Type::TEXT)]));
        self.released = released;
        let removed = outcome.map_err(|f| f.error)?;
        if removed.is_some() && !self.released {
            self.notice = Some(notice(&self.key, None));
        }
        self.seen = Seen::Absent;
        b.remember(&self.key, None);
        Ok(removed.is_some())
    }
}

impl Drop for PgLocked {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if self.epoch != runtime::epoch() {
            // A forked child: the session is the parent's; never touch it here.
            std::mem::forget(client);
            return;
        }
        let b = self.backend.clone();
        if self.released {
            lock(&b.sessions().idle).push(client);
            return;
        }
        // Unlock explicitly, so that the next holder goes on now; if that fails the session
        // is dropped, and the server frees the lock when it sees the connection close.
        // The change notice follows the release, pipelined behind it: the waiters (woken by
        // the release, re-reading for themselves) go first, and the listening sessions' work
        // comes after theirs. A notice lost with the session is made up for by the poll.
        let channel = b.channel();
        let notice = self.notice.take();
        let released = wait(async {
            tokio::time::timeout(Duration::from_secs(5), async {
                let unlock = client.batch_execute("SELECT pg_advisory_unlock_all()");
                match &notice {
                    None => unlock.await,
                    Some(payload) => {
                        let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
                            [(&channel, Type::TEXT), (payload, Type::TEXT)];
                        let notify = client.query_typed("SELECT pg_notify($1, $2)", &params);
                        let (unlocked, _) = futures_util::join!(unlock, notify);
                        unlocked
                    }
                }
            })
            .await
        });
        if matches!(released, Ok(Ok(_))) {
            lock(&b.sessions().idle).push(client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        let c = PgConfig::parse("postgresql://app:s3cret@db.example:6432/creds?sslmode=require")
            .unwrap();
        assert_eq!(
            c.to_string(),
            "postgresql://app@db.example:6432/creds?sslmode=require"
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(c.password.as_ref().unwrap().expose(), "s3cret");
        let c = PgConfig::parse("postgres://app@h/d?schema=fleet_a").unwrap();
        assert_eq!(c.to_string(), "postgresql://app@h:5432/d?schema=fleet_a");
    }

    #[test]
    fn bad_urls_are_invalid_arguments_that_do_not_quote_them() {
        for (url, says) in [
            ("postgresql://u:pw@h/d?sslmode=verify-sometimes", "sslmode"),
            ("postgresql://u:pw@h/d?sslmode=allow", "sslmode"),
            ("postgresql://u:pw@h/d?colour=blue", "unknown parameter"),
            ("postgresql://u:pw@h:99999/d", "malformed"),
            ("postgresql://u:pw@h/d?schema=Robert'); DROP", "schema"),
        ] {
            let e = PgConfig::parse(url).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidArgument, "{url}: {e}");
            let m = e.to_string();
            assert!(m.contains(says), "{url}: {m}");
            assert!(!m.contains("pw"), "{url}: {m}");
        }
    }

    #[test]
    fn notices_round_trip() {
        // As `notice` makes them (a save's, a clear's), and as a refresh's commit makes them
        // in SQL: `generation || ' ' || stamp || ' ' || key`.
        let k = Key::new("a b:c").unwrap();
        assert_eq!(
            parse_notice(&notice(&k, Some((7, 42)))),
            Some((k.clone(), Some(Version::row(7, 42))))
        );
        assert_eq!(parse_notice(&notice(&k, None)), Some((k.clone(), None)));
        assert_eq!(
            parse_notice("7 42 a b:c"),
            Some((k.clone(), Some(Version::row(7, 42))))
        );
        assert_eq!(parse_notice("0 0 a b:c"), Some((k, None)));
        assert_eq!(parse_notice("7 x a"), None);
    }
}
