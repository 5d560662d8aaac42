//! The dashboard: server-side rendered HTML with inline SVG charts, served by `wattprint serve`
//! under `/dashboard/`. No JavaScript, no request to any other host; every page carries a strict
//! Content-Security-Policy ([`assets::csp`]).
//!
//! Sign-in is with an API token: the login form posts it once, the server checks it exactly as
//! the API does (hash lookup, revocation) and keeps a session in memory, keyed by a random
//! 256-bit id that the browser holds in an `HttpOnly; SameSite=Strict` cookie. The token itself
//! never goes into the cookie. Each request re-reads the token from the database, so revoking it
//! ends its sessions at once, and every page shows exactly what the token may read through the
//! API (the same [`Scope`] filters). POST forms carry a per-session CSRF token (the login form, a
//! per-browser nonce held in a second cookie). See docs/dashboard.md.

use crate::app::AppState;
use crate::auth::{hash_token, TOKEN_PREFIX};
use crate::store::{Scope, TokenRecord};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
pub use wattprint_core::svg::esc;

pub mod assets;
pub mod charts;
pub mod data;
pub mod job_page;
pub mod models_page;
pub mod pages;

/// Where the dashboard lives.
pub const BASE: &str = "/dashboard";
/// The session cookie.
pub const SESSION_COOKIE: &str = "wattprint_session";
/// The login form's anti-forgery cookie.
pub const LOGIN_COOKIE: &str = "wattprint_login";
/// A session ends after this long without a request…
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(2 * 3600);
/// …and this long after sign-in in any case.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 3600);
/// Most sessions kept at once (the oldest go first).
pub const MAX_SESSIONS: usize = 10_000;

/// Percent-encode one path segment (everything but RFC 3986 unreserved characters).
pub fn pct(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

/// A number as the dashboard prints it: 3 decimals below 1, 2 below 100, 1 below 10 000,
/// none above (with thin-space thousands separators).
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let a = x.abs();
    if a >= 10_000.0 {
        let s = format!("{:.0}", a);
        let mut o = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                o.push('\u{2009}');
            }
            o.push(c);
        }
        if x < 0.0 {
            format!("-{o}")
        } else {
            o
        }
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// Energy: `3.750 kWh`.
pub fn fmt_kwh(x: f64) -> String {
    format!("{} kWh", fmt_num(x))
}

/// Emissions: `1.25 kg CO2e`.
pub fn fmt_kg(x: f64) -> String {
    format!("{} kg CO2e", fmt_num(x))
}

/// A duration: `42 s`, `12.5 min`, `3.2 h`, `4.1 d`.
pub fn fmt_dur(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else if s < 4.0 * 86400.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} d", s / 86400.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// 32 random bytes from the OS, hex.
fn random_id() -> anyhow::Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("the OS random generator failed: {e}"))?;
    Ok(hex(&b))
}

/// Equality that takes the same time wherever the strings differ.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Session {
    token_id: i64,
    csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// Signed-in browsers, in memory, keyed by the SHA-256 of their session id (so the table holds
/// nothing a browser could present). A restart signs everyone out.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

fn sid_key(sid: &str) -> String {
    hex(&Sha256::digest(sid.as_bytes()))
}

impl Sessions {
    /// A new session for a token: (session id for the cookie, CSRF token).
    pub fn create(&self, token_id: i64) -> anyhow::Result<(String, String)> {
        let sid = random_id()?;
        let csrf = random_id()?;
        let now = Instant::now();
        let mut m = self
            .map
            .lock()
            .map_err(|_| anyhow::anyhow!("session table lock poisoned"))?;
        m.retain(|_, s| live(s, now));
        if m.len() >= MAX_SESSIONS {
            if let Some(oldest) = m
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
            {
                m.remove(&oldest);
            }
        }
        m.insert(
            sid_key(&sid),
            Session {
                token_id,
                csrf: csrf.clone(),
                created: now,
                last_seen: now,
            },
        );
        Ok((sid, csrf))
    }

