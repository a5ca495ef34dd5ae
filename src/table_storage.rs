//! One table of Azure Table Storage (the Function App's own `AzureWebJobsStorage` account),
//! through its REST API: the few entity operations the app's small stores need.
//!
//! Requests are authorized with `SharedKeyLite` (a connection string with the account key:
//! Azurite, local runs) or a Microsoft Entra token of the app's identity (identity-based
//! `AzureWebJobsStorage`, an account that refuses shared keys; the identity needs Storage Table
//! Data Contributor). The table is created on first use.
//!
//! Entity keys must not contain `/`, `\`, `#` or `?`: [`key_of`] turns any string into one.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::OnceCell;

use crate::azure_credential::BearerToken;
use crate::secret::Secret;

/// The token scope of Azure Storage.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";
const STORAGE_VERSION: &str = "2019-02-02";

/// The storage answered with an error or could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreUnavailable;

/// What an insert found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Created,
    /// An entity with these keys was already there (and was left as it was).
    AlreadyThere,
}

pub struct TableClient {
    http: reqwest::Client,
    auth: TableAuth,
    /// Table service endpoint, e.g. `https://acct.table.core.windows.net` or
    /// `http://127.0.0.1:10002/devstoreaccount1`, without a trailing slash.
    endpoint: String,
    table: String,
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

impl TableClient {
    /// Table `table` of the account in a storage connection string (`AccountName=…;AccountKey=…
    /// [;TableEndpoint=…][;DefaultEndpointsProtocol=…][;EndpointSuffix=…]`). Errors never show
    /// the key.
    pub fn from_connection_string(
        text: &str,
        table: &str,
        timeout: std::time::Duration,
    ) -> Result<Self, String> {
        let mut fields = std::collections::HashMap::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some((name, value)) = part.split_once('=') {
                fields.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
            }
        }
        let account = fields.get("accountname").cloned().ok_or(
            "needs AccountName and AccountKey (or use the identity-based AzureWebJobsStorage__accountName)",
        )?;
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
        Self::new(endpoint, auth, table, timeout)
    }

    /// Table `table` at `endpoint` (`AzureWebJobsStorage__tableServiceUri`), reached with `token`.
    pub fn with_identity(
        endpoint: &str,
        token: BearerToken,
        table: &str,
        timeout: std::time::Duration,
    ) -> Result<Self, String> {
        Self::new(
            endpoint.to_string(),
            TableAuth::Entra(token),
            table,
            timeout,
        )
    }

    fn new(
        endpoint: String,
        auth: TableAuth,
        table: &str,
        timeout: std::time::Duration,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client for Table Storage: {e}"))?;
        Ok(TableClient {
            http,
            auth,
            endpoint,
            table: table.to_string(),
            table_ready: OnceCell::new(),
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Inserts `entity` (which holds its `PartitionKey` and `RowKey`) unless one with its keys
    /// exists.
    pub async fn insert(&self, entity: &Value) -> Result<Inserted, StoreUnavailable> {
        let path = format!("/{}", self.table);
        match self
            .request(reqwest::Method::POST, &path, Some(entity))
            .await?
            .0
        {
            200..=299 => Ok(Inserted::Created),
            409 => Ok(Inserted::AlreadyThere),
            other => Err(self.failed("inserting an entity", other)),
        }
    }

    /// Inserts `entity`, or replaces the one with its keys.
    pub async fn upsert(
        &self,
        partition: &str,
        row: &str,
        entity: &Value,
    ) -> Result<(), StoreUnavailable> {
        let path = self.entity_path(partition, row);
        match self
            .request(reqwest::Method::PUT, &path, Some(entity))
            .await?
            .0
        {
            200..=299 => Ok(()),
            other => Err(self.failed("writing an entity", other)),
        }
    }

    /// The entity with these keys, if there is one.
    pub async fn get(&self, partition: &str, row: &str) -> Result<Option<Value>, StoreUnavailable> {
        let path = self.entity_path(partition, row);
        let (status, body) = self.request(reqwest::Method::GET, &path, None).await?;
        match status {
            200 => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|_| self.failed("reading an entity", status)),
            404 => Ok(None),
            other => Err(self.failed("reading an entity", other)),
        }
    }

    /// Every entity of one partition (following continuation tokens; the service returns at
    /// most 1,000 per page).
    pub async fn partition(&self, partition: &str) -> Result<Vec<Value>, StoreUnavailable> {
        let mut rows = Vec::new();
        let mut next: Option<(String, String)> = None;
        loop {
            let mut path = format!(
                "/{}()?$filter=PartitionKey%20eq%20'{partition}'",
                self.table
            );
            if let Some((next_partition, next_row)) = &next {
                let encode = |token: &str| {
                    percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC)
                        .to_string()
                };
                path.push_str(&format!(
                    "&NextPartitionKey={}&NextRowKey={}",
                    encode(next_partition),
                    encode(next_row)
                ));
            }
            let (status, body, continuation) = self.request_page(&path).await?;
            if status != 200 {
                return Err(self.failed("listing entities", status));
            }
            let page: Value = serde_json::from_slice(&body)
                .map_err(|_| self.failed("listing entities", status))?;
            if let Some(Value::Array(values)) = page.get("value").cloned() {
                rows.extend(values);
            }
            match continuation {
                Some(tokens) => next = Some(tokens),
                None => return Ok(rows),
            }
        }
    }

    /// Deletes the entity with these keys; one that is not there counts as deleted.
    pub async fn delete(&self, partition: &str, row: &str) -> Result<(), StoreUnavailable> {
        let path = self.entity_path(partition, row);
        match self.request(reqwest::Method::DELETE, &path, None).await?.0 {
            200..=299 | 404 => Ok(()),
            other => Err(self.failed("deleting an entity", other)),
        }
    }

    fn entity_path(&self, partition: &str, row: &str) -> String {
        format!("/{}(PartitionKey='{partition}',RowKey='{row}')", self.table)
    }

    async fn ensure_table(&self) -> Result<(), StoreUnavailable> {
        self.table_ready
            .get_or_try_init(|| async {
                let body = serde_json::json!({ "TableName": self.table });
                match self
                    .send(reqwest::Method::POST, "/Tables", Some(&body))
                    .await?
                    .status()
                    .as_u16()
                {
                    200..=299 | 409 => Ok(()),
                    other => Err(self.failed("creating the table", other)),
                }
            })
            .await
            .map(|_| ())
    }

    /// One request to the table (created first if need be); its status and body.
    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, bytes::Bytes), StoreUnavailable> {
        self.ensure_table().await?;
        let response = self.send(method, path, body).await?;
        let status = response.status().as_u16();
        Ok((status, read_body(response).await?))
    }

