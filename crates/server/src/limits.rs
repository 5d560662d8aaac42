//! Limits that keep the server up whatever clients send: a body size limit (413), a timeout on
//! every request (408), a per-token rate limit (a token bucket in memory; 429 with
//! `Retry-After`), a cap on the expensive requests a token may have in flight at once
//! ([`Expensive`]; 429), and the connection limits applied by [`crate::conn`]. Panics in a
//! handler become a 500 (tower-http `CatchPanicLayer`, in the router).

use crate::api::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The server's limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Longest a request may take, body upload included.
    pub request_timeout: Duration,
    /// Sustained requests per second per token (0 disables the rate limit).
    pub rate_per_s: f64,
    /// Requests a token may make in a burst above the sustained rate.
    pub burst: f64,
    /// A request's headers must be complete within this time of the connection opening or of
    /// the previous response (so it also bounds how long a keep-alive connection stays idle).
    pub header_read_timeout: Duration,
    /// A connection on which nothing moves for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once (more wait in the listen backlog).
    pub max_connections: usize,
    /// Most expensive requests (listings, samples, totals, dashboard pages) one token may have
    /// in flight at once (0 disables the cap).
    pub max_expensive_per_token: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: 2 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            rate_per_s: 100.0,
            burst: 200.0,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
            max_expensive_per_token: 2,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets, one per API token.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<i64, Bucket>>,
}

impl RateLimiter {
    pub fn new(rate_per_s: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            rate: rate_per_s,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one request from the token's bucket, or say how long to wait.
    pub fn check_at(&self, token_id: i64, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let Ok(mut m) = self.buckets.lock() else {
            return Ok(());
        };
        let b = m.entry(token_id).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.rate))
        }
    }

    pub fn check(&self, token_id: i64) -> Result<(), ApiError> {
        self.check_at(token_id, Instant::now()).map_err(|wait| {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            ApiError::rate_limited(
                format!(
                    "too many requests for this token (limit {} per second, bursts of {}); retry in {secs} s",
                    self.rate, self.burst
                ),
                secs,
            )
        })
    }
}

/// Expensive requests in flight, per token: [`Expensive::enter`] refuses (429) a token that
/// already has `max` of them running, so that a few parallel calls by one token cannot hold a
/// large share of the server's memory or database connections.
pub struct Expensive {
    max: usize,
    running: Mutex<HashMap<i64, usize>>,
}

/// One expensive request in flight; its slot is given back when dropped.
pub struct ExpensiveSlot {
    owner: Arc<Expensive>,
    token_id: i64,
}

impl Drop for ExpensiveSlot {
    fn drop(&mut self) {
        let mut m = match self.owner.running.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(n) = m.get_mut(&self.token_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.token_id);
            }
        }
    }
}

impl Expensive {
    pub fn new(max: usize) -> Expensive {
        Expensive {
            max,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Take a slot for the token, or a 429 when it already has `max` expensive requests running.
    pub fn enter(self: &Arc<Self>, token_id: i64) -> Result<ExpensiveSlot, ApiError> {
        let mut m = match self.running.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let n = m.entry(token_id).or_insert(0);
        if self.max > 0 && *n >= self.max {
            return Err(ApiError::rate_limited(
                format!(
                    "this token already has {} expensive requests (listings, samples, totals) in flight, the most allowed at once; wait for them to finish",
                    self.max
                ),
                1,
            ));
        }
        *n += 1;
        Ok(ExpensiveSlot {
            owner: Arc::clone(self),
            token_id,
        })
    }

    /// Slots in use by a token.
    pub fn in_flight(&self, token_id: i64) -> usize {
        self.running
            .lock()
            .map(|m| m.get(&token_id).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

/// Middleware: answer 408 when a request (reading its body included) takes too long.
pub async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the request took longer than {} s (body upload included); retry, or send smaller batches",
                limit.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let l = RateLimiter::new(10.0, 3.0);
        let t = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at(1, t).is_ok());
        }
        let wait = l.check_at(1, t).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // Another token has its own bucket.
        assert!(l.check_at(2, t).is_ok());
        // 100 ms later one more request is allowed, and only one.
        let t2 = t + Duration::from_millis(100);
        assert!(l.check_at(1, t2).is_ok());
        assert!(l.check_at(1, t2).is_err());
    }

    #[test]
    fn expensive_requests_are_capped_per_token() {
        let e = Arc::new(Expensive::new(2));
        let a = e.enter(1).unwrap();
        let b = e.enter(1).unwrap();
        let refused = e.enter(1).err().unwrap();
        assert_eq!(refused.status, axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.retry_after_s, Some(1));
        // Another token is not affected.
        let _c = e.enter(2).unwrap();
        drop(a);
        assert_eq!(e.in_flight(1), 1);
        let _d = e.enter(1).unwrap();
        drop(b);
        assert_eq!(e.in_flight(1), 1);
        // Zero disables the cap.
        let off = Arc::new(Expensive::new(0));
        let held: Vec<_> = (0..100).map(|_| off.enter(1).unwrap()).collect();
        assert_eq!(off.in_flight(1), 100);
        drop(held);
        assert_eq!(off.in_flight(1), 0);
    }

    #[test]
    fn zero_rate_disables() {
        let l = RateLimiter::new(0.0, 1.0);
        let t = Instant::now();
        for _ in 0..1000 {
            assert!(l.check_at(1, t).is_ok());
        }
    }
}
