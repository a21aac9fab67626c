//! A bounded queue in front of a writer thread, shared by the JSON Lines span
//! exporter and the JSON log layer.
//!
//! Why not `tracing-appender`'s non-blocking writer: its guard gives the
//! worker a fixed one second to drain on shutdown (so a slow disk loses lines
//! that were accepted), and it neither counts failed writes nor reports what
//! was lost. Here `shutdown` drains everything that was accepted, with a
//! deadline the caller picks, and the counters say exactly what happened.

use crossbeam_queue::ArrayQueue;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{BuildError, ExportError};

/// Counts of what a background writer did with the records given to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct WriterStats {
    /// Records taken into the queue.
    pub accepted: u64,
    /// Records written to the destination.
    pub written: u64,
    /// Records refused because the queue was full (or the writer was shut down).
    pub dropped: u64,
    /// Records whose write failed, for example because the disk was full.
    pub failed: u64,
}

impl WriterStats {
    /// Records accepted but neither written nor failed yet.
    pub fn pending(&self) -> u64 {
        self.accepted.saturating_sub(self.written + self.failed)
    }
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

enum Msg<T> {
    Item(T),
    Flush(SyncSender<()>),
    Shutdown(SyncSender<()>),
}

/// Appends an item's bytes to the batch. It takes the item, so an encoder
/// can hand a buffer back to its producer instead of freeing it here.
pub(crate) type Encode<T> = Box<dyn FnMut(T, &mut Vec<u8>) + Send>;

/// Encoded-line buffers passed between producers and a writer thread and
/// back, so the writer never frees what a producer allocated (under glibc
/// such frees contend for the producer's arena lock).
#[derive(Debug)]
pub(crate) struct LinePool(ArrayQueue<Vec<u8>>);

/// Buffers a pool keeps.
const POOLED_LINES: usize = 1024;

/// A buffer that grew past this (a huge line) is freed, not kept.
const POOLED_LINE_MAX: usize = 16 * 1024;

impl LinePool {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self(ArrayQueue::new(POOLED_LINES)))
    }

    /// An empty buffer, reused when one is free.
    pub(crate) fn take(&self) -> Vec<u8> {
        self.0.pop().unwrap_or_else(|| Vec::with_capacity(512))
    }

    /// The writer-side encoder: appends the line, then returns its buffer
    /// to the pool (a full pool frees it, which only happens when producers
    /// outran the pool's size).
    pub(crate) fn encoder(self: &Arc<Self>) -> Encode<Vec<u8>> {
        let pool = Arc::clone(self);
        Box::new(move |mut line: Vec<u8>, batch: &mut Vec<u8>| {
            batch.extend_from_slice(&line);
            if line.capacity() <= POOLED_LINE_MAX {
                line.clear();
                let _ = pool.0.push(line);
            }
        })
    }
}

/// Counters in the `metrics` facade that mirror drops and failures.
#[derive(Debug, Clone)]
pub(crate) struct LossCounters {
    pub(crate) dropped: metrics::Counter,
    pub(crate) failed: metrics::Counter,
}

#[cfg(test)]
impl LossCounters {
    pub(crate) fn noop() -> Self {
        Self {
            dropped: metrics::Counter::noop(),
            failed: metrics::Counter::noop(),
        }
    }
}

pub(crate) struct BackgroundWriter<T: Send + 'static> {
    tx: SyncSender<Msg<T>>,
    counters: Arc<Counters>,
    loss: LossCounters,
    closed: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Send + 'static> std::fmt::Debug for BackgroundWriter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundWriter")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Bytes gathered before one `write_all` to the destination.
const BATCH_BYTES: usize = 64 * 1024;

/// How long the writer sleeps between polls of an empty queue.
const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// Empty polls (about 20 ms) before the writer parks until the next record.
const IDLE_POLLS_BEFORE_PARKING: u32 = 20;

