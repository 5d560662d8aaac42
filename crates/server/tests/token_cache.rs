//! The token cache (`crates/server/src/token_cache.rs`) on two server instances sharing one
//! database (as two `wattprint serve` replicas): a token revoked through one server stops
//! working there at once, even though that server had just cached it; on another replica it
//! stops within that replica's cache time and not before it (a cached token is not read
//! again); a token created on one instance works on the others at once (unknown tokens are
//! never cached).
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_error, Backend, TestServer};
use std::time::{Duration, Instant};
use wattprint_server::app::AppState;
use wattprint_server::store::Role;

/// A second server on the test server's database, caching token lookups for `ttl`.
struct Replica {
    base: String,
    http: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    async fn start(database: &str, ttl: Duration) -> Replica {
        let mut state = AppState::open(database, Default::default()).await.unwrap();
        state.store = state.store.with_token_cache(ttl);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            wattprint_server::serve(listener, state, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Replica {
            base: format!("http://{addr}/api/v1"),
            http: reqwest::Client::new(),
            stop: tx,
            task,
        }
    }

    async fn status(&self, token: &str) -> u16 {
        self.http
            .get(format!("{}/runs", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

async fn revocation_reaches_every_replica_within_its_cache_time(b: Backend) {
    // The test server caches lookups for the default 5 s.
    let s = TestServer::start(b).await;
    let (_, admin) = s.token("physics", None, Role::Admin).await;
    let long = Replica::start(&s.database, Duration::from_secs(3600)).await;
    let short = Replica::start(&s.database, Duration::from_millis(200)).await;

    // A token created after the replicas have cached others works on each at once.
    assert_eq!(long.status(&admin).await, 200);
    let (id, tok) = s.token("physics", None, Role::Viewer).await;
    assert_eq!(long.status(&tok).await, 200);
    assert_eq!(short.status(&tok).await, 200);
    assert_eq!(s.get(&tok, "/runs").await.0, 200);

    // Revoked through the test server: refused there at once, although it had cached it.
    assert_eq!(s.delete(&admin, &format!("/tokens/{id}")).await.0, 204);
    assert_error(&s.get(&tok, "/runs").await, 401, "revoked");
    // Another replica reads it again only once its entry has expired: the one caching for an
    // hour still accepts it (the bound documented for replicas is the cache time)...
    assert_eq!(long.status(&tok).await, 200);
    // ...and the one caching for 200 ms refuses it soon after (well before the deadline).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let code = short.status(&tok).await;
        if code == 401 {
            break;
        }
        assert_eq!(code, 200);
        assert!(
            Instant::now() < deadline,
            "a replica caching tokens for 200 ms still accepted a revoked token after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Unknown tokens are refused everywhere, and stay refused (nothing negative is cached to
    // make a later token fail, nothing positive to make this one pass).
    let unknown = format!("wpt_{}", "0".repeat(64));
    assert_eq!(long.status(&unknown).await, 401);
    assert_eq!(s.get(&unknown, "/runs").await.0, 401);
    long.stop().await;
    short.stop().await;
    s.stop().await;
}
both!(revocation_reaches_every_replica_within_its_cache_time);

async fn a_revoked_token_cannot_upload_on_the_server_that_revoked_it(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.token("physics", None, Role::Admin).await;
    let (id, tok) = s.token("physics", None, Role::Member).await;
    let rec = common::Rec::new("r1", "p").json();
    assert_eq!(s.post(&tok, "/runs", &rec).await.0, 201);
    // Revoked by the administrator's command on this server's store (as `admin token revoke`
    // run inside the server would): the very next upload is refused and writes nothing.
    wattprint_server::admin::revoke_token(&s.state.store, id)
        .await
        .unwrap();
    let r2 = common::Rec::new("r2", "p").json();
    assert_error(&s.post(&tok, "/runs", &r2).await, 401, "revoked");
    assert_eq!(s.count("runs").await, 1);
    // Other tokens are still served from the cache or the database alike.
    assert_eq!(s.get(&admin, "/runs").await.0, 200);
    s.stop().await;
}
both!(a_revoked_token_cannot_upload_on_the_server_that_revoked_it);
