//! Builds the application from a [`Config`] and runs it until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::acs::bindings::{self, TableBindings};
use crate::acs::connection::{ACS_SCOPE, AcsConnection};
use crate::acs::identity::IdentityClient;
use crate::acs::{AcsSecret, AcsService, ConnectionSource};
use crate::azure_credential::{AzureCredential, BearerToken};
use crate::caller::Authenticator;
use crate::caller::entra::EntraValidator;
use crate::caller::rate_limit::CallerLimiter;
use crate::config::{
    AcsConnectionSetting, AcsSettings, AuthMode, Config, DocumentSettings, DocumentStoreSetting,
    KeySettings, Launch, StorageSetting,
};
use crate::documents::Documents;
use crate::documents::store::{MemberStore, MemoryStore};
use crate::documents::table::TableMembers;
use crate::host::{self, Routing};
use crate::keys::TenantKeys;
use crate::keys::cache::{CachePolicy, CachedKeys};
use crate::keys::local::LocalKeys;
use crate::keys::vault::{VaultKeys, VaultSecrets};
use crate::routes::AppState;
use crate::table_storage::{STORAGE_SCOPE, TableClient};

/// How long in-flight requests may take to finish after a shutdown signal. The host waits a
/// few seconds before killing the process anyway; a token request takes microseconds.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Application {
    listener: TcpListener,
    state: Arc<AppState>,
    routing: Routing,
    /// Set for runs without the Functions host.
    standalone: bool,
}

impl Application {
    /// Binds the listener and assembles the state. Errors are for the operator (bind failures).
    pub async fn build(config: Config) -> Result<Application, String> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let local_addr = listener.local_addr().map_err(|e| e.to_string())?;

        let authenticated = config.auth_mode != AuthMode::None;
        let auth = authenticator(config.auth_mode)?;
        let (keys, vault) = key_source(config.keys)?;
        let acs = match config.acs {
            Some(settings) => Some(acs_service(settings, vault, authenticated)?),
            None => None,
        };
        let documents = documents(config.documents)?;
        tracing::info!(
            address = %local_addr,
            launch = match config.launch {
                Launch::FunctionsHost => "functions-host",
                Launch::Standalone => "standalone",
            },
            route_prefix = %config.route_prefix,
            // Per deployment, not per request: the request lines leave them out.
            forwarding = config.forwarding,
            auth_mode = auth.mode(),
            max_lifetime_seconds = config.policy.max_lifetime.seconds(),
            allowed_tenants = config.policy.allowed_tenants.as_ref().map_or(0, |t| t.len()),
            "listening"
        );

