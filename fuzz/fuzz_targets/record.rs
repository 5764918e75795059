//! Record files come from disk, where any process or person may have written anything.
//! Reading one must never panic and may fail only as `Corrupt` or `UnsupportedFormat`, with a
//! message that depends on no value in the file (so it never quotes a token); a record that
//! reads must survive the store's rewrites (to_bytes, a refresh, a needs_login mark) with
//! every field, and `Store::status` must report exactly what the parser decided (and a record
//! of another key as `Corrupt`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_lock::{interop, ErrorCode, MirrorConfig, OAuth2Config, Record, Secret, Store};
use oauth_lock::{State, TokenFields};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Clock readings the protocol could pass (the epoch, and a present-day time).
const NOWS: [i64; 2] = [0, 1_800_000_000_000];
/// Refresh margins (none, the default five minutes, a day).
const MARGINS: [i64; 3] = [0, 300_000, 86_400_000];
const KEY: &str = "fuzz";

fuzz_target!(|data: &[u8]| {
    let parsed = Record::parse(data);
    match &parsed {
        Err(e) => assert!(
            matches!(e.code(), ErrorCode::Corrupt | ErrorCode::UnsupportedFormat),
            "a record read fails only as Corrupt or UnsupportedFormat, not {:?}",
            e.code()
        ),
        Ok(rec) => rewrites_keep_the_record(rec),
    }
    messages_never_depend_on_values(data);
    status_agrees_with_the_parser(data, &parsed);
});

fn rewrites_keep_the_record(rec: &Record) {
    let bytes = rec.to_bytes();
    let again = Record::parse(&bytes).expect("a record that parsed parses again after to_bytes");
    assert_eq!(&again, rec, "parse(to_bytes(r)) == r");
    assert_eq!(again.to_bytes(), bytes, "to_bytes is a fixed point");

    // What the protocol and status derive from a record read.
    for now in NOWS {
        for margin in MARGINS {
            let m = rec.margin_ms(margin);
            assert!(m <= margin, "the margin never exceeds the configured one");
            if rec.is_fresh(now, margin) {
                assert!(rec.is_unexpired(now), "fresh implies unexpired");
            }
        }
    }
    if let Some(mirror) = &rec.mirror {
        let _ = MirrorConfig::from_json(mirror);
    }
    if let Some(refresh) = &rec.refresh {
        let _ = OAuth2Config::from_json(refresh);
    }
    let _ = interop::callback_credential(rec);

    // A refresh committed over this record (DESIGN.md §4 step 7), then a needs_login mark.
    let now = NOWS[1];
    let mut next = rec.clone();
    next.apply_refresh(
        TokenFields {
            access_token: Some(Secret::new("at-fuzz")),
            refresh_token: Some(Secret::new("rt-fuzz")),
            expires_in_ms: Some(3_600_000),
            ..TokenFields::default()
        },
        now,
    );
    next.stamp(rec.generation, now);
    let committed = Record::parse(&next.to_bytes()).expect("a refreshed record parses");
    assert!(
        committed.generation > rec.generation,
        "a write raises the generation"
    );
    assert_eq!(committed.unknown, rec.unknown, "unknown fields are kept");
    assert_eq!(committed.refresh, rec.refresh, "the refresh config is kept");
    assert_eq!(committed.state, State::Ok);
    next.mark_needs_login("invalid_grant", None, now);
    next.stamp(committed.generation, now);
    let dead = Record::parse(&next.to_bytes()).expect("a needs_login record parses");
    assert_eq!(dead.state, State::NeedsLogin);
    assert!(dead.generation > committed.generation);
}

/// Parsing the same JSON with every string value replaced (except `state`, an enum) must
/// give the same outcome and the same message: no message can quote a token.
fn messages_never_depend_on_values(data: &[u8]) {
    let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let original = serde_json::to_vec(&obj).expect("a Value serializes");
    for (name, v) in obj.iter_mut() {
        if name != "state" {
            blind(v);
        }
    }
    let blinded = serde_json::to_vec(&obj).expect("a Value serializes");
    match (Record::parse(&original), Record::parse(&blinded)) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => {
            assert_eq!(a.code(), b.code());
            assert_eq!(a.to_string(), b.to_string(), "a message depends on a value");
        }
        (a, b) => panic!(
            "a string value decided whether a record parses: {:?} vs {:?}",
            a.map(|_| ()),
            b.map(|_| ())
        ),
    }
}

fn blind(v: &mut Value) {
    match v {
        Value::String(s) => *s = "blinded".to_owned(),
        Value::Array(items) => items.iter_mut().for_each(blind),
        Value::Object(fields) => fields.values_mut().for_each(blind),
        _ => {}
    }
}

fn store() -> &'static (Store, PathBuf) {
    static STORE: OnceLock<(Store, PathBuf)> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("oauth-lock-fuzz-{}", std::process::id()));
        let store = Store::open(&dir).expect("a store in the temp dir");
        let path = store.path_of(KEY).expect("a valid key");
        (store, path)
    })
}

/// The store reads the file as the parser does and reports the same code, naming key and path.
fn status_agrees_with_the_parser(data: &[u8], parsed: &oauth_lock::Result<Record>) {
    let (store, path) = store();
    // A new file each time: truncating one in place makes ext4 flush it on close (slow).
    let _ = std::fs::remove_file(path);
    std::fs::write(path, data).expect("writing the record file");
    let status = store
        .status(KEY)
        .expect("status reports read problems, never fails on them");
    assert!(status.exists);
    match (parsed, &status.problem) {
        // Every read checks that the record holds the key asked for (DESIGN.md §3).
        (Ok(rec), Some(problem)) if rec.key != KEY => {
            assert_eq!(problem.code, ErrorCode::Corrupt);
            assert!(
                problem
                    .message
                    .contains(&format!("holds key {:?}, not {KEY:?}", rec.key)),
                "{}",
                problem.message
            );
            assert_eq!(status.generation, None);
        }
        (Ok(rec), None) => {
            assert_eq!(rec.key, KEY, "a record of another key is reported");
            assert_eq!(status.generation, Some(rec.generation));
            assert_eq!(status.state, Some(rec.state));
            assert_eq!(status.has_refresh_token, rec.refresh_token.is_some());
            assert_eq!(status.expires_at_ms, rec.expires_at_ms);
        }
        (Err(e), Some(problem)) => {
            assert_eq!(problem.code, e.code());
            assert!(
                problem.message.contains(&format!("{KEY:?}")),
                "{}",
                problem.message
            );
            assert!(
                problem.message.contains(&path.display().to_string()),
                "{}",
                problem.message
            );
            assert_eq!(status.generation, None);
        }
        (p, s) => panic!(
            "status and parse disagree: {:?} vs {:?}",
            p.as_ref().map(|_| ()),
            s
        ),
    }
}
