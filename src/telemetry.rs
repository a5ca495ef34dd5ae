//! Logs: one JSON object per line on stdout, which the Functions host captures (stderr lines are
//! treated as errors there). Request lines carry method, path, status, latency, tenant and the
//! host's invocation id; nothing in this crate ever logs a key or a token.
//!
//! Lines are handed to one background thread that writes whatever has queued up in one `write`,
//! so a request never waits for stdout and a busy handler makes far fewer syscalls. The queue
//! is bounded and not lossy: if stdout stalls for [`QUEUED_LINES`] lines, logging blocks rather
//! than dropping lines. Keep the returned guard alive until exit: dropping it writes out what is
//! still queued.

use std::io::{BufWriter, Stdout};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines that may wait for the writer thread (a few hundred KiB at most).
const QUEUED_LINES: usize = 8 * 1024;
/// Bytes the writer thread gathers into one `write` while lines keep arriving.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// Installs the JSON subscriber. `filter` uses `RUST_LOG` syntax; an invalid one falls back to
/// `info` rather than silencing the service.
pub fn init(filter: &str) -> WorkerGuard {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let stdout: BufWriter<Stdout> = BufWriter::with_capacity(WRITE_BATCH_BYTES, std::io::stdout());
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        .finish(stdout);
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .init();
    guard
}
