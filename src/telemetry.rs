//! Logs: one JSON object per line on stdout, which the Functions host captures (stderr lines are
//! treated as errors there). Request lines carry method, path, status, latency, tenant and the
//! host's invocation id; nothing in this crate ever logs a key or a token.
//!
//! Lines are formatted by [`crate::log_format`] and reach stdout through [`crate::log_writer`],
//! in batches written off the request path.

use tracing_subscriber::EnvFilter;

use crate::log_format::FlatJson;
use crate::log_writer::{self, LogFlushGuard};

/// Installs the JSON subscriber. `filter` uses `RUST_LOG` syntax; an invalid one falls back to
/// `info` rather than silencing the service. Keep the guard until exit: dropping it writes out
/// the lines still pending.
pub fn init(filter: &str) -> LogFlushGuard {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = log_writer::start(std::io::stdout());
    log_writer::install(&writer);
    tracing_subscriber::fmt()
        .event_format(FlatJson)
        .with_env_filter(filter)
        .with_writer(writer)
        .init();
    guard
}
