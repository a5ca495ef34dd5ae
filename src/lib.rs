//! A token service for Azure Fluid Relay, served as an Azure Functions custom handler.
//!
//! One request flows in one direction through these modules:
//!
//! ```text
//! host ──► caller ──► request ──► policy ──► keys ──► token ──► response (problem for every error)
//! ```
//!
//! [`host`] speaks the custom-handler protocol and hands an [`invocation::Invocation`] to a
//! function in [`routes`]; [`caller`] authenticates; [`request`] parses the parameters once into
//! types; [`policy`] decides the [`token::Grant`]; [`keys`] supplies the tenant key; [`token`]
//! signs; [`problem`] renders errors.

pub mod acs;
pub mod audit;
pub mod azure_credential;
pub mod caller;
pub mod config;
pub mod cors;
pub mod host;
pub mod invocation;
pub mod json;
pub mod keys;
pub mod log_format;
pub mod log_writer;
pub mod policy;
pub mod problem;
pub mod request;
pub mod routes;
pub mod secret;
pub mod standalone;
pub mod startup;
pub mod telemetry;
pub mod token;
