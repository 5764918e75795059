//! The provider's memory: token families, rotation, reuse detection and the counters, all
//! behind one lock so that every request sees the effects of the ones before it.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::wire::{Grant, OAuthError};
use super::{MockOptions, Stats};

/// The description of the answer to a replayed refresh token, which tests match on.
const REUSE_DETECTED: &str = "refresh token reuse detected; family revoked";

/// Tokens handed out by one successful grant.
#[derive(Clone, Debug)]
pub(super) struct Issued {
    /// The family (the login) the tokens belong to; also the account id in the response.
    pub(super) family: String,
    pub(super) access_token: String,
    /// `None` when the provider does not rotate: the client keeps the one it has.
    pub(super) refresh_token: Option<String>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) stats: Stats,
    refresh_tokens: HashMap<String, RefreshToken>,
    access_tokens: HashMap<String, AccessToken>,
    revoked_families: HashSet<String>,
}

struct RefreshToken {
    family: String,
    spent: Option<Spent>,
}

/// When a refresh token was used and what that use issued, so that a reuse within the
/// grace window gets the very same answer.
struct Spent {
    at: Instant,
    answer: Issued,
}

struct AccessToken {
    family: String,
    /// `None` for lifetimes too long to represent: such tokens never expire.
    expires_at: Option<Instant>,
}

impl AccessToken {
    fn is_fresh(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|expires_at| now < expires_at)
    }
}

impl State {
    /// Counts a token request and returns its number, starting at 1.
    pub(super) fn count_token_request(&mut self) -> u64 {
        self.stats.token_requests += 1;
        self.stats.token_requests
    }

    /// Answers a decoded token request, counting the outcome.
    pub(super) fn grant(
        &mut self,
        request: Result<Grant, OAuthError>,
        opts: &MockOptions,
        now: Instant,
    ) -> Result<Issued, OAuthError> {
        let outcome = request.and_then(|grant| match grant {
            Grant::NewFamily => Ok(self.login(opts, now)),
            Grant::Refresh(presented) => self.refresh(&presented, opts, now),
        });
        if let Err(error) = &outcome {
            if error.is_invalid_grant() {
                self.stats.invalid_grants += 1;
            } else {
                self.stats.bad_requests += 1;
            }
        }
        outcome
    }

    /// Starts a new token family, as a completed login does.
    pub(super) fn login(&mut self, opts: &MockOptions, now: Instant) -> Issued {
        self.stats.logins += 1;
        let family = uuid_v4();
        let refresh_token = self.new_refresh_token(&family);
        self.issue(family, Some(refresh_token), opts, now)
    }

    fn refresh(
        &mut self,
        presented: &str,
        opts: &MockOptions,
        now: Instant,
    ) -> Result<Issued, OAuthError> {
        let Some(token) = self.refresh_tokens.get(presented) else {
            return Err(OAuthError::invalid_grant("unknown refresh token"));
        };
        let family = token.family.clone();
        let live = !self.revoked_families.contains(&family);
        if let Some(spent) = &token.spent {
            self.stats.replays += 1;
            if live && now.saturating_duration_since(spent.at) < opts.grace {
                self.stats.grace_reuses += 1;
                tracing::debug!(%family, "spent refresh token reused within the grace window");
                return Ok(spent.answer.clone());
            }
            if self.revoked_families.insert(family.clone()) {
                self.stats.revoked_families += 1;
                tracing::info!(%family, "{REUSE_DETECTED}");
            }
            return Err(OAuthError::invalid_grant(REUSE_DETECTED));
        }
        if !live {
            return Err(OAuthError::invalid_grant("refresh token family revoked"));
        }
        self.stats.refreshes += 1;
        if opts.no_rotate {
            return Ok(self.issue(family, None, opts, now));
        }
        let rotated = self.new_refresh_token(&family);
        let answer = self.issue(family, Some(rotated), opts, now);
        if let Some(token) = self.refresh_tokens.get_mut(presented) {
            token.spent = Some(Spent {
                at: now,
                answer: answer.clone(),
            });
        }
        Ok(answer)
    }