    /// One GET of a query page; its status, body and the continuation tokens (next partition
    /// and row key) when there are more pages.
    async fn request_page(&self, path: &str) -> Result<Page, StoreUnavailable> {
        self.ensure_table().await?;
        let response = self.send(reqwest::Method::GET, path, None).await?;
        let status = response.status().as_u16();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let continuation = header("x-ms-continuation-nextpartitionkey")
            .zip(header("x-ms-continuation-nextrowkey"));
        Ok((status, read_body(response).await?, continuation))
    }

    /// One authorized request.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, StoreUnavailable> {
        let date = crate::clock::rfc1123_now();
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
        request.send().await.map_err(|error| {
            tracing::warn!(error = %error, table = %self.table, "Table Storage request failed");
            StoreUnavailable
        })
    }

    fn failed(&self, what: &str, status: u16) -> StoreUnavailable {
        if status == 400 {
            // The request, not the account: a key or value the service does not take. Not an
            // outage, so not the alarm that sends an operator to check the connection.
            tracing::warn!(status, table = %self.table, "Table Storage refused {what} as invalid (a key or value it does not take)");
        } else {
            tracing::error!(status, endpoint = %self.endpoint, table = %self.table, "Table Storage refused {what}: check AzureWebJobsStorage (and, with the app's identity, its Storage Table Data Contributor role)");
        }
        StoreUnavailable
    }
}

/// A query page: status, body and continuation tokens.
type Page = (u16, bytes::Bytes, Option<(String, String)>);

async fn read_body(response: reqwest::Response) -> Result<bytes::Bytes, StoreUnavailable> {
    response.bytes().await.map_err(|error| {
        tracing::warn!(error = %error, "Table Storage response could not be read");
        StoreUnavailable
    })
}

/// The longest PartitionKey or RowKey Table Storage takes (1 KiB; base64url is ASCII).
pub const MAX_KEY_BYTES: usize = 1024;

/// A table key for any string: base64url, which has none of the characters keys forbid. A value
/// whose base64url would pass [`MAX_KEY_BYTES`] (a 256-character id of 4-byte characters, say) is
/// stored under `~` and the base64url of its SHA-256 instead: `~` is outside the base64url
/// alphabet, so the two forms never meet, and every value that fits keeps the form it always had
/// (rows written before are found).
pub fn key_of(value: &str) -> String {
    let key = URL_SAFE_NO_PAD.encode(value.as_bytes());
    if key.len() <= MAX_KEY_BYTES {
        return key;
    }
    use sha2::Digest as _;
    format!(
        "~{}",
        URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn connection_strings() {
        let t = Duration::from_secs(1);
        let azure = TableClient::from_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=fnstore;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net",
            "T",
            t,
        )
        .unwrap();
        assert_eq!(azure.endpoint, "https://fnstore.table.core.windows.net");
        assert!(
            matches!(&azure.auth, TableAuth::SharedKeyLite { endpoint_path, .. } if endpoint_path.is_empty())
        );
        let local = TableClient::from_connection_string(
            "AccountName=dev;AccountKey=c2VjcmV0;TableEndpoint=http://127.0.0.1:10002/dev/",
            "T",
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
            let error = TableClient::from_connection_string(bad, "T", t)
                .err()
                .unwrap();
            assert!(!error.contains("c2VjcmV0"));
        }
    }

    #[test]
    fn keys_avoid_forbidden_characters() {
        for value in ["8:acs:1234_abcd", "a/b\\c#d?e", "oid-ünïcode"] {
            let key = key_of(value);
            assert!(!key.contains(['/', '\\', '#', '?', '\'', '!']), "{key}");
        }
    }

    #[test]
    fn keys_stay_within_the_limit_and_short_ones_keep_their_form() {
        assert_eq!(key_of("ann"), "YW5u");
        let at_limit = "a".repeat(MAX_KEY_BYTES / 4 * 3);
        assert_eq!(key_of(&at_limit).len(), MAX_KEY_BYTES);
        assert!(!key_of(&at_limit).starts_with('~'));
        // A tenant and a 256-character document id of 4-byte characters: ~1,370 characters of
        // base64url before; a digest now.
        let long = format!("t/{}", "😀".repeat(256));
        let key = key_of(&long);
        assert!(key.starts_with('~') && key.len() == 44, "{key}");
        assert_ne!(
            key,
            key_of(&format!("{long}x")),
            "distinct values, distinct keys"
        );
        assert_eq!(key, key_of(&long), "stable");
        let just_past = "a".repeat(MAX_KEY_BYTES / 4 * 3 + 1);
        assert!(key_of(&just_past).starts_with('~'));
    }
}