impl<T: Send + 'static> BackgroundWriter<T> {
    pub(crate) fn spawn(
        name: &str,
        capacity: usize,
        sink: Box<dyn Write + Send>,
        encode: Encode<T>,
        loss: LossCounters,
    ) -> Result<Self, BuildError> {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let counters = Arc::new(Counters::default());
        let worker_counters = Arc::clone(&counters);
        let worker_loss = loss.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run_worker(rx, sink, encode, &worker_counters, &worker_loss))
            .map_err(BuildError::Thread)?;
        Ok(Self {
            tx,
            counters,
            loss,
            closed: AtomicBool::new(false),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `item` without blocking; returns `false` when it was dropped.
    pub(crate) fn send(&self, item: T) -> bool {
        if self.closed.load(Ordering::Relaxed) {
            self.record_drop();
            return false;
        }
        match self.tx.try_send(Msg::Item(item)) {
            Ok(()) => {
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.record_drop();
                false
            }
        }
    }

    fn record_drop(&self) {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        self.loss.dropped.increment(1);
    }

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            accepted: self.counters.accepted.load(Ordering::Relaxed),
            written: self.counters.written.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
        }
    }

    /// Sends a control message, waiting for queue space until `deadline`.
    fn send_control(
        &self,
        mut msg: Msg<T>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), ExportError> {
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(_)) => return Err(ExportError::WriterGone),
                Err(TrySendError::Full(back)) => {
                    if Instant::now() >= deadline {
                        return Err(ExportError::Timeout {
                            timeout_ms: timeout.as_millis() as u64,
                            pending: self.stats().pending(),
                        });
                    }
                    msg = back;
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }

    fn wait_ack(
        &self,
        ack: &Receiver<()>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), ExportError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match ack.recv_timeout(remaining) {
            Ok(()) => Ok(()),
            Err(RecvTimeoutError::Timeout) => Err(ExportError::Timeout {
                timeout_ms: timeout.as_millis() as u64,
                pending: self.stats().pending(),
            }),
            Err(RecvTimeoutError::Disconnected) => Err(ExportError::WriterGone),
        }
    }

    /// Waits until everything queued before this call is written.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), ExportError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(ExportError::AlreadyShutDown);
        }
        let deadline = Instant::now() + timeout;
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        self.send_control(Msg::Flush(ack_tx), deadline, timeout)?;
        self.wait_ack(&ack_rx, deadline, timeout)
    }

    /// Stops accepting records, writes everything accepted, and stops the thread.
    ///
    /// Reports `Lost` when anything was dropped or failed over the writer's life.
    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<WriterStats, ExportError> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Err(ExportError::AlreadyShutDown);
        }
        let deadline = Instant::now() + timeout;
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        self.send_control(Msg::Shutdown(ack_tx), deadline, timeout)?;
        self.wait_ack(&ack_rx, deadline, timeout)?;
        if let Some(handle) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            // The worker acknowledged and is returning; joining is immediate.
            let _ = handle.join();
        }
        let stats = self.stats();
        if stats.dropped > 0 || stats.failed > 0 {
            return Err(ExportError::Lost {
                dropped: stats.dropped,
                failed: stats.failed,
            });
        }
        Ok(stats)
    }
}

/// A JSON Lines destination written by a background thread: [`send`](Self::send)
/// never blocks (a full queue drops and counts), and
/// [`shutdown`](Self::shutdown) writes everything accepted within a deadline.
///
/// This is the writer behind [`JsonLinesExporter`](crate::JsonLinesExporter),
/// opened up for other crates' record streams (experiment exposures, results).
///
/// ```
/// use std::time::Duration;
/// use flightdeck_obs_core::JsonLinesWriter;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("events.jsonl");
/// let writer = JsonLinesWriter::<serde_json::Value>::to_file(&path, 1024, "events")?;
/// writer.send(serde_json::json!({"n": 1}));
/// writer.shutdown(Duration::from_secs(5))?;
/// assert_eq!(std::fs::read_to_string(&path)?, "{\"n\":1}\n");
/// # Ok(())
/// # }
/// ```
pub struct JsonLinesWriter<T: serde::Serialize + Send + 'static> {
    inner: BackgroundWriter<T>,
}

