#![allow(clippy::unwrap_used)]
//! The dashboard over real HTTP (the app on 127.0.0.1:0, a real SQLite file; the isolation test
//! also on PostgreSQL): sign-in and sessions, CSRF, what each token may see, totals as rendered,
//! escaping, security headers.

mod common;

use common::{Backend, Rec, TestServer};
use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use wattprint_server::store::Role;

/// A browser-like client for the dashboard: no redirects followed, cookies by hand.
struct Dash {
    root: String,
    http: reqwest::Client,
}

struct Resp {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Resp {
    fn location(&self) -> String {
        self.headers
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
    /// The value a `Set-Cookie` header gives `name` (None when not set).
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers.get_all(SET_COOKIE).iter().find_map(|v| {
            let v = v.to_str().unwrap();
            let (k, rest) = v.split_once('=')?;
            (k == name).then(|| rest.split(';').next().unwrap().to_string())
        })
    }
    fn set_cookie_header(&self, name: &str) -> String {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|v| v.starts_with(&format!("{name}=")))
            .unwrap_or_default()
    }
}

impl Dash {
    fn new(s: &TestServer) -> Dash {
        Dash {
            root: format!("http://{}", s.addr()),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    async fn read(r: reqwest::Response) -> Resp {
        Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    async fn get(&self, cookie: &str, path: &str) -> Resp {
        let mut b = self.http.get(format!("{}{path}", self.root));
        if !cookie.is_empty() {
            b = b.header(COOKIE, cookie);
        }
        Dash::read(b.send().await.unwrap()).await
    }

    async fn post(
        &self,
        cookie: &str,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Resp {
        let mut b = self.http.post(format!("{}{path}", self.root)).form(form);
        if !cookie.is_empty() {
            b = b.header(COOKIE, cookie);
        }
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        Dash::read(b.send().await.unwrap()).await
    }

    /// Open the login form: (login cookie, nonce).
    async fn login_form(&self) -> (String, String) {
        let r = self.get("", "/dashboard/login").await;
        assert_eq!(r.status, 200, "{}", r.body);
        let nonce = r.cookie("wattprint_login").unwrap();
        assert!(
            r.body
                .contains(&format!("name=\"nonce\" value=\"{nonce}\"")),
            "the form carries the nonce"
        );
        (format!("wattprint_login={nonce}"), nonce)
    }

    /// Sign in with a token: the session cookie (`wattprint_session=…`).
    async fn login(&self, token: &str) -> String {
        let (c, nonce) = self.login_form().await;
        let r = self
            .post(
                &c,
                "/dashboard/login",
                &[("token", token), ("nonce", &nonce)],
                None,
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(r.location(), "/dashboard/");
        let sid = r.cookie("wattprint_session").unwrap();
        assert_eq!(sid.len(), 64);
        let h = r.set_cookie_header("wattprint_session");
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/dashboard"] {
            assert!(h.contains(attr), "{h}");
        }
        assert!(
            !h.contains(token) && !sid.contains(&token[4..20]),
            "no token in the cookie"
        );
        format!("wattprint_session={sid}")
    }

    /// A page that must render (200).
    async fn page(&self, cookie: &str, path: &str) -> String {
        let r = self.get(cookie, path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.body
    }
}

/// `id="ID"`'s element: (its attributes, its text up to the next tag).
fn by_id(html: &str, id: &str) -> (String, String) {
    let needle = format!("id=\"{id}\"");
    let i = html
        .find(&needle)
        .unwrap_or_else(|| panic!("no element #{id}"));
    let end = i + html[i..].find('>').unwrap();
    let attrs = html[i..end].to_string();
    let text_end = end + 1 + html[end + 1..].find('<').unwrap();
    (attrs, html[end + 1..text_end].to_string())
}

fn attr(attrs: &str, name: &str) -> String {
    let n = format!("{name}=\"");
    let i = attrs
        .find(&n)
        .unwrap_or_else(|| panic!("no {name} in {attrs}"))
        + n.len();
    attrs[i..i + attrs[i..].find('"').unwrap()].to_string()
}

fn csrf(html: &str) -> String {
    let n = "name=\"csrf\" value=\"";
    let i = html.find(n).unwrap() + n.len();
    html[i..i + 64].to_string()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// A record with a user, a GPU with an idle power, and a start time.
fn rec(
    id: &str,
    project: &str,
    user: &str,
    status: &'static str,
    at: &str,
    kwh: f64,
    kg: f64,
) -> Value {
    let mut v = Rec::new(id, project)
        .status(status)
        .at(at)
        .progress(3600.0, kwh, kg)
        .json();
    v["user"] = json!(user);
    v["devices"].as_array_mut().unwrap().push(json!({
        "id": "gpu:0", "kind": "gpu", "method": "nvml-energy", "name": "Test GPU",
        "energy_kwh": kwh * 0.5, "avg_power_w": 200.0, "machine_energy_kwh": kwh * 0.5,
        "idle_power_w": 50.0
    }));
    v
}

async fn upload(s: &TestServer, token: &str, body: &Value) {
    let (c, v) = s.post(token, "/runs", body).await;
    assert_eq!(c, 201, "{v}");
}

/// Idle GPU energy of [`rec`]: 50 W for an hour, capped at the GPU's energy.
fn idle_kwh(kwh: f64) -> f64 {
    (0.05f64).min(kwh * 0.5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_go_to_the_login_page() {
    let s = TestServer::start(Backend::Sqlite).await;
    let d = Dash::new(&s);
    for path in [
        "/dashboard/",
        "/dashboard/teams/physics",
        "/dashboard/teams/physics/projects/x",
        "/dashboard/teams/physics/runs/r1",
        "/dashboard/users/alice",
        "/dashboard/regions",
        "/dashboard/no/such/page",
    ] {
        let r = d.get("", path).await;
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(r.location(), "/dashboard/login", "{path}");
        // A made-up session id is no better than none.
        let r = d
            .get(&format!("wattprint_session={}", "ab".repeat(32)), path)
            .await;
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(r.location(), "/dashboard/login", "{path}");
    }
    assert_eq!(d.get("", "/").await.location(), "/dashboard/");
    assert_eq!(d.get("", "/dashboard").await.location(), "/dashboard/");
    // The login page, and every dashboard answer, carries the security headers.
    let r = d.get("", "/dashboard/login").await;
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    for part in [
        "img-src data:",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(r.headers["x-frame-options"], "DENY");
    assert_eq!(r.headers["cache-control"], "no-store");
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(!r.body.contains("<script"), "no JavaScript");
    assert!(
        !r.body.contains("http://") && !r.body.contains("https://"),
        "no external URL"
    );
    let redirect = d.get("", "/dashboard/").await;
    assert!(redirect.headers.contains_key("content-security-policy"));
    // The API is unchanged: JSON, bearer tokens, no cookies.
    let (c, v) = s.get("", "/runs").await;
    assert_eq!(c, 401, "{v}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_forged_forms_get_no_session() {
    let s = TestServer::start(Backend::Sqlite).await;
    let d = Dash::new(&s);
    let (id, tok) = s.token("physics", None, Role::Viewer).await;
    let (c, nonce) = d.login_form().await;
    for bad in [
        "wpt_0000000000000000000000000000000000000000000000000000000000000000".to_string(),
        "not-a-token".to_string(),
        String::new(),
        format!("{tok}x"),
    ] {
        let r = d
            .post(
                &c,
                "/dashboard/login",
                &[("token", &bad), ("nonce", &nonce)],
                None,
            )
            .await;
        assert_eq!(r.status, 401, "{bad:?}: {}", r.body);
        assert!(r.body.contains("id=\"login-error\""), "{}", r.body);
        assert!(r.body.contains("Unknown token"), "{}", r.body);
        assert_eq!(
            r.cookie("wattprint_session"),
            None,
            "no session for {bad:?}"
        );
    }
    // Without the login form's cookie (a form posted from another site): refused.
    let r = d
        .post(
            "",
            "/dashboard/login",
            &[("token", &tok), ("nonce", &nonce)],
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.cookie("wattprint_session"), None);
    // A wrong nonce: refused.
    let r = d
        .post(
            &c,
            "/dashboard/login",
            &[("token", &tok), ("nonce", "00")],
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.cookie("wattprint_session"), None);
    // Another site's Origin: refused even with the right nonce.
    let r = d
        .post(
            &c,
            "/dashboard/login",
            &[("token", &tok), ("nonce", &nonce)],
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.cookie("wattprint_session"), None);
    // A malformed form body.
    let r = Dash::read(
        d.http
            .post(format!("{}/dashboard/login", d.root))
            .header(COOKIE, &c)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.cookie("wattprint_session"), None);
    // A revoked token.
    s.state.store.revoke_token(id, None).await.unwrap();
    let r = d
        .post(
            &c,
            "/dashboard/login",
            &[("token", &tok), ("nonce", &nonce)],
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("revoked"), "{}", r.body);
    assert_eq!(r.cookie("wattprint_session"), None);
    // A good token works, with the same form.
    let (_, good) = s.token("physics", None, Role::Viewer).await;
    let cookie = d.login(&good).await;
    d.page(&cookie, "/dashboard/").await;
    s.stop().await;
}

async fn team_sees_only_its_own(b: Backend) {
    let s = TestServer::start(b).await;
    let d = Dash::new(&s);
    let (_, a_tok) = s.token("physics", None, Role::Member).await;
    let (_, b_tok) = s.token("genomics", None, Role::Member).await;
    let a_runs = [
        rec(
            "a-run-1",
            "climate",
            "alice",
            "completed",
            "2025-01-15T10:00:00Z",
            0.5,
            0.1,
        ),
        rec(
            "a-run-2",
            "climate",
            "bob",
            "failed",
            "2025-02-03T10:00:00Z",
            1.25,
            0.25,
        ),
        rec(
            "a-run-3",
            "weather",
            "alice",
            "completed",
            "2025-02-20T10:00:00Z",
            2.0,
            0.4,
        ),
    ];
    for r in &a_runs {
        upload(&s, &a_tok, r).await;
    }
    let b_runs = [
        rec(
            "b-secret-run",
            "sequencing",
            "carol",
            "completed",
            "2025-02-01T10:00:00Z",
            3.0,
            0.6,
        ),
        rec(
            "b-other-run",
            "climate",
            "dave",
            "killed",
            "2025-02-02T10:00:00Z",
            4.0,
            0.8,
        ),
    ];
    for r in &b_runs {
        upload(&s, &b_tok, r).await;
    }
    let cookie = d.login(&a_tok).await;

    // The team page shows the sums of team A's records, as rendered.
    let team = d.page(&cookie, "/dashboard/teams/physics").await;
    let (at, text) = by_id(&team, "total-energy");
    assert_eq!(text, "3.75 kWh");
    assert!(close(
        attr(&at, "data-kwh").parse().unwrap(),
        0.5 + 1.25 + 2.0
    ));
    let (at, text) = by_id(&team, "total-emissions");
    assert_eq!(text, "0.750 kg CO2e");
    assert!(close(
        attr(&at, "data-kg").parse().unwrap(),
        0.1 + 0.25 + 0.4
    ));
    assert_eq!(by_id(&team, "total-runs").1, "3");
    let (at, text) = by_id(&team, "waste-emissions");
    assert_eq!(text, "0.250 kg CO2e", "the failed run is waste");
    assert!(close(attr(&at, "data-kg").parse().unwrap(), 0.25));
    let idle = idle_kwh(0.5) + idle_kwh(1.25) + idle_kwh(2.0);
    let (at, _) = by_id(&team, "idle-gpu-energy");
    assert!(close(attr(&at, "data-kwh").parse().unwrap(), idle), "{at}");
    // Per project and per user.
    assert!(team.contains("data-kwh=\"1.75\""), "climate: 0.5 + 1.25");
    assert!(team.contains("href=\"/dashboard/teams/physics/projects/climate\""));
    assert!(team.contains("href=\"/dashboard/users/alice\""));
    assert!(team.contains("href=\"/dashboard/teams/physics/runs/a-run-2\""));

    // Nothing of team B anywhere in A's pages.
    let overview = d.page(&cookie, "/dashboard/").await;
    assert_eq!(by_id(&overview, "total-energy").1, "3.75 kWh");
    let project = d
        .page(&cookie, "/dashboard/teams/physics/projects/climate")
        .await;
    assert_eq!(by_id(&project, "total-energy").1, "1.75 kWh");
    let run = d
        .page(&cookie, "/dashboard/teams/physics/runs/a-run-1")
        .await;
    let user = d.page(&cookie, "/dashboard/users/alice").await;
    assert_eq!(by_id(&user, "total-energy").1, "2.50 kWh");
    let regions = d.page(&cookie, "/dashboard/regions").await;
    for (name, page) in [
        ("overview", &overview),
        ("team", &team),
        ("project", &project),
        ("run", &run),
        ("user", &user),
        ("regions", &regions),
    ] {
        for secret in [
            "genomics",
            "b-secret-run",
            "b-other-run",
            "sequencing",
            "carol",
            "dave",
        ] {
            assert!(!page.contains(secret), "{name} page shows {secret}");
        }
    }
    // Not even by URL: 404, the same page as for what does not exist.
    let missing = d.get(&cookie, "/dashboard/teams/no-such-team").await;
    assert_eq!(missing.status, 404);
    for path in [
        "/dashboard/teams/genomics",
        "/dashboard/teams/genomics/projects/sequencing",
        "/dashboard/teams/genomics/runs/b-secret-run",
        "/dashboard/teams/physics/runs/b-secret-run",
        "/dashboard/teams/physics/projects/sequencing",
        "/dashboard/users/carol",
        "/dashboard/regions?team=genomics",
    ] {
        let r = d.get(&cookie, path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.body, missing.body, "{path} differs from a missing page");
        assert!(!r.body.contains("genomics") && !r.body.contains("b-secret"));
    }

    // Team B's token sees B's totals, and its run page.
    let b_cookie = d.login(&b_tok).await;
    let bt = d.page(&b_cookie, "/dashboard/teams/genomics").await;
    assert_eq!(by_id(&bt, "total-energy").1, "7.00 kWh");
    assert_eq!(by_id(&bt, "total-emissions").1, "1.40 kg CO2e");
    d.page(&b_cookie, "/dashboard/teams/genomics/runs/b-secret-run")
        .await;
    assert_eq!(
        d.get(&b_cookie, "/dashboard/teams/physics").await.status,
        404
    );

    // An organisation token sees both teams on the overview; each team page is the team's.
    let org = s.org_token(Role::Viewer).await;
    let o_cookie = d.login(&org).await;
    let ov = d.page(&o_cookie, "/dashboard/").await;
    assert_eq!(by_id(&ov, "total-energy").1, "10.75 kWh");
    assert!(
        ov.contains("href=\"/dashboard/teams/physics\"")
            && ov.contains("href=\"/dashboard/teams/genomics\"")
    );
    let gt = d.page(&o_cookie, "/dashboard/teams/genomics").await;
    assert_eq!(by_id(&gt, "total-energy").1, "7.00 kWh");

    // A project token sees only its project, even on its team's page.
    let (_, p_tok) = s.token("physics", Some("weather"), Role::Viewer).await;
    let p_cookie = d.login(&p_tok).await;
    let pt = d.page(&p_cookie, "/dashboard/teams/physics").await;
    assert_eq!(by_id(&pt, "total-energy").1, "2.00 kWh");
    assert!(!pt.contains("a-run-1") && !pt.contains("bob"));
    assert_eq!(
        d.get(&p_cookie, "/dashboard/teams/physics/projects/climate")
            .await
            .status,
        404
    );
    assert_eq!(
        d.get(&p_cookie, "/dashboard/teams/physics/runs/a-run-1")
            .await
            .status,
        404
    );
    d.page(&p_cookie, "/dashboard/teams/physics/runs/a-run-3")
        .await;
    s.stop().await;
}
both!(team_sees_only_its_own);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_strings_are_escaped() {
    let s = TestServer::start(Backend::Sqlite).await;
    let d = Dash::new(&s);
    let (_, tok) = s.token("physics", None, Role::Member).await;
    let evil_project = "<script>alert('p')</script>";
    let evil_user = "\"><img src=x onerror=alert(1)>";
    let evil_run = "r<b>1</b>&x";
    let mut r = rec(
        evil_run,
        evil_project,
        evil_user,
        "completed",
        "2025-02-01T00:00:00Z",
        1.0,
        0.2,
    );
    r["tags"] = json!({"note": "<script>alert('tag')</script>"});
    r["command"] = json!(["python", "<script>x</script>"]);
    upload(&s, &tok, &r).await;
    let cookie = d.login(&tok).await;
    let pages = [
        "/dashboard/".to_string(),
        "/dashboard/teams/physics".to_string(),
        "/dashboard/teams/physics/projects/%3Cscript%3Ealert%28%27p%27%29%3C%2Fscript%3E"
            .to_string(),
        "/dashboard/teams/physics/runs/r%3Cb%3E1%3C%2Fb%3E%26x".to_string(),
        "/dashboard/users/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E".to_string(),
    ];
    for p in &pages {
        let body = d.page(&cookie, p).await;
        assert!(!body.contains("<script"), "{p}: raw <script");
        assert!(!body.contains("<img"), "{p}: raw <img");
        assert!(!body.contains("r<b>1</b>"), "{p}: raw <b>");
    }
    let team = d.page(&cookie, &pages[1]).await;
    assert!(
        team.contains("&lt;script&gt;alert(&#39;p&#39;)&lt;/script&gt;"),
        "escaped name shown"
    );
    // Links carry the names percent-encoded, and lead to the pages above.
    assert!(team.contains(
        "href=\"/dashboard/teams/physics/projects/%3Cscript%3Ealert%28%27p%27%29%3C%2Fscript%3E\""
    ));
    assert!(team.contains("href=\"/dashboard/teams/physics/runs/r%3Cb%3E1%3C%2Fb%3E%26x\""));
    let run = d.page(&cookie, &pages[3]).await;
    assert!(run.contains("&lt;script&gt;alert(&#39;tag&#39;)&lt;/script&gt;"));
    assert!(run.contains("r&lt;b&gt;1&lt;/b&gt;&amp;x"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_needs_the_csrf_token_and_ends_the_session() {
    let s = TestServer::start(Backend::Sqlite).await;
    let d = Dash::new(&s);
    let (_, tok) = s.token("physics", None, Role::Viewer).await;
    let cookie = d.login(&tok).await;
    let page = d.page(&cookie, "/dashboard/").await;
    let token = csrf(&page);
    let origin = d.root.clone();
    for (form, origin) in [
        (vec![], None),
        (vec![("csrf", "0".repeat(64))], None),
        (vec![("csrf", token[..63].to_string())], None),
        (vec![("csrf", token.clone())], Some("https://evil.example")),
    ] {
        let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = d.post(&cookie, "/dashboard/logout", &f, origin).await;
        assert_eq!(r.status, 403, "{form:?} {origin:?}");
        assert_eq!(r.cookie("wattprint_session"), None);
        d.page(&cookie, "/dashboard/").await; // still signed in
    }
    // Another session's CSRF token does not work either.
    let other = d.login(&tok).await;
    let other_csrf = csrf(&d.page(&other, "/dashboard/").await);
    assert_ne!(other_csrf, token);
    let r = d
        .post(&cookie, "/dashboard/logout", &[("csrf", &other_csrf)], None)
        .await;
    assert_eq!(r.status, 403);
    // Without a session, logout leads to the login page.
    let r = d
        .post("", "/dashboard/logout", &[("csrf", &token)], None)
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/dashboard/login");
    // The right token, from this origin: signed out, cookie cleared, session gone server-side.
    let r = d
        .post(
            &cookie,
            "/dashboard/logout",
            &[("csrf", &token)],
            Some(&origin),
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/dashboard/login?m=out");
    assert_eq!(r.cookie("wattprint_session").as_deref(), Some(""));
    assert!(r
        .set_cookie_header("wattprint_session")
        .contains("Max-Age=0"));
    let again = d.get(&cookie, "/dashboard/").await;
    assert_eq!(again.status, 303);
    assert_eq!(again.location(), "/dashboard/login");
    // The other session is untouched.
    d.page(&other, "/dashboard/").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_token_ends_its_sessions() {
    let s = TestServer::start(Backend::Sqlite).await;
    let d = Dash::new(&s);
    let (id, tok) = s.token("physics", None, Role::Viewer).await;
    let cookie = d.login(&tok).await;
    d.page(&cookie, "/dashboard/").await;
    s.state.store.revoke_token(id, None).await.unwrap();
    let r = d.get(&cookie, "/dashboard/teams/physics").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/dashboard/login?m=revoked");
    assert_eq!(
        d.get(&cookie, "/dashboard/").await.location(),
        "/dashboard/login"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_page_plots_samples_and_shows_breakdown_budgets_and_regions() {
    let s = TestServer::start(Backend::Sqlite).await;
    let d = Dash::new(&s);
    let (_, tok) = s.token("physics", None, Role::Admin).await;
    let mut r = rec(
        "plotted",
        "climate",
        "alice",
        "completed",
        "2025-02-01T00:00:00Z",
        1.0,
        0.2,
    );
    r["series"] = json!((0..120)
        .flat_map(|i| {
            let t = i as f64;
            [
                json!({"device_id": "gpu:0", "t0": t, "t1": t + 1.0, "energy_j": 150.0 + 50.0 * ((t / 10.0).sin())}),
                json!({"device_id": "cpu:package-0", "t0": t, "t1": t + 1.0, "energy_j": 30.0}),
            ]
        })
        .collect::<Vec<_>>());
    upload(&s, &tok, &r).await;
    let (c, v) = s
        .post(
            &tok,
            "/budgets",
            &json!({"kg_per_month": 5.0, "name": "physics monthly"}),
        )
        .await;
    assert_eq!(c, 201, "{v}");
    // A run this month counts against the budget.
    let now = wattprint_server::now_rfc3339();
    // (It ends now: the server refuses an end in the future.)
    let mut this_month = rec("this-month", "climate", "bob", "failed", &now, 2.0, 1.5);
    this_month["duration_s"] = json!(0.0);
    this_month["ended_at"] = json!(now);
    upload(&s, &tok, &this_month).await;
    let cookie = d.login(&tok).await;
    let run = d
        .page(&cookie, "/dashboard/teams/physics/runs/plotted")
        .await;
    let (_, power) = run.split_once("id=\"power\"").unwrap();
    let power = &power[..power.find("</section>").unwrap()];
    assert_eq!(power.matches("<path").count(), 2, "one line per device");
    assert!(power.contains(">gpu:0<") && power.contains(">cpu:package-0<"));
    let (_, cum) = run.split_once("id=\"cumulative\"").unwrap();
    assert!(cum[..cum.find("</section>").unwrap()].contains("<path"));
    assert_eq!(by_id(&run, "run-energy").1, "1.00 kWh");
    for part in [
        "dynamic",
        "static (idle)",
        "infrastructure",
        "embodied",
        "nvml-energy",
        "Test GPU",
        "50.0 W",
    ] {
        assert!(run.contains(part), "run page lacks {part}");
    }
    // Assumptions with their sources, and lower-carbon regions.
    assert!(run.contains("id=\"assumptions\"") && run.contains("<td>PUE</td>"));
    let (_, regions) = run.split_once("id=\"regions\"").unwrap();
    assert!(regions.contains("would have emitted"));
    assert_eq!(
        regions[..regions.find("</section>").unwrap()]
            .matches("<tr><td><code>")
            .count(),
        5
    );
    // Budgets: used this month and left.
    let team = d.page(&cookie, "/dashboard/teams/physics").await;
    let (_, b) = team.split_once("id=\"budgets\"").unwrap();
    let b = &b[..b.find("</section>").unwrap()];
    assert!(
        b.contains("physics monthly") && b.contains("5.00 kg CO2e"),
        "{b}"
    );
    assert!(
        b.contains("1.50 kg CO2e") && b.contains("data-kg=\"3.5\""),
        "{b}"
    );
    assert!(b.contains("30 % used"), "{b}");
    // The waste table lists the failed run.
    let (_, w) = team.split_once("id=\"waste\"").unwrap();
    assert!(w.contains("<tr class=\"wasted\"><td><span class=\"badge failed\">failed</span></td><td class=\"n\">1</td>"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_runs_are_paged() {
    let s = TestServer::start(Backend::Sqlite).await;
    let d = Dash::new(&s);
    let (_, tok) = s.token("physics", None, Role::Member).await;
    for i in 0..55 {
        let at = format!("2025-01-{:02}T{:02}:00:00Z", 1 + i / 24, i % 24);
        upload(
            &s,
            &tok,
            &rec(
                &format!("run-{i:02}"),
                "big",
                "alice",
                "completed",
                &at,
                0.1,
                0.01,
            ),
        )
        .await;
    }
    let cookie = d.login(&tok).await;
    let p1 = d
        .page(&cookie, "/dashboard/teams/physics/projects/big")
        .await;
    assert_eq!(by_id(&p1, "total-runs").1, "55");
    assert_eq!(
        p1.matches("href=\"/dashboard/teams/physics/runs/").count(),
        50
    );
    assert!(
        p1.contains("runs/run-54\"") && !p1.contains("runs/run-04\""),
        "newest first"
    );
    assert!(p1.contains("?page=2\">older"));
    let p2 = d
        .page(&cookie, "/dashboard/teams/physics/projects/big?page=2")
        .await;
    assert_eq!(
        p2.matches("href=\"/dashboard/teams/physics/runs/").count(),
        5
    );
    assert!(p2.contains("runs/run-00\"") && p2.contains("?page=1\">← newer"));
    // A nonsense page number is not an error.
    d.page(&cookie, "/dashboard/teams/physics/projects/big?page=-3")
        .await;
    d.page(&cookie, "/dashboard/teams/physics/projects/big?page=abc")
        .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_follow_a_run_from_checkpoint_to_final_record() {
    let s = TestServer::start(Backend::Sqlite).await;
    let d = Dash::new(&s);
    let (_, tok) = s.token("physics", None, Role::Member).await;
    let cookie = d.login(&tok).await;
    // A checkpoint: 6 minutes, 0.02 kWh; its GPU idled at 50 W: 0.005 kWh.
    let mut cp = rec(
        "job",
        "climate",
        "alice",
        "running",
        "2025-02-01T00:00:00Z",
        0.02,
        0.004,
    );
    cp["duration_s"] = json!(360.0);
    upload(&s, &tok, &cp).await;
    let team = d.page(&cookie, "/dashboard/teams/physics").await;
    let (at, text) = by_id(&team, "idle-gpu-energy");
    assert!(close(attr(&at, "data-kwh").parse().unwrap(), 0.005), "{at}");
    assert_eq!(text, "0.005 kWh");
    assert_eq!(by_id(&team, "total-energy").1, "0.020 kWh");
    // The final record replaces it (1 h): the totals and the record-derived figures follow at once.
    let fin = rec(
        "job",
        "climate",
        "alice",
        "failed",
        "2025-02-01T00:00:00Z",
        2.0,
        0.4,
    );
    let (c, v) = s.post(&tok, "/runs", &fin).await;
    assert_eq!((c, v["outcome"].as_str()), (200, Some("updated")), "{v}");
    let team = d.page(&cookie, "/dashboard/teams/physics").await;
    let (at, _) = by_id(&team, "idle-gpu-energy");
    assert!(close(attr(&at, "data-kwh").parse().unwrap(), 0.05), "{at}");
    assert_eq!(by_id(&team, "total-energy").1, "2.00 kWh");
    assert_eq!(by_id(&team, "waste-emissions").1, "0.400 kg CO2e");
    s.stop().await;
}

#[tokio::test]
async fn embodied_emissions_not_counted_are_said_not_shown_as_zero() {
    let s = TestServer::start(Backend::Sqlite).await;
    let d = Dash::new(&s);
    let (_, tok) = s.token("physics", None, Role::Admin).await;
    let mut r = rec(
        "vm-run",
        "climate",
        "alice",
        "completed",
        "2025-02-01T00:00:00Z",
        1.0,
        0.2,
    );
    let embodied = r["emissions_kg"]["embodied"].as_f64().unwrap();
    let total = r["emissions_kg"]["total"].as_f64().unwrap();
    r["emissions_kg"]["embodied"] = Value::Null;
    r["emissions_kg"]["total"] = json!(total - embodied);
    r["embodied_not_counted"] = json!("a virtual machine whose share of the host is unknown");
    upload(&s, &tok, &r).await;
    let cookie = d.login(&tok).await;
    let run = d
        .page(&cookie, "/dashboard/teams/physics/runs/vm-run")
        .await;
    assert!(run.contains("embodied not counted"), "{run}");
    let (_, breakdown) = run.split_once("id=\"breakdown\"").unwrap();
    let breakdown = &breakdown[..breakdown.find("</section>").unwrap()];
    assert!(breakdown.contains("not counted"), "{breakdown}");
}

/// Runs linked to models (the record's `lineage`) are stored with their model on both
/// databases; the models page lists each with its final training and overhead ratio.
async fn models_page_lists_models_and_their_overhead(b: Backend) {
    let s = TestServer::start(b).await;
    let d = Dash::new(&s);
    let (_, tok) = s.token("physics", None, Role::Member).await;
    let (_, other) = s.token("biology", None, Role::Member).await;
    let lineage = |id: &str, status: &'static str, at: &str, kg: f64, l: Value| {
        let mut v = rec(id, "llm", "alice", status, at, kg * 2.0, kg);
        v["lineage"] = l;
        v
    };
    for v in [
        lineage(
            "p1",
            "completed",
            "2025-03-01T00:00:00Z",
            0.5,
            json!({"model": "gpt-x", "stage": "preparation"}),
        ),
        lineage(
            "t1",
            "failed",
            "2025-03-01T01:00:00Z",
            1.0,
            json!({"model": "gpt-x", "stage": "training"}),
        ),
        lineage(
            "t2",
            "completed",
            "2025-03-01T02:00:00Z",
            2.0,
            json!({"model": "gpt-x", "stage": "training"}),
        ),
        lineage(
            "x1",
            "completed",
            "2025-03-01T03:00:00Z",
            0.25,
            json!({"model": "<b>tiny</b>"}),
        ),
    ] {
        upload(&s, &tok, &v).await;
    }
    upload(
        &s,
        &other,
        &lineage(
            "o1",
            "completed",
            "2025-03-01T00:00:00Z",
            9.0,
            json!({"model": "secret"}),
        ),
    )
    .await;
    // the record keeps its lineage as sent
    let (c, got) = s.get(&tok, "/runs/t2").await;
    assert_eq!(c, 200, "{got}");
    assert_eq!(got["record"]["lineage"]["stage"], "training", "{got}");
    let cookie = d.login(&tok).await;
    let page = d.page(&cookie, "/dashboard/models").await;
    let table = &page[page.find("id=\"models\"").expect("the models table")..];
    assert!(table.contains("<td>gpt-x</td><td>3</td><td>3.50 kg CO2e</td><td>2.00 kg CO2e</td><td>0.750×</td><td>14.3 %</td><td>1</td>"), "{table}");
    assert!(
        table.contains("&lt;b&gt;tiny&lt;/b&gt;") && table.contains("<td>unknown</td>"),
        "{table}"
    );
    assert!(
        !page.contains("secret"),
        "another team's model is not shown"
    );
    assert!(
        table.find("gpt-x").unwrap() < table.find("tiny").unwrap(),
        "most emitting first"
    );
    d.page(&cookie, "/dashboard/models?page=2").await;
    s.stop().await;
}

both!(models_page_lists_models_and_their_overhead);

/// The section `id="ID"` of a page, up to its end.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let i = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section #{id}"));
    &html[i..i + html[i..].find("</section>").unwrap()]
}

/// The overview (read grouped in SQL, the top users by their own query) against a
/// recomputation from the runs uploaded: totals, waste, idle GPU energy, each team's row and
/// the top users in order (ties by name), after running runs ended with other figures (on
/// PostgreSQL a group then comes in several rows until the journal is folded).
async fn overview_matches_the_runs(b: Backend) {
    let s = TestServer::start(b).await;
    let d = Dash::new(&s);
    let teams = ["physics", "genomics"];
    let mut toks = Vec::new();
    for t in teams {
        toks.push(s.token(t, None, Role::Member).await.1);
    }
    // (team, user label, status, kWh, kg) of each run's last upload (its final one), by run id.
    let mut last: BTreeMap<String, (usize, String, &'static str, f64, f64)> = BTreeMap::new();
    let statuses = ["completed", "failed", "killed"];
    for pass in 0..2 {
        for i in 0..30usize {
            // A quarter of the runs are uploaded running first, then final with other figures.
            let early = i % 4 == 0;
            if pass == 1 && !early {
                continue;
            }
            let team = i % 2;
            let id = format!("ov-{i}");
            let project = ["climate", "weather", "ocean"][i % 3];
            let status = if early && pass == 0 {
                "running"
            } else {
                statuses[(i / 2) % 3]
            };
            let at = format!("2025-0{}-1{}T10:00:00Z", 1 + i % 3, i % 10);
            // Binary fractions: every sum is exact, whatever its order.
            let kwh = 0.25 * (1 + (i + pass) % 5) as f64;
            let kg = 0.125 * (1 + (i * 3 + pass) % 4) as f64;
            let user = (i % 7 != 3).then(|| format!("u{:02}", i % 11));
            let mut body = rec(&id, project, "x", status, &at, kwh, kg);
            match &user {
                Some(u) => body["user"] = json!(u),
                None => {
                    body.as_object_mut().unwrap().remove("user");
                }
            }
            let (c, v) = s.post(&toks[team], "/runs", &body).await;
            assert!(c == 200 || c == 201, "{c} {v}");
            let label = user.unwrap_or_else(|| "(no user)".to_string());
            last.insert(id, (team, label, status, kwh, kg));
        }
    }
    let runs: Vec<_> = last.values().cloned().collect();
    let org = s.org_token(Role::Viewer).await;
    let o_cookie = d.login(&org).await;
    let t_cookie = d.login(&toks[0]).await;
    for (cookie, only) in [(&o_cookie, None), (&t_cookie, Some(0usize))] {
        let page = d.page(cookie, "/dashboard/").await;
        let mine: Vec<_> = runs
            .iter()
            .filter(|r| only.is_none_or(|t| r.0 == t))
            .collect();
        assert_eq!(
            by_id(&page, "total-runs").1,
            mine.len().to_string(),
            "{only:?}"
        );
        let kwh: f64 = mine.iter().map(|r| r.3).sum();
        let kg: f64 = mine.iter().map(|r| r.4).sum();
        let wasted: f64 = mine
            .iter()
            .filter(|r| r.2 != "completed")
            .map(|r| r.4)
            .sum();
        let idle: f64 = mine.iter().map(|r| idle_kwh(r.3)).sum();
        let num = |id: &str, a: &str| -> f64 { attr(&by_id(&page, id).0, a).parse().unwrap() };
        assert_eq!(num("total-energy", "data-kwh"), kwh);
        assert_eq!(num("total-emissions", "data-kg"), kg);
        assert_eq!(num("waste-emissions", "data-kg"), wasted);
        assert!(close(num("idle-gpu-energy", "data-kwh"), idle));
        if only.is_none() {
            let table = section(&page, "teams");
            for (t, name) in teams.iter().enumerate() {
                let k: f64 = runs.iter().filter(|r| r.0 == t).map(|r| r.4).sum();
                let e: f64 = runs.iter().filter(|r| r.0 == t).map(|r| r.3).sum();
                let row = &table[table.find(&format!(">{name}</a>")).unwrap()..];
                let row = &row[..row.find("</tr>").unwrap()];
                assert!(row.contains(&format!("data-kg=\"{k}\"")), "{row}");
                assert!(row.contains(&format!("data-kwh=\"{e}\"")), "{row}");
            }
        }
        // The top users: emissions per user, largest first, ties by name, eight of them.
        let mut per: BTreeMap<&str, f64> = BTreeMap::new();
        for r in &mine {
            *per.entry(r.1.as_str()).or_default() += r.4;
        }
        let mut want: Vec<(&str, f64)> = per.into_iter().collect();
        want.sort_by(|a, b| b.1.total_cmp(&a.1));
        want.truncate(8);
        let top = section(&page, "top-users");
        let labels: Vec<&str> = top
            .split("text-anchor=\"end\" class=\"cl\">")
            .skip(1)
            .map(|x| &x[..x.find('<').unwrap()])
            .collect();
        let want_labels: Vec<&str> = want.iter().map(|w| w.0).collect();
        assert_eq!(labels, want_labels, "{only:?}");
        let links: Vec<&str> = top
            .split("href=\"/dashboard/users/")
            .skip(1)
            .map(|x| &x[..x.find('"').unwrap()])
            .collect();
        let named: Vec<&str> = want_labels
            .iter()
            .copied()
            .filter(|u| *u != "(no user)")
            .collect();
        assert_eq!(links, named);
    }
    s.stop().await;
}
both!(overview_matches_the_runs);
