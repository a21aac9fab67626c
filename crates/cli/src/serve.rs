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
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use flightdeck::obs::PrometheusExposition;
use flightdeck_service::ConnectionLimits;
use tokio::sync::oneshot;

/// The bounds every connection is served under (see the module docs).
fn limits() -> ConnectionLimits {
    let mut l = ConnectionLimits::default();
    l.max_connections = 64;
    l.max_head_bytes = 16 * 1024;
    l.head_timeout = Duration::from_secs(5);
    l.max_lifetime = Some(Duration::from_secs(30));
    l
}

/// A running HTTP server on its own thread; stops when dropped.
pub(crate) struct HttpServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `addr` and serves `router` under [`limits`] with
    /// `flightdeck_service::serve_router`.
    pub(crate) fn start(addr: SocketAddr, router: Router) -> anyhow::Result<Self> {
        let std_listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on {addr}"))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the HTTP runtime")?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("flightdeck-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                        return;
                    };
                    let stopped = async move {
                        let _ = stopped.await;
                    };
                    // Scrapes are short: a second is enough to finish one.
                    let _ = flightdeck_service::serve_router(
                        router,
                        listener,
                        limits(),
                        stopped,
                        Duration::from_secs(1),
                    )
                    .await;
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
    HttpServer::start(addr, router).with_context(|| format!("--prometheus-listen {addr}"))
}
