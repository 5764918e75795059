//! The README's Rust example: one credential, many threads at expiry, one refresh.
//! Run it with `cargo run -p oauth-lock --example quickstart`.

use oauth_lock::{refresher_fn, Credential, SaveOptions, Secret, Store, TokenFields};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn main() -> oauth_lock::Result<()> {
    let dir = std::env::temp_dir().join(format!("oauth-lock-quickstart-{}", std::process::id()));
    let store = Store::open(&dir)?;

    // A login whose access token has already expired.
    let login =
        serde_json::json!({"access_token": "at-0", "refresh_token": "rt-0", "expires_in": 0});
    store.save_blocking(
        "example",
        Credential::from_json(&login)?,
        SaveOptions::default(),
    )?;

    // A stand-in for the provider's token endpoint (real code uses the built-in OAuth2
    // refresher: put a "refresh" config in the login, and call `store.source(key)`).
    let refreshes = Arc::new(AtomicUsize::new(0));
    let counter = refreshes.clone();
    let refresher = refresher_fn(move |record| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let spent = record.refresh_token.expect("read under the lock");
        println!(
            "refreshing with refresh token sha256:{}",
            spent.fingerprint()
        );
        async move {
            Ok(TokenFields {
                access_token: Some(Secret::new(format!("at-{n}"))),
                refresh_token: Some(Secret::new(format!("rt-{n}"))),
                expires_in_ms: Some(3_600_000),
                ..Default::default()
            })
        }
    });

    // Eight threads need a token at the same moment.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let source = store
                .source_with("example", refresher.clone())
                .expect("valid key");
            std::thread::spawn(move || source.access_token_blocking().map(|t| t.generation()))
        })
        .collect();
    for t in threads {
        println!("got a token of generation {}", t.join().expect("no panic")?);
    }
    println!("refreshes: {}", refreshes.load(Ordering::SeqCst));
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