    /// The live session's (token id, CSRF token), refreshing its idle timer.
    fn touch(&self, sid: &str) -> Option<(i64, String)> {
        self.touch_at(sid, Instant::now())
    }

    fn touch_at(&self, sid: &str, now: Instant) -> Option<(i64, String)> {
        let mut m = self.map.lock().ok()?;
        let k = sid_key(sid);
        match m.get_mut(&k) {
            Some(s) if live(s, now) => {
                s.last_seen = now;
                Some((s.token_id, s.csrf.clone()))
            }
            Some(_) => {
                m.remove(&k);
                None
            }
            None => None,
        }
    }

    fn remove(&self, sid: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(&sid_key(sid));
        }
    }

    /// Sessions held now (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn live(s: &Session, now: Instant) -> bool {
    now.saturating_duration_since(s.last_seen) < IDLE_TIMEOUT
        && now.saturating_duration_since(s.created) < MAX_AGE
}

/// The dashboard's state: the API's and its sessions.
#[derive(Clone)]
pub struct DashState {
    pub app: AppState,
    pub sessions: Arc<Sessions>,
}

/// The signed-in token, read afresh from the database for this request.
pub struct Viewer {
    pub token: TokenRecord,
    pub csrf: String,
    sid: String,
    /// Every dashboard page reads many runs: it counts as an expensive request of the token
    /// ([`crate::limits::Expensive`]) while it is built.
    _slot: crate::limits::ExpensiveSlot,
}

impl Viewer {
    pub fn scope(&self) -> Scope {
        self.token.scope()
    }
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// `Secure` when the request reached a TLS proxy first (it can only add protection).
fn secure(headers: &HeaderMap) -> &'static str {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if https {
        "; Secure"
    } else {
        ""
    }
}

fn set_cookie(r: &mut Response, v: String) {
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// An HTML error page.
pub fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p>{}</p><p><a href=\"{BASE}/\">Back to the overview</a></p>",
        esc(title),
        esc(detail)
    );
    (status, pages::document(title, None, "", &body)).into_response()
}

/// The answer for anything the token may not see, and for what does not exist: the same page.
pub fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is nothing here that this token may see.",
    )
}

/// A server-side failure: logged in full, answered without internals.
pub fn internal(e: anyhow::Error) -> Response {
    eprintln!("wattprint serve: dashboard: internal error: {e:#}");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Server error",
        "The server failed to build this page; the details are in the server's log.",
    )
}

impl FromRequestParts<DashState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &DashState) -> Result<Viewer, Response> {
        let login = || see_other(&format!("{BASE}/login"));
        let Some(sid) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(login());
        };
        let Some((token_id, csrf)) = st.sessions.touch(&sid) else {
            return Err(login());
        };
        let token = match st.app.store.token_by_id(token_id).await {
            Ok(Some(t)) => t,
            Ok(None) => {
                st.sessions.remove(&sid);
                return Err(login());
            }
            Err(e) => return Err(internal(e)),
        };
        if token.revoked_at.is_some() {
            st.sessions.remove(&sid);
            return Err(see_other(&format!("{BASE}/login?m=revoked")));
        }
        if let Err(wait) = st.app.limiter.check_at(token.id, Instant::now()) {
            let mut r = error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                "This token is over its request rate; wait a moment and reload.",
            );
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Err(r);
        }
        let slot = match st.app.expensive.enter(token.id) {
            Ok(s) => s,
            Err(e) => {
                let mut r = error_page(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many requests",
                    &e.detail,
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return Err(r);
            }
        };
        if st.app.touches.due(token.id) {
            let store = st.app.store.clone();
            let id = token.id;
            tokio::spawn(async move {
                if let Err(e) = store.touch_token(id).await {
                    eprintln!("wattprint serve: recording the use of token {id}: {e:#}");
                }
            });
        }
        Ok(Viewer {
            token,
            csrf,
            sid,
            _slot: slot,
        })
    }
}

