//! Every read checks that the record holds the key asked for (DESIGN.md §3). Two keys that a
//! case-insensitive file system does not tell apart (stems made by an older version:
//! `Work.json` and `work.json`) share one file; the kernel here has no casefold support
//! (ext4 casefold needs CONFIG_UNICODE), so the collision is simulated: key `Work`'s record
//! is put, byte for byte, at the path of key `work`.

use oauth_lock::{
    refresher_fn, Credential, ErrorCode, Refresher, SaveOptions, Secret, Store, TokenFields,
};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A refresher that must never be called: it counts, and would hand out new tokens.
fn counting(calls: &Arc<AtomicUsize>) -> Arc<dyn Refresher> {
    let calls = calls.clone();
    refresher_fn(move |_| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(TokenFields {
                access_token: Some(Secret::new("at-new")),
                refresh_token: Some(Secret::new("rt-new")),
                expires_in_ms: Some(3_600_000),
                ..Default::default()
            })
        }
    })
}

#[test]
fn a_record_holding_another_key_is_corrupt_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let cred = json!({"access_token": "at-0", "refresh_token": "rt-0", "expires_in": 0});
    store
        .save_blocking(
            "Work",
            Credential::from_json(&cred).unwrap(),
            SaveOptions::default(),
        )
        .unwrap();
    let theirs = store.path_of("Work").unwrap();
    let ours = store.path_of("work").unwrap();
    assert_ne!(
        theirs.file_name().unwrap().to_ascii_lowercase(),
        ours.file_name().unwrap().to_ascii_lowercase(),
        "the stems themselves differ on a case-insensitive file system"
    );
    let bytes = std::fs::read(&theirs).unwrap();
    std::fs::write(&ours, &bytes).unwrap();

    let check = |code: ErrorCode, message: &str, what: &str| {
        assert_eq!(code, ErrorCode::Corrupt, "{what}: {message}");
        assert!(
            message.contains(r#"the record holds key "Work", not "work""#),
            "{what} names both keys: {message}"
        );
        assert!(
            message.contains("two keys share one file"),
            "{what}: {message}"
        );
        assert!(
            message.contains(&ours.display().to_string()),
            "{what} names the path: {message}"
        );
        assert_eq!(
            std::fs::read(&ours).unwrap(),
            bytes,
            "{what} left the file untouched"
        );
    };

    let calls = Arc::new(AtomicUsize::new(0));
    let source = store.source_with("work", counting(&calls)).unwrap();
    // The unlocked read (the access token is expired, so it is not served from memory).
    let e = source.access_token_blocking().unwrap_err();
    assert_eq!(e.path(), Some(ours.as_path()));
    assert_eq!(e.key(), Some("work"));
    check(e.code(), &e.to_string(), "access_token");
    let e = source.reject_blocking("at-0").unwrap_err();
    check(e.code(), &e.to_string(), "reject");
    // A forced refresh skips the unlocked read: the read under the lock checks too.
    let e = source.verify_blocking().unwrap_err();
    check(e.code(), &e.to_string(), "verify (the read under the lock)");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no refresh was attempted");

    let status = store.status("work").unwrap();
    let problem = status.problem.expect("status reports the problem");
    check(problem.code, &problem.message, "status");
    assert!(
        !status.has_refresh_token,
        "nothing of Work's is reported as work's"
    );

    let listed = store.list().unwrap();
    let keys: Vec<&str> = listed.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["Work", "work"]);
    assert!(listed[0].problem.is_none(), "Work's own record is fine");
    let problem = listed[1]
        .problem
        .as_ref()
        .expect("list reports the problem");
    check(problem.code, &problem.message, "list");

    // A login for `work` must not overwrite `Work`'s credential (a save with a refresh token
    // replaces a record that does not parse, never another key's).
    let login = json!({"access_token": "at-w", "refresh_token": "rt-w"});
    let e = store
        .save_blocking(
            "work",
            Credential::from_json(&login).unwrap(),
            SaveOptions::default(),
        )
        .unwrap_err();
    check(e.code(), &e.to_string(), "save");
    let forced = SaveOptions {
        allow_downgrade: true,
        ..Default::default()
    };
    let e = store
        .save_blocking("work", Credential::from_json(&login).unwrap(), forced)
        .unwrap_err();
    check(e.code(), &e.to_string(), "save with allow_downgrade");

    // Key Work itself still works, from its own file.
    assert_eq!(std::fs::read(&theirs).unwrap(), bytes);
    assert_eq!(store.status("Work").unwrap().generation, Some(1));
}
