//! The long runs: the soak (bench/soak) and the production-configuration benchmark (bench/run).
//! A test target of their own, left out of `cargo test` (`test = false` in Cargo.toml): they run
//! only when asked, by name, in release builds:
//!
//! ```text
//! cargo test --release --locked --test bench -- --ignored --exact soak::soak --nocapture
//! ```
//!
//! They share the integration tests' emulators and helpers, of which they use a part.

#[allow(dead_code)]
#[path = "../api/support/mod.rs"]
mod support;

mod production_bench;
mod soak;
