//! Mirrors (DESIGN.md §6): a Claude Code credentials file kept in step with the store.

use oauth_lock::{
    refresher_fn, Credential, ErrorCode, Refresher, SaveOptions, Secret, Store, TokenFields,
};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn setup(mirror: Option<Value>) -> (tempfile::TempDir, Store, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path().join("store")).unwrap();
    let mirror_path = d.path().join("credentials.json");
    if let Some(m) = mirror {
        std::fs::write(&mirror_path, serde_json::to_vec(&m).unwrap()).unwrap();
    }
    let cred = json!({"access_token": "at-0", "refresh_token": "rt-0", "expires_in": 0,
        "mirror": {"path": mirror_path, "shape": "claude_code"}});
    store
        .save_blocking(
            "claude",
            Credential::from_json(&cred).unwrap(),
            SaveOptions::default(),
        )
        .unwrap();
    (d, store, mirror_path)
}

/// A provider that accepts only `accepts` and answers with `at-N`/`rt-N`.
fn provider(accepts: &'static str, calls: Arc<AtomicUsize>) -> Arc<dyn Refresher> {
    refresher_fn(move |rec| {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if rec.refresh_token.as_ref().map(Secret::expose) != Some(accepts) {
                return Err(oauth_lock::classify_oauth_error("invalid_grant", None));
            }
            Ok(TokenFields {
                access_token: Some(Secret::new(format!("at-{n}"))),
                refresh_token: Some(Secret::new(format!("rt-{n}"))),
                expires_in_ms: Some(3_600_000),
                ..Default::default()
            })
        }
    })
}

fn read(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_token_in_the_mirror_is_adopted_instead_of_refreshing() {
    let mirror = json!({"claudeAiOauth": {"accessToken": "at-cc", "refreshToken": "rt-cc", "expiresAt": now_ms() + 3_600_000}});
    let (_d, store, _) = setup(Some(mirror));
    let calls = Arc::new(AtomicUsize::new(0));
    let source = store
        .source_with("claude", provider("rt-0", calls.clone()))
        .unwrap();
    assert_eq!(source.access_token().await.unwrap().value(), "at-cc");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no refresh: the mirror had a newer token"
    );
    let rec = read(&store.path_of("claude").unwrap());
    assert_eq!(rec["refresh_token"], "rt-cc");
    assert_eq!(rec["generation"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_is_written_back_keeping_the_mirrors_other_fields() {
    let mirror = json!({"claudeAiOauth": {"accessToken": "at-0", "refreshToken": "rt-0", "expiresAt": 1,
        "scopes": ["user:inference"], "subscriptionType": "max"}, "mcpOAuth": {"keep": true}});
    let (_d, store, path) = setup(Some(mirror));
    let calls = Arc::new(AtomicUsize::new(0));
    let t = store
        .source_with("claude", provider("rt-0", calls.clone()))
        .unwrap()
        .access_token()
        .await
        .unwrap();
    assert_eq!(t.value(), "at-1");
    let m = read(&path);
    assert_eq!(m["claudeAiOauth"]["accessToken"], "at-1");
    assert_eq!(m["claudeAiOauth"]["refreshToken"], "rt-1");
    assert_eq!(m["claudeAiOauth"]["expiresAt"], json!(t.expires_at_ms()));
    assert_eq!(m["claudeAiOauth"]["scopes"], json!(["user:inference"]));
    assert_eq!(m["claudeAiOauth"]["subscriptionType"], "max");
    assert_eq!(m["mcpOAuth"], json!({"keep": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_recovers_with_a_token_the_mirrors_program_rotated() {
    // The other program (which does not take our lock) rotates rt-0 → rt-cc while our refresh
    // is on its way, so the provider refuses rt-0; the mirror's newer token rescues the
    // credential and is adopted without another request.
    let (_d, store, path) = setup(Some(
        json!({"claudeAiOauth": {"accessToken": "at-0", "refreshToken": "rt-0", "expiresAt": 1}}),
    ));
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let racing = refresher_fn(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        let path = path.clone();
        async move {
            let rotated = json!({"claudeAiOauth": {"accessToken": "at-cc", "refreshToken": "rt-cc",
                "expiresAt": now_ms() + 3_600_000}});
            std::fs::write(&path, serde_json::to_vec(&rotated).unwrap()).unwrap();
            Err(oauth_lock::classify_oauth_error("invalid_grant", None))
        }
    });
    let t = store
        .source_with("claude", racing)
        .unwrap()
        .access_token()
        .await
        .unwrap();
    assert_eq!(t.value(), "at-cc", "the mirror's newer token");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no second request");
    let rec = read(&store.path_of("claude").unwrap());
    assert_eq!(rec["state"], "ok");
    assert_eq!(rec["refresh_token"], "rt-cc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merely_different_older_token_in_the_mirror_is_never_adopted() {
    // The mirror missed a write-back: it holds a different refresh token whose expiry is older
    // than the record's. Adopting it would present a spent token; it must not be sent, neither
    // up front nor as a recovery after invalid_grant.
    let mirror = json!({"claudeAiOauth": {"accessToken": "at-old", "refreshToken": "rt-old", "expiresAt": 1}});
    let (_d, store, path) = setup(Some(mirror));
    let before = std::fs::read(&path).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let err = store
        .source_with("claude", provider("rt-old", calls.clone()))
        .unwrap()
        .access_token()
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidGrant, "{err}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "rt-0 was tried once; rt-old never was"
    );
    let rec = read(&store.path_of("claude").unwrap());
    assert_eq!(rec["state"], "needs_login");
    assert_eq!(rec["refresh_token"], "rt-0");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "mirror left as it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_mirror_is_created_and_a_bad_mirror_config_is_refused() {
    let (_d, store, path) = setup(None);
    let calls = Arc::new(AtomicUsize::new(0));
    store
        .source_with("claude", provider("rt-0", calls))
        .unwrap()
        .access_token()
        .await
        .unwrap();
    assert_eq!(read(&path)["claudeAiOauth"]["refreshToken"], "rt-1");
    for mirror in [
        json!({"path": "relative.json", "shape": "claude_code"}),
        json!({"path": "/tmp/x.json", "shape": "vscode"}),
    ] {
        let bad = json!({"access_token": "a", "refresh_token": "r", "mirror": mirror});
        let cred = Credential::from_json(&bad).unwrap();
        let err = store
            .save_blocking("x", cred, SaveOptions::default())
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{mirror}");
    }
    assert!(!store.path_of("x").unwrap().exists());
    assert_eq!(
        store.status("claude").unwrap().mirror_path.as_deref(),
        Some(path.as_path())
    );
}