/// POSTs must come from a page of this server: when the browser says where the form was
/// (`Origin`), it must be this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let authority = origin.split_once("://").map(|x| x.1).unwrap_or("");
    !host.is_empty() && authority.eq_ignore_ascii_case(host)
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    nonce: String,
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    m: Option<String>,
}

/// A login page with a fresh anti-forgery nonce (also set as a cookie).
fn login_page(status: StatusCode, message: Option<&str>, headers: &HeaderMap) -> Response {
    let nonce = match random_id() {
        Ok(n) => n,
        Err(e) => return internal(e),
    };
    let mut r = (status, pages::login(&nonce, message)).into_response();
    set_cookie(
        &mut r,
        format!(
            "{LOGIN_COOKIE}={nonce}; Path={BASE}; HttpOnly; SameSite=Strict; Max-Age=3600{}",
            secure(headers)
        ),
    );
    r
}

async fn login_get(
    State(st): State<DashState>,
    headers: HeaderMap,
    q: Result<axum::extract::Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(sid) = cookie(&headers, SESSION_COOKIE) {
        if st.sessions.touch(&sid).is_some() {
            return see_other(&format!("{BASE}/"));
        }
    }
    let m = q.ok().and_then(|q| q.0.m);
    let msg = match m.as_deref() {
        Some("revoked") => Some("That token has been revoked; sign in with another one."),
        Some("out") => Some("Signed out."),
        _ => None,
    };
    login_page(StatusCode::OK, msg, &headers)
}

