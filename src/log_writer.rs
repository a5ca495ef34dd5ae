//! Where log lines go: a buffer that one background thread writes to stdout in batches.
//!
//! Under load the handler logs one line per request. Writing each line to stdout costs a syscall
//! on a request thread and, because the Functions host reads stdout through a pipe, a wake-up of
//! the host's reader per line. Here a line is appended to a shared buffer (no syscall); the
//! writer thread is woken once when the buffer stops being empty, waits [`BATCH_WINDOW`] so more
//! lines can gather, and writes them all at once. An idle handler has an idle writer thread.
//!
//! Nothing is dropped: when the buffer holds [`MAX_PENDING_BYTES`] (stdout is stalled), logging
//! waits for the writer. Dropping the [`LogFlushGuard`] writes out everything still pending and
//! ends the thread, so `main` keeps it until the process exits.

use std::io::{self, Write};
use std::mem;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer lets lines gather after the first one arrives.
const BATCH_WINDOW: Duration = Duration::from_millis(2);
/// Pending log bytes beyond which logging waits for the writer.
const MAX_PENDING_BYTES: usize = 1024 * 1024;

/// The writer half: hands lines to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Flushes everything pending and stops the writer thread when dropped.
#[must_use = "dropping the guard stops the log writer; keep it until the process exits"]
pub struct LogFlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<Pending>,
    /// Signalled when the buffer stops being empty, and on close.
    lines_waiting: Condvar,
    /// Signalled when the writer has taken the buffer.
    drained: Condvar,
}

#[derive(Default)]
struct Pending {
    buffer: Vec<u8>,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding this lock cannot leave the buffer half-updated in a way that
        // matters for logs, so a poisoned lock is simply used.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Starts the writer thread over `out` (stdout in the handler, a test sink in tests).
pub fn start<W: Write + Send + 'static>(out: W) -> (BatchedWriter, LogFlushGuard) {
    let shared = Arc::new(Shared {
        state: Mutex::new(Pending::default()),
        lines_waiting: Condvar::new(),
        drained: Condvar::new(),
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
        drop(pending);
        shared.drained.notify_all();

        // A failed write (the host closed the pipe) cannot be reported anywhere better than
        // stdout itself: the lines are dropped and logging carries on.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        if closed {
            return;
        }
    }
}

impl io::Write for BatchedWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut pending = self.shared.lock();
        while pending.buffer.len() >= MAX_PENDING_BYTES && !pending.closed {
            pending = self
                .shared
                .drained
                .wait(pending)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        let was_empty = pending.buffer.is_empty();
        pending.buffer.extend_from_slice(line);
        drop(pending);
        if was_empty {
            self.shared.lines_waiting.notify_one();
        }
        Ok(line.len())
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

impl Drop for LogFlushGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.lines_waiting.notify_one();
        self.shared.drained.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
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

    #[test]
    fn a_stalled_output_holds_back_logging_instead_of_growing_or_dropping() {
        let sink = Sink {
            delay: Duration::from_millis(20),
            ..Sink::default()
        };
        let (writer, guard) = start(sink.clone());
        let big = "y".repeat(MAX_PENDING_BYTES / 4) + "\n";
        for _ in 0..12 {
            writer.make_writer().write_all(big.as_bytes()).unwrap();
            assert!(writer.shared.lock().buffer.len() < MAX_PENDING_BYTES + big.len());
        }
        drop(guard);
        assert_eq!(sink.bytes.lock().unwrap().len(), 12 * big.len());
    }

    #[test]
    fn an_idle_writer_writes_nothing() {
        let sink = Sink::default();
        let (_writer, guard) = start(sink.clone());
        drop(guard);
        assert!(sink.bytes.lock().unwrap().is_empty());
    }
}
