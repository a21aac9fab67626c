//! A real OTLP collector for tests (feature `testing`): `rotel` from PyPI,
//! installed by `cargo xtask install-test-deps` into a cached virtualenv,
//! started on 127.0.0.1 with free ports, and read back from its detailed
//! debug output.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the rotel agent is: `FLIGHTDECK_ROTEL`, else the cached virtualenv.
///
/// # Panics
///
/// When it is not installed, saying how to install it.
pub fn rotel_agent() -> PathBuf {
    if let Ok(p) = std::env::var("FLIGHTDECK_ROTEL") {
        return PathBuf::from(p);
    }
    let home = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache")
        });
    let lib = home.join("flightdeck/rotel-venv/lib");
    let found = std::fs::read_dir(&lib)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("site-packages/rotel/rotel-agent"))
        .find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!(
            "the rotel OTLP collector is not installed under {}; run `cargo xtask install-test-deps`",
            lib.display()
        )
    })
}

/// A port on 127.0.0.1 that was free a moment ago (the kernel's choice for
/// port 0); a server started on it right away almost always gets it.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running collector; killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct Collector {
    child: Child,
    /// The OTLP/gRPC port.
    pub grpc: u16,
    /// The OTLP/HTTP port.
    pub http: u16,
    out: PathBuf,
    dir: PathBuf,
}

impl Collector {
    /// Starts a collector on two free ports and waits (at most 10 s) until
    /// both listen.
    ///
    /// # Panics
    ///
    /// When rotel is not installed or does not start: this is test support.
    pub fn start() -> Self {
        Self::start_with(true)
    }

    /// Starts a collector that prints nothing (for load tests, where the
    /// debug output would cost more than the work).
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_quiet() -> Self {
        Self::start_with(false)
    }

    fn start_with(debug: bool) -> Self {
        // A port found free can be taken by another test's connection before
        // rotel binds it; rotel then exits, and we try other ports.
        for _ in 0..4 {
            if let Some(c) = Self::try_start(free_port(), free_port(), debug) {
                return c;
            }
        }
        panic!("rotel did not start on 4 pairs of free ports")
    }

    /// Starts on given ports (to restart a collector where it was).
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_on(grpc: u16, http: u16) -> Self {
        Self::try_start(grpc, http, true)
            .unwrap_or_else(|| panic!("rotel did not start on 127.0.0.1:{grpc} and :{http}"))
    }

    fn try_start(grpc: u16, http: u16, debug: bool) -> Option<Self> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "flightdeck-rotel-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let out = dir.join("rotel.out");
        let mut cmd = Command::new(rotel_agent());
        cmd.args(["start", "--otlp-grpc-endpoint"])
            .arg(format!("127.0.0.1:{grpc}"))
            .arg("--otlp-http-endpoint")
            .arg(format!("127.0.0.1:{http}"))
            .args(["--exporter", "blackhole"]);
        if debug {
            cmd.args(["--debug-log", "traces", "--debug-log-verbosity", "detailed"]);
        }
        let child = cmd
            .arg("--pid-file")
            .arg(dir.join("rotel.pid"))
            .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
            .stderr(Stdio::null())
            .spawn()
            .expect("rotel starts");
        let mut c = Self {
            child,
            grpc,
            http,
            out,
            dir,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", grpc)).is_err()
            || TcpStream::connect(("127.0.0.1", http)).is_err()
        {
            // Exited (a port was taken), or not listening after 10 s.
            if c.child.try_wait().ok().flatten().is_some()
                || start.elapsed() > Duration::from_secs(10)
            {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(c)
    }

    /// The debug output so far, without ANSI colours.
    pub fn output(&self) -> String {
        let raw = std::fs::read_to_string(&self.out).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // Skip "ESC [ ... m".
                for d in chars.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Waits (at most 10 s) until the output mentions `needle` `times` times.
    ///
    /// # Panics
    ///
    /// When it does not, showing what the collector printed.
    pub fn wait_for(&self, needle: &str, times: usize) -> String {
        let start = Instant::now();
        loop {
            let text = self.output();
            if text.matches(needle).count() >= times {
                return text;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the collector never showed {needle:?} {times}×; it printed:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A collector that accepts connections on 127.0.0.1 and never answers, so
/// every export waits out its timeout. The listening thread holds the
/// connections open for the life of the process.
#[derive(Debug, Clone, Copy)]
pub struct BlackHole {
    /// The port it listens on.
    pub port: u16,
}

impl BlackHole {
    /// Starts listening on a free port.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming().flatten() {
                held.push(conn);
            }
        });
        Self { port }
    }
}
