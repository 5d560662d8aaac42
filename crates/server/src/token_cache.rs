//! A short-lived cache of API token lookups (hash → stored token), so that a busy agent's
//! requests do not each cost a database round trip and query (docs/server.md, "Tokens").
//!
//! - Only tokens found and not revoked are cached; an unknown token is looked up every time (a
//!   token created on another replica works at once, and guessing cannot fill the cache).
//! - An entry is used for at most [`DEFAULT_TTL`] (`wattprint serve --token-cache-ms`) after
//!   it was read from the database, then read again.
//! - Revoking a token through this server ([`crate::store::Store::revoke_token`]) forgets it
//!   after the revocation has committed, and a lookup that began before that cannot put the
//!   old record back (a generation counter): **a revoked token stops working on this server at
//!   once**. Another replica, or `wattprint admin token revoke` writing the database directly,
//!   is seen within the TTL.
//! - Bounded: at most [`MAX_ENTRIES`]; when full, expired entries are dropped, and if none was,
//!   the whole cache (it is only a cache).

use crate::store::TokenRecord;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a looked-up token is used without reading it again, unless configured otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
/// Most tokens cached at once.
pub const MAX_ENTRIES: usize = 10_000;

struct Entry {
    rec: TokenRecord,
    read_at: Instant,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    /// Bumped by every [`TokenCache::forget`]: a lookup that read the database before it may
    /// not store what it read.
    generation: u64,
}

/// See the module documentation.
pub struct TokenCache {
    ttl: Duration,
    inner: Mutex<Inner>,
}

