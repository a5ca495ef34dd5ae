//! Which caller created which ACS identity, kept in Azure Table Storage (the Function App's own
//! `AzureWebJobsStorage` account), so that in authenticated modes a caller can only get tokens
//! for identities it created.
//!
//! One entity per binding in table `AcsIdentityBindings`: PartitionKey = the caller's id,
//! RowKey = the communication user id (both base64url, since table keys forbid `/`, `\`, `#`,
//! `?`). Requests use the Table REST API, authorized with `SharedKeyLite` (a connection string
//! with the account key: Azurite, local runs) or a Microsoft Entra token of the app's identity
//! (identity-based `AzureWebJobsStorage`, an account that refuses shared keys; the identity
//! needs Storage Table Data Contributor).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::OnceCell;

use crate::azure_credential::BearerToken;
use crate::secret::Secret;

/// The token scope of Azure Storage.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";
const TABLE: &str = "AcsIdentityBindings";
const STORAGE_VERSION: &str = "2019-02-02";

/// The storage answered with an error or could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreUnavailable;

pub struct TableBindings {
    http: reqwest::Client,
    auth: TableAuth,
    /// Table service endpoint, e.g. `https://acct.table.core.windows.net` or
    /// `http://127.0.0.1:10002/devstoreaccount1`, without a trailing slash.
    endpoint: String,
    table_ready: OnceCell<()>,
}

/// How requests to the table service are authorized.
enum TableAuth {
    SharedKeyLite {
        account: String,
        key: Secret<Vec<u8>>,
        /// The endpoint's path (`/devstoreaccount1` in path-style URLs), for signing.
        endpoint_path: String,
    },
    Entra(BearerToken),
}

impl TableBindings {
    /// From a storage connection string (`AccountName=…;AccountKey=…[;TableEndpoint=…]
    /// [;DefaultEndpointsProtocol=…][;EndpointSuffix=…]`). Errors never show the key.
    pub fn from_connection_string(
        text: &str,
        timeout: std::time::Duration,
    ) -> Result<Self, String> {
        let mut fields = std::collections::HashMap::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some((name, value)) = part.split_once('=') {
                fields.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
            }
        }
        let account = fields
            .get("accountname")
            .cloned()
            .ok_or("needs AccountName and AccountKey (identity-based AzureWebJobsStorage is not supported for ACS bindings)")?;
        let key = fields
            .get("accountkey")
            .and_then(|k| STANDARD.decode(k).ok())
            .ok_or("needs a base64 AccountKey")?;
        let endpoint = match fields.get("tableendpoint") {
            Some(endpoint) => endpoint.trim_end_matches('/').to_string(),
            None => format!(
                "{}://{account}.table.{}",
                fields
                    .get("defaultendpointsprotocol")
                    .map_or("https", String::as_str),
                fields
                    .get("endpointsuffix")
                    .map_or("core.windows.net", String::as_str)
            ),
        };
        let uri: warp::http::Uri = endpoint
            .parse()
            .map_err(|_| "has an invalid TableEndpoint")?;
        let auth = TableAuth::SharedKeyLite {
            account,
            key: Secret::new(key),
            endpoint_path: uri.path().trim_end_matches('/').to_string(),
        };
        Self::new(endpoint, auth, timeout)
    }

    /// Tables at `endpoint` (`AzureWebJobsStorage__tableServiceUri`), reached with `token`.
    pub fn with_identity(
        endpoint: &str,
        token: BearerToken,
        timeout: std::time::Duration,
    ) -> Result<Self, String> {
        Self::new(endpoint.to_string(), TableAuth::Entra(token), timeout)
    }

    fn new(
        endpoint: String,
        auth: TableAuth,
        timeout: std::time::Duration,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client for Table Storage: {e}"))?;
        Ok(TableBindings {
            http,
            auth,
            endpoint,
            table_ready: OnceCell::new(),
        })
    }

    /// Records that `caller` created `identity`.
    pub async fn remember(&self, caller: &str, identity: &str) -> Result<(), StoreUnavailable> {
        self.ensure_table().await?;
        let entity = serde_json::json!({
            "PartitionKey": key_of(caller),
            "RowKey": key_of(identity),
            "CallerId": caller,
            "CommunicationUserId": identity,
        });
        let (status, _) = self
            .request(reqwest::Method::POST, &format!("/{TABLE}"), Some(&entity))
            .await?;
        match status {
            200..=299 | 409 => Ok(()),
            other => Err(self.failed("storing an identity binding", other)),
        }
    }

    /// Whether `caller` created `identity`.
    pub async fn owns(&self, caller: &str, identity: &str) -> Result<bool, StoreUnavailable> {
        self.ensure_table().await?;
        let (status, _) = self
            .request(reqwest::Method::GET, &entity_path(caller, identity), None)
            .await?;
        match status {
            200 => Ok(true),
            404 => Ok(false),
            other => Err(self.failed("reading an identity binding", other)),
        }
    }

    /// An identity bound to `caller`, if any (the first in key order when there are several).
    pub async fn identity_of(&self, caller: &str) -> Result<Option<String>, StoreUnavailable> {
        self.ensure_table().await?;
        let path = format!(
            "/{TABLE}()?$filter=PartitionKey%20eq%20'{}'&$select=CommunicationUserId",
            key_of(caller)
        );
        let (status, body) = self.request(reqwest::Method::GET, &path, None).await?;
        if status != 200 {
            return Err(self.failed("listing identity bindings", status));
        }
        let listed: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| self.failed("listing identity bindings", status))?;
        Ok(listed["value"]
            .as_array()
            .and_then(|rows| rows.first())
            .and_then(|row| row["CommunicationUserId"].as_str())
            .map(str::to_owned))
    }

    /// Removes the binding of `identity` to `caller` (after the identity was deleted).
    pub async fn forget(&self, caller: &str, identity: &str) -> Result<(), StoreUnavailable> {
        self.ensure_table().await?;
        let (status, _) = self
            .request(
                reqwest::Method::DELETE,
                &entity_path(caller, identity),
                None,
            )
            .await?;
        match status {
            200..=299 | 404 => Ok(()),
            other => Err(self.failed("removing an identity binding", other)),
        }
    }

    async fn ensure_table(&self) -> Result<(), StoreUnavailable> {
        self.table_ready
            .get_or_try_init(|| async {
                let body = serde_json::json!({ "TableName": TABLE });
                match self
                    .request(reqwest::Method::POST, "/Tables", Some(&body))
                    .await?
                    .0
                {
                    200..=299 | 409 => Ok(()),
                    other => Err(self.failed("creating the bindings table", other)),
                }
            })
            .await
            .map(|_| ())
    }

    /// One authorized request; the HTTP status and body, or unavailable when nothing came back.
    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, bytes::Bytes), StoreUnavailable> {
        let date = crate::acs::signing::rfc1123_now();
        let authorization = match &self.auth {
            TableAuth::SharedKeyLite {
                account,
                key,
                endpoint_path,
            } => {
                // SharedKeyLite for the Table service: HMAC-SHA256 over "date\n/account/path"
                // (the path without its query).
                let path_only = path.split('?').next().unwrap_or(path);
                let resource = format!("/{account}{endpoint_path}{path_only}");
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(key.expose()).expect("HMAC takes any key");
                mac.update(format!("{date}\n{resource}").as_bytes());
                let signature = STANDARD.encode(mac.finalize().into_bytes());
                Secret::new(format!("SharedKeyLite {account}:{signature}"))
            }
            TableAuth::Entra(token) => token.authorization().await.ok_or(StoreUnavailable)?,
        };
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.endpoint))
            .header("x-ms-date", &date)
            .header("x-ms-version", STORAGE_VERSION)
            .header("accept", "application/json;odata=nometadata")
            .header("dataserviceversion", "3.0;NetFx")
            .header("authorization", authorization.expose());
        if method == reqwest::Method::DELETE {
            request = request.header("if-match", "*");
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .header("prefer", "return-no-content")
                .body(body.to_string());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(error = %error, "Table Storage request failed");
                return Err(StoreUnavailable);
            }
        };
        let status = response.status().as_u16();
        match response.bytes().await {
            Ok(body) => Ok((status, body)),
            Err(error) => {
                tracing::warn!(error = %error, "Table Storage response could not be read");
                Err(StoreUnavailable)
            }
        }
    }

    fn failed(&self, what: &str, status: u16) -> StoreUnavailable {
        tracing::error!(status, endpoint = %self.endpoint, "Table Storage refused {what}: check AzureWebJobsStorage (and, with the app's identity, its Storage Table Data Contributor role)");
        StoreUnavailable
    }
}

