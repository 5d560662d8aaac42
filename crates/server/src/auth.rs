//! API tokens and the request's identity.
//!
//! A token is `wpt_` followed by 64 hex digits (32 random bytes from the OS). Only its SHA-256
//! (hex) is stored, with the first 12 characters (`wpt_` + 8 hex) kept as a prefix to recognise
//! it in listings; the secret itself is shown once, at creation. Tokens are scoped to an
//! organisation, a team or a project, carry a role, can be revoked, and record when they were
//! last used (at most once a minute per token, so a busy agent does not write on every request).

use crate::api::ApiError;
use crate::app::AppState;
use crate::store::{NewToken, Role, Scope, TokenRecord};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const TOKEN_PREFIX: &str = "wpt_";
/// Characters of the token kept in clear for identification.
pub const SHOWN_PREFIX_LEN: usize = 12;

fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// SHA-256 of the token, hex.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A fresh token: (secret, prefix, hash).
pub fn generate_token() -> anyhow::Result<(String, String, String)> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf)
        .map_err(|e| anyhow::anyhow!("the OS random number generator failed: {e}"))?;
    let secret = format!("{TOKEN_PREFIX}{}", hex(&buf));
    let prefix = secret[..SHOWN_PREFIX_LEN].to_string();
    let hash = hash_token(&secret);
    Ok((secret, prefix, hash))
}

/// A created token: its stored record and the secret, to show once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub record: TokenRecord,
}

/// Create and store a token; returns the secret once.
pub async fn create_token(
    store: &crate::store::Store,
    name: &str,
    scope: Scope,
    user_id: Option<i64>,
    role: Role,
) -> anyhow::Result<CreatedToken> {
    let (secret, prefix, hash) = generate_token()?;
    let id = store
        .create_token(&NewToken {
            prefix,
            hash,
            name: name.to_string(),
            org_id: scope.org_id,
            team_id: scope.team_id,
            project_id: scope.project_id,
            user_id,
            role,
        })
        .await?;
    let record = store
        .token_by_id(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("token {id} vanished after creation"))?;
    Ok(CreatedToken {
        token: secret,
        record,
    })
}

/// Remembers when each token's `last_used_at` was last written.
#[derive(Default)]
pub struct TouchTracker {
    last: Mutex<HashMap<i64, Instant>>,
}

impl TouchTracker {
    /// Minimum time between two `last_used_at` writes for one token.
    pub const EVERY: Duration = Duration::from_secs(60);

    /// True when the token's `last_used_at` should be written now.
    pub fn due(&self, id: i64) -> bool {
        let Ok(mut m) = self.last.lock() else {
            return true;
        };
        let now = Instant::now();
        match m.get(&id) {
            Some(t) if now.duration_since(*t) < Self::EVERY => false,
            _ => {
                m.insert(id, now);
                true
            }
        }
    }
}

/// The authenticated caller, extracted from `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct Auth {
    pub token: TokenRecord,
}

impl Auth {
    pub fn scope(&self) -> Scope {
        self.token.scope()
    }

    pub fn role(&self) -> Role {
        self.token.role
    }

    /// 403 unless the token's role is at least `min`.
    pub fn require(&self, min: Role, doing: &str) -> Result<(), ApiError> {
        if self.token.role >= min {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this token has role {}; {doing} needs role {} or higher",
                self.token.role.as_str(),
                min.as_str()
            )))
        }
    }

    /// The team a write goes to: the token's own team (organisation tokens must name one).
    pub fn team_id(&self) -> Option<i64> {
        self.token.team_id
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let Some(h) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "missing `Authorization: Bearer <token>` header; an administrator creates tokens with `wattprint admin token create`",
        ));
    };
    let h = h
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not ASCII"))?;
    let mut it = h.splitn(2, ' ');
    let scheme = it.next().unwrap_or("");
    let tok = it.next().unwrap_or("").trim();
    if !scheme.eq_ignore_ascii_case("bearer") || tok.is_empty() {
        return Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer <token>`",
        ));
    }
    Ok(tok)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Auth, ApiError> {
        let tok = bearer(parts)?;
        if !tok.starts_with(TOKEN_PREFIX) || tok.len() > 200 {
            return Err(ApiError::unauthorized(
                "unknown token (wattprint tokens start with `wpt_`)",
            ));
        }
        let rec = state.store.token_by_hash_cached(&hash_token(tok)).await?;
        let Some(rec) = rec else {
            return Err(ApiError::unauthorized("unknown token"));
        };
        if let Some(when) = &rec.revoked_at {
            return Err(ApiError::unauthorized(format!(
                "this token ({}…) was revoked at {when}; ask an administrator for a new one",
                rec.prefix
            )));
        }
        state.limiter.check(rec.id)?;
        if state.touches.due(rec.id) {
            let store = state.store.clone();
            let id = rec.id;
            tokio::spawn(async move {
                if let Err(e) = store.touch_token(id).await {
                    eprintln!("wattprint serve: recording the use of token {id}: {e:#}");
                }
            });
        }
        Ok(Auth { token: rec })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let (a, pa, ha) = generate_token().unwrap();
        let (b, _, hb) = generate_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("wpt_") && a.len() == 4 + 64, "{a}");
        assert_eq!(pa, &a[..12]);
        assert_eq!(ha, hash_token(&a));
        assert_ne!(ha, hb);
        assert_eq!(ha.len(), 64);
        // Known SHA-256 vector.
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn touches_are_throttled() {
        let t = TouchTracker::default();
        assert!(t.due(1));
        assert!(!t.due(1));
        assert!(t.due(2));
    }
}
