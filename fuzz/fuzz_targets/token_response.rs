//! Token endpoints and callback refreshers answer with anything: HTML error pages, truncated
//! JSON, wrong types. Reading an answer must never panic, must classify every failure as
//! InvalidGrant, Terminal or Transient, must accept only a non-empty `access_token` (or, from an
//! unusable answer, only its new `refresh_token`), and its messages must not depend on the
//! tokens in the answer (they never quote one).
//!
//! Input: an optional three-digit HTTP status (`400{"error":...}`; default 200), then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_lock::{fuzzing, interop, ErrorCode, Result, TokenFields};
use serde_json::Value;

const SECRETS: [&str; 3] = ["access_token", "refresh_token", "id_token"];

fuzz_target!(|data: &[u8]| {
    let (status, body) = match data {
        [a, b, c, rest @ ..] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
            let n = [a, b, c]
                .iter()
                .fold(0u16, |n, d| n * 10 + u16::from(**d - b'0'));
            (n, rest)
        }
        _ => (200, data),
    };
    let Some(answer) = fuzzing::token_response(status, body) else {
        assert!(status < 100, "every three-digit status from 100 up is read");
        return;
    };
    check_classification(&answer);
    let success = (200..300).contains(&status);
    match &answer {
        Ok(_) => assert!(success, "only a 2xx answer gives tokens (HTTP {status})"),
        // Not an OAuth answer at all: retryable, and the message says which endpoint.
        Err(e) if success || (500..600).contains(&status) || status == 429 => {
            assert_eq!(e.code(), ErrorCode::Transient, "HTTP {status}");
            assert!(e.to_string().contains(fuzzing::TOKEN_URL), "{e}");
        }
        Err(_) => {}
    }

    let json: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(value) = &json {
        let callback = interop::callback_answer(value);
        check_classification(&callback);
        // A callback's `error` wins over its tokens; a provider's 2xx status wins over `error`.
        let has_error = value.get("error").is_some_and(|e| !e.is_null());
        if let (Ok(a), false) = (&answer, has_error) {
            let b = callback.expect("a token response is a valid callback answer");
            assert_eq!(a, &b, "callback answers read like token responses");
        }
    }
    if let Some(Value::Object(mut obj)) = json {
        // The same answer with other tokens: the same outcome, the same message.
        let original = serde_json::to_vec(&obj).expect("a Value serializes");
        let mut changed = false;
        for name in SECRETS {
            if let Some(Value::String(s)) = obj.get_mut(name) {
                if !s.is_empty() {
                    *s = format!("other-{}", s.len());
                    changed = true;
                }
            }
        }
        if changed {
            let blinded = serde_json::to_vec(&obj).expect("a Value serializes");
            let a = fuzzing::token_response(status, &original).expect("status checked above");
            let b = fuzzing::token_response(status, &blinded).expect("status checked above");
            same_outcome(&a, &b);
            let original: Value = serde_json::from_slice(&original).expect("reparses");
            let blinded: Value = serde_json::from_slice(&blinded).expect("reparses");
            same_outcome(
                &interop::callback_answer(&original),
                &interop::callback_answer(&blinded),
            );
        }
    }
});

fn check_classification(answer: &Result<TokenFields>) {
    match answer {
        Ok(fields) => match &fields.access_token {
            Some(token) => assert!(
                !token.expose().is_empty(),
                "an empty access token is refused"
            ),
            // An unusable answer that rotated: only its new refresh token is kept (G1).
            None => {
                let rt = fields
                    .refresh_token
                    .as_ref()
                    .expect("tokens include an access token or a rotated refresh token");
                assert!(
                    !rt.expose().is_empty(),
                    "an empty refresh token is no rotation"
                );
                assert_eq!(
                    fields,
                    &TokenFields {
                        refresh_token: fields.refresh_token.clone(),
                        ..TokenFields::default()
                    },
                    "a rotation-only answer keeps nothing else"
                );
            }
        },
        Err(e) => assert!(
            matches!(
                e.code(),
                ErrorCode::InvalidGrant | ErrorCode::Terminal | ErrorCode::Transient
            ),
            "a refresh fails only as InvalidGrant, Terminal or Transient, not {:?}",
            e.code()
        ),
    }
}

fn same_outcome(a: &Result<TokenFields>, b: &Result<TokenFields>) {
    match (a, b) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => {
            assert_eq!(a.code(), b.code());
            assert_eq!(a.to_string(), b.to_string(), "a message depends on a token");
        }
        (a, b) => panic!(
            "a token's value decided the outcome: {:?} vs {:?}",
            a.as_ref().map(|_| ()),
            b.as_ref().map(|_| ())
        ),
    }
}