impl<T: serde::Serialize + Send + 'static> std::fmt::Debug for JsonLinesWriter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesWriter")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<T: serde::Serialize + Send + 'static> JsonLinesWriter<T> {
    /// Appends to the file at `path` (created if missing). `name` names the
    /// writer thread and labels the loss counters
    /// `flightdeck_writer_dropped_total{writer=name}` and
    /// `flightdeck_writer_failures_total{writer=name}`.
    ///
    /// # Errors
    ///
    /// [`BuildError::OpenFile`] when the file cannot be opened, [`BuildError::Thread`]
    /// when the writer thread cannot start.
    pub fn to_file(
        path: impl AsRef<std::path::Path>,
        capacity: usize,
        name: &str,
    ) -> Result<Self, BuildError> {
        let path = path.as_ref();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| BuildError::OpenFile {
                path: path.to_path_buf(),
                source,
            })?;
        Self::to_writer(file, capacity, name)
    }

    /// Writes to any `Write` destination; see [`to_file`](Self::to_file).
    ///
    /// # Errors
    ///
    /// [`BuildError::Thread`] when the writer thread cannot start.
    pub fn to_writer(
        out: impl Write + Send + 'static,
        capacity: usize,
        name: &str,
    ) -> Result<Self, BuildError> {
        let label = name.to_owned();
        let loss = LossCounters {
            dropped: metrics::counter!(crate::names::metric::WRITER_DROPPED_TOTAL, "writer" => label.clone()),
            failed: metrics::counter!(crate::names::metric::WRITER_FAILURES_TOTAL, "writer" => label),
        };
        let encode = Box::new(|item: T, buf: &mut Vec<u8>| {
            let start = buf.len();
            if serde_json::to_writer(&mut *buf, &item).is_ok() {
                buf.push(b'\n');
            } else {
                // A value that cannot serialize (a map with non-string keys)
                // must not leave half a line behind.
                buf.truncate(start);
            }
        });
        let inner = BackgroundWriter::spawn(
            &format!("flightdeck-{name}"),
            capacity,
            Box::new(out),
            encode,
            loss,
        )?;
        Ok(Self { inner })
    }

    /// Queues `item` without blocking; returns `false` when it was dropped
    /// because the queue was full or the writer was shut down.
    pub fn send(&self, item: T) -> bool {
        self.inner.send(item)
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> WriterStats {
        self.inner.stats()
    }

    /// Waits until everything queued before this call is written.
    ///
    /// # Errors
    ///
    /// [`ExportError::Timeout`] past the deadline, [`ExportError::AlreadyShutDown`]
    /// after [`shutdown`](Self::shutdown).
    pub fn flush(&self, timeout: Duration) -> Result<(), ExportError> {
        self.inner.flush(timeout)
    }

    /// Stops accepting records and writes everything accepted.
    ///
    /// # Errors
    ///
    /// [`ExportError::Lost`] when anything was dropped or failed over the
    /// writer's life, [`ExportError::Timeout`] past the deadline.
    pub fn shutdown(&self, timeout: Duration) -> Result<WriterStats, ExportError> {
        self.inner.shutdown(timeout)
    }
}