/// The path of one binding entity.
fn entity_path(caller: &str, identity: &str) -> String {
    format!(
        "/{TABLE}(PartitionKey='{}',RowKey='{}')",
        key_of(caller),
        key_of(identity)
    )
}

/// A table key for any string: base64url has none of the characters keys forbid.
fn key_of(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn connection_strings() {
        let t = Duration::from_secs(1);
        let azure = TableBindings::from_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=fnstore;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net",
            t,
        )
        .unwrap();
        assert_eq!(azure.endpoint, "https://fnstore.table.core.windows.net");
        assert!(
            matches!(&azure.auth, TableAuth::SharedKeyLite { endpoint_path, .. } if endpoint_path.is_empty())
        );
        let local = TableBindings::from_connection_string(
            "AccountName=dev;AccountKey=c2VjcmV0;TableEndpoint=http://127.0.0.1:10002/dev/",
            t,
        )
        .unwrap();
        assert_eq!(local.endpoint, "http://127.0.0.1:10002/dev");
        assert!(
            matches!(&local.auth, TableAuth::SharedKeyLite { endpoint_path, .. } if endpoint_path == "/dev")
        );
        for bad in [
            "UseDevelopmentStorage=true",
            "AccountName=a",
            "AccountName=a;AccountKey=%%%",
        ] {
            let error = TableBindings::from_connection_string(bad, t).err().unwrap();
            assert!(!error.contains("c2VjcmV0"));
        }
    }

    #[test]
    fn keys_avoid_forbidden_characters() {
        for value in ["8:acs:1234_abcd", "a/b\\c#d?e", "oid-ünïcode"] {
            let key = key_of(value);
            assert!(!key.contains(['/', '\\', '#', '?', '\'']), "{key}");
        }
    }
}
