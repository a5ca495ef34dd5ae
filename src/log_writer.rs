//! Where log lines go: a buffer that one background thread writes to stdout in batches.
//!
//! Under load the handler logs one line per request. Writing each line to stdout costs a syscall
//! on a request thread and, because the Functions host reads stdout through a pipe, a wake-up of
//! the host's reader per line. Here a line is appended to a shared buffer (no syscall); the
//! writer thread is woken once when the buffer stops being empty, waits [`BATCH_WINDOW`] so more
//! lines can gather, and writes them all at once. An idle handler has an idle writer thread.
//!
//! **Logging never blocks a runtime thread**, even when nobody reads stdout: a thread that blocks
//! in a log call is a tokio worker that no longer answers readiness probes, runs timers or sees
//! SIGTERM. Instead:
//! - requests wait *asynchronously* ([`room_within`]) while [`MAX_PENDING_BYTES`] are pending,
//!   before they do any work, so a stalled stdout slows requests down rather than growing the
//!   buffer; readiness (`GET /`) and everything else keep running. The wait is short and
//!   bounded: past it the request is refused at once (`503` with `Retry-After`), so **nothing is
//!   issued that cannot be logged** (fail closed) and no client hangs for a minute;
//! - a log call itself only appends; lines beyond [`HARD_LIMIT_BYTES`] (only reachable while
//!   stdout is stalled) are counted, not kept. Nothing is dropped while stdout is read;
//! - dropping the [`LogFlushGuard`] (at exit) writes out what is pending for at most
//!   [`FLUSH_DEADLINE`], then says on stderr how many lines could not be written.

use std::io::{self, Write};
use std::mem;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing_subscriber::fmt::MakeWriter;

/// How long the writer lets lines gather after the first one arrives.
const BATCH_WINDOW: Duration = Duration::from_millis(2);
/// Pending log bytes beyond which requests wait for the writer before they start.
const MAX_PENDING_BYTES: usize = 1024 * 1024;
/// Pending log bytes beyond which lines are counted instead of kept (stdout stalled for long).
const HARD_LIMIT_BYTES: usize = 4 * MAX_PENDING_BYTES;
/// Buffer capacity kept between batches; more (after a stall) is given back.
const KEPT_CAPACITY: usize = 256 * 1024;
/// How long the exit flush may take when stdout does not take the lines.
const FLUSH_DEADLINE: Duration = Duration::from_secs(2);

/// The installed writer's shared state, for [`room_within`].
static INSTALLED: OnceLock<Arc<Shared>> = OnceLock::new();

/// The writer half: hands lines to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Flushes what is pending (within [`FLUSH_DEADLINE`]) and stops the writer thread when dropped.
#[must_use = "dropping the guard stops the log writer; keep it until the process exits"]
pub struct LogFlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<Pending>,
    /// Signalled when the buffer stops being empty, and on close.
    lines_waiting: Condvar,
    /// Signalled when the writer thread has finished (closed and flushed).
    finished: Condvar,
    /// Wakes requests waiting for room.
    room: Notify,
    /// [`Pending::bytes`] as of the last change, read without the lock by [`Shared::has_room`]
    /// on every request.
    pending_bytes: AtomicUsize,
    /// Lines not kept because the buffer was at its hard limit.
    dropped: AtomicUsize,
}

impl Pending {
    /// Bytes not yet written out: waiting, and being written.
    fn bytes(&self) -> usize {
        self.buffer.len() + self.writing_bytes
    }
}

#[derive(Default)]
struct Pending {
    buffer: Vec<u8>,
    /// Lines in `buffer`.
    lines: usize,
    /// Lines and bytes taken by the writer thread and not yet written out.
    writing: usize,
    writing_bytes: usize,
    closed: bool,
    finished: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding this lock cannot leave the buffer half-updated in a way that
        // matters for logs, so a poisoned lock is simply used.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn has_room(&self) -> bool {
        self.pending_bytes.load(Ordering::Relaxed) < MAX_PENDING_BYTES
    }

    /// Publishes the pending byte count for [`Shared::has_room`]; called with the lock held.
    fn publish(&self, pending: &Pending) {
        self.pending_bytes.store(pending.bytes(), Ordering::Relaxed);
    }
}

