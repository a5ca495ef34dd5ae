//! A token service for Fluid Framework (Azure Fluid Relay, or a self-hosted Routerlicious),
//! served as an Azure Functions custom handler.
//!
//! One request flows in one direction, each step a module that imports only the ones below it
//! (`tests/architecture.rs` fails on any import cycle between these modules):
//!
//! ```text
//! startup ─► config                     (every setting, read once)
//!    └─────► host ─► routes             (protocol in/out; one file per function)
//!                      │  caller ─► request ─► policy ─► documents ─► keys ─► token
//!                      │  acs (AcsTokenFunction's domain)      └─► table_storage
//!                      └─ cors, audit
//! leaves: domain (TenantId, DocumentId, Scopes, …), problem, invocation, clock, net, secret,
//!         json, budget, eviction, azure_credential
//! ```
//!
//! [`host`] speaks the custom-handler protocol (routing once, the envelope format) and hands an
//! [`invocation::Invocation`] to a function in [`routes`], which answers `Result<Reply,
//! Problem>`; [`caller`] authenticates; [`request`] parses the parameters once into [`domain`]
//! types; [`policy`] decides the [`token::Grant`]; [`documents`] narrows it to the caller's role in
//! the container (with `DOCUMENT_ACCESS=members`); [`keys`] supplies the tenant key; [`token`]
//! signs; [`problem`] renders errors, and `routes/problems.rs` turns the domains' errors into
//! problems. [`acs`] and [`documents`] also hold the domain of their own functions;
//! [`table_storage`] is the Table Storage client both use. [`telemetry`], [`log_format`] and
//! [`log_writer`] write the JSON log lines.

pub mod acs;
pub mod audit;
pub mod azure_credential;
pub mod budget;
pub mod caller;
pub mod clock;
pub mod config;
pub mod cors;
pub mod documents;
pub mod domain;
pub mod eviction;
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
pub mod request_log;
pub mod routes;
pub mod secret;
pub mod startup;
pub mod table_storage;
pub mod telemetry;
pub mod token;
