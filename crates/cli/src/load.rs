//! `flightdeck load`: an open-loop load generator. Request i is due at
//! `start + i / rps` whether or not earlier ones have answered, and its
//! latency is measured from that intended send time, so a stalled server
//! shows up as latency instead of silently lowering the rate (the
//! coordinated-omission correction of wrk2 and oha). Latencies go into an
//! HDR histogram.
//!
//! A pacer thread releases each request at its due time with the OS's
//! high-resolution sleep, and the connections' tasks wait on a semaphore for
//! it. tokio's own timer fires on a 1 ms tick, which added up to a
//! millisecond of timer lateness to every latency (a trivial handler measured
//! p50 1.27 ms that way); spinning to the due time instead took the CPU the
//! server needed. Above 5,000 requests/s the pacer wakes every 200 µs and
//! releases the requests due since together ([`PACER_QUANTUM`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::BadInput;

/// Arguments of `flightdeck load`.
#[derive(Debug, clap::Args)]
pub(crate) struct LoadArgs {
    /// The URL to load, e.g. http://127.0.0.1:8080/v1/answer (http only).
    #[arg(long, value_name = "URL")]
    target: String,
    /// Requests per second, held whatever the server does (open loop).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    rps: u64,
    /// How long to send, e.g. 10s, 2m.
    #[arg(long, value_parser = parse_duration)]
    duration: Duration,
    /// Connections (each carries one request at a time).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,
    /// Distinct user ids in the request bodies (for experiment splits).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    users: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{} is not a duration such as 10s or 2m", crate::shown(s)))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" | "" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => {
            return Err(format!(
                "{} is not a duration such as 10s or 2m",
                crate::shown(s)
            ));
        }
    };
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("{s}: the duration must be above 0 and at most 24h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Host, port and path of an `http://` URL.
fn parse_target(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!(
            "--target {}: only http:// URLs are supported",
            crate::shown(url)
        )
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || !authority.contains(':') {
        return Err(format!(
            "--target {}: give host:port, e.g. http://127.0.0.1:8080/v1/answer",
            crate::shown(url)
        ));
    }
    Ok((authority.to_owned(), path.to_owned()))
}

/// The run's outcome (the `--json` document).
#[derive(Debug, Serialize)]
struct Report {
    target: String,
    requested_rps: u64,
    duration_secs: f64,
    sent: u64,
    ok: u64,
    errors: u64,
    achieved_rps: f64,
    status: BTreeMap<String, u64>,
    latency_ms: Latency,
}

#[derive(Debug, Serialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p95: f64,
    p99: f64,
    p999: f64,
    max: f64,
    mean: f64,
}

struct Shared {
    next: AtomicU64,
    total: u64,
    start: Instant,
    interval_ns: f64,
    done: AtomicU64,
    /// One permit per request that is due; the pacer adds them.
    due: tokio::sync::Semaphore,
    /// Set when the run ends early, so the pacer stops.
    stop: AtomicBool,
    /// How many connection tasks wait on `due`.
    connections: usize,
}

impl Shared {
    /// When request `i` is due.
    fn due_at(&self, i: u64) -> Instant {
        self.start + Duration::from_nanos((i as f64 * self.interval_ns) as u64)
    }

    /// How many requests are due at `now`.
    fn due_by(&self, now: Instant) -> u64 {
        if now < self.start {
            return 0;
        }
        let elapsed = now.duration_since(self.start).as_nanos() as f64;
        ((elapsed / self.interval_ns).floor() as u64)
            .saturating_add(1)
            .min(self.total)
    }
}

/// The pacer's shortest sleep. Above 1 / quantum requests per second
/// (5,000/s) the pacer releases the requests due in each quantum together
/// instead of waking once per request: at 15,000/s that is a third of the
/// wake-ups, of the pacer and of the connection tasks, on the cores the server
/// shares. A request released late still counts from its due time, so this
/// adds at most the quantum to its measured latency, never hides any.
const PACER_QUANTUM: Duration = Duration::from_micros(200);