impl TokenCache {
    /// A cache whose entries live `ttl` (zero: nothing is cached).
    pub fn new(ttl: Duration) -> TokenCache {
        TokenCache {
            ttl,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The cached token for `hash`, if read from the database less than the TTL before `now`.
    pub fn get(&self, hash: &str, now: Instant) -> Option<TokenRecord> {
        let inner = self.inner.lock().ok()?;
        let e = inner.map.get(hash)?;
        (now.saturating_duration_since(e.read_at) < self.ttl).then(|| e.rec.clone())
    }

    /// The generation to pass to [`TokenCache::put`]: take it before reading the database.
    pub fn generation(&self) -> u64 {
        self.inner.lock().map(|i| i.generation).unwrap_or(u64::MAX)
    }

    /// Remember `rec` (read from the database at `read_at`, after [`TokenCache::generation`]
    /// gave `generation`), unless a token was forgotten since or `rec` is revoked.
    pub fn put(&self, hash: &str, rec: &TokenRecord, generation: u64, read_at: Instant) {
        if self.ttl.is_zero() || rec.revoked_at.is_some() {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.generation != generation {
            return;
        }
        if inner.map.len() >= MAX_ENTRIES && !inner.map.contains_key(hash) {
            let ttl = self.ttl;
            inner
                .map
                .retain(|_, e| read_at.saturating_duration_since(e.read_at) < ttl);
            if inner.map.len() >= MAX_ENTRIES {
                inner.map.clear();
            }
        }
        inner.map.insert(
            hash.to_string(),
            Entry {
                rec: rec.clone(),
                read_at,
            },
        );
    }

    /// Forget token `id` (call once its revocation has committed, whatever the outcome).
    pub fn forget(&self, id: i64) {
        match self.inner.lock() {
            Ok(mut inner) => {
                inner.generation = inner.generation.wrapping_add(1);
                inner.map.retain(|_, e| e.rec.id != id);
            }
            Err(poisoned) => {
                // A panic elsewhere while holding the lock: drop everything rather than risk
                // serving a revoked token.
                let mut inner = poisoned.into_inner();
                inner.generation = inner.generation.wrapping_add(1);
                inner.map.clear();
            }
        }
    }

    /// Entries held (expired ones included until the cache fills).
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.map.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::Role;

    fn rec(id: i64) -> TokenRecord {
        TokenRecord {
            id,
            prefix: "wpt_00000000".into(),
            name: format!("t{id}"),
            org_id: 1,
            org: "o".into(),
            team_id: Some(1),
            team: Some("t".into()),
            project_id: None,
            project: None,
            user_id: None,
            user: None,
            role: Role::Member,
            created_at: "2026-01-01T00:00:00Z".into(),
            last_used_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn entries_live_for_the_ttl_only() {
        let c = TokenCache::new(Duration::from_secs(5));
        let t0 = Instant::now();
        c.put("h1", &rec(1), c.generation(), t0);
        assert_eq!(c.get("h1", t0).unwrap().id, 1);
        assert_eq!(c.get("h1", t0 + Duration::from_millis(4999)).unwrap().id, 1);
        assert!(c.get("h1", t0 + Duration::from_secs(5)).is_none());
        assert!(c.get("h2", t0).is_none());
        // Read again: lives again.
        let t1 = t0 + Duration::from_secs(6);
        c.put("h1", &rec(1), c.generation(), t1);
        assert!(c.get("h1", t1 + Duration::from_secs(1)).is_some());
    }

    #[test]
    fn forgetting_wins_over_a_lookup_in_flight() {
        let c = TokenCache::new(Duration::from_secs(60));
        let now = Instant::now();
        c.put("a", &rec(1), c.generation(), now);
        c.put("b", &rec(2), c.generation(), now);
        // A lookup of token 1 reads the database (before the revocation commits)...
        let g = c.generation();
        // ...the revocation commits and forgets it...
        c.forget(1);
        assert!(c.get("a", now).is_none());
        assert_eq!(c.get("b", now).unwrap().id, 2, "other tokens stay");
        // ...and the lookup's stale record is not stored.
        c.put("a", &rec(1), g, now);
        assert!(c.get("a", now).is_none());
        // A lookup after the revocation stores what it read.
        c.put("a", &rec(1), c.generation(), now);
        assert!(c.get("a", now).is_some());
    }

    #[test]
    fn revoked_tokens_and_a_zero_ttl_are_not_cached() {
        let c = TokenCache::new(Duration::from_secs(60));
        let now = Instant::now();
        let mut r = rec(1);
        r.revoked_at = Some("2026-01-02T00:00:00Z".into());
        c.put("a", &r, c.generation(), now);
        assert!(c.is_empty());
        let off = TokenCache::new(Duration::ZERO);
        off.put("a", &rec(1), off.generation(), now);
        assert!(off.get("a", now).is_none());
        assert!(off.is_empty());
    }

    #[test]
    fn the_cache_is_bounded() {
        let c = TokenCache::new(Duration::from_secs(5));
        let t0 = Instant::now();
        for i in 0..MAX_ENTRIES {
            c.put(&format!("h{i}"), &rec(i as i64), c.generation(), t0);
        }
        assert_eq!(c.len(), MAX_ENTRIES);
        // Full of live entries: the next one starts afresh.
        c.put("new", &rec(-1), c.generation(), t0);
        assert_eq!(c.len(), 1);
        assert!(c.get("new", t0).is_some());
        // Full of expired and live entries: only the expired ones go.
        let t1 = t0 + Duration::from_secs(3);
        for i in 0..MAX_ENTRIES - 1 {
            let at = if i % 2 == 0 { t0 } else { t1 };
            c.put(&format!("h{i}"), &rec(i as i64), c.generation(), at);
        }
        assert_eq!(c.len(), MAX_ENTRIES);
        let t2 = t0 + Duration::from_secs(6);
        c.put("newer", &rec(-3), c.generation(), t2);
        // "new" (t0) and the even ones (t0) went; the odd ones (t1) stay.
        assert_eq!(c.len(), (MAX_ENTRIES - 1) / 2 + 1);
        assert!(c.get("h1", t2).is_some());
        assert!(c.get("h0", t2).is_none());
        assert!(c.get("newer", t2).is_some());
    }
}