/// Starts the writer thread over `out` (stdout in the handler, a test sink in tests).
pub fn start<W: Write + Send + 'static>(out: W) -> (BatchedWriter, LogFlushGuard) {
    let shared = Arc::new(Shared {
        state: Mutex::new(Pending::default()),
        lines_waiting: Condvar::new(),
        finished: Condvar::new(),
        room: Notify::new(),
        pending_bytes: AtomicUsize::new(0),
        dropped: AtomicUsize::new(0),
    });
    let writer_shared = Arc::clone(&shared);
    let thread = thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_batches(&writer_shared, out))
        .expect("the log writer thread starts");
    (
        BatchedWriter {
            shared: Arc::clone(&shared),
        },
        LogFlushGuard {
            shared,
            thread: Some(thread),
        },
    )
}

/// Makes `writer` the one [`room_within`] waits on (the process's log writer).
pub fn install(writer: &BatchedWriter) {
    let _ = INSTALLED.set(Arc::clone(&writer.shared));
}

/// Waits, without blocking a thread, at most `limit` until the log buffer has room for more
/// lines; whether it has. A request calls it before doing any work, so a stalled stdout holds
/// requests back (briefly) instead of filling memory or blocking the runtime.
pub async fn room_within(limit: Duration) -> bool {
    match INSTALLED.get() {
        None => true,
        // The usual case, on every request: room, and no timer or waiter to register.
        Some(shared) if shared.has_room() => true,
        Some(shared) => tokio::time::timeout(limit, wait_for_room(shared))
            .await
            .is_ok(),
    }
}

async fn wait_for_room(shared: &Shared) {
    loop {
        let notified = shared.room.notified();
        tokio::pin!(notified);
        // Registered before the check, so a drain between the check and the wait is not missed.
        notified.as_mut().enable();
        if shared.has_room() {
            return;
        }
        notified.await;
    }
}

/// The writer thread: wait for lines, let more gather, write them in one go; until closed.
fn write_batches<W: Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::new();
    loop {
        let mut pending = shared.lock();
        while pending.buffer.is_empty() && !pending.closed {
            pending = shared
                .lines_waiting
                .wait(pending)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if !pending.closed {
            drop(pending);
            thread::sleep(BATCH_WINDOW);
            pending = shared.lock();
        }
        let closed = pending.closed;
        mem::swap(&mut batch, &mut pending.buffer);
        pending.writing = mem::take(&mut pending.lines);
        pending.writing_bytes = batch.len();
        drop(pending);

        // A failed write (the host closed the pipe) cannot be reported anywhere better than
        // stdout itself: the lines are dropped and logging carries on.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        if batch.capacity() > KEPT_CAPACITY {
            // A stall grew the buffer; memory goes back once it is written out.
            batch = Vec::new();
        }
        {
            let mut pending = shared.lock();
            pending.writing = 0;
            pending.writing_bytes = 0;
            shared.publish(&pending);
        }
        shared.room.notify_waiters();
        if closed {
            shared.lock().finished = true;
            shared.finished.notify_all();
            return;
        }
    }
}

