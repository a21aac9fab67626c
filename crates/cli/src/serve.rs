//! Serves `/metrics` for Prometheus to scrape while the demo runs.
//!
//! HTTP goes through `hyper` (with an `axum` router), bounded so that a
//! hostile or broken client cannot starve scrapes or grow memory:
//!
//! | limit | value |
//! |---|---|
//! | connections served at once | 64 (more are closed at once) |
//! | request head (line and headers) | 16 KiB buffered per connection |
//! | time to send a request head | 5 s |
//! | a connection's whole life | 30 s (scrapers reconnect) |
//!
//! A client that pipelines requests and never reads its answers holds one
//! connection until its life ends; every other connection is served on its
//! own task meanwhile.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use flightdeck::obs::PrometheusExposition;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Semaphore, oneshot};

/// The bounds every connection is served under (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) max_head_bytes: usize,
    pub(crate) head_timeout: Duration,
    pub(crate) connection_lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            max_head_bytes: 16 * 1024,
            head_timeout: Duration::from_secs(5),
            connection_lifetime: Duration::from_secs(30),
        }
    }
}

/// A running HTTP server on its own thread; stops when dropped.
pub(crate) struct HttpServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `addr` and serves `router` under `limits`.
    pub(crate) fn start(addr: SocketAddr, router: Router, limits: Limits) -> anyhow::Result<Self> {
        let std_listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on {addr}"))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the HTTP runtime")?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("flightdeck-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                        return;
                    };
                    let slots = Arc::new(Semaphore::new(limits.max_connections));
                    loop {
                        let stream = tokio::select! {
                            _ = &mut stopped => break,
                            accepted = listener.accept() => match accepted {
                                Ok((stream, _)) => stream,
                                // Out of descriptors, say: back off briefly.
                                Err(_) => {
                                    tokio::time::sleep(Duration::from_millis(50)).await;
                                    continue;
                                }
                            },
                        };
                        // Full: close at once rather than queue without bound.
                        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                            drop(stream);
                            continue;
                        };
                        let service = TowerToHyperService::new(router.clone());
                        tokio::spawn(async move {
                            let conn = hyper::server::conn::http1::Builder::new()
                                .timer(TokioTimer::new())
                                .header_read_timeout(limits.head_timeout)
                                .max_buf_size(limits.max_head_bytes)
                                .serve_connection(TokioIo::new(stream), service);
                            let _ = tokio::time::timeout(limits.connection_lifetime, conn).await;
                            drop(permit);
                        });
                    }
                });
            })
            .context("cannot start the HTTP thread")?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The bound address (useful with port 0).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves the exposition's text on `GET /metrics`.
pub(crate) fn metrics_server(
    addr: SocketAddr,
    exposition: PrometheusExposition,
) -> anyhow::Result<HttpServer> {
    if !addr.ip().is_loopback() {
        let _ = std::io::Write::write_fmt(
            &mut std::io::stderr(),
            format_args!(
                "warning: --prometheus-listen {addr} is not a loopback address: anyone who can reach it can read the metrics\n"
            ),
        );
    }
    let router = Router::new()
        .route(
            "/metrics",
            get(move || {
                let exposition = exposition.clone();
                async move {
                    (
                        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                        exposition.render(),
                    )
                }
            }),
        )
        .fallback(|| async {
            (
                axum::http::StatusCode::NOT_FOUND,
                "not found; try /metrics\n",
            )
        });
    HttpServer::start(addr, router, Limits::default())
        .with_context(|| format!("--prometheus-listen {addr}"))
}
