//! The JSON API (`/api/v1`): errors, body and query extraction, validation helpers, and the
//! handlers in the submodules. Every error is `{"error": CODE, "detail": MESSAGE}`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub mod budgets;
pub mod jobs;
pub mod meta;
pub mod nodes;
pub mod policy;
pub mod runs;
pub mod tokens;
pub mod totals;

/// An API error: status, short code and a message saying what is wrong and how to fix it.
///
/// Handlers return it with `?`: any `anyhow::Error`, database or JSON error converts into a 500
/// whose answer hides the internals; the internals travel in the response's extensions
/// ([`ErrorReport`]) to [`log_errors`], which logs them with the route.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: &'static str,
    pub detail: String,
    pub retry_after_s: Option<u64>,
    /// For server-side failures: the full cause, for the log only (never sent).
    pub internal: Option<String>,
}

/// What [`ApiError::into_response`] leaves in the response's extensions for [`log_errors`].
#[derive(Debug, Clone)]
pub struct ErrorReport {
    pub error: &'static str,
    pub detail: String,
    pub internal: Option<String>,
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::internal(e)
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> ApiError {
        ApiError::internal(e.into())
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> ApiError {
        ApiError::internal(e.into())
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> ApiError {
        ApiError::internal(e.into())
    }
}

/// Middleware: log every server-side failure (5xx) with its method, route and full cause, as
/// [`ApiError`] left it in the response's extensions. Client errors (4xx) are not logged: the
/// client got the explanation.
pub async fn log_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let r = next.run(req).await;
    if r.status().is_server_error() {
        match r.extensions().get::<ErrorReport>() {
            Some(e) => eprintln!(
                "wattprint serve: {method} {route}: {} {}: {}",
                r.status().as_u16(),
                e.error,
                e.internal.as_deref().unwrap_or(&e.detail)
            ),
            None => eprintln!("wattprint serve: {method} {route}: {}", r.status()),
        }
    }
    r
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            detail: detail.into(),
            retry_after_s: None,
            internal: None,
        }
    }
    pub fn bad_request(d: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", d)
    }
    pub fn invalid(d: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", d)
    }
    pub fn unauthorized(d: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", d)
    }
    pub fn forbidden(d: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", d)
    }
    pub fn not_found(d: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", d)
    }
    pub fn conflict(d: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", d)
    }
    pub fn rate_limited(d: impl Into<String>, retry_after_s: u64) -> ApiError {
        ApiError {
            retry_after_s: Some(retry_after_s),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", d)
        }
    }
    /// A server-side failure: answered without internals, logged in full by [`log_errors`].
    pub fn internal(e: anyhow::Error) -> ApiError {
        ApiError {
            internal: Some(format!("{e:#}")),
            ..ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the server failed to handle the request; the details are in the server's log",
            )
        }
    }
}

/// The body of every error answer.
#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    detail: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.error,
            detail: &self.detail,
        };
        let mut r = (self.status, axum::Json(body)).into_response();
        r.extensions_mut().insert(ErrorReport {
            error: self.error,
            detail: self.detail.clone(),
            internal: self.internal.clone(),
        });
        // A refused request's body may be partly unread (413, or refused before reading it):
        // close the connection so that neither side mistakes the rest of it for a new request.
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after_s {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

/// A JSON request body: `Content-Type: application/json`, within the size limit (413), well
/// formed (400), with no NUL character in any string (422: PostgreSQL cannot store it, so
/// neither database does).
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<JsonBody, ApiError> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "the body must be JSON with `Content-Type: application/json` (got {:?})",
                    ct
                ),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is larger than the server's limit (--max-body); send samples in smaller batches",
                )
            } else {
                ApiError::bad_request(format!("could not read the request body: {}", r.body_text()))
            }
        })?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
        if let Some(path) = find_nul(&v, &mut String::new()) {
            return Err(ApiError::invalid(format!(
                "{path}: strings must not contain the NUL character (\\u0000)"
            )));
        }
        Ok(JsonBody(v))
    }
}

/// The path of the first string (or key) containing NUL.
fn find_nul(v: &Value, path: &mut String) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\0') => Some(if path.is_empty() {
            "body".to_string()
        } else {
            path.clone()
        }),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let r = find_nul(x, path);
                path.truncate(len);
                if r.is_some() {
                    return r;
                }
            }
            None
        }
        Value::Object(m) => {
            for (k, x) in m {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k.replace('\0', "\\u0000"));
                if k.contains('\0') {
                    return Some(path.clone());
                }
                let r = find_nul(x, path);
                path.truncate(len);
                if r.is_some() {
                    return r;
                }
            }
            None
        }
        _ => None,
    }
}

/// Deserialize a JSON value into `T`; a type mismatch is a 422 naming the field.
pub fn typed<T: DeserializeOwned>(v: Value, what: &str) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v).map_err(|e| path_error(e, what))
}

/// [`typed`] reading `v` in place (a large body is not copied to be read).
pub fn typed_ref<T: DeserializeOwned>(v: &Value, what: &str) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v).map_err(|e| path_error(e, what))
}

