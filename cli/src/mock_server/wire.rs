//! The HTTP side of the token endpoint: strict decoding of requests and the shape of answers,
//! per RFC 6749.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::state::Issued;
use super::{BodyKind, MockOptions};

/// Every token response carries the same scope, as a real provider would echo the granted one.
const SCOPE: &str = "user:inference";

/// An OAuth error answer (RFC 6749 §5.2).
#[derive(Debug)]
pub(super) struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
        }
    }

    pub(super) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub(super) fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    pub(super) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            description,
        )
    }

    /// Whether the answer is `invalid_grant`, which the counters keep apart from the other 4xx.
    pub(super) fn is_invalid_grant(&self) -> bool {
        self.code == "invalid_grant"
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.code, "error_description": self.description }));
        let mut response = (self.status, no_store(), body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6749 §5.2: a 401 invalid_client names the authentication scheme to use.
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"oauth-lock-mock\""),
            );
        }
        response
    }
}

/// RFC 6749 §5.1: token answers must not be cached by anything in between.
fn no_store() -> [(axum::http::HeaderName, &'static str); 2] {
    [(CACHE_CONTROL, "no-store"), (PRAGMA, "no-cache")]
}

/// The successful token response for `issued`.
pub(super) fn token_response(issued: &Issued, lifetime: Duration) -> Response {
    // Clients must cope with a fractional `expires_in`, but whole lifetimes stay integers
    // because that is what almost every provider sends.
    let expires_in = if lifetime.subsec_nanos() == 0 {
        json!(lifetime.as_secs())
    } else {
        json!(lifetime.as_secs_f64())
    };
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": SCOPE,
        "account": { "uuid": issued.family },
    });
    if let Some(refresh_token) = &issued.refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    (no_store(), Json(body)).into_response()
}

/// What a token request asks for, once decoded and its client authenticated.
#[derive(Debug)]
pub(super) enum Grant {
    /// `authorization_code` or `password`: both start a new token family here.
    NewFamily,
    /// `refresh_token`, with the token presented.
    Refresh(String),
}

/// Decodes a token request, authenticates its client and names its grant.
pub(super) fn decode_token_request(
    headers: &HeaderMap,
    body: &[u8],
    opts: &MockOptions,
) -> Result<Grant, OAuthError> {
    let params = decode_body(headers, body, opts.body)?;
    authenticate(headers, &params, opts)?;
    let required = |name: &str| {
        params
            .get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {name}")))
    };
    match required("grant_type")? {
        "refresh_token" => Ok(Grant::Refresh(required("refresh_token")?.to_owned())),
        "authorization_code" => required("code").map(|_| Grant::NewFamily),
        "password" => required("username")
            .and(required("password"))
            .map(|_| Grant::NewFamily),
        other => Err(OAuthError::unsupported_grant_type(format!(
            "grant_type {other:?} is not supported"
        ))),
    }
}

/// Request parameters, with empty values dropped: RFC 6749 §3.1 says they count as omitted.
struct Params(HashMap<String, String>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

fn decode_body(headers: &HeaderMap, body: &[u8], accepted: BodyKind) -> Result<Params, OAuthError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let kind = if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        BodyKind::Form
    } else if essence.eq_ignore_ascii_case("application/json") {
        BodyKind::Json
    } else {
        return Err(OAuthError::invalid_request(format!(
            "unsupported Content-Type {content_type:?}"
        )));
    };
    if accepted != BodyKind::Any && accepted != kind {
        return Err(OAuthError::invalid_request(format!(
            "this provider does not accept {essence} bodies"
        )));
    }
    let pairs = match kind {
        BodyKind::Json => json_pairs(body)?,
        _ => form_pairs(body)?,
    };
    let mut params = HashMap::new();
    for (name, value) in pairs.into_iter().filter(|(_, value)| !value.is_empty()) {
        // RFC 6749 §3.2: parameters must not be included more than once.
        if params.contains_key(&name) {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} repeated"
            )));
        }
        params.insert(name, value);
    }
    Ok(Params(params))
}

