//! The native part of the Python module `oauth_lock`: the core's `Store`, `TokenSource` and
//! `AccessToken` as Python classes, with configs, credentials, statuses, errors and events
//! crossing as JSON through `oauth_lock::interop`; the Python layer (`python/oauth_lock`)
//! turns those into dataclasses, exception classes and `logging` records.

// No `unsafe` here so far; any future block must say why it is sound (`// SAFETY:`), and CI
// runs clippy with `-D warnings`.
#![warn(clippy::undocumented_unsafe_blocks)]

use oauth_lock::interop;
use oauth_lock::{Context, Credential, Error, SaveOptions, SourceOptions};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::marker::Ungil;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The Python functions the package registers at import (`_init`): the native side calls
/// them to build exceptions, complete asyncio futures and log events.
struct Hooks {
    make_error: Py<PyAny>,
    resolve: Py<PyAny>,
    on_event: Py<PyAny>,
    info_enabled: Py<PyAny>,
}

static HOOKS: PyOnceLock<Hooks> = PyOnceLock::new();

/// Whether the `oauth_lock` logger takes INFO records, as read at the start of the last call
/// that may wait or refresh ([`detached`]). An INFO event it would drop is not handed to
/// Python at all: that would take the GIL (and make a thread state on a core thread) on the
/// hand-off path of every waiting process, before its caller is answered.
static INFO_LOGGED: AtomicBool = AtomicBool::new(true);

/// Events handed to Python (`_events_forwarded`, for the tests of the level gate).
static EVENTS_FORWARDED: AtomicU64 = AtomicU64::new(0);

/// Runs `f` without the GIL, after reading the logger's level for the events it may decide.
fn detached<T: Send>(py: Python<'_>, f: impl Ungil + FnOnce() -> T + Send) -> T {
    note_log_level(py);
    py.detach(f)
}

fn note_log_level(py: Python<'_>) {
    let enabled = HOOKS
        .get(py)
        .and_then(|h| h.info_enabled.call0(py).ok())
        .and_then(|v| v.extract::<bool>(py).ok())
        .unwrap_or(true);
    INFO_LOGGED.store(enabled, Ordering::Relaxed);
}

/// How many events the native side handed to Python's `_on_event` so far.
#[pyfunction]
fn _events_forwarded() -> u64 {
    EVENTS_FORWARDED.load(Ordering::Relaxed)
}

