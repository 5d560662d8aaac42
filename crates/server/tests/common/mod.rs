//! Test harness: the real server on 127.0.0.1:0 over a real SQLite file or a fresh PostgreSQL
//! database (from WATTPRINT_TEST_POSTGRES_URL), and helpers to build run records.
#![allow(dead_code, clippy::unwrap_used)]

use serde_json::{json, Value};
use std::collections::BTreeMap;
use wattprint_server::admin::{self, TokenSpec};
use wattprint_server::app::AppState;
use wattprint_server::limits::Limits;
use wattprint_server::store::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty PostgreSQL database; returns its URL.
pub async fn fresh_pg_database() -> String {
    let base = wattprint_server::testing::pg_base_url();
    wattprint_server::testing::fresh_pg_database(&base)
        .await
        .unwrap()
}

/// A database URL for the backend (a temp SQLite file kept alive by the returned dir).
pub async fn database(backend: Backend) -> (String, Option<tempfile::TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("server.db").display());
            (url, Some(dir))
        }
        Backend::Postgres => (fresh_pg_database().await, None),
    }
}

/// A database as a wattprint at schema `version` left it, and the first statements of its
/// contents (team `physics`, id 1, and its project `climate`, id 1, in the default
/// organisation), for upgrade tests: the database (not migrated further), its URL and its
/// temp dir (SQLite).
pub async fn older_database(
    backend: Backend,
    version: i64,
) -> (
    std::sync::Arc<dyn wattprint_server::db::Db>,
    String,
    Option<tempfile::TempDir>,
    Vec<wattprint_server::db::Stmt>,
) {
    use wattprint_server::db::{self, migrations, Stmt};
    let (url, dir) = database(backend).await;
    let raw = db::open_unmigrated(&url).await.unwrap();
    migrations::migrate_to(raw.as_ref(), version).await.unwrap();
    let stmts = vec![
        Stmt::new("INSERT INTO teams (org_id, name, created_at) VALUES (1, 'physics', 'x')", vec![]),
        Stmt::new(
            "INSERT INTO projects (org_id, team_id, name, created_at) VALUES (1, 1, 'climate', 'x')",
            vec![],
        ),
    ];
    (raw, url, dir, stmts)
}