fn path_error(e: serde_path_to_error::Error<serde_json::Error>, what: &str) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if path == "." || path.is_empty() {
        ApiError::invalid(format!("{what}: {inner}"))
    } else {
        ApiError::invalid(format!("{what}: field `{path}`: {inner}"))
    }
}

/// A query string rejected by axum becomes a JSON 400.
pub fn query<T>(
    q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|q| q.0)
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {}", e.body_text())))
}

// ---- validation helpers (422 naming the field) ----

/// A name or id: 1..=max characters, no control characters, not only spaces.
pub fn check_ident(path: &str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.trim().is_empty() {
        return Err(ApiError::invalid(format!("{path} must not be empty")));
    }
    check_line(path, s, max)
}

/// One line of text: at most `max` characters, no control characters, and none of the
/// invisible characters that can make a name look like another ([`spoofing_char`]).
pub fn check_line(path: &str, s: &str, max: usize) -> Result<(), ApiError> {
    check_text(path, s, max)?;
    if s.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "{path} must not contain control characters (newline, tab…)"
        )));
    }
    if let Some(c) = s.chars().find(|&c| spoofing_char(c)) {
        return Err(ApiError::invalid(format!(
            "{path} must not contain the invisible character U+{:04X} (bidirectional override or zero-width characters can make one name display as another)",
            u32::from(c)
        )));
    }
    Ok(())
}

pub use wattprint_core::validate::spoofing_char;

/// Free text: at most `max` characters.
pub fn check_text(path: &str, s: &str, max: usize) -> Result<(), ApiError> {
    let n = s.chars().count();
    if n > max {
        return Err(ApiError::invalid(format!(
            "{path} is {n} characters long; the limit is {max}"
        )));
    }
    Ok(())
}

/// A finite number.
pub fn check_finite(path: &str, x: f64) -> Result<(), ApiError> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("{path} must be a finite number")))
    }
}

/// A finite, non-negative number (energies, emissions, durations, powers).
pub fn check_nonneg(path: &str, x: f64) -> Result<(), ApiError> {
    check_finite(path, x)?;
    if x < 0.0 {
        return Err(ApiError::invalid(format!(
            "{path} is {x}; it must not be negative"
        )));
    }
    Ok(())
}

/// A list of at most `max` items.
pub fn check_len<T>(path: &str, v: &[T], max: usize) -> Result<(), ApiError> {
    if v.len() > max {
        return Err(ApiError::invalid(format!(
            "{path} has {} items; the limit is {max}",
            v.len()
        )));
    }
    Ok(())
}

/// A time parameter: RFC 3339 (`2025-03-01T00:00:00Z`) or a date (`2025-03-01`, midnight UTC).
pub fn parse_time(name: &str, s: &str) -> Result<time::OffsetDateTime, ApiError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &fmt) {
        return Ok(d.midnight().assume_utc());
    }
    Err(ApiError::bad_request(format!(
        "{name}={s:?} is not a time: use RFC 3339 (2025-03-01T00:00:00Z) or a date (2025-03-01)"
    )))
}

/// `YYYY-MM` of a time, UTC.
pub fn month_of(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}", t.year(), u8::from(t.month()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_found_anywhere() {
        let v = serde_json::json!({"a": [1, {"b": "x\u{0}y"}]});
        assert_eq!(find_nul(&v, &mut String::new()).unwrap(), "a[1].b");
        let v = serde_json::json!({"tags": {"k\u{0}": "v"}});
        assert!(find_nul(&v, &mut String::new())
            .unwrap()
            .starts_with("tags.k"));
        assert!(find_nul(&serde_json::json!({"a": "ok"}), &mut String::new()).is_none());
    }

    #[test]
    fn times_parse() {
        assert_eq!(
            parse_time("since", "2025-03-01").unwrap().unix_timestamp(),
            1_740_787_200
        );
        assert_eq!(
            month_of(parse_time("t", "2025-02-28T23:30:00-02:00").unwrap()),
            "2025-03"
        );
        assert!(parse_time("since", "yesterday").is_err());
    }

    #[test]
    fn checks_reject_bad_values() {
        assert!(check_nonneg("x", -1.0).is_err());
        assert!(check_nonneg("x", f64::NAN).is_err());
        assert!(check_nonneg("x", 0.0).is_ok());
        assert!(check_ident("x", "  ", 10).is_err());
        assert!(check_ident("x", "a\nb", 10).is_err());
        assert!(check_ident("x", "'; DROP TABLE runs; --", 100).is_ok());
        assert!(check_text("x", "ééé", 3).is_ok());
        assert!(check_text("x", "éééé", 3).is_err());
    }

    #[test]
    fn invisible_and_bidi_characters_are_refused_in_names() {
        for bad in [
            "admin\u{202E}nimda",
            "phys\u{200B}ics",
            "\u{2066}team\u{2069}",
            "\u{FEFF}x",
            "a\u{200D}b",
            "a\u{061C}b",
        ] {
            let e = check_ident("team", bad, 100).unwrap_err();
            assert!(e.detail.contains("U+"), "{bad:?}: {}", e.detail);
        }
        // Scripts and emoji without invisible characters are names like any other.
        for good in ["физика", "物理", "équipe-α", "🔬lab", "عربي"] {
            assert!(check_ident("team", good, 100).is_ok(), "{good:?}");
        }
    }
}
