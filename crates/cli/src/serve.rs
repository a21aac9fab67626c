//! Serves `/metrics` for Prometheus to scrape while the demo runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use flightdeck::obs::PrometheusExposition;

/// A running `/metrics` endpoint; stops when dropped.
pub(crate) struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves the exposition's text on `GET /metrics`.
    pub(crate) fn start(
        addr: SocketAddr,
        exposition: PrometheusExposition,
    ) -> anyhow::Result<Self> {
        let server = tiny_http::Server::http(addr)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("cannot listen on --prometheus-listen {addr}"))?;
        let addr = server
            .server_addr()
            .to_ip()
            .context("the metrics listener has no IP address")?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("flightdeck-metrics".into())
            .spawn(move || {
                while !stop_flag.load(Ordering::Relaxed) {
                    let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(100)) else {
                        continue;
                    };
                    let response = if request.url() == "/metrics" {
                        let header = tiny_http::Header::from_bytes(
                            &b"Content-Type"[..],
                            &b"text/plain; version=0.0.4; charset=utf-8"[..],
                        )
                        .expect("a static, valid header");
                        tiny_http::Response::from_string(exposition.render()).with_header(header)
                    } else {
                        tiny_http::Response::from_string("not found; try /metrics\n")
                            .with_status_code(404)
                    };
                    // A client that hung up is not our problem.
                    let _ = request.respond(response);
                }
            })
            .context("cannot start the metrics thread")?;
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address (useful with port 0).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
