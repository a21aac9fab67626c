//! A real OTLP collector for the tests: `rotel` from PyPI, installed by
//! `cargo xtask install-test-deps` into a cached virtualenv, started on
//! 127.0.0.1 with free ports, read back from its detailed debug output.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the rotel agent is: `FLIGHTDECK_ROTEL`, else the cached virtualenv.
pub(crate) fn rotel_agent() -> PathBuf {
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running collector; killed on drop.
pub(crate) struct Collector {
    child: Child,
    pub(crate) grpc: u16,
    pub(crate) http: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Collector {
    pub(crate) fn start() -> Self {
        Self::start_on(free_port(), free_port())
    }

    /// Starts on given ports (to restart a collector where it was).
    pub(crate) fn start_on(grpc: u16, http: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("rotel.out");
        let child = Command::new(rotel_agent())
            .args(["start", "--otlp-grpc-endpoint"])
            .arg(format!("127.0.0.1:{grpc}"))
            .arg("--otlp-http-endpoint")
            .arg(format!("127.0.0.1:{http}"))
            .args([
                "--exporter",
                "blackhole",
                "--debug-log",
                "traces",
                "--debug-log-verbosity",
                "detailed",
            ])
            .arg("--pid-file")
            .arg(dir.path().join("rotel.pid"))
            .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
            .stderr(Stdio::null())
            .spawn()
            .expect("rotel starts");
        let c = Self {
            child,
            grpc,
            http,
            out,
            _dir: dir,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", grpc)).is_err()
            || TcpStream::connect(("127.0.0.1", http)).is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "rotel did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        c
    }

    /// The debug output so far, without ANSI colours.
    pub(crate) fn output(&self) -> String {
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

    /// Waits (bounded) until the output mentions `needle` `times` times.
    pub(crate) fn wait_for(&self, needle: &str, times: usize) -> String {
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
    }
}
