//! The server's connection limits and its threads, over real loopback
//! sockets: a silent or slow client is closed after the head timeout, a head
//! over the cap is refused with 431, connections past the limit are closed at
//! once (and a freed slot is reused), and `serve_on_threads` answers on many
//! connections and stops cleanly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flightdeck::obs::MetricsCollector;
use flightdeck::slo::SloSettings;
use flightdeck_service::{ConnectionLimits, Service, ServiceOptions, serve_on_threads};

/// A service on `threads` threads of `serve_on_threads`, on a free port.
struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    fn start(limits: ConnectionLimits, threads: usize) -> Self {
        let options = ServiceOptions {
            time_scale: 0.0,
            connections: limits,
            ..ServiceOptions::default()
        };
        let service = Service::new(
            options,
            MetricsCollector::new(),
            None,
            &SloSettings::default(),
        )
        .expect("the service builds");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            serve_on_threads(
                Arc::clone(&service),
                listener,
                NonZeroUsize::new(threads).unwrap(),
                async move {
                    let _ = stopped.await;
                },
                Duration::from_secs(10),
            )
        });
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> std::io::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn limits(f: impl FnOnce(&mut ConnectionLimits)) -> ConnectionLimits {
    let mut l = ConnectionLimits::default();
    f(&mut l);
    l
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Sends a keep-alive GET and reads one whole answer: (status, body).
fn get(s: &mut TcpStream, path: &str) -> (u16, String) {
    write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    read_answer(s)
}

fn read_answer(s: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s
            .read(&mut chunk)
            .expect("an answer within the read timeout");
        assert!(
            n > 0,
            "closed before a whole answer: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head[9..12].parse().unwrap();
                return (status, text[end + 4..end + 4 + len].to_owned());
            }
        }
    }
}

/// True once the peer has closed `s` (EOF or reset) within the read timeout.
fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn a_silent_or_slow_client_is_closed_after_the_head_timeout() {
    let server = Running::start(limits(|l| l.head_timeout = Duration::from_millis(300)), 1);
    let mut silent = connect(server.addr);
    let mut slow = connect(server.addr);
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    assert!(closed_by_peer(&mut silent), "a silent connection is closed");
    assert!(closed_by_peer(&mut slow), "a head never finished is closed");
    // A prompt client on the same server is served.
    let mut ok = connect(server.addr);
    assert_eq!(get(&mut ok, "/healthz").0, 200);
    drop(ok);
    server.stop().unwrap();
}

#[test]
fn a_head_over_the_cap_is_refused_with_431() {
    let server = Running::start(limits(|l| l.max_head_bytes = 8 * 1024), 1);
    let mut s = connect(server.addr);
    let big = "x".repeat(20 * 1024);
    // The server may answer and close before the whole head is written.
    let _ = write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n"
    );
    assert_eq!(read_answer(&mut s).0, 431);
    let mut ok = connect(server.addr);
    assert_eq!(
        get(&mut ok, "/healthz").0,
        200,
        "a normal head still passes"
    );
    drop(ok);
    server.stop().unwrap();
}

#[test]
fn connections_past_the_limit_are_closed_and_a_freed_slot_is_reused() {
    let server = Running::start(limits(|l| l.max_connections = 2), 2);
    let mut a = connect(server.addr);
    let mut b = connect(server.addr);
    assert_eq!(get(&mut a, "/healthz").0, 200);
    assert_eq!(get(&mut b, "/healthz").0, 200);
    let mut third = connect(server.addr);
    assert!(
        closed_by_peer(&mut third),
        "a third connection is closed at once"
    );
    drop(a);
    // The slot frees when the server sees `a` close: retry, bounded.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut c = connect(server.addr);
        let _ = write!(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        let mut first = [0u8; 12];
        if c.read_exact(&mut first).is_ok() {
            assert_eq!(&first[9..12], b"200");
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot was never reused");
    }
    assert_eq!(
        get(&mut b, "/healthz").0,
        200,
        "kept connections still served"
    );
    drop(b);
    server.stop().unwrap();
}

#[test]
fn many_connections_are_answered_across_threads_and_the_server_stops_cleanly() {
    let server = Running::start(ConnectionLimits::default(), 2);
    let mut conns: Vec<TcpStream> = (0..8).map(|_| connect(server.addr)).collect();
    for round in 0..5 {
        for (i, c) in conns.iter_mut().enumerate() {
            let (status, body) = get(c, "/readyz");
            assert_eq!(status, 200, "round {round}, connection {i}: {body}");
        }
    }
    // Idle keep-alive connections do not hold the shutdown.
    server.stop().expect("stops within the grace period");
    for c in &mut conns {
        assert!(closed_by_peer(c), "idle connections are closed on shutdown");
    }
}

#[test]
fn a_connection_past_its_lifetime_is_closed_even_when_busy() {
    let server = Running::start(
        limits(|l| l.max_lifetime = Some(Duration::from_millis(300))),
        1,
    );
    let mut s = connect(server.addr);
    assert_eq!(get(&mut s, "/healthz").0, 200);
    // Keep it busy with requests it never finishes reading: still closed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .is_err()
        {
            break;
        }
        let mut chunk = [0u8; 64];
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "the connection outlived its lifetime"
        );
    }
    server.stop().unwrap();
}