        // AUTH_MODE=none has no caller to limit.
        let limiter = config
            .caller_rate
            .filter(|_| !matches!(auth, Authenticator::None))
            .map(|rate| CallerLimiter::new(rate.rate, rate.burst));
        let state = AppState {
            auth,
            policy: config.policy,
            keys,
            acs,
            documents,
            cors: config.cors,
            limiter,
        };
        Ok(Application {
            listener,
            state: Arc::new(state),
            routing: Routing {
                route_prefix: config.route_prefix,
                forwarding: config.forwarding,
            },
            standalone: config.launch == Launch::Standalone,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
    /// (for at most [`DRAIN_TIMEOUT`]) and returns.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let signalled = Arc::new(Notify::new());
        let notify = Arc::clone(&signalled);
        let server = warp::serve(host::handler(self.state, self.routing, self.standalone))
            .incoming(self.listener)
            .graceful(async move {
                shutdown.await;
                tracing::info!("shutdown signal received; finishing in-flight requests");
                notify.notify_one();
            })
            .run();
        tokio::select! {
            () = server => tracing::info!("stopped"),
            () = async {
                signalled.notified().await;
                tokio::time::sleep(DRAIN_TIMEOUT).await;
            } => tracing::warn!("in-flight requests did not finish in time; stopping anyway"),
        }
    }
}

/// Builds the configured caller authentication and says which it is.
fn authenticator(mode: AuthMode) -> Result<Authenticator, String> {
    Ok(match mode {
        AuthMode::None => {
            tracing::warn!(
                "AUTH_MODE=none: anyone who can reach this function gets tokens for any user; use it for development only"
            );
            Authenticator::None
        }
        AuthMode::EasyAuth(form) => {
            tracing::info!(
                auth_mode = "easyauth",
                "trusting App Service Authentication headers: Authentication must be enabled on the Function App"
            );
            Authenticator::EasyAuth(form)
        }
        AuthMode::Entra(settings) => {
            tracing::info!(
                auth_mode = "entra",
                authority = %settings.authority,
                tenant = %settings.tenant_id,
                audience = ?settings.audiences,
                required_scope = settings.required_scope.as_deref(),
                "validating Entra ID access tokens"
            );
            let validator = Arc::new(EntraValidator::new(settings)?);
            let warm = Arc::clone(&validator);
            tokio::spawn(async move { warm.warm_up().await });
            Authenticator::Entra(validator)
        }
    })
}

/// The vault's secrets reader and how long what it reads stays fresh.
type Vault = (Arc<VaultSecrets>, CachePolicy);

/// The tenant key source (with the vault's secrets reader when Key Vault is configured) and
/// says which it is (never a key).
fn key_source(settings: KeySettings) -> Result<(Arc<dyn TenantKeys>, Option<Vault>), String> {
    match settings {
        KeySettings::Local(keys) => {
            if keys.is_empty() {
                tracing::warn!("TENANT_KEYS is empty: every tenant is unknown (404)");
            }
            tracing::info!(source = "TENANT_KEYS", tenants = keys.len(), "tenant keys");
            Ok((Arc::new(LocalKeys::new(&keys)), None))
        }
        KeySettings::Vault {
            vault,
            cache,
            preload,
            identity_source,
            ignored_tenant_keys,
        } => {
            if ignored_tenant_keys {
                tracing::warn!("KEY_VAULT_URL is set: TENANT_KEYS is ignored");
            }
            if !vault.verify_challenge_resource {
                tracing::warn!(
                    "KEY_VAULT_VERIFY_CHALLENGE_RESOURCE=false: the vault's authentication challenge is not checked against its domain; use this only with a local emulator"
                );
            }
            tracing::info!(
                source = "key-vault",
                vault = %vault.url,
                credential = vault.credential.name(),
                identity = identity_source,
                ttl_seconds = cache.ttl.as_secs(),
                max_stale_seconds = cache.max_stale.as_secs(),
                timeout_ms = cache.fetch_timeout.as_millis() as u64,
                "tenant keys"
            );
            let secrets = Arc::new(VaultSecrets::new(&vault)?);
            let keys = Arc::new(CachedKeys::new(
                VaultKeys::new(Arc::clone(&secrets), vault.secret_name.clone()),
                cache,
            ));
            for tenant in preload {
                let keys = Arc::clone(&keys);
                tokio::spawn(async move {
                    match keys.key(&tenant).await {
                        Ok(_) => {
                            tracing::info!(tenant_id = tenant.as_str(), "tenant key preloaded")
                        }
                        Err(error) => tracing::warn!(
                            tenant_id = tenant.as_str(),
                            ?error,
                            "tenant key preload failed"
                        ),
                    }
                });
            }
            Ok((keys, Some((secrets, cache))))
        }
    }
}

/// The ACS function's service: connection source, Identity API client and (when callers are
/// authenticated) the identity bindings store.
fn acs_service(
    settings: AcsSettings,
    vault: Option<Vault>,
    authenticated: bool,
) -> Result<AcsService, String> {
    // The app's identity, when ACS or the bindings' storage is reached without a key.
    let credential = settings
        .credential
        .as_ref()
        .map(AzureCredential::build)
        .transpose()?;
    let bearer = |scope| {
        let credential = credential
            .clone()
            .ok_or("no credential for the app's identity")?;
        Ok::<_, String>(BearerToken::new(credential, scope, settings.timeout))
    };
    let connection = match settings.connection {
        AcsConnectionSetting::Fixed(connection) => {
            tracing::info!(endpoint = %connection.endpoint, source = "ACS_CONNECTION_STRING", "ACS");
            ConnectionSource::Fixed(connection)
        }
        AcsConnectionSetting::VaultSecret(name) => {
            let (secrets, policy) =
                vault.ok_or("ACS_CONNECTION_STRING_SECRET_NAME needs KEY_VAULT_URL")?;
            tracing::info!(secret = %name, source = "key-vault", "ACS");
            ConnectionSource::Vault(CachedKeys::new(AcsSecret { secrets, name }, policy))
        }
        AcsConnectionSetting::Entra { endpoint } => {
            tracing::info!(endpoint = %endpoint.url, source = "ACS_ENDPOINT", auth = "app identity (Microsoft Entra)", "ACS");
            ConnectionSource::Fixed(AcsConnection::entra(endpoint, bearer(ACS_SCOPE)?))
        }
    };
    let bindings = if authenticated {
        let storage = settings.storage.ok_or(
            "AzureWebJobsStorage (or AzureWebJobsStorage__accountName) is required for ACS with an authenticated AUTH_MODE (it stores which caller owns which identity)",
        )?;
        Some(TableBindings::new(table_client(
            storage,
            bindings::TABLE,
            credential.clone(),
            settings.timeout,
        )?))
    } else {
        tracing::warn!("AUTH_MODE=none: any caller can get ACS tokens for any identity");
        None
    };
    Ok(AcsService {
        connection,
        client: IdentityClient::new(settings.timeout)?,
        bindings,
    })
}

/// How long one Table Storage request of the document store may take.
const DOCUMENT_STORE_TIMEOUT: Duration = Duration::from_secs(5);

/// The document access model and its store (`None` when no store is configured).
fn documents(settings: DocumentSettings) -> Result<Option<Documents>, String> {
    let store: Arc<dyn MemberStore> = match settings.store {
        None => {
            tracing::info!(
                "DOCUMENT_STORE is not set: DocumentCreated and DocumentMembers are not served"
            );
            return Ok(None);
        }
        Some(DocumentStoreSetting::Memory {
            explicit_under_host,
        }) => {
            if explicit_under_host {
                tracing::warn!(
                    "DOCUMENT_STORE=memory: document owners and members are kept in this instance only; they are lost on restart and other instances do not see them. Use DOCUMENT_STORE=table when the app can scale out"
                );
            }
            tracing::info!(
                store = "memory",
                access = settings.access.as_str(),
                "document access"
            );
            Arc::new(MemoryStore::default())
        }
        Some(DocumentStoreSetting::Table {
            storage,
            table,
            credential,
        }) => {
            tracing::info!(store = "table", table = %table, access = settings.access.as_str(), "document access");
            let credential = credential
                .as_ref()
                .map(AzureCredential::build)
                .transpose()?;
            Arc::new(TableMembers::new(table_client(
                storage,
                &table,
                credential,
                DOCUMENT_STORE_TIMEOUT,
            )?))
        }
    };
    Ok(Some(Documents::new(
        settings.access,
        store,
        settings.limits,
    )))
}

/// A client of `table` in the `AzureWebJobsStorage` account: with its key, or with the app's
/// identity (`credential`).
fn table_client(
    storage: StorageSetting,
    table: &str,
    credential: Option<Arc<dyn azure_core::credentials::TokenCredential>>,
    timeout: Duration,
) -> Result<TableClient, String> {
    match storage {
        StorageSetting::ConnectionString(text) => {
            TableClient::from_connection_string(text.expose(), table, timeout)
                .map_err(|problem| format!("AzureWebJobsStorage {problem}"))
        }
        StorageSetting::Identity { table_endpoint } => {
            let credential = credential.ok_or("no credential for the app's identity")?;
            tracing::info!(endpoint = %table_endpoint, table, auth = "app identity (Microsoft Entra)", "Table Storage");
            TableClient::with_identity(
                &table_endpoint,
                BearerToken::new(credential, STORAGE_SCOPE, timeout),
                table,
                timeout,
            )
        }
    }
}

/// Completes on SIGTERM (what the host and container runtimes send) or SIGINT (Ctrl+C).
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {},
                    _ = terminate.recv() => {},
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