/// Releases a permit for each request when it falls due, sleeping with the
/// OS's high-resolution timer between (no spinning). Several requests that
/// fell due during one sleep are released together, each still measured from
/// its own due time.
fn pace(shared: &Shared) {
    let mut released = 0_u64;
    while released < shared.total && !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let due = shared.due_by(now);
        if due > released {
            let add = usize::try_from(due - released).unwrap_or(usize::MAX);
            shared
                .due
                .add_permits(add.min(tokio::sync::Semaphore::MAX_PERMITS));
            released = due;
            if released == shared.total {
                // One more permit per connection: each takes an index past
                // the end and stops, instead of waiting for a permit that
                // will never come.
                shared.due.add_permits(shared.connections);
            }
        } else {
            // Wake at the next due time (but no sooner than PACER_QUANTUM),
            // or within 50 ms to check `stop`.
            let next = shared.due_at(released);
            std::thread::sleep(
                next.saturating_duration_since(now)
                    .clamp(PACER_QUANTUM, Duration::from_millis(50)),
            );
        }
    }
}

async fn worker(
    shared: Arc<Shared>,
    authority: String,
    path: String,
    users: u64,
) -> (Histogram<u64>, BTreeMap<String, u64>) {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("valid bounds");
    let mut status: BTreeMap<String, u64> = BTreeMap::new();
    let mut conn: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>> = None;
    let post = path.ends_with("/v1/answer");
    loop {
        if shared.next.load(Ordering::Relaxed) >= shared.total {
            break;
        }
        // The pacer adds one permit per due request; the permits are
        // released in due order and taken in index order, so request `i` is
        // due by the time its permit arrives.
        match shared.due.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => break,
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= shared.total {
            break;
        }
        let due = shared.due_at(i);
        let outcome = async {
            if conn.as_ref().is_none_or(|c| c.is_closed()) {
                let stream = tokio::time::timeout(
                    Duration::from_secs(5),
                    tokio::net::TcpStream::connect(&authority),
                )
                .await
                .map_err(|_| "connect timeout".to_owned())?
                .map_err(|e| format!("connect: {}", e.kind()))?;
                let _ = stream.set_nodelay(true);
                let (send, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(|_| "handshake".to_owned())?;
                tokio::spawn(connection);
                conn = Some(send);
            }
            let send = conn.as_mut().expect("connected");
            send.ready()
                .await
                .map_err(|_| "connection closed".to_owned())?;
            let builder = hyper::Request::builder()
                .uri(path.as_str())
                .header("host", authority.as_str());
            let req = if post {
                let body = format!(
                    r#"{{"query": "question {}", "user_id": "user-{}"}}"#,
                    i % 50,
                    i % users
                );
                builder
                    .method("POST")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
            } else {
                builder.method("GET").body(Full::new(Bytes::new()))
            }
            .map_err(|e| e.to_string())?;
            let resp = tokio::time::timeout(Duration::from_secs(30), send.send_request(req))
                .await
                .map_err(|_| "timeout".to_owned())?
                .map_err(|_| "request failed".to_owned())?;
            let code = resp.status().as_u16();
            let _ = resp.into_body().collect().await;
            Ok::<u16, String>(code)
        }
        .await;
        let latency_us = u64::try_from(due.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let _ = hist.record(latency_us.min(120_000_000));
        let key = match outcome {
            Ok(code) => code.to_string(),
            Err(e) => {
                conn = None;
                e
            }
        };
        *status.entry(key).or_insert(0) += 1;
        shared.done.fetch_add(1, Ordering::Relaxed);
    }
    (hist, status)
}

pub(crate) fn run(args: LoadArgs) -> anyhow::Result<()> {
    let (authority, path) = parse_target(&args.target).map_err(BadInput::new)?;
    let total = (args.rps as f64 * args.duration.as_secs_f64())
        .round()
        .max(1.0) as u64;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("flightdeck-load")
        .build()
        .context("cannot start the async runtime")?;
    let progress = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} {bar:40} {pos}/{len} requests  {per_sec}  eta {eta}",
        )
        .expect("the progress template is a valid constant"),
    );
    let (hist, status, elapsed) = runtime.block_on(async {
        let shared = Arc::new(Shared {
            next: AtomicU64::new(0),
            total,
            start: Instant::now() + Duration::from_millis(20),
            interval_ns: 1e9 / args.rps as f64,
            done: AtomicU64::new(0),
            due: tokio::sync::Semaphore::new(0),
            stop: AtomicBool::new(false),
            connections: args.concurrency as usize,
        });
        let pacer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("flightdeck-pacer".into())
                .spawn(move || pace(&shared))
                .context("cannot start the pacer thread")?
        };
        let workers: Vec<_> = (0..args.concurrency)
            .map(|_| {
                tokio::spawn(worker(
                    Arc::clone(&shared),
                    authority.clone(),
                    path.clone(),
                    args.users,
                ))
            })
            .collect();
        let ticker = {
            let (shared, progress) = (Arc::clone(&shared), progress.clone());
            tokio::spawn(async move {
                loop {
                    progress.set_position(shared.done.load(Ordering::Relaxed));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        };
        let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("valid bounds");
        let mut status: BTreeMap<String, u64> = BTreeMap::new();
        for w in workers {
            if let Ok((h, s)) = w.await {
                let _ = hist.add(&h);
                for (k, v) in s {
                    *status.entry(k).or_insert(0) += v;
                }
            }
        }
        ticker.abort();
        let elapsed = shared.start.elapsed();
        shared.stop.store(true, Ordering::Relaxed);
        shared.due.close();
        let _ = pacer.join();
        Ok::<_, anyhow::Error>((hist, status, elapsed))
    })?;
    progress.finish_and_clear();
    let sent: u64 = status.values().sum();
    let ok: u64 = status
        .iter()
        .filter(|(k, _)| k.starts_with('2'))
        .map(|(_, v)| v)
        .sum();
    if ok == 0 && status.keys().all(|k| k.parse::<u16>().is_err()) {
        anyhow::bail!("could not reach {}: {:?}", args.target, status);
    }
    let ms = |us: u64| us as f64 / 1000.0;
    let report = Report {
        target: args.target.clone(),
        requested_rps: args.rps,
        duration_secs: elapsed.as_secs_f64(),
        sent,
        ok,
        errors: sent - ok,
        achieved_rps: sent as f64 / elapsed.as_secs_f64().max(1e-9),
        status,
        latency_ms: Latency {
            p50: ms(hist.value_at_quantile(0.5)),
            p90: ms(hist.value_at_quantile(0.9)),
            p95: ms(hist.value_at_quantile(0.95)),
            p99: ms(hist.value_at_quantile(0.99)),
            p999: ms(hist.value_at_quantile(0.999)),
            max: ms(hist.max()),
            mean: hist.mean() / 1000.0,
        },
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{} requests in {:.2}s ({:.0}/s of {} asked), {} ok, {} errors",
            report.sent,
            report.duration_secs,
            report.achieved_rps,
            report.requested_rps,
            report.ok,
            report.errors
        )?;
        let l = &report.latency_ms;
        writeln!(
            out,
            "latency from intended send time: p50 {:.2} ms  p90 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
            l.p50, l.p90, l.p95, l.p99, l.p999, l.max
        )?;
        for (k, v) in &report.status {
            writeln!(out, "  {k}: {v}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_durations_parse_or_name_the_problem() {
        assert_eq!(
            parse_target("http://127.0.0.1:8080/v1/answer").unwrap(),
            ("127.0.0.1:8080".into(), "/v1/answer".into())
        );
        assert_eq!(parse_target("http://127.0.0.1:80").unwrap().1, "/");
        assert!(
            parse_target("https://x:1/")
                .unwrap_err()
                .contains("only http://")
        );
        assert!(
            parse_target("http://host/")
                .unwrap_err()
                .contains("host:port")
        );
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("0s").is_err());
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("not a duration")
        );
    }
}
