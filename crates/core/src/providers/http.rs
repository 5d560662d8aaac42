//! Blocking HTTP for the providers (ureq, rustls): one timeout for the whole exchange, status
//! codes mapped to [`ProviderError`] variants, bodies read as (lossy) text with a size cap.

use super::{excerpt, iso, now_unix, ProviderError};
use std::time::Duration;

/// Largest body accepted (a 10-day 5-minute history is well under 1 MiB).
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// A response whose status has not been checked yet.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
    /// The `Retry-After` header, in seconds from now (delta-seconds or an HTTP date).
    pub retry_after_s: Option<u64>,
}

/// A blocking HTTP client bound to one provider's name (for messages) and timeout.
#[derive(Debug, Clone)]
pub struct Http {
    agent: ureq::Agent,
    provider: &'static str,
    timeout: Duration,
}

impl Http {
    pub fn new(provider: &'static str, timeout: Duration) -> Http {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("wattprint/", env!("CARGO_PKG_VERSION")))
            .build();
        Http {
            agent: ureq::Agent::new_with_config(config),
            provider,
            timeout,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// GET `url` with `headers`; transport failures become `Timeout` or `Network`.
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Response, ProviderError> {
        let mut req = self.agent.get(url).header("Accept", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut resp = req.call().map_err(|e| self.transport(url, e))?;
        let status = resp.status().as_u16();
        let retry_after_s = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| self.transport(url, e))?;
        Ok(Response {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            retry_after_s,
        })
    }

    fn transport(&self, url: &str, e: ureq::Error) -> ProviderError {
        let timeout = || ProviderError::Timeout {
            provider: self.provider,
            ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
        };
        match e {
            ureq::Error::Timeout(_) => timeout(),
            ureq::Error::Io(ref io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                timeout()
            }
            ureq::Error::BodyExceedsLimit(n) => ProviderError::Garbage {
                provider: self.provider,
                what: format!("body larger than {n} bytes"),
                excerpt: String::new(),
            },
            other => ProviderError::Network {
                provider: self.provider,
                url: redact(url),
                detail: other.to_string(),
            },
        }
    }
}

/// `url` without its query string (which may carry identifiers) for messages.
fn redact(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}

/// Delta-seconds or an IMF-fixdate, as seconds from now.
pub fn parse_retry_after(v: &str) -> Option<u64> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(s);
    }
    iso::parse_http_date(v).map(|t| u64::try_from(t - now_unix()).unwrap_or(0))
}

/// How a provider words its credential problems, for [`check_status`].
pub struct AuthHint<'a>(pub &'a str);

/// The body of a 2xx response, or the error its status means. 401/403 → `Unauthorized`
/// (with `auth`), 404 → `UnknownZone` when `zone` is given, 429 → `RateLimited`, 5xx → `Server`,
/// other non-2xx → `BadRequest`.
pub fn check_status(
    provider: &'static str,
    resp: Response,
    auth: &AuthHint<'_>,
    zone: Option<&str>,
) -> Result<String, ProviderError> {
    let ex = || excerpt(&resp.body, 160);
    match resp.status {
        200..=299 => Ok(resp.body),
        401 | 403 => Err(ProviderError::Unauthorized {
            provider,
            status: resp.status,
            hint: format!("{} (server said: {})", auth.0, ex()),
        }),
        404 if zone.is_some() => Err(ProviderError::UnknownZone {
            provider,
            zone: zone.unwrap_or_default().to_string(),
            hint: format!("the provider answered 404 ({})", ex()),
        }),
        429 => Err(ProviderError::RateLimited {
            provider,
            retry_after_s: resp.retry_after_s,
        }),
        500..=599 => Err(ProviderError::Server {
            provider,
            status: resp.status,
            excerpt: ex(),
        }),
        s => Err(ProviderError::BadRequest {
            provider,
            status: s,
            excerpt: ex(),
        }),
    }
}

/// Parses `body` as JSON, or says it is not.
pub fn json(provider: &'static str, body: &str) -> Result<serde_json::Value, ProviderError> {
    if body.trim().is_empty() {
        return Err(ProviderError::Garbage {
            provider,
            what: "empty body where JSON was expected".into(),
            excerpt: String::new(),
        });
    }
    serde_json::from_str(body).map_err(|e| ProviderError::Garbage {
        provider,
        what: format!("not JSON ({e})"),
        excerpt: excerpt(body, 120),
    })
}

/// A `Garbage` error about `body`.
pub fn garbage(provider: &'static str, what: impl Into<String>, body: &str) -> ProviderError {
    ProviderError::Garbage {
        provider,
        what: what.into(),
        excerpt: excerpt(body, 120),
    }
}

/// Percent-encodes a query or path component (RFC 3986 unreserved characters kept).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Standard base64 (for HTTP Basic credentials).
pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A base URL without trailing slashes.
pub fn trim_base(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn encodes_components() {
        assert_eq!(encode("US-CAL-CISO"), "US-CAL-CISO");
        assert_eq!(encode("2024-01-01T00:00:00Z"), "2024-01-01T00%3A00%3A00Z");
        assert_eq!(encode("a b&c"), "a%20b%26c");
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120"), Some(120));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(0));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
