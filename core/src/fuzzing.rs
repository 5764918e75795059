//! What the `cargo fuzz` targets in `fuzz/` reach that is not public API. Compiled only under
//! `--cfg fuzzing` (cargo fuzz sets it), so the public surface stays as documented.

use crate::error::Result;
use crate::tokens::TokenFields;

/// The token endpoint that fuzzed token-response messages name.
pub const TOKEN_URL: &str = "https://auth.example.com/oauth/token";

/// The built-in OAuth2 refresher's reading of a token endpoint's answer: HTTP `status`
/// (`None` outside 100..=999, which no HTTP client hands over) and the body's bytes.
pub fn token_response(status: u16, body: &[u8]) -> Option<Result<TokenFields>> {
    let status = reqwest::StatusCode::from_u16(status).ok()?;
    Some(crate::refresher::oauth2::parse_token_response(
        TOKEN_URL, status, body,
    ))
}