fn form_pairs(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    body.split(|&byte| byte == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&byte| byte == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            form_decode(name)
                .zip(form_decode(value))
                .ok_or_else(|| OAuthError::invalid_request("malformed form body"))
        })
        .collect()
}

fn json_pairs(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| OAuthError::invalid_request(format!("malformed JSON body: {error}")))?;
    let Value::Object(object) = value else {
        return Err(OAuthError::invalid_request("JSON body is not an object"));
    };
    object
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(value) => Ok((name, value)),
            _ => Err(OAuthError::invalid_request(format!(
                "parameter {name} is not a string"
            ))),
        })
        .collect()
}

/// Decodes one `application/x-www-form-urlencoded` component; `None` if it is not valid.
///
/// Stricter than the WHATWG decoder, which passes broken `%` escapes through: a client
/// that sends them has an encoding bug the tests should see.
pub(super) fn form_decode(input: &[u8]) -> Option<String> {
    fn hex(digit: Option<&u8>) -> Option<u8> {
        char::from(*digit?).to_digit(16).map(|value| value as u8)
    }
    let mut bytes = input.iter();
    let mut out = Vec::with_capacity(input.len());
    while let Some(&byte) = bytes.next() {
        out.push(match byte {
            b'+' => b' ',
            b'%' => (hex(bytes.next())? << 4) | hex(bytes.next())?,
            _ => byte,
        });
    }
    String::from_utf8(out).ok()
}

/// Checks the client's identity against `--client-id` and `--client-secret`, whether it was
/// presented with HTTP Basic or in the body (RFC 6749 §2.3.1).
fn authenticate(
    headers: &HeaderMap,
    params: &Params,
    opts: &MockOptions,
) -> Result<(), OAuthError> {
    let (id, secret) = match basic_credentials(headers)? {
        Some((id, secret)) => {
            if params.get("client_secret").is_some() {
                return Err(OAuthError::invalid_request(
                    "client authenticated with both HTTP Basic and client_secret",
                ));
            }
            if params.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::invalid_client(
                    "client_id in the body differs from HTTP Basic",
                ));
            }
            (Some(id), Some(secret))
        }
        None => (
            params.get("client_id").map(str::to_owned),
            params.get("client_secret").map(str::to_owned),
        ),
    };
    if id.as_deref() != Some(opts.client_id.as_str()) {
        return Err(OAuthError::invalid_client("unknown or missing client_id"));
    }
    match &opts.client_secret {
        Some(expected) if secret.as_deref() != Some(expected.as_str()) => {
            Err(OAuthError::invalid_client("wrong or missing client secret"))
        }
        _ => Ok(()),
    }
}

/// The `(client_id, client_secret)` of an `Authorization: Basic` header, each form-decoded;
/// `None` if there is no Basic header.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || OAuthError::invalid_client("malformed HTTP Basic credentials");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, encoded) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = base64_decode(encoded.trim()).ok_or_else(malformed)?;
    let colon = decoded
        .iter()
        .position(|&byte| byte == b':')
        .ok_or_else(malformed)?;
    let id = form_decode(&decoded[..colon]).ok_or_else(malformed)?;
    let secret = form_decode(&decoded[colon + 1..]).ok_or_else(malformed)?;
    Ok(Some((id, secret)))
}

/// Decodes standard base64 (RFC 4648 §4), padding optional; `None` if it is not valid.
///
/// Written out here because a Basic header is the only base64 this crate reads.
pub(super) fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let digits = input.strip_suffix("==").or_else(|| input.strip_suffix('='));
    let digits = digits.unwrap_or(input).as_bytes();
    if digits.len() % 4 == 1 || (digits.len() != input.len() && input.len() % 4 != 0) {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &digit in digits {
        let value = match digit {
            b'A'..=b'Z' => digit - b'A',
            b'a'..=b'z' => digit - b'a' + 26,
            b'0'..=b'9' => digit - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}