/// The `oauth_lock.Error` subclass for a core error, with `.code`, `.key`, `.path` and
/// `.oauth_error` (built in Python from `interop::error_json`).
fn py_err(py: Python<'_>, err: &Error) -> PyErr {
    let Some(hooks) = HOOKS.get(py) else {
        return PyRuntimeError::new_err(err.to_string());
    };
    let json = interop::error_json(err).to_string();
    match hooks.make_error.call1(py, (json,)) {
        Ok(exc) => PyErr::from_value(exc.into_bound(py)),
        Err(e) => e,
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidArgument {
        ctx: Context::default(),
        reason,
    }
}

/// Names the key and the store path on errors raised before the core knew them.
fn in_context(store: &oauth_lock::Store, key: &str, err: Error) -> Error {
    match store.path_of(key) {
        Ok(path) => err.with_context(key, &path),
        Err(_) => err,
    }
}

fn seconds(name: &str, value: Option<f64>, default: Duration) -> Result<Duration, Error> {
    match value {
        None => Ok(default),
        Some(s) => Duration::try_from_secs_f64(s).map_err(|_| {
            invalid(format!(
                "{name} must be a finite, non-negative number of seconds, not {s}"
            ))
        }),
    }
}

/// Registers the package's hooks and routes the core's events to `on_event` (JSON). Called
/// once by `oauth_lock/__init__.py`.
#[pyfunction]
fn _init(
    py: Python<'_>,
    make_error: Py<PyAny>,
    resolve: Py<PyAny>,
    on_event: Py<PyAny>,
    info_enabled: Py<PyAny>,
) -> PyResult<()> {
    let fresh = HOOKS
        .set(
            py,
            Hooks {
                make_error,
                resolve,
                on_event,
                info_enabled,
            },
        )
        .is_ok();
    if fresh {
        oauth_lock::set_client_lang("python");
        interop::add_listener(|event| {
            if event.level == interop::Level::Info && !INFO_LOGGED.load(Ordering::Relaxed) {
                return;
            }
            EVENTS_FORWARDED.fetch_add(1, Ordering::Relaxed);
            let Ok(json) = serde_json::to_string(event) else {
                return;
            };
            // try_attach: an event may come from a core thread while Python shuts down.
            Python::try_attach(|py| {
                if let Some(hooks) = HOOKS.get(py) {
                    if let Err(e) = hooks.on_event.call1(py, (json,)) {
                        e.write_unraisable(py, None);
                    }
                }
            });
        });
    }
    Ok(())
}

/// A valid access token. `str(token)` is the token; `repr` shows only its fingerprint.
#[pyclass(module = "oauth_lock._native", name = "AccessToken", frozen)]
struct PyAccessToken(oauth_lock::AccessToken);

static DATETIME: PyOnceLock<(Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();

#[pymethods]
impl PyAccessToken {
    /// The token itself (a secret: do not log it).
    #[getter]
    fn value(&self) -> &str {
        self.0.value()
    }

    /// `"Bearer"` unless the provider said otherwise.
    #[getter]
    fn token_type(&self) -> &str {
        self.0.token_type()
    }

    /// Expiry in Unix milliseconds, `None` when the provider gave none.
    #[getter]
    fn expires_at_ms(&self) -> Option<i64> {
        self.0.expires_at_ms()
    }

    /// Expiry as an aware `datetime` in UTC, `None` when the provider gave none.
    #[getter]
    fn expires_at(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let Some(ms) = self.0.expires_at_ms() else {
            return Ok(None);
        };
        let (datetime, utc) = DATETIME.get_or_try_init(py, || -> PyResult<_> {
            let m = py.import("datetime")?;
            let utc = m.getattr("timezone")?.getattr("utc")?;
            Ok((m.getattr("datetime")?.unbind(), utc.unbind()))
        })?;
        let at = datetime
            .bind(py)
            .call_method1("fromtimestamp", (ms as f64 / 1000.0, utc.bind(py)))?;
        Ok(Some(at.unbind()))
    }

    /// The record's generation this token came from.
    #[getter]
    fn generation(&self) -> u64 {
        self.0.generation()
    }

    /// The first 8 hex digits of the token's SHA-256: safe to log.
    #[getter]
    fn fingerprint(&self) -> String {
        self.0.fingerprint()
    }

    /// The `Authorization` header value, e.g. `"Bearer <token>"`.
    #[getter]
    fn authorization(&self) -> String {
        self.0.authorization()
    }

    fn __str__(&self) -> &str {
        self.0.value()
    }

    fn __repr__(&self) -> String {
        format!(
            "AccessToken(fingerprint={:?}, token_type={:?}, expires_at_ms={}, generation={})",
            self.0.fingerprint(),
            self.0.token_type(),
            self.0
                .expires_at_ms()
                .map_or_else(|| "None".to_owned(), |ms| ms.to_string()),
            self.0.generation()
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<PyAccessToken>() {
            Ok(o) => o.get().0.value() == self.0.value(),
            Err(_) => false,
        }
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.0.value().hash(&mut h);
        h.finish()
    }
}

/// A directory of credentials (the core `Store`). Statuses cross as JSON.
#[pyclass(module = "oauth_lock._native", name = "Store", frozen)]
struct PyStore(oauth_lock::Store);

#[pymethods]
impl PyStore {
    #[new]
    #[pyo3(signature = (path=None))]
    fn new(py: Python<'_>, path: Option<PathBuf>) -> PyResult<Self> {
        detached(py, || match path {
            Some(p) => oauth_lock::Store::open(p),
            None => oauth_lock::Store::open_default(),
        })
        .map(PyStore)
        .map_err(|e| py_err(py, &e))
    }

    /// The store's directory.
    #[getter]
    fn dir(&self) -> PathBuf {
        self.0.dir().to_owned()
    }

    fn path_of(&self, py: Python<'_>, key: &str) -> PyResult<PathBuf> {
        self.0.path_of(key).map_err(|e| py_err(py, &e))
    }

    /// Saves a credential given as token-response JSON (with optional `refresh`, `mirror`);
    /// returns the status as JSON.
    fn save(
        &self,
        py: Python<'_>,
        key: &str,
        credential: &str,
        allow_downgrade: bool,
    ) -> PyResult<String> {
        let store = &self.0;
        detached(py, || -> Result<String, Error> {
            let value: Value = serde_json::from_str(credential)
                .map_err(|e| in_context(store, key, invalid(format!("credential: {e}"))))?;
            let credential =
                Credential::from_json(&value).map_err(|e| in_context(store, key, e))?;
            let options = SaveOptions {
                allow_downgrade,
                ..SaveOptions::default()
            };
            let status = store.save_blocking(key, credential, options)?;
            Ok(serde_json::to_string(&status).expect("a status always serializes"))
        })
        .map_err(|e| py_err(py, &e))
    }

    fn clear(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        detached(py, || self.0.clear_blocking(key)).map_err(|e| py_err(py, &e))
    }

    fn status(&self, py: Python<'_>, key: &str) -> PyResult<String> {
        detached(py, || self.0.status(key))
            .map(|s| serde_json::to_string(&s).expect("a status always serializes"))
            .map_err(|e| py_err(py, &e))
    }

    fn list(&self, py: Python<'_>) -> PyResult<String> {
        detached(py, || self.0.list())
            .map(|s| serde_json::to_string(&s).expect("a status always serializes"))
            .map_err(|e| py_err(py, &e))
    }

    fn verify(&self, py: Python<'_>, key: &str) -> PyResult<PyAccessToken> {
        detached(py, || self.0.verify_blocking(key))
            .map(PyAccessToken)
            .map_err(|e| py_err(py, &e))
    }

    /// Imports Claude Code's or Codex's login (`program` as the CLI spells it); returns the
    /// status as JSON.
    #[pyo3(signature = (program, key=None, file=None, token_url=None))]
    fn import_login(
        &self,
        py: Python<'_>,
        program: &str,
        key: Option<String>,
        file: Option<PathBuf>,
        token_url: Option<String>,
    ) -> PyResult<String> {
        detached(py, || -> Result<String, Error> {
            let program: oauth_lock::MirrorShape = program.parse()?;
            let options = oauth_lock::ImportOptions {
                key,
                file,
                token_url,
            };
            let status = self.0.import_blocking(program, options)?;
            Ok(serde_json::to_string(&status).expect("a status always serializes"))
        })
        .map_err(|e| py_err(py, &e))
    }
}

/// A callback refresher: `callback(credential_json) -> answer_json`, a Python function the
/// package builds around the user's (async) callable; it runs on a core blocking thread.
fn callback_refresher(callback: Py<PyAny>) -> Arc<dyn oauth_lock::Refresher> {
    interop::blocking_json_refresher(move |credential| {
        Python::try_attach(|py| -> oauth_lock::Result<Value> {
            let answer = callback.call1(py, (credential.to_string(),)).map_err(|e| {
                Error::transient(format!(
                    "the refresher raised {}",
                    e.get_type(py)
                        .name()
                        .map_or_else(|_| "an exception".to_owned(), |n| n.to_string())
                ))
            })?;
            let text: String = answer
                .extract(py)
                .map_err(|_| Error::transient("the refresher's answer is not a JSON string"))?;
            serde_json::from_str(&text)
                .map_err(|_| Error::transient("the refresher's answer is not JSON"))
        })
        .unwrap_or_else(|| Err(Error::transient("the Python interpreter is shutting down")))
    })
}

/// Gives a valid access token for one credential (the core `TokenSource`).
#[pyclass(module = "oauth_lock._native", name = "TokenSource", frozen, subclass)]
struct PySource(oauth_lock::TokenSource);

/// What an asyncio twin runs on the core runtime.
enum Op {
    AccessToken,
    Reject(String),
    Verify,
}

fn token_text(token: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(t) = token.cast::<PyAccessToken>() {
        return Ok(t.get().0.value().to_owned());
    }
    token
        .extract::<String>()
        .map_err(|_| PyTypeError::new_err("token must be a str or an AccessToken"))
}

#[pymethods]
impl PySource {
    #[new]
    #[pyo3(signature = (store, key, *, oauth2=None, callback=None, refresh_margin=None,
        lock_timeout=None, refresh_timeout=None, revalidate=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        store: &PyStore,
        key: &str,
        oauth2: Option<&str>,
        callback: Option<Py<PyAny>>,
        refresh_margin: Option<f64>,
        lock_timeout: Option<f64>,
        refresh_timeout: Option<f64>,
        revalidate: Option<f64>,
    ) -> PyResult<Self> {
        let store = &store.0;
        let build = || -> Result<oauth_lock::TokenSource, Error> {
            let d = SourceOptions::default();
            let options = SourceOptions {
                refresh_margin: seconds("refresh_margin", refresh_margin, d.refresh_margin)?,
                lock_timeout: seconds("lock_timeout", lock_timeout, d.lock_timeout)?,
                refresh_timeout: seconds("refresh_timeout", refresh_timeout, d.refresh_timeout)?,
                revalidate: seconds("revalidate", revalidate, d.revalidate)?,
                ..d
            };
            let refresher = match (oauth2, callback) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "give an OAuth2 config or a callback refresher, not both".into(),
                    ))
                }
                (Some(json), None) => {
                    let config: Value = serde_json::from_str(json)
                        .map_err(|e| invalid(format!("refresh config: {e}")))?;
                    Some(interop::oauth2_refresher(&config)?)
                }
                (None, Some(cb)) => Some(callback_refresher(cb)),
                (None, None) => None,
            };
            store.source_with_options(key, refresher, options)
        };
        build()
            .map(PySource)
            .map_err(|e| py_err(py, &in_context(store, key, e)))
    }

    /// The credential's key.
    #[getter]
    fn key(&self) -> &str {
        self.0.key()
    }

    /// The record file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.0.path()
    }

    /// A valid access token: the cached one when fresh (no lock, no GIL release), else
    /// refreshed under the protocol with the GIL released.
    fn access_token(&self, py: Python<'_>) -> PyResult<PyAccessToken> {
        if let Some(t) = self.0.cached() {
            return Ok(PyAccessToken(t));
        }
        detached(py, || self.0.access_token_blocking())
            .map(PyAccessToken)
            .map_err(|e| py_err(py, &e))
    }

    /// The cached token if it is fresh, without any I/O beyond an occasional `stat`.
    fn cached(&self) -> Option<PyAccessToken> {
        self.0.cached().map(PyAccessToken)
    }

    /// After HTTP 401 with `token`: a different valid token (one refresh across processes).
    fn reject(&self, py: Python<'_>, token: &Bound<'_, PyAny>) -> PyResult<PyAccessToken> {
        let token = token_text(token)?;
        detached(py, || self.0.reject_blocking(&token))
            .map(PyAccessToken)
            .map_err(|e| py_err(py, &e))
    }

    /// A token valid for at least `seconds` more, refreshing if the current one is shorter.
    fn access_token_valid_for(&self, py: Python<'_>, seconds: f64) -> PyResult<PyAccessToken> {
        let at_least = Duration::try_from_secs_f64(seconds).map_err(|_| {
            py_err(
                py,
                &invalid(format!("seconds must be non-negative, not {seconds}")),
            )
        })?;
        detached(py, || self.0.access_token_valid_for_blocking(at_least))
            .map(PyAccessToken)
            .map_err(|e| py_err(py, &e))
    }

    /// Forces one refresh (it rotates the refresh token).
    fn verify(&self, py: Python<'_>) -> PyResult<PyAccessToken> {
        detached(py, || self.0.verify_blocking())
            .map(PyAccessToken)
            .map_err(|e| py_err(py, &e))
    }

    /// Starts `op` ("access_token", "reject", "verify") on the core runtime and completes the
    /// asyncio future `fut` of `event_loop` through `call_soon_threadsafe`; never blocks.
    #[pyo3(signature = (op, token, event_loop, fut))]
    fn _start(
        &self,
        py: Python<'_>,
        op: &str,
        token: Option<&Bound<'_, PyAny>>,
        event_loop: Py<PyAny>,
        fut: Py<PyAny>,
    ) -> PyResult<()> {
        let op = match (op, token) {
            ("access_token", _) => Op::AccessToken,
            ("reject", Some(t)) => Op::Reject(token_text(t)?),
            ("verify", _) => Op::Verify,
            _ => return Err(PyTypeError::new_err(format!("unknown operation {op:?}"))),
        };
        let source = self.0.clone();
        note_log_level(py);
        let call = async move {
            match op {
                Op::AccessToken => source.access_token().await,
                Op::Reject(t) => source.reject(&t).await,
                Op::Verify => source.verify().await,
            }
        };
        interop::spawn_settled(call, move |result| {
            // Taking the GIL may wait for Python code: not on a runtime worker.
            drop(tokio::task::spawn_blocking(move || {
                Python::try_attach(|py| {
                    let Some(hooks) = HOOKS.get(py) else { return };
                    let (ok, value): (bool, Py<PyAny>) = match result {
                        Ok(t) => match Py::new(py, PyAccessToken(t)) {
                            Ok(t) => (true, t.into_any()),
                            Err(e) => (false, e.into_value(py).into_any()),
                        },
                        Err(e) => (false, py_err(py, &e).into_value(py).into_any()),
                    };
                    let args = (hooks.resolve.clone_ref(py), fut, ok, value);
                    // A closed loop raises here: nobody is waiting any more.
                    let _ = event_loop.call_method1(py, "call_soon_threadsafe", args);
                });
            }));
        });
        Ok(())
    }
}

/// The native part of `oauth_lock`; import `oauth_lock`, not this.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_init, m)?)?;
    m.add_function(wrap_pyfunction!(_events_forwarded, m)?)?;
    m.add_class::<PyAccessToken>()?;
    m.add_class::<PyStore>()?;
    m.add_class::<PySource>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The core's codes, so that a test can hold the exception classes to them.
    let codes: Vec<(&str, u8)> = oauth_lock::ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str(), c.number()))
        .collect();
    m.add("CODES", codes)?;
    Ok(())
}
