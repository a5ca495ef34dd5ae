//! Integration tests: the built handler binary, started by the host emulator like the Functions
//! host starts it, driven over HTTP in both protocol modes.

mod support;

mod acs;
mod auth;
mod cors;
mod deploy;
mod document_abuse;
mod documents;
mod host_protocol;
mod hostile_input;
mod keyvault;
mod operations;
mod published_providers;
mod rate_limit;
mod token_contract;
mod verify;
