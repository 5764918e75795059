//! Token fields as they arrive (a token response, a callback's answer, a login) and the
//! access token handed to callers.

use crate::error::{Error, Result};
use crate::secret::Secret;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

/// The token fields of a token response (RFC 6749 §5.1) or of a login.
///
/// Standard fields are parsed; every other field is kept in `extra` (account ids, ...).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenFields {
    pub access_token: Option<Secret>,
    pub token_type: Option<String>,
    /// Lifetime from the moment the request was sent, in milliseconds (`expires_in` × 1000).
    pub expires_in_ms: Option<i64>,
    /// Absolute expiry, when the source gives one instead of `expires_in`.
    pub expires_at_ms: Option<i64>,
    pub refresh_token: Option<Secret>,
    pub scope: Option<String>,
    pub id_token: Option<Secret>,
    pub extra: Map<String, Value>,
}

const STANDARD: [&str; 7] = [
    "access_token",
    "token_type",
    "expires_in",
    "expires_at_ms",
    "refresh_token",
    "scope",
    "id_token",
];

impl TokenFields {
    /// Parses a JSON object in token-response shape. `ignore` names fields that the caller
    /// handles itself (they are neither parsed nor kept in `extra`).
    pub fn from_json(value: &Value, ignore: &[&str]) -> Result<TokenFields, String> {
        let obj = value
            .as_object()
            .ok_or("the token fields are not a JSON object")?;
        let mut out = TokenFields::default();
        for (name, v) in obj {
            if ignore.contains(&name.as_str()) {
                continue;
            }
            if !STANDARD.contains(&name.as_str()) {
                out.extra.insert(name.clone(), v.clone());
                continue;
            }
            if v.is_null() {
                continue;
            }
            match name.as_str() {
                "access_token" => out.access_token = Some(secret(name, v)?),
                "refresh_token" => out.refresh_token = Some(secret(name, v)?),
                "id_token" => out.id_token = Some(secret(name, v)?),
                "token_type" => out.token_type = Some(string(name, v)?),
                "scope" => out.scope = Some(string(name, v)?),
                "expires_in" => out.expires_in_ms = Some(seconds_to_ms(v)?),
                "expires_at_ms" => {
                    out.expires_at_ms = Some(
                        v.as_i64()
                            .ok_or("`expires_at_ms` must be an integer (Unix milliseconds)")?,
                    )
                }
                _ => unreachable!("every standard field is matched"),
            }
        }
        Ok(out)
    }

    /// What is left of an unusable successful answer (no readable access token, or malformed
    /// fields) that still carries a readable new `refresh_token`: only that refresh token.
    /// The provider has already rotated, so dropping it would make the next refresh present
    /// the spent one (G1); the protocol saves it and reports the refresh as `Transient`.
    pub fn rotation_only(answer: &Value) -> Option<TokenFields> {
        let rt = answer.get("refresh_token")?.as_str()?;
        (!rt.is_empty()).then(|| TokenFields {
            refresh_token: Some(Secret::new(rt)),
            ..TokenFields::default()
        })
    }

    /// The expiry of a token obtained by a request sent at `sent_at_ms`.
    pub fn expiry(&self, sent_at_ms: i64) -> Option<i64> {
        self.expires_at_ms
            .or(self.expires_in_ms.map(|ms| sent_at_ms.saturating_add(ms)))
    }
}

fn secret(name: &str, v: &Value) -> Result<Secret, String> {
    match v.as_str() {
        Some(s) if !s.is_empty() => Ok(Secret::new(s)),
        Some(_) => Err(format!("`{name}` is empty")),
        None => Err(format!("`{name}` must be a string")),
    }
}

fn string(name: &str, v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("`{name}` must be a string"))
}

/// `expires_in` is seconds, as a number or (some providers) a numeric string.
fn seconds_to_ms(v: &Value) -> Result<i64, String> {
    let secs = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|s| s.is_finite())
    .ok_or("`expires_in` must be a number of seconds")?;
    Ok((secs.max(0.0) * 1000.0).min(i64::MAX as f64 / 2.0) as i64)
}