fn lines_in(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

impl Shared {
    /// Appends `lines` lines for the writer thread, or counts them when the buffer is at its hard
    /// limit.
    fn append(&self, text: &[u8], lines: usize) {
        let mut pending = self.lock();
        if pending.bytes() >= HARD_LIMIT_BYTES {
            drop(pending);
            self.dropped.fetch_add(lines, Ordering::Relaxed);
            return;
        }
        let was_empty = pending.buffer.is_empty();
        pending.buffer.extend_from_slice(text);
        pending.lines += lines;
        self.publish(&pending);
        drop(pending);
        if was_empty {
            self.lines_waiting.notify_one();
        }
    }
}

/// Hands a whole line (ending in a newline) to the installed writer, beside the lines `tracing`
/// writes there. Without one (nothing [`install`]ed), like an event without a subscriber, the
/// line goes nowhere. One line: its bytes are not searched for newlines (this runs on every
/// request).
pub fn write_line(line: &str) {
    if let Some(shared) = INSTALLED.get() {
        shared.append(line.as_bytes(), 1);
    }
}

impl io::Write for BatchedWriter {
    fn write(&mut self, text: &[u8]) -> io::Result<usize> {
        self.shared.append(text, lines_in(text));
        Ok(text.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = BatchedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl LogFlushGuard {
    /// Closes the writer and waits up to `deadline` for it to write out what is pending; the
    /// number of lines that did not make it.
    fn close(&mut self, deadline: Duration) -> usize {
        let until = Instant::now() + deadline;
        let mut pending = self.shared.lock();
        pending.closed = true;
        self.shared.lines_waiting.notify_one();
        while !pending.finished {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            pending = self
                .shared
                .finished
                .wait_timeout(pending, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        let unwritten = if pending.finished {
            0
        } else {
            pending.writing + pending.lines
        };
        let finished = pending.finished;
        drop(pending);
        if finished && let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // A thread stuck writing to a stalled pipe is left to end with the process.
        unwritten + self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for LogFlushGuard {
    fn drop(&mut self) {
        let unwritten = self.close(FLUSH_DEADLINE);
        if unwritten > 0 {
            eprintln!(
                "warning: {unwritten} log lines could not be written: stdout was not being read"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A sink the test can read, that counts `write` calls and can be slow.
    #[derive(Clone, Default)]
    struct Sink {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<AtomicUsize>,
        delay: Duration,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            thread::sleep(self.delay);
            self.writes.fetch_add(1, Ordering::SeqCst);
            self.bytes.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn lines(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{{\"line\":{i}}}\n")).collect()
    }

    #[test]
    fn every_line_arrives_in_order_and_drop_flushes() {
        let sink = Sink::default();
        let (writer, guard) = start(sink.clone());
        let expected = lines(10_000);
        for line in &expected {
            writer.make_writer().write_all(line.as_bytes()).unwrap();
        }
        drop(guard);
        assert_eq!(
            String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap(),
            expected.concat()
        );
        // Batched: far fewer writes than lines.
        assert!(sink.writes.load(Ordering::SeqCst) < 1_000);
    }

    #[test]
    fn lines_from_many_threads_are_never_interleaved_or_lost() {
        let sink = Sink::default();
        let (writer, guard) = start(sink.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                thread::spawn(move || {
                    for i in 0..2_000 {
                        let line = format!("{t}:{i}:{}\n", "x".repeat(i % 50));
                        writer.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        drop(guard);
        let written = String::from_utf8(sink.bytes.lock().unwrap().clone()).unwrap();
        assert_eq!(written.lines().count(), 8_000);
        for t in 0..4 {
            let mine: Vec<usize> = written
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{t}:")))
                .map(|rest| rest.split(':').next().unwrap().parse().unwrap())
                .collect();
            assert_eq!(mine, (0..2_000).collect::<Vec<_>>(), "thread {t}");
        }
    }

    /// A sink that takes nothing until `open` is set: a pipe nobody reads.
    #[derive(Clone, Default)]
    struct Stalled {
        open: Arc<(Mutex<bool>, Condvar)>,
        bytes: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (open, changed) = &*self.open;
            let mut is_open = open.lock().unwrap();
            while !*is_open {
                is_open = changed.wait(is_open).unwrap();
            }
            self.bytes.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Stalled {
        fn resume(&self) {
            *self.open.0.lock().unwrap() = true;
            self.open.1.notify_all();
        }
    }

    #[tokio::test]
    async fn a_stalled_output_never_blocks_a_log_call_and_requests_wait_asynchronously() {
        let sink = Stalled::default();
        let (writer, guard) = start(sink.clone());
        let big = "y".repeat(MAX_PENDING_BYTES / 4) + "\n";
        // Far past the limit: every call returns at once.
        let started = Instant::now();
        for _ in 0..8 {
            writer.make_writer().write_all(big.as_bytes()).unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(!writer.shared.has_room());
        // A request waits for room without blocking this (single-threaded) runtime: a timer
        // still fires while it waits.
        let shared = Arc::clone(&writer.shared);
        let waiting = tokio::spawn(async move { wait_for_room(&shared).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        sink.resume();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("room once stdout is read again")
            .unwrap();
        drop(guard);
        assert_eq!(
            sink.bytes.lock().unwrap().len(),
            8 * big.len(),
            "nothing dropped"
        );
    }

    #[test]
    fn beyond_the_hard_limit_lines_are_counted_and_the_exit_flush_has_a_deadline() {
        let sink = Stalled::default();
        let (writer, mut guard) = start(sink.clone());
        let line = "z".repeat(1023) + "\n";
        let lines = HARD_LIMIT_BYTES / line.len() + 100;
        for _ in 0..lines {
            writer.make_writer().write_all(line.as_bytes()).unwrap();
        }
        assert!(writer.shared.lock().bytes() <= HARD_LIMIT_BYTES);
        let started = Instant::now();
        let unwritten = guard.close(Duration::from_millis(200));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the exit does not wait for stdout"
        );
        assert_eq!(
            unwritten, lines,
            "every line that did not reach stdout is counted"
        );
        sink.resume();
    }

    #[test]
    fn an_idle_writer_writes_nothing() {
        let sink = Sink::default();
        let (_writer, guard) = start(sink.clone());
        drop(guard);
        assert!(sink.bytes.lock().unwrap().is_empty());
    }
}
