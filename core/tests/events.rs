//! The decision events of DESIGN.md §8 fire where the protocol decides, carry the key, and
//! never a token.

use oauth_lock::{
    refresher_fn, Credential, Error, SaveOptions, Secret, SourceOptions, Store, TokenFields,
};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Every event's fields, rendered as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!("{}={} ", field.name(), value));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "oauth_lock" {
            let mut f = Fields(String::new());
            event.record(&mut f);
            self.0.lock().unwrap().push(f.0);
        }
    }
}

impl Captured {
    fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| {
                e.split_whitespace()
                    .find_map(|kv| kv.strip_prefix("event="))
                    .map(str::to_owned)
            })
            .collect()
    }
    fn all(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn save(store: &Store, key: &str, v: serde_json::Value) -> Result<oauth_lock::Status, Error> {
    store.save_blocking(
        key,
        Credential::from_json(&v).unwrap(),
        SaveOptions::default(),
    )
}

#[test]
fn each_decision_emits_its_event_without_tokens() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(captured.clone());
    // The core's runtime threads are not covered by a thread-local default.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    // The bindings' route: the same events as structured values.
    let heard = Arc::new(Mutex::new(Vec::<oauth_lock::interop::Event>::new()));
    let h = heard.clone();
    let listener = oauth_lock::interop::add_listener(move |e| h.lock().unwrap().push(e.clone()));

    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();

    // login_without_refresh_token, then downgrade_refused.
    save(
        &store,
        "a",
        json!({"access_token": "at-secret-a", "refresh_token": "rt-secret-a", "expires_in": 0}),
    )
    .unwrap();
    save(&store, "b", json!({"access_token": "at-only"})).unwrap();
    assert!(save(&store, "a", json!({"access_token": "at-x"})).is_err());

    // refreshed, with lock_waited: the lock is held while the flight starts.
    let lock =
        oauth_lock::lock::lock_exclusive(&d.path().join("a.lock"), Duration::from_secs(5)).unwrap();
    let r = refresher_fn(|_| async {
        Ok(TokenFields {
            access_token: Some(Secret::new("at-secret-new")),
            refresh_token: Some(Secret::new("rt-secret-new")),
            expires_in_ms: Some(3_600_000),
            ..Default::default()
        })
    });
    let source = store.source_with("a", r).unwrap();
    let waiter =
        std::thread::spawn(move || source.access_token_blocking().map(|t| t.value().to_owned()));
    std::thread::sleep(Duration::from_millis(100));
    drop(lock);
    assert_eq!(waiter.join().unwrap().unwrap(), "at-secret-new");

    // adopted: another process (a direct write here) refreshes a key this process holds.
    let c = |generation: u64, token: &str| {
        let rec = json!({"format": 1, "key": "c", "generation": generation, "access_token": token});
        std::fs::write(d.path().join("c.json"), serde_json::to_vec(&rec).unwrap()).unwrap();
    };
    c(5, "at-c5");
    let watch = SourceOptions {
        revalidate: Duration::ZERO,
        ..Default::default()
    };
    let source_c = store.source_with_options("c", None, watch).unwrap();
    source_c.access_token_blocking().unwrap();
    assert!(
        !captured.names().contains(&"adopted".to_owned()),
        "a first read is no adoption"
    );
    c(6, "at-c6");
    assert_eq!(source_c.access_token_blocking().unwrap().value(), "at-c6");

    // refresh_deferred: a transient failure with a token that is inside the margin.
    std::fs::write(
        d.path().join("t.json"),
        serde_json::to_vec(&json!({"format": 1, "key": "t", "generation": 1, "access_token": "at-t",
            "refresh_token": "rt-t", "issued_at_ms": now_ms() - 3_600_000, "expires_at_ms": now_ms() + 60_000}))
        .unwrap(),
    )
    .unwrap();
    let failing = refresher_fn(|_| async { Err(Error::transient("provider down")) });
    let token = store
        .source_with_options("t", Some(failing), SourceOptions::default())
        .unwrap()
        .access_token_blocking();
    assert_eq!(
        token.unwrap().value(),
        "at-t",
        "the still-valid token is used"
    );

    // invalid_grant, then needs_login for the next caller.
    save(
        &store,
        "dead",
        json!({"access_token": "at-d", "refresh_token": "rt-d", "expires_in": 0}),
    )
    .unwrap();
    let rejecting =
        refresher_fn(|_| async { Err(oauth_lock::classify_oauth_error("invalid_grant", None)) });
    let dead = store.source_with("dead", rejecting).unwrap();
    assert!(dead.access_token_blocking().is_err());
    assert!(dead.access_token_blocking().is_err());

    let names = captured.names();
    for want in [
        "login_without_refresh_token",
        "downgrade_refused",
        "lock_waited",
        "refreshed",
        "adopted",
        "refresh_deferred",
        "invalid_grant",
        "needs_login",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "no {want} event in {names:?}"
        );
    }
    let heard = std::mem::take(&mut *heard.lock().unwrap());
    let heard_names: Vec<&str> = heard.iter().map(|e| e.event).collect();
    assert_eq!(
        heard_names, names,
        "listeners hear what tracing sees, in order"
    );
    let refreshed = heard.iter().find(|e| e.event == "refreshed").unwrap();
    assert_eq!(refreshed.key, "a");
    assert_eq!(
        refreshed.path,
        d.path().join("a.json").display().to_string()
    );
    assert_eq!(
        refreshed.fields["old_refresh_token"],
        oauth_lock::fingerprint("rt-secret-a")
    );
    assert!(oauth_lock::interop::remove_listener(listener));
    assert!(!oauth_lock::interop::remove_listener(listener));
    let heard_json = serde_json::to_string(&heard).unwrap();
    let all = captured.all() + &heard_json;
    assert!(all.contains("key=a"), "events name the key: {all}");
    for secret in [
        "at-secret-a",
        "rt-secret-a",
        "at-secret-new",
        "rt-secret-new",
        "rt-d",
        "at-t",
    ] {
        assert!(!all.contains(secret), "a token reached the events: {all}");
    }
}