    /// The family of `access_token` if it may be used now; counts the answer either way.
    pub(super) fn authorize(&mut self, access_token: Option<&str>, now: Instant) -> Option<&str> {
        let family = access_token
            .and_then(|token| self.access_tokens.get(token))
            .filter(|token| token.is_fresh(now) && !self.revoked_families.contains(&token.family))
            .map(|token| token.family.as_str());
        match family {
            Some(_) => self.stats.resource_ok += 1,
            None => self.stats.resource_unauthorized += 1,
        }
        family
    }

    /// Invalidates every access token issued so far; returns how many were still usable.
    pub(super) fn revoke_access(&mut self, now: Instant) -> usize {
        let usable = self
            .access_tokens
            .values()
            .filter(|token| token.is_fresh(now) && !self.revoked_families.contains(&token.family))
            .count();
        self.access_tokens.clear();
        usable
    }

    /// Revokes the family of `refresh_token`: `None` if the token is unknown, else the family
    /// and whether it was live until now.
    pub(super) fn revoke_family_of(&mut self, refresh_token: &str) -> Option<(String, bool)> {
        let family = self.refresh_tokens.get(refresh_token)?.family.clone();
        let was_live = self.revoked_families.insert(family.clone());
        if was_live {
            self.stats.admin_revocations += 1;
        }
        Some((family, was_live))
    }

    fn new_refresh_token(&mut self, family: &str) -> String {
        let token = new_token("rt", family);
        let record = RefreshToken {
            family: family.to_owned(),
            spent: None,
        };
        self.refresh_tokens.insert(token.clone(), record);
        token
    }

    fn issue(
        &mut self,
        family: String,
        refresh_token: Option<String>,
        opts: &MockOptions,
        now: Instant,
    ) -> Issued {
        let access_token = if opts.jwt {
            new_jwt(SystemTime::now(), opts.lifetime)
        } else {
            new_token("at", &family)
        };
        let record = AccessToken {
            family: family.clone(),
            expires_at: now.checked_add(opts.lifetime),
        };
        self.access_tokens.insert(access_token.clone(), record);
        Issued {
            family,
            access_token,
            refresh_token,
        }
    }
}

/// A token that names its kind and family (handy when reading a failing test's store)
/// and carries 128 random bits.
fn new_token(kind: &str, family: &str) -> String {
    format!("{kind}-{family}-{:032x}", rand::random::<u128>())
}

/// An access token shaped like a JWT (RFC 7519) with the claims a client reads the expiry
/// from: `exp` (Unix seconds, rounded down: never later than the provider's own expiry),
/// `iat`, and a random `jti` that keeps every token unique. The signature is random bytes:
/// nobody but this provider checks it, and it checks by looking the whole token up.
pub(super) fn new_jwt(issued_at: SystemTime, lifetime: Duration) -> String {
    let since_epoch = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let iat = since_epoch(issued_at).as_secs();
    let exp = issued_at
        .checked_add(lifetime)
        .map_or(u64::MAX, |t| since_epoch(t).as_secs());
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    let payload = format!(
        r#"{{"exp":{exp},"iat":{iat},"jti":"{:032x}"}}"#,
        rand::random::<u128>()
    );
    let signature: [u8; 32] = rand::random();
    format!(
        "{}.{}.{}",
        base64url(header.as_bytes()),
        base64url(payload.as_bytes()),
        base64url(&signature)
    )
}

/// Unpadded base64url (RFC 4648 §5), as JWTs use.
pub(super) fn base64url(input: &[u8]) -> String {
    const DIGITS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(DIGITS[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// A random (version 4) UUID: the `account.uuid` of real providers looks like one.
fn uuid_v4() -> String {
    // Version 4 in the version nibble, RFC 4122 in the variant bits.
    let bits = (rand::random::<u128>() & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