/// The real app serving on a loopback port.
pub struct TestServer {
    pub base: String,
    pub database: String,
    pub state: AppState,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        TestServer::with_limits(backend, Limits::default()).await
    }

    pub async fn with_limits(backend: Backend, limits: Limits) -> TestServer {
        let (database, dir) = database(backend).await;
        let state = AppState::open(&database, limits).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let task = tokio::spawn(async move {
            wattprint_server::serve(listener, st, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestServer {
            base: format!("http://{addr}/api/v1"),
            database,
            state,
            http: reqwest::Client::new(),
            stop: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    pub fn addr(&self) -> String {
        self.base
            .trim_start_matches("http://")
            .trim_end_matches("/api/v1")
            .to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Create the team (in the default organisation) if needed, and a token for it.
    pub async fn token(&self, team: &str, project: Option<&str>, role: Role) -> (i64, String) {
        let store = &self.state.store;
        let org = store.org_id(admin::DEFAULT_ORG).await.unwrap().unwrap();
        if store.team_id(org, team).await.unwrap().is_none() {
            admin::create_team(store, admin::DEFAULT_ORG, team)
                .await
                .unwrap();
        }
        let t = admin::create_token(
            store,
            &TokenSpec {
                org: admin::DEFAULT_ORG.into(),
                team: Some(team.into()),
                project: project.map(str::to_string),
                user: None,
                role,
                name: format!("test {team} {}", role.as_str()),
            },
        )
        .await
        .unwrap();
        (t.record.id, t.token)
    }

    /// An organisation-wide token.
    pub async fn org_token(&self, role: Role) -> String {
        admin::create_token(
            &self.state.store,
            &TokenSpec {
                org: admin::DEFAULT_ORG.into(),
                team: None,
                project: None,
                user: None,
                role,
                name: "org".into(),
            },
        )
        .await
        .unwrap()
        .token
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        read(r).await
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        read(r).await
    }

    pub async fn post_raw(
        &self,
        token: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        read(r).await
    }

    pub async fn delete(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        read(r).await
    }

    /// The server still answers (health, no token).
    pub async fn assert_up(&self) {
        let r = self.http.get(self.url("/health")).send().await.unwrap();
        assert_eq!(r.status(), 200, "the server stopped answering");
    }

    /// Rows in a table, read from the database directly.
    pub async fn count(&self, table: &str) -> i64 {
        let rows = self
            .state
            .store
            .db
            .query(&format!("SELECT COUNT(*) FROM {table}"), vec![])
            .await
            .unwrap();
        rows[0].i64(0).unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

pub async fn read(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text}"))
    };
    (status, v)
}

/// Assert a JSON error with `status` and a detail containing `needle`.
pub fn assert_error(got: &(u16, Value), status: u16, needle: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert!(got.1["error"].is_string(), "no error code: {}", got.1);
    let detail = got.1["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains(needle),
        "detail {detail:?} does not mention {needle:?}"
    );
}

/// A valid run record, as `wattprint run` writes it.
#[derive(Clone)]
pub struct Rec {
    pub id: String,
    pub project: String,
    pub status: &'static str,
    pub started_at: String,
    pub duration_s: f64,
    pub energy_kwh: f64,
    pub emissions_kg: f64,
    pub hostname: String,
    pub tags: BTreeMap<String, String>,
    pub command: Vec<String>,
}

impl Rec {
    pub fn new(id: &str, project: &str) -> Rec {
        Rec {
            id: id.into(),
            project: project.into(),
            status: "completed",
            started_at: "2025-03-10T12:00:00Z".into(),
            duration_s: 60.0,
            energy_kwh: 0.5,
            emissions_kg: 0.1,
            hostname: "node-1".into(),
            tags: BTreeMap::new(),
            command: vec!["python".into(), "train.py".into()],
        }
    }
    pub fn status(mut self, s: &'static str) -> Rec {
        self.status = s;
        self
    }
    pub fn at(mut self, started: &str) -> Rec {
        self.started_at = started.into();
        self
    }
    pub fn progress(mut self, duration_s: f64, energy_kwh: f64, emissions_kg: f64) -> Rec {
        self.duration_s = duration_s;
        self.energy_kwh = energy_kwh;
        self.emissions_kg = emissions_kg;
        self
    }
    /// The record as JSON, consistent with itself as the server checks it: `ended_at` is
    /// `started_at + duration_s`; emissions are facility energy × an intensity of at most
    /// 200 g/kWh, the rest of `emissions_kg` (if any) being embodied.
    pub fn json(&self) -> Value {
        use time::format_description::well_known::Rfc3339;
        let e = self.energy_kwh;
        let running = self.status == "running";
        let facility = e * 1.2;
        let g_per_kwh = if facility > 0.0 {
            (self.emissions_kg * 1000.0 / facility).min(200.0)
        } else {
            200.0
        };
        let i_kg = g_per_kwh / 1000.0;
        let operational = facility * i_kg;
        let embodied = (self.emissions_kg - operational).max(0.0);
        let ended = time::OffsetDateTime::parse(&self.started_at, &Rfc3339)
            .map(|t| {
                (t + time::Duration::seconds_f64(self.duration_s))
                    .format(&Rfc3339)
                    .unwrap()
            })
            .unwrap_or_else(|_| self.started_at.clone());
        json!({
            "schema": "wattprint.run/1",
            "id": self.id,
            "project": self.project,
            "tags": self.tags,
            "command": self.command,
            "started_at": self.started_at,
            "ended_at": if running { Value::Null } else { json!(ended) },
            "duration_s": self.duration_s,
            "status": self.status,
            "exit_code": if running { Value::Null } else { json!(0) },
            "host": {"hostname": self.hostname, "cpu_model": "Xeon", "logical_cpus": 4, "ram_gb": 16.0,
                     "gpus": [{"index": 0, "name": "A100", "uuid": "GPU-1"}]},
            "scope": "process",
            "interval_s": 1.0,
            "energy_kwh": {"cpu": e * 0.25, "gpu": e * 0.5, "ram": e * 0.25, "other": 0.0,
                           "dynamic": e * 0.75, "static": e * 0.25, "it": e, "infrastructure": e * 0.2,
                           "facility": e * 1.2, "total": e},
            "devices": [{"id": "cpu:package-0", "kind": "cpu", "method": "rapl", "name": "package-0",
                         "energy_kwh": e * 0.25, "avg_power_w": 10.0, "machine_energy_kwh": e * 0.3}],
            "methods": {"cpu": "rapl", "gpu": "nvml-energy", "ram": "model"},
            "pue": 1.2,
            "carbon_intensity": {"g_per_kwh": g_per_kwh, "source": "test"},
            "location": {"code": "FR", "name": "France", "known": true, "pue_source": "test"},
            "emissions_kg": {"dynamic": e * 0.75 * i_kg, "static": e * 0.25 * i_kg,
                             "infrastructure": e * 0.2 * i_kg, "embodied": embodied,
                             "operational": operational, "total": self.emissions_kg},
            "equivalents": {"car_km": 1.0, "tree_months": 0.1, "flights_paris_london": 0.0,
                            "flights_paris_dublin": 0.0, "flights_new_york_san_francisco": 0.0,
                            "phone_charges": 12.0},
            "assumptions": [{"name": "PUE", "value": 1.2, "unit": "ratio", "source": "test"}],
            "factors_version": "test",
            "warnings": [],
            "samples": 60,
            "skipped_ticks": 0,
            "wattprint_version": "0.1.0"
        })
    }
}

/// Approximate float equality for sums.
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Run a test on both databases: `mod NAME { fn sqlite(); fn postgres(); }`.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::common::Backend::Postgres).await
            }
        }
    };
}
