//! The programs' own file layouts (DESIGN.md §6.1 table): where each keeps its tokens, how it
//! marks a logged-out file, and how a record's tokens merge into it without touching the
//! fields oauth-lock does not own.

use super::{MirrorRead, MirrorShape, MirrorTokens};
use crate::record::Record;
use crate::secret::Secret;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::time::SystemTime;

/// Reads a parsed file of `shape`.
pub(super) fn tokens_of(shape: MirrorShape, root: &Value) -> MirrorRead {
    match shape {
        MirrorShape::ClaudeCode => claude_code(root),
        MirrorShape::Codex => codex(root),
    }
}

/// A non-empty string field.
fn text<'a>(o: &'a Value, name: &str) -> Option<&'a str> {
    o.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `{"claudeAiOauth": {"accessToken", "refreshToken", "expiresAt" (ms), "scopes": [..], …}}`.
/// A failed Claude Code refresh blanks the tokens and sets `expiresAt: 0` (the "logged-out
/// stub"): that is no credential, never "another writer rotated it".
fn claude_code(root: &Value) -> MirrorRead {
    let Some(o) = root.get("claudeAiOauth").filter(|o| o.is_object()) else {
        return MirrorRead::NoTokens;
    };
    let expires = o.get("expiresAt").and_then(Value::as_i64);
    let (Some(access), Some(refresh)) = (text(o, "accessToken"), text(o, "refreshToken")) else {
        return MirrorRead::Stub;
    };
    if expires == Some(0) {
        return MirrorRead::Stub;
    }
    let scope = o.get("scopes").and_then(Value::as_array).map(|s| {
        s.iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    });
    MirrorRead::Tokens(MirrorTokens {
        access_token: Secret::new(access),
        refresh_token: Some(Secret::new(refresh)),
        expires_at_ms: expires,
        id_token: None,
        scope: scope.filter(|s| !s.is_empty()),
    })
}

/// `{"tokens": {"id_token", "access_token", "refresh_token", "account_id"}, "last_refresh",
/// "auth_mode", "OPENAI_API_KEY"}`; the expiry is the access token's JWT `exp`. A file with
/// only an API key (`tokens` null) holds no OAuth credential.
fn codex(root: &Value) -> MirrorRead {
    let Some(t) = root.get("tokens").filter(|t| t.is_object()) else {
        return MirrorRead::NoTokens;
    };
    let (Some(access), Some(refresh)) = (text(t, "access_token"), text(t, "refresh_token")) else {
        return MirrorRead::Stub;
    };
    MirrorRead::Tokens(MirrorTokens {
        access_token: Secret::new(access),
        refresh_token: Some(Secret::new(refresh)),
        expires_at_ms: jwt_expiry_ms(access),
        id_token: text(t, "id_token").map(Secret::new),
        scope: None,
    })
}

/// The `exp` claim (seconds) of a JWT, in Unix milliseconds; `None` for an opaque token.
pub(super) fn jwt_expiry_ms(token: &str) -> Option<i64> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?;
    let seconds = exp.as_i64().or_else(|| exp.as_f64().map(|f| f as i64))?;
    seconds.checked_mul(1000)
}

/// Merges `record`'s tokens into `root` (the file as read, or `{}`). A field the record does
/// not have keeps the file's value: a refresh answer without a scope or an id token does not
/// erase the program's.
pub(super) fn merge(shape: MirrorShape, root: &mut Map<String, Value>, record: &Record) {
    match shape {
        MirrorShape::ClaudeCode => merge_claude_code(root, record),
        MirrorShape::Codex => merge_codex(root, record),
    }
}

/// The object under `name`, made one if it is missing or not an object.
fn object<'a>(root: &'a mut Map<String, Value>, name: &str) -> &'a mut Map<String, Value> {
    let entry = root.entry(name).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("made an object above")
}

fn merge_claude_code(root: &mut Map<String, Value>, record: &Record) {
    let o = object(root, "claudeAiOauth");
    if let Some(at) = &record.access_token {
        o.insert("accessToken".into(), json!(at.expose()));
    }
    if let Some(rt) = &record.refresh_token {
        o.insert("refreshToken".into(), json!(rt.expose()));
    }
    if let Some(exp) = record.expires_at_ms {
        o.insert("expiresAt".into(), json!(exp));
    }
    if let Some(scope) = &record.scope {
        let scopes: Vec<&str> = scope.split_whitespace().collect();
        o.insert("scopes".into(), json!(scopes));
    }
    // Providers that say how long the refresh token lives (`refresh_token_expires_in`).
    let rt_lifetime = record
        .extra
        .get("refresh_token_expires_in")
        .and_then(Value::as_i64);
    if let (Some(seconds), Some(issued)) = (rt_lifetime, record.refresh_token_issued_at_ms) {
        o.insert(
            "refreshTokenExpiresAt".into(),
            json!(issued.saturating_add(seconds.saturating_mul(1000))),
        );
    }
    if !o.contains_key("clientId") {
        if let Some(id) = record
            .refresh
            .as_ref()
            .and_then(|r| r.get("client_id"))
            .and_then(Value::as_str)
        {
            o.insert("clientId".into(), json!(id));
        }
    }
}