fn run_worker<T>(
    rx: Receiver<Msg<T>>,
    mut sink: Box<dyn Write + Send>,
    mut encode: Encode<T>,
    counters: &Counters,
    loss: &LossCounters,
) {
    let mut batch = Vec::with_capacity(BATCH_BYTES);
    let mut batched: u64 = 0;
    // After a failed write the destination may end in a partial line; start
    // the next successful batch on a fresh line so the damage stays contained.
    let mut needs_newline = false;
    let mut write_batch = |batch: &mut Vec<u8>, batched: &mut u64, sink: &mut dyn Write| {
        if *batched == 0 {
            return;
        }
        let mut result = Ok(());
        if needs_newline {
            result = sink.write_all(b"\n");
        }
        let result = result
            .and_then(|()| sink.write_all(batch))
            .and_then(|()| sink.flush());
        match result {
            Ok(()) => {
                needs_newline = false;
                counters.written.fetch_add(*batched, Ordering::Relaxed);
            }
            Err(_) => {
                needs_newline = true;
                counters.failed.fetch_add(*batched, Ordering::Relaxed);
                loss.failed.increment(*batched);
            }
        }
        batch.clear();
        *batched = 0;
    };
    let mut idle_polls = 0u32;
    loop {
        // While busy, poll: a parked receiver would cost every sender a futex
        // wake (a syscall per log line). Park only after a stretch of idleness.
        let first = if idle_polls >= IDLE_POLLS_BEFORE_PARKING {
            match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            }
        } else {
            match rx.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Empty) => {
                    idle_polls += 1;
                    std::thread::sleep(POLL_INTERVAL);
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
            }
        };
        idle_polls = 0;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Item(item) => {
                    encode(item, &mut batch);
                    batched += 1;
                    if batch.len() >= BATCH_BYTES {
                        write_batch(&mut batch, &mut batched, &mut *sink);
                    }
                }
                Msg::Flush(ack) => {
                    write_batch(&mut batch, &mut batched, &mut *sink);
                    let _ = ack.send(());
                }
                Msg::Shutdown(ack) => {
                    write_batch(&mut batch, &mut batched, &mut *sink);
                    let _ = ack.send(());
                    return;
                }
            }
            next = rx.try_recv().ok();
        }
        // The queue is empty: write what we have so lines show up promptly.
        write_batch(&mut batch, &mut batched, &mut *sink);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Barrier;

    /// A writer whose bytes a test can read.
    #[derive(Clone, Default)]
    pub(crate) struct Shared(pub(crate) Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Blocks every write until the barrier releases it once.
    struct Gate(Arc<Barrier>, Shared, bool);
    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if !self.2 {
                self.0.wait();
                self.2 = true;
            }
            self.1.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn line_encoder() -> Encode<u32> {
        Box::new(|n: u32, out: &mut Vec<u8>| {
            out.extend_from_slice(n.to_string().as_bytes());
            out.push(b'\n');
        })
    }

    #[test]
    fn pooled_lines_are_written_in_order_and_their_buffers_come_back() {
        let shared = Shared::default();
        let pool = LinePool::new();
        let w = BackgroundWriter::spawn(
            "t",
            64,
            Box::new(shared.clone()),
            pool.encoder(),
            LossCounters::noop(),
        )
        .unwrap();
        let mut first_buffers = Vec::new();
        for i in 0..10 {
            let mut line = pool.take();
            first_buffers.push(line.as_ptr() as usize);
            line.extend_from_slice(format!("{i}\n").as_bytes());
            assert!(w.send(line));
        }
        w.flush(Duration::from_secs(5)).unwrap();
        let expected: String = (0..10).map(|i| format!("{i}\n")).collect();
        assert_eq!(
            String::from_utf8(shared.0.lock().unwrap().clone()).unwrap(),
            expected
        );
        // Every buffer went back, empty, to be reused.
        let back: Vec<Vec<u8>> = (0..10).map(|_| pool.take()).collect();
        assert!(back.iter().all(Vec::is_empty));
        let mut reused: Vec<usize> = back.iter().map(|b| b.as_ptr() as usize).collect();
        reused.sort_unstable();
        first_buffers.sort_unstable();
        assert_eq!(reused, first_buffers);
        // A huge line's buffer is freed, not pooled.
        let mut huge = pool.take();
        huge.resize(POOLED_LINE_MAX * 2, b'x');
        huge.push(b'\n');
        assert!(w.send(huge));
        w.flush(Duration::from_secs(5)).unwrap();
        assert_eq!(pool.0.len(), 0, "the huge buffer was pooled");
        w.shutdown(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn full_queue_drops_and_counts_without_blocking() {
        let barrier = Arc::new(Barrier::new(2));
        let shared = Shared::default();
        let w = BackgroundWriter::spawn(
            "t",
            4,
            Box::new(Gate(Arc::clone(&barrier), shared.clone(), false)),
            line_encoder(),
            LossCounters::noop(),
        )
        .unwrap();
        // The worker drains what is queued, blocks in the gate on its first
        // write, and the queue then fills to its capacity of 4.
        let started = Instant::now();
        let mut accepted = 0;
        for i in 0..100 {
            if w.send(i) {
                accepted += 1;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(1), "send blocked");
        assert!(
            accepted < 100,
            "accepted {accepted}: the queue never filled"
        );
        assert_eq!(w.stats().dropped, 100 - accepted);
        barrier.wait();
        let err = w.shutdown(Duration::from_secs(5)).unwrap_err();
        assert_eq!(
            err,
            ExportError::Lost {
                dropped: 100 - accepted,
                failed: 0
            }
        );
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count() as u64, accepted);
    }

    #[test]
    fn shutdown_writes_everything_accepted() {
        let shared = Shared::default();
        let w = BackgroundWriter::spawn(
            "t",
            100_000,
            Box::new(shared.clone()),
            line_encoder(),
            LossCounters::noop(),
        )
        .unwrap();
        for i in 0..50_000 {
            assert!(w.send(i));
        }
        let stats = w.shutdown(Duration::from_secs(30)).unwrap();
        assert_eq!(stats.written, 50_000);
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<u32> = text.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(lines, (0..50_000).collect::<Vec<_>>());
        assert!(!w.send(1), "send after shutdown must be refused");
        assert_eq!(
            w.shutdown(Duration::from_secs(1)),
            Err(ExportError::AlreadyShutDown)
        );
    }

    #[test]
    fn write_failures_are_counted_and_the_caller_keeps_going() {
        // /dev/full fails every write with ENOSPC, like a disk that filled up.
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full exists on Linux, where the tests run");
        let w = BackgroundWriter::spawn(
            "t",
            16,
            Box::new(full),
            line_encoder(),
            LossCounters::noop(),
        )
        .unwrap();
        for i in 0..10 {
            w.send(i);
            w.flush(Duration::from_secs(5)).unwrap();
        }
        let stats = w.stats();
        assert_eq!(stats.failed, 10);
        assert_eq!(stats.written, 0);
        assert!(matches!(
            w.shutdown(Duration::from_secs(5)),
            Err(ExportError::Lost { failed: 10, .. })
        ));
    }
}
