//! A token service for Azure Fluid Relay, served as an Azure Functions custom handler.
//!
//! One request flows in one direction through these modules:
//!
//! ```text
//! host ──► caller ──► request ──► policy ──► documents ──► keys ──► token ──► response
//!                                                                   (problem for every error)
//! ```
//!
//! [`host`] speaks the custom-handler protocol and hands an [`invocation::Invocation`] to a
//! function in [`routes`]; [`caller`] authenticates; [`request`] parses the parameters once into
//! types; [`policy`] decides the [`token::Grant`]; [`documents`] narrows it to the caller's role
//! in the container (with `DOCUMENT_ACCESS=members`); [`keys`] supplies the tenant key; [`token`]
//! signs; [`problem`] renders errors. [`acs`] and [`documents`] also hold the domain of their own
//! functions; [`table_storage`] is the Table Storage client both use.

pub mod acs;
pub mod audit;
pub mod azure_credential;
pub mod caller;
pub mod clock;
pub mod config;
pub mod cors;
pub mod documents;
pub mod domain;
pub mod host;
pub mod invocation;
pub mod json;
pub mod keys;
pub mod log_format;
pub mod log_writer;
pub mod net;
pub mod policy;
pub mod problem;
pub mod request;
pub mod routes;
pub mod secret;
pub mod startup;
pub mod table_storage;
pub mod telemetry;
pub mod token;
