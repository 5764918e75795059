//! The built-in OAuth2 refresher (RFC 6749 §6): a `refresh_token` grant over reqwest with
//! rustls, form or JSON body, HTTPS only except loopback, errors classified by the parsed
//! `error` field.

use super::{classify_oauth_error, Refresher};
use crate::error::{Context, Error, Result};
use crate::record::Record;
use crate::secret::Secret;
use crate::tokens::TokenFields;
use base64::Engine;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// How the token request's parameters are sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// `application/x-www-form-urlencoded` (RFC 6749's default).
    #[default]
    Form,
    /// `application/json` (as Anthropic expects).
    Json,
}

/// How a confidential client sends its secret.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic (RFC 6749 §2.3.1), the default.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the request body.
    Body,
}

/// The non-secret description of how to refresh a credential (a record's `refresh` field).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    pub token_url: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default)]
    pub body: Body,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Request timeout in milliseconds (default 30 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl OAuth2Config {
    /// A config with the defaults: form body, Basic auth if a secret is set, 30 s timeout.
    pub fn new(token_url: impl Into<String>, client_id: impl Into<String>) -> Self {
        OAuth2Config {
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret: None,
            client_auth: None,
            scope: None,
            body: Body::Form,
            extra_params: BTreeMap::new(),
            headers: BTreeMap::new(),
            timeout_ms: None,
        }
    }

    /// Parses a config from JSON (a record's `refresh` field, a binding's argument).
    pub fn from_json(value: &Value) -> Result<Self> {
        let config: OAuth2Config = serde_json::from_value(value.clone()).map_err(|e| {
            let msg = e.to_string();
            // Field-level messages are safe; value-quoting ones might contain the secret.
            let safe = if msg.starts_with("unknown field") || msg.starts_with("missing field") {
                msg
            } else {
                "a field has the wrong type (token_url, client_id, client_secret, scope, headers and extra_params values are strings; body is \"form\" or \"json\"; client_auth is \"basic\" or \"body\"; timeout_ms is an integer)".to_owned()
            };
            Error::invalid(format!("refresh config: {safe}"))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Serializes the config for a record's `refresh` field.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a config always serializes")
    }

    /// Checks the URL (HTTPS, or HTTP to loopback) and the other fields.
    pub fn validate(&self) -> Result<()> {
        let url = url::Url::parse(&self.token_url).map_err(|e| {
            Error::invalid(format!(
                "refresh config: token_url {:?} is not a URL ({e})",
                self.token_url
            ))
        })?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(Error::Insecure {
                    ctx: Context::default(),
                    url: self.token_url.clone(),
                })
            }
            other => {
                return Err(Error::invalid(format!(
                    "refresh config: token_url scheme {other:?} is not http(s)"
                )))
            }
        }
        if self.client_id.is_empty() {
            return Err(Error::invalid("refresh config: client_id is empty"));
        }
        for (name, value) in &self.headers {
            let ok = reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && reqwest::header::HeaderValue::from_str(value).is_ok();
            if !ok {
                return Err(Error::invalid(format!(
                    "refresh config: header {name:?} is not a valid HTTP header"
                )));
            }
        }
        if self.timeout_ms == Some(0) {
            return Err(Error::invalid(
                "refresh config: timeout_ms must be positive",
            ));
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(30_000))
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The built-in refresher for a validated [`OAuth2Config`].
#[derive(Clone, Debug)]
pub struct OAuth2 {
    config: OAuth2Config,
}

impl OAuth2 {
    pub fn new(config: OAuth2Config) -> Result<Self> {
        config.validate()?;
        Ok(OAuth2 { config })
    }

    pub fn config(&self) -> &OAuth2Config {
        &self.config
    }

    async fn request(&self, refresh_token: &Secret) -> Result<TokenFields> {
        let c = &self.config;
        let http = crate::runtime::process().http.clone();
        let basic =
            c.client_secret.is_some() && c.client_auth.unwrap_or_default() == ClientAuth::Basic;
        let mut params: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ];
        if !basic {
            params.push(("client_id", &c.client_id));
            if let Some(s) = &c.client_secret {
                params.push(("client_secret", s.expose()));
            }
        }
        if let Some(scope) = &c.scope {
            params.push(("scope", scope));
        }
        params.extend(c.extra_params.iter().map(|(k, v)| (k.as_str(), v.as_str())));

        let mut req = http
            .post(&c.token_url)
            .timeout(c.timeout())
            .header("accept", "application/json");
        for (k, v) in &c.headers {
            req = req.header(k, v);
        }
        if let (true, Some(secret)) = (basic, &c.client_secret) {
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&c.client_id), enc(secret.expose()));
            req = req.header(
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ),
            );
        }
        req = match c.body {
            Body::Form => req.form(&params),
            Body::Json => req.json(&params.iter().cloned().collect::<BTreeMap<_, _>>()),
        };

        let url = &c.token_url;
        let resp = req.send().await.map_err(|e| {
            Error::transient(format!(
                "token request to {url} failed: {}",
                without_url(&e)
            ))
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        let bytes = resp.bytes().await.map_err(|e| {
            Error::transient(format!(
                "reading the answer of {url} failed: {}",
                without_url(&e)
            ))
        })?;
        parse_token_response(url, status, &bytes).map_err(|e| match (e, retry_after) {
            (Error::Transient { ctx, reason, .. }, Some(after)) => Error::Transient {
                ctx,
                reason,
                retry_after: Some(after),
            },
            (e, _) => e,
        })
    }
}

/// A `Retry-After` header (RFC 9110 §10.2.3): delay-seconds or an HTTP date, as a delay from
/// `now`. `None` when it is neither; a date in the past is no delay.
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Reads a token endpoint's answer (RFC 6749 §5.1, §5.2): token fields on success, else an
/// error classified by HTTP status and the OAuth `error` field. Pure, so that it can be
/// tested and fuzzed without a server; messages name the URL, never a token.
pub(crate) fn parse_token_response(
    url: &str,
    status: reqwest::StatusCode,
    bytes: &[u8],
) -> Result<TokenFields> {
    let body: Option<Value> = serde_json::from_slice(bytes).ok();
    if status.is_success() {
        let has_token = body
            .as_ref()
            .and_then(|b| b.get("access_token"))
            .is_some_and(Value::is_string);
        let read = match body.as_ref().filter(|_| has_token) {
            Some(b) => TokenFields::from_json(b, &[]).map_err(|m| {
                Error::transient(format!(
                    "{url} answered HTTP {status} with a malformed token response: {m}"
                ))
            }),
            None => Err(Error::transient(format!(
                "{url} answered HTTP {status} with a body that is not an OAuth token response"
            ))),
        };
        return read.or_else(|e| body.as_ref().and_then(TokenFields::rotation_only).ok_or(e));
    }
    let oauth_error = body
        .as_ref()
        .and_then(|b| b.get("error"))
        .and_then(Value::as_str);
    let description = body
        .as_ref()
        .and_then(|b| b.get("error_description"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match oauth_error {
        _ if status.is_server_error() || status.as_u16() == 429 => Err(Error::transient(format!(
            "{url} answered HTTP {status}{}",
            oauth_error.map(|e| format!(" ({e})")).unwrap_or_default()
        ))),
        Some(error) => Err(classify_oauth_error(error, description)),
        None => Err(Error::transient(format!(
            "{url} answered HTTP {status} with a body that is not an OAuth error"
        ))),
    }
}

/// reqwest's messages repeat the URL; ours already names it.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.without_url_ref().to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

trait WithoutUrlRef {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrlRef for reqwest::Error {
    fn without_url_ref(&self) -> String {
        if self.is_timeout() {
            "timed out".into()
        } else if self.is_connect() {
            "could not connect".into()
        } else if self.is_body() || self.is_decode() {
            "bad body".into()
        } else {
            "request error".into()
        }
    }
}

impl Refresher for OAuth2 {
    fn refresh<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Result<TokenFields>> {
        Box::pin(async move {
            let rt = record
                .refresh_token
                .as_ref()
                .ok_or_else(|| Error::needs_login("the record has no refresh token"))?;
            self.request(rt).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use serde_json::json;

    #[test]
    fn https_only_except_loopback() {
        for ok in [
            "https://auth.example.com/t",
            "http://127.0.0.1:9/t",
            "http://localhost/t",
            "http://[::1]:8/t",
        ] {
            OAuth2Config::new(ok, "c").validate().unwrap();
        }
        let err = OAuth2Config::new("http://auth.example.com/t", "c")
            .validate()
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Insecure);
        let err = OAuth2Config::new("ftp://x/t", "c").validate().unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
        let err = OAuth2Config::new("not a url", "c").validate().unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
    }

    fn answer(status: u16, body: &str) -> Result<TokenFields> {
        let status = reqwest::StatusCode::from_u16(status).unwrap();
        parse_token_response("https://auth.example.com/t", status, body.as_bytes())
    }

    fn code(status: u16, body: &str) -> ErrorCode {
        answer(status, body).unwrap_err().code()
    }

    #[test]
    fn token_response_success_keeps_every_field() {
        let f = answer(
            200,
            r#"{"access_token":"at-1","refresh_token":"rt-1","expires_in":"60","token_type":"Bearer","account":{"id":7}}"#,
        )
        .unwrap();
        assert_eq!(f.access_token.unwrap().expose(), "at-1");
        assert_eq!(f.refresh_token.unwrap().expose(), "rt-1");
        assert_eq!(f.expires_in_ms, Some(60_000));
        assert_eq!(f.extra["account"]["id"], 7);
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_794_000_000);
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(90)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn token_response_errors_are_classified_by_status_then_oauth_error() {
        assert_eq!(
            code(400, r#"{"error":"invalid_grant"}"#),
            ErrorCode::InvalidGrant
        );
        assert_eq!(
            code(401, r#"{"error":"invalid_client"}"#),
            ErrorCode::Terminal
        );
        assert_eq!(
            code(400, r#"{"error":"temporarily_unavailable"}"#),
            ErrorCode::Transient
        );
        assert_eq!(
            code(500, r#"{"error":"invalid_grant"}"#),
            ErrorCode::Transient
        );
        assert_eq!(
            code(429, r#"{"error":"invalid_grant"}"#),
            ErrorCode::Transient
        );
        assert_eq!(code(400, "<html>bad gateway</html>"), ErrorCode::Transient);
        assert_eq!(code(400, r#"{"error":7}"#), ErrorCode::Transient);
        assert_eq!(code(200, r#"{"token":"x"}"#), ErrorCode::Transient);
        assert_eq!(code(200, r#"{"access_token":""}"#), ErrorCode::Transient);
        assert_eq!(code(200, r#"["access_token"]"#), ErrorCode::Transient);
        assert_eq!(code(302, ""), ErrorCode::Transient);
    }

    #[test]
    fn an_unusable_success_keeps_only_its_new_refresh_token() {
        for body in [
            r#"{"access_token":"at-secret-1","refresh_token":"rt-secret-2","expires_in":"soon"}"#,
            r#"{"access_token":7,"refresh_token":"rt-secret-2"}"#,
            r#"{"refresh_token":"rt-secret-2"}"#,
        ] {
            let fields = answer(200, body).unwrap();
            assert_eq!(fields.access_token, None, "{body}");
            assert_eq!(fields.refresh_token.unwrap().expose(), "rt-secret-2");
        }
        // Nothing to keep: an empty or wrong-typed refresh token is no rotation.
        for body in [r#"{"refresh_token":""}"#, r#"{"refresh_token":5}"#] {
            assert_eq!(answer(200, body).unwrap_err().code(), ErrorCode::Transient);
        }
        // Only a success rotates; an error body's refresh token is ignored.
        assert!(answer(400, r#"{"refresh_token":"rt-secret-2"}"#).is_err());
    }

    #[test]
    fn token_response_messages_name_the_url_never_a_token() {
        let err = answer(
            200,
            r#"{"access_token":"at-secret-1","refresh_token":7,"expires_in":"soon"}"#,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("https://auth.example.com/t"), "{msg}");
        assert!(msg.contains("expires_in"), "{msg}");
        assert!(!msg.contains("secret"), "{msg}");
        let msg = answer(
            503,
            r#"{"error":"server_error","refresh_token":"rt-secret-3"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains("503 Service Unavailable (server_error)"),
            "{msg}"
        );
        assert!(!msg.contains("secret"), "{msg}");
    }

    #[test]
    fn config_json_is_strict_and_never_quotes_the_secret() {
        let c = OAuth2Config::from_json(
            &json!({"token_url": "https://a/t", "client_id": "c", "body": "json"}),
        )
        .unwrap();
        assert_eq!(c.body, Body::Json);
        let err = OAuth2Config::from_json(
            &json!({"token_url": "https://a/t", "client_id": "c", "bogus": 1}),
        )
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
        assert!(err.to_string().contains("bogus"), "{err}");
        let err = OAuth2Config::from_json(
            &json!({"token_url": "https://a/t", "client_id": "c", "client_secret": 12345}),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("12345"), "{err}");
        let err = OAuth2Config::from_json(&json!({"client_id": "c"})).unwrap_err();
        assert!(err.to_string().contains("token_url"), "{err}");
    }
}
