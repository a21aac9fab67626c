//! Serving the router: one acceptor hands each connection to a worker, and
//! every connection is served under the limits in [`ConnectionLimits`].
//!
//! [`serve`] runs everything on the caller's runtime. [`serve_on_threads`]
//! gives each of N threads its own single-threaded runtime and deals the
//! connections out in turn: a connection's requests then never leave the
//! thread that reads them: no wake-ups of another worker, no stolen tasks.
//! Connections are long-lived (keep-alive), so dealing them out in turn
//! spreads the load evenly. With this server, the shards joined on the
//! request's task and the log layer's lazy span fields, the service used 9 %
//! less CPU per answer at 10,000/s than the session's starting build
//! (docs/benchmarks.md, eighth session).
//!
//! On shutdown the acceptor stops, `/readyz` turns 503, every connection is
//! told to close once its request in flight is answered (idle ones close at
//! once), and the call returns when all are closed or after the grace
//! period, whichever is first.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::{Service, faults};

/// Bounds on the clients a server serves (see [`crate::ServiceOptions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// Connections served at once; more are closed as soon as accepted.
    pub max_connections: usize,
    /// The most bytes of a request head (request line and headers) buffered;
    /// a longer head is answered 431 and the connection closed.
    pub max_head_bytes: usize,
    /// How long a client has to send a request's head. This also closes a
    /// keep-alive connection idle that long (slow or silent clients cannot
    /// hold connections).
    pub head_timeout: Duration,
    /// The longest a connection lives, when set (closed then even mid-answer;
    /// a client that pipelines requests and never reads its answers holds
    /// its connection no longer). `None` for the service: load generators and
    /// proxies keep connections for as long as they run.
    pub max_lifetime: Option<Duration>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_head_bytes: 32 * 1024,
            head_timeout: Duration::from_secs(10),
            max_lifetime: None,
        }
    }
}

impl ConnectionLimits {
    /// The limits with the head buffer at hyper's smallest allowed (8 KiB)
    /// or more.
    fn checked(self) -> Self {
        Self {
            max_connections: self.max_connections.max(1),
            max_head_bytes: self.max_head_bytes.max(8 * 1024),
            head_timeout: self.head_timeout.max(Duration::from_millis(1)),
            max_lifetime: self.max_lifetime,
        }
    }
}

/// An accepted connection and its slot under `max_connections`.
type Conn = (std::net::TcpStream, OwnedSemaphorePermit);

/// Serves `service` on `listener` until `shutdown` resolves; then stops
/// accepting, marks the service draining, and waits up to `grace` for the
/// requests in flight. Everything runs on the caller's runtime.
///
/// # Errors
///
/// An I/O error from the listener, or [`std::io::ErrorKind::TimedOut`] when
/// connections were still open after `grace`.
pub async fn serve(
    service: Arc<Service>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let background = tokio::spawn(faults::background(Arc::clone(&service.faults)));
    let result = serve_router(
        service.router(),
        listener,
        service.options.connections,
        draining(&service, shutdown),
        grace,
    )
    .await;
    background.abort();
    result
}

/// Serves any `router` on `listener` under `limits`, on the caller's
/// runtime, until `shutdown` resolves; then stops accepting and closes the
/// connections gracefully, waiting up to `grace`. (The CLI's `/metrics`
/// endpoint runs on this.)
///
/// # Errors
///
/// As [`serve`].
pub async fn serve_router(
    router: Router,
    listener: tokio::net::TcpListener,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let limits = limits.checked();
    let (tx, rx) = mpsc::channel::<Conn>(64);
    let worker = tokio::spawn(worker(router, rx, limits));
    let result = accept(listener, vec![tx], limits, shutdown).await;
    let drained = tokio::time::timeout(grace, worker).await;
    result?;
    drained.map(|_| ()).map_err(|_| in_flight_after(grace))
}

/// Serves `service` on `listener` with `threads` worker threads, each
/// running its own single-threaded runtime; the calling thread accepts
/// connections, runs `shutdown` and the service's background work, and
/// blocks until the server has stopped (as [`serve`] does).
///
/// # Errors
///
/// As [`serve`]; also when a runtime or a thread cannot be started.
pub fn serve_on_threads(
    service: Arc<Service>,
    listener: std::net::TcpListener,
    threads: NonZeroUsize,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let limits = service.options.connections.checked();
    let router = service.router();
    let mut senders = Vec::with_capacity(threads.get());
    let mut finished = Vec::with_capacity(threads.get());
    for i in 0..threads.get() {
        let (tx, rx) = mpsc::channel::<Conn>(64);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let router = router.clone();
        // Detached: a worker still draining after the grace period must not
        // hold the process (the caller exits and flushes).
        std::thread::Builder::new()
            .name(format!("flightdeck-serve-{i}"))
            .spawn(move || {
                runtime.block_on(worker(router, rx, limits));
                let _ = done_tx.send(());
            })?;
        senders.push(tx);
        finished.push(done_rx);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let background = tokio::spawn(faults::background(Arc::clone(&service.faults)));
        let result = accept(listener, senders, limits, draining(&service, shutdown)).await;
        let drained = tokio::time::timeout(grace, async {
            for done in finished {
                let _ = done.await;
            }
        })
        .await;
        background.abort();
        result?;
        drained.map_err(|_| in_flight_after(grace))
    })
}

/// `shutdown`, then the service marked draining (`/readyz` turns 503).
fn draining(
    service: &Arc<Service>,
    shutdown: impl Future<Output = ()>,
) -> impl Future<Output = ()> {
    let service = Arc::clone(service);
    async move {
        shutdown.await;
        service.start_draining();
    }
}

fn in_flight_after(grace: Duration) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("requests still in flight after {grace:?}"),
    )
}

/// Accepts until `shutdown`, dealing connections to `workers` in turn.
/// Dropping the senders tells the workers no more connections come.
async fn accept(
    listener: tokio::net::TcpListener,
    workers: Vec<mpsc::Sender<Conn>>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut next = 0usize;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors, say: back off briefly and retry.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Full: close at once rather than queue without bound.
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        let worker = &workers[next % workers.len()];
        next = next.wrapping_add(1);
        // A worker's queue holds at most 64 waiting connections; past that
        // the acceptor waits (the listen backlog absorbs the burst).
        if worker.send((stream, permit)).await.is_err() {
            return Err(std::io::Error::other("a server worker stopped"));
        }
    }
    Ok(())
}

/// Serves the connections handed to it until the acceptor stops, then closes them
/// gracefully: each finishes its request in flight, idle ones close at once.
async fn worker(router: Router, mut conns: mpsc::Receiver<Conn>, limits: ConnectionLimits) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.head_timeout)
        .max_buf_size(limits.max_head_bytes);
    // The acceptor drops its senders when it stops: then no more come.
    while let Some((stream, permit)) = conns.recv().await {
        let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
            continue;
        };
        let conn = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let conn = graceful.watch(conn);
        let lifetime = limits.max_lifetime;
        tokio::spawn(async move {
            match lifetime {
                Some(life) => {
                    let _ = tokio::time::timeout(life, conn).await;
                }
                None => {
                    let _ = conn.await;
                }
            }
            drop(permit);
        });
    }
    graceful.shutdown().await;
}