/// A valid access token, as returned by `access_token()`. Cheap to clone.
///
/// `Debug` shows a fingerprint, never the token.
#[derive(Clone)]
pub struct AccessToken(Arc<AccessTokenInner>);

struct AccessTokenInner {
    value: String,
    token_type: String,
    expires_at_ms: Option<i64>,
    generation: u64,
}

impl AccessToken {
    pub(crate) fn new(
        value: &str,
        token_type: Option<&str>,
        expires_at_ms: Option<i64>,
        generation: u64,
    ) -> Self {
        AccessToken(Arc::new(AccessTokenInner {
            value: value.to_owned(),
            token_type: token_type.unwrap_or("Bearer").to_owned(),
            expires_at_ms,
            generation,
        }))
    }

    /// The token to send, e.g. in `Authorization: Bearer <value>`.
    pub fn value(&self) -> &str {
        &self.0.value
    }

    /// The token type, `Bearer` unless the provider said otherwise.
    pub fn token_type(&self) -> &str {
        &self.0.token_type
    }

    /// When the token expires (Unix milliseconds), if known.
    pub fn expires_at_ms(&self) -> Option<i64> {
        self.0.expires_at_ms
    }

    /// The record generation this token came from.
    pub fn generation(&self) -> u64 {
        self.0.generation
    }

    /// `"Bearer <value>"`, ready for an `Authorization` header.
    pub fn authorization(&self) -> String {
        format!("{} {}", self.0.token_type, self.0.value)
    }

    pub fn fingerprint(&self) -> String {
        crate::secret::fingerprint(&self.0.value)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("fingerprint", &self.fingerprint())
            .field("token_type", &self.0.token_type)
            .field("expires_at_ms", &self.0.expires_at_ms)
            .field("generation", &self.0.generation)
            .finish()
    }
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.value == other.0.value && self.0.generation == other.0.generation
    }
}

/// Turns a field-parsing message into the error for a caller-supplied credential.
pub(crate) fn invalid_credential(reason: String) -> Error {
    Error::invalid(format!("credential: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_standard_fields_and_keeps_the_rest() {
        let v = json!({"access_token": "a", "token_type": "bearer", "expires_in": 3600,
            "refresh_token": "r", "scope": "s", "account": {"uuid": "u"}, "id_token": null});
        let t = TokenFields::from_json(&v, &[]).unwrap();
        assert_eq!(t.access_token.unwrap().expose(), "a");
        assert_eq!(t.expires_in_ms, Some(3_600_000));
        assert_eq!(t.refresh_token.unwrap().expose(), "r");
        assert_eq!(t.id_token, None);
        assert_eq!(t.extra.get("account"), Some(&json!({"uuid": "u"})));
        assert_eq!(t.extra.len(), 1);
    }

    #[test]
    fn expires_in_as_string_or_fraction() {
        let t = TokenFields::from_json(&json!({"expires_in": "60"}), &[]).unwrap();
        assert_eq!(t.expires_in_ms, Some(60_000));
        let t = TokenFields::from_json(&json!({"expires_in": 0.5}), &[]).unwrap();
        assert_eq!(t.expires_in_ms, Some(500));
        assert_eq!(t.expiry(1000), Some(1500));
        assert!(TokenFields::from_json(&json!({"expires_in": "soon"}), &[]).is_err());
        assert!(TokenFields::from_json(&json!({"access_token": 5}), &[]).is_err());
        assert!(TokenFields::from_json(&json!([1]), &[]).is_err());
    }

    #[test]
    fn access_token_debug_hides_value() {
        let t = AccessToken::new("at-secret", None, Some(5), 3);
        assert!(!format!("{t:?}").contains("at-secret"));
        assert_eq!(t.authorization(), "Bearer at-secret");
    }
}