async fn login_post(
    State(st): State<DashState>,
    headers: HeaderMap,
    form: Result<axum::Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if !same_origin(&headers) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "This form was sent from another site.",
        );
    }
    let Ok(axum::Form(f)) = form else {
        return login_page(
            StatusCode::BAD_REQUEST,
            Some("The form was not understood; enter your token and try again."),
            &headers,
        );
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(&expected, &f.nonce) {
        return login_page(
            StatusCode::FORBIDDEN,
            Some("The sign-in form had expired or came from another page; try again."),
            &headers,
        );
    }
    let tok = f.token.trim();
    let unknown = || {
        login_page(
            StatusCode::UNAUTHORIZED,
            Some("Unknown token. wattprint tokens start with `wpt_`; an administrator creates them with `wattprint admin token create`."),
            &headers,
        )
    };
    if !tok.starts_with(TOKEN_PREFIX) || tok.len() > 200 {
        return unknown();
    }
    let rec = match st.app.store.token_by_hash(&hash_token(tok)).await {
        Ok(Some(r)) => r,
        Ok(None) => return unknown(),
        Err(e) => return internal(e),
    };
    if let Some(when) = &rec.revoked_at {
        return login_page(
            StatusCode::UNAUTHORIZED,
            Some(&format!(
                "This token ({}…) was revoked at {when}; ask an administrator for a new one.",
                rec.prefix
            )),
            &headers,
        );
    }
    let (sid, _) = match st.sessions.create(rec.id) {
        Ok(x) => x,
        Err(e) => return internal(e),
    };
    let mut r = see_other(&format!("{BASE}/"));
    set_cookie(
        &mut r,
        format!(
            "{SESSION_COOKIE}={sid}; Path={BASE}; HttpOnly; SameSite=Strict; Max-Age={}{}",
            MAX_AGE.as_secs(),
            secure(&headers)
        ),
    );
    set_cookie(
        &mut r,
        format!("{LOGIN_COOKIE}=; Path={BASE}; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

#[derive(serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(st): State<DashState>,
    headers: HeaderMap,
    viewer: Viewer,
    form: Result<axum::Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let ok = same_origin(&headers)
        && form
            .as_ref()
            .is_ok_and(|axum::Form(f)| same(&f.csrf, &viewer.csrf));
    if !ok {
        return error_page(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "The form's anti-forgery token is missing or wrong; reload the page and try again.",
        );
    }
    st.sessions.remove(&viewer.sid);
    let mut r = see_other(&format!("{BASE}/login?m=out"));
    set_cookie(
        &mut r,
        format!("{SESSION_COOKIE}=; Path={BASE}; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

async fn unknown_page(_: Viewer) -> Response {
    not_found()
}

/// Headers on every dashboard answer: the CSP, no sniffing, no referrer to other sites (a
/// same-origin referrer keeps the `Origin` header of form posts, which `no-referrer` would make
/// `null`), no framing, no caching.
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(assets::csp()) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The dashboard's routes, to merge into the application's router.
pub fn router(app: AppState) -> Router<AppState> {
    let st = DashState {
        app,
        sessions: Arc::new(Sessions::default()),
    };
    let d = |s: &str| format!("{BASE}{s}");
    Router::new()
        .route("/", get(|| async { see_other(&format!("{BASE}/")) }))
        .route(BASE, get(|| async { see_other(&format!("{BASE}/")) }))
        .route(&d("/"), get(pages::overview))
        .route(&d("/login"), get(login_get).post(login_post))
        .route(&d("/logout"), post(logout))
        .route(&d("/teams/{team}"), get(pages::team))
        .route(&d("/teams/{team}/projects/{project}"), get(pages::project))
        .route(&d("/teams/{team}/runs/{id}"), get(pages::run))
        .route(&d("/users/{user}"), get(pages::user))
        .route(&d("/regions"), get(pages::regions))
        .route(&d("/jobs/{key}"), get(job_page::job))
        .route(&d("/models"), get(models_page::models))
        .route(&d("/{*rest}"), get(unknown_page))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(st)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_encoding() {
        assert_eq!(
            esc(r#"<script>"a"&'b'</script>"#),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;"
        );
        assert_eq!(pct("a b/é?<"), "a%20b%2F%C3%A9%3F%3C");
        assert_eq!(pct("run-1_x.y~"), "run-1_x.y~");
    }

    #[test]
    fn numbers_print_as_documented() {
        assert_eq!(fmt_num(0.0), "0.000");
        assert_eq!(fmt_num(0.1234), "0.123");
        assert_eq!(fmt_num(3.75), "3.75");
        assert_eq!(fmt_num(123.456), "123.5");
        assert_eq!(fmt_num(1_234_567.0), "1\u{2009}234\u{2009}567");
        assert_eq!(fmt_kwh(3.75), "3.75 kWh");
        assert_eq!(fmt_kg(0.5), "0.500 kg CO2e");
        assert_eq!(fmt_dur(90.0), "90 s");
        assert_eq!(fmt_dur(5400.0), "90.0 min");
    }

    #[test]
    fn cookies_are_found() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; wattprint_session=xyz"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn sessions_expire_and_are_removed() {
        let s = Sessions::default();
        let (sid, csrf) = s.create(7).unwrap();
        assert_eq!(sid.len(), 64);
        assert_eq!(s.touch(&sid), Some((7, csrf)));
        assert_eq!(s.touch("nope"), None);
        s.remove(&sid);
        assert_eq!(s.touch(&sid), None);
        // An idle session is dropped; one in use still ends after MAX_AGE.
        let (sid, _) = s.create(8).unwrap();
        let t0 = Instant::now();
        assert!(s.touch_at(&sid, t0 + IDLE_TIMEOUT / 2).is_some());
        assert_eq!(s.touch_at(&sid, t0 + IDLE_TIMEOUT / 2 + IDLE_TIMEOUT), None);
        assert!(s.is_empty());
        let (sid, _) = s.create(9).unwrap();
        let mut t = Instant::now();
        while t < t0 + MAX_AGE - IDLE_TIMEOUT / 2 {
            t += IDLE_TIMEOUT / 2;
            assert!(s.touch_at(&sid, t).is_some());
        }
        assert_eq!(s.touch_at(&sid, t + IDLE_TIMEOUT / 2), None);
    }

    #[test]
    fn origin_check() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }
}
