//! Logs: one JSON object per line on stdout, which the Functions host captures (stderr lines are
//! treated as errors there). Request lines carry method, path, status, latency, tenant and the
//! host's invocation id; nothing in this crate ever logs a key or a token.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber. `filter` uses `RUST_LOG` syntax; an invalid one falls back to
/// `info` rather than silencing the service.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .init();
}