fn merge_codex(root: &mut Map<String, Value>, record: &Record) {
    let t = object(root, "tokens");
    if let Some(at) = &record.access_token {
        t.insert("access_token".into(), json!(at.expose()));
    }
    if let Some(rt) = &record.refresh_token {
        t.insert("refresh_token".into(), json!(rt.expose()));
    }
    if let Some(id) = &record.id_token {
        t.insert("id_token".into(), json!(id.expose()));
    }
    if let Some(account) = record.extra.get("account_id").filter(|v| v.is_string()) {
        t.entry("account_id").or_insert_with(|| account.clone());
    }
    // Codex refreshes by itself when `last_refresh` is older than 8 days; a write-back is a
    // refresh as far as it is concerned.
    let now = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
    root.insert("last_refresh".into(), json!(now));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(exp: i64) -> String {
        let enc = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
        };
        format!(
            "{}.{}.sig",
            enc(&json!({"alg": "none"})),
            enc(&json!({"exp": exp}))
        )
    }

    #[test]
    fn jwt_expiry_is_read_and_opaque_tokens_have_none() {
        assert_eq!(jwt_expiry_ms(&jwt(1_900_000_000)), Some(1_900_000_000_000));
        assert_eq!(jwt_expiry_ms("opaque-token"), None);
        assert_eq!(jwt_expiry_ms("a.!!!.c"), None);
        assert_eq!(jwt_expiry_ms(&jwt(i64::MAX)), None, "no overflow");
    }

    #[test]
    fn claude_code_stubs_and_tokens() {
        let full = json!({"claudeAiOauth": {"accessToken": "a", "refreshToken": "r",
            "expiresAt": 5, "scopes": ["user:inference", "user:profile"]}});
        let MirrorRead::Tokens(t) = tokens_of(MirrorShape::ClaudeCode, &full) else {
            panic!("tokens expected")
        };
        assert_eq!(t.expires_at_ms, Some(5));
        assert_eq!(t.scope.as_deref(), Some("user:inference user:profile"));
        for stub in [
            json!({"claudeAiOauth": {"accessToken": "", "refreshToken": "", "expiresAt": 0}}),
            json!({"claudeAiOauth": {"accessToken": "a", "refreshToken": "", "expiresAt": 9}}),
            json!({"claudeAiOauth": {"accessToken": "a", "refreshToken": "r", "expiresAt": 0}}),
        ] {
            assert!(matches!(
                tokens_of(MirrorShape::ClaudeCode, &stub),
                MirrorRead::Stub
            ));
        }
        assert!(matches!(
            tokens_of(MirrorShape::ClaudeCode, &json!({"mcpOAuth": {}})),
            MirrorRead::NoTokens
        ));
    }

    #[test]
    fn codex_api_key_only_and_jwt_expiry() {
        let api_key = json!({"OPENAI_API_KEY": "sk-x", "tokens": null});
        assert!(matches!(
            tokens_of(MirrorShape::Codex, &api_key),
            MirrorRead::NoTokens
        ));
        let file = json!({"tokens": {"access_token": jwt(1_800_000_000), "refresh_token": "r",
            "id_token": "i", "account_id": "acct"}});
        let MirrorRead::Tokens(t) = tokens_of(MirrorShape::Codex, &file) else {
            panic!("tokens expected")
        };
        assert_eq!(t.expires_at_ms, Some(1_800_000_000_000));
        assert_eq!(t.id_token.as_ref().map(Secret::expose), Some("i"));
    }

    #[test]
    fn a_merge_keeps_what_the_record_lacks_and_every_foreign_field() {
        let mut record = Record::empty("k");
        record.access_token = Some(Secret::new("A2"));
        record.refresh_token = Some(Secret::new("R2"));
        record.expires_at_ms = Some(77);
        let mut root = json!({"claudeAiOauth": {"accessToken": "A1", "refreshToken": "R1",
            "expiresAt": 1, "scopes": ["s"], "subscriptionType": "max", "rateLimitTier": "t",
            "clientId": "c", "future": 1}, "mcpOAuth": {"x": {"y": 1}}})
        .as_object()
        .unwrap()
        .clone();
        merge(MirrorShape::ClaudeCode, &mut root, &record);
        let o = &root["claudeAiOauth"];
        assert_eq!(o["accessToken"], "A2");
        assert_eq!(o["refreshToken"], "R2");
        assert_eq!(o["expiresAt"], 77);
        assert_eq!(o["scopes"], json!(["s"]), "no scope in the record: kept");
        assert_eq!(o["subscriptionType"], "max");
        assert_eq!(o["rateLimitTier"], "t");
        assert_eq!(o["clientId"], "c");
        assert_eq!(o["future"], 1);
        assert_eq!(root["mcpOAuth"], json!({"x": {"y": 1}}));

        let mut codex = json!({"OPENAI_API_KEY": null, "auth_mode": "chatgpt", "other": [1],
            "tokens": {"access_token": "A1", "refresh_token": "R1", "id_token": "I1",
            "account_id": "acct"}, "last_refresh": "2020-01-01T00:00:00Z"})
        .as_object()
        .unwrap()
        .clone();
        merge(MirrorShape::Codex, &mut codex, &record);
        let t = &codex["tokens"];
        assert_eq!(t["access_token"], "A2");
        assert_eq!(t["refresh_token"], "R2");
        assert_eq!(t["id_token"], "I1", "no id token in the answer: kept");
        assert_eq!(t["account_id"], "acct");
        assert_eq!(codex["auth_mode"], "chatgpt");
        assert_eq!(codex["other"], json!([1]));
        assert!(codex["OPENAI_API_KEY"].is_null());
        let refreshed = codex["last_refresh"].as_str().unwrap();
        assert!(
            refreshed > "2026-" && refreshed.ends_with('Z'),
            "RFC 3339: {refreshed}"
        );
    }
}
