//! Connections: the accept loop behind `wattprint serve`, with the limits that keep slow or idle
//! clients from holding the server's descriptors (see "Limits" in docs/server.md):
//!
//! - **connection limit** ([`Limits::max_connections`]): at most this many connections are open
//!   at once; beyond it the server stops accepting and new connections wait in the kernel's
//!   listen backlog until one closes (so the process never runs out of descriptors);
//! - **header-read timeout** ([`Limits::header_read_timeout`]): a request's headers must be
//!   complete within this time of the connection opening, or of the previous response on a
//!   keep-alive connection (so it also closes idle keep-alive connections);
//! - **idle timeout** ([`Limits::idle_timeout`]): a connection on which no byte moves in either
//!   direction for this long is closed (a client that stops reading its answer, a stalled body).
//!
//! On shutdown the listener closes, idle connections close at once and in-flight requests
//! finish (each is bounded by the request timeout).

use crate::limits::Limits;
use anyhow::Result;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// A TCP stream that records when a byte last moved (milliseconds since `start`).
struct Tracked {
    inner: TcpStream,
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Tracked {
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Resolves once nothing has moved on the connection for `idle`.
async fn idle_for(last_ms: &AtomicU64, start: Instant, idle: Duration) {
    loop {
        let deadline = start + Duration::from_millis(last_ms.load(Ordering::Relaxed)) + idle;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline.into()).await;
    }
}

/// Errors of one connection that `accept` reports (the listener itself is fine).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The largest connection limit accepted.
pub const MAX_CONNECTIONS: usize = 1_000_000;

/// Serve `app` on `listener` until `shutdown` completes, within `limits`' connection limits.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let max = limits.max_connections.clamp(1, MAX_CONNECTIONS);
    let slots = Arc::new(Semaphore::new(max));
    let (close_tx, close_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of descriptors or similar: wait instead of spinning.
                    eprintln!("wattprint serve: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut close_rx = close_rx.clone();
        tokio::spawn(async move {
            let _slot = permit;
            let start = Instant::now();
            let last_ms = Arc::new(AtomicU64::new(0));
            let io = TokioIo::new(Tracked {
                inner: stream,
                start,
                last_ms: Arc::clone(&last_ms),
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let mut conn = pin!(builder.serve_connection(io, TowerToHyperService::new(app)));
            let mut closing = false;
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    r = close_rx.changed(), if !closing => {
                        closing = true;
                        if r.is_ok() {
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                    // Dropping the connection closes the socket.
                    _ = idle_for(&last_ms, start, limits.idle_timeout) => break,
                }
            }
        });
    }
    drop(listener);
    let _ = close_tx.send(true);
    // Every connection holds a slot: having them all back means every connection ended.
    let _ = slots.acquire_many(max as u32).await;
    Ok(())
}
