//! The envelope format of the custom-handler protocol: the JSON invocation the host POSTs to
//! `/{FunctionName}` (`Data.req` describes the client's request) and the JSON result the handler
//! answers with (`Outputs.res` describes the client's response). Parsing and writing only; the
//! exchange is in [`super`].

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use warp::http::{HeaderMap, HeaderName, HeaderValue, Method, header};

use crate::invocation::{Invocation, MAX_BODY_BYTES, QueryParams, Reply};
use crate::problem::Problem;
use crate::request_log::RequestLog;

/// The invocation JSON the host POSTs to `/{FunctionName}` (Newtonsoft, PascalCase).
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Data")]
    data: EnvelopeData,
}

#[derive(Deserialize)]
struct EnvelopeData {
    /// Named after the trigger binding in function.json (`"name": "req"`).
    req: HttpTriggerData,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HttpTriggerData {
    #[serde(default)]
    url: String,
    method: String,
    /// An object of string values (repeated names already joined with `,`); old hosts and
    /// documentation samples send the JSON text `"{}"` instead, which is accepted too.
    #[serde(default)]
    query: Value,
    /// Header name → array of values (a single string is tolerated).
    #[serde(default)]
    headers: BTreeMap<String, Value>,
    /// The body as text; base64 when the client sent `application/octet-stream` or `multipart/*`.
    /// Absent when the request had no `Content-Length` or an empty body.
    #[serde(default)]
    body: Value,
}

/// What the handler returns to the host for an envelope invocation.
#[derive(Serialize)]
struct InvocationResult {
    #[serde(rename = "Outputs")]
    outputs: Outputs,
    #[serde(rename = "Logs")]
    logs: Vec<String>,
    #[serde(rename = "ReturnValue")]
    return_value: Option<()>,
}

#[derive(Serialize)]
struct Outputs {
    res: HttpOutput,
}

#[derive(Serialize)]
struct HttpOutput {
    #[serde(rename = "statusCode")]
    status_code: u16,
    /// Header name → value; the host writes each with `Headers.Add(name, value)`.
    headers: BTreeMap<String, String>,
    /// Always a string: the host writes a string body verbatim (objects would be re-indented).
    body: String,
}

/// The invocation result for the client's `reply`, as the host expects it.
pub(super) fn result(function_name: &str, reply: &Reply) -> Vec<u8> {
    let status = reply.status.as_u16();
    let result = InvocationResult {
        outputs: Outputs {
            res: HttpOutput {
                status_code: status,
                headers: reply
                    .headers
                    .iter()
                    .filter_map(|(name, value)| {
                        Some((title_case(name), value.to_str().ok()?.to_owned()))
                    })
                    .collect(),
                body: String::from_utf8_lossy(&reply.body).into_owned(),
            },
        },
        logs: vec![format!("{function_name} answered {status}")],
        return_value: None,
    };
    serde_json::to_vec(&result).expect("an invocation result always serializes")
}

pub(super) enum EnvelopeRequest {
    Ok(Invocation),
    /// The client's body is over the limit: a client error, answered inside the envelope (with
    /// CORS, from the client's headers).
    TooLarge {
        problem: Problem,
        headers: HeaderMap,
    },
}

pub(super) fn parse(bytes: &[u8], log: &mut RequestLog) -> Result<EnvelopeRequest, Problem> {
    let malformed = |detail: &str| Problem::MalformedInvocation {
        detail: detail.to_string(),
    };
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|_| {
        malformed("The invocation is not a Functions host HTTP envelope (Data.req).")
    })?;
    let req = envelope.data.req;
    let method = Method::from_bytes(req.method.as_bytes())
        .map_err(|_| malformed("Data.req.Method is not an HTTP method."))?;
    log.client_request(&method, public_path(&req.url));

    let mut headers = HeaderMap::new();
    for (name, values) in &req.headers {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        let values = match values {
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            Value::String(value) => vec![value.as_str()],
            _ => Vec::new(),
        };
        for value in values {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(name.clone(), value);
            }
        }
    }

    let query = match req.query {
        Value::Object(map) => map.into_iter().map(|(k, v)| (k, text_of(v))).collect(),
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => map.into_iter().map(|(k, v)| (k, text_of(v))).collect(),
            _ => QueryParams::default(),
        },
        _ => QueryParams::default(),
    };

    let body = match req.body {
        Value::Null => Bytes::new(),
        Value::String(text) if is_binary(&headers) => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|_| malformed("Data.req.Body of a binary request is not base64."))?,
        ),
        Value::String(text) => Bytes::from(text),
        other => Bytes::from(other.to_string()),
    };
    if body.len() > MAX_BODY_BYTES {
        return Ok(EnvelopeRequest::TooLarge {
            problem: Problem::BodyTooLarge {
                limit: MAX_BODY_BYTES,
            },
            headers,
        });
    }
    Ok(EnvelopeRequest::Ok(Invocation {
        method,
        query,
        headers,
        body,
    }))
}

fn text_of(value: Value) -> String {
    match value {
        Value::String(text) => text,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Whether the host will have base64-encoded the body (it sends `byte[]` for these types).
fn is_binary(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| v.starts_with("application/octet-stream") || v.starts_with("multipart/"))
}

/// The path of the public URL in `Data.req.Url`, for logs.
fn public_path(url: &str) -> String {
    url.parse::<warp::http::Uri>()
        .map(|uri| uri.path().to_owned())
        .unwrap_or_default()
}

/// `content-type` → `Content-Type`, the casing the host and its samples use.
fn title_case(name: &HeaderName) -> String {
    let mut out = String::with_capacity(name.as_str().len());
    let mut upper = true;
    for c in name.as_str().chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_parsing() {
        let json = r#"{"Data":{"req":{"Url":"http://localhost:7071/api/TokenFunction?tenantId=t","Method":"POST",
            "Query":{"tenantId":"t","scopes":"doc:read,doc:write"},
            "Headers":{"Content-Type":["application/json"],"Accept":"application/json"},
            "Params":{},"Identities":[],"Body":"{\"documentId\":\"d\"}"}},"Metadata":{}}"#;
        let EnvelopeRequest::Ok(invocation) =
            parse(json.as_bytes(), &mut RequestLog::default()).unwrap()
        else {
            panic!("expected an invocation");
        };
        assert_eq!(invocation.method, Method::POST);
        assert_eq!(invocation.query.get("scopes"), Some("doc:read,doc:write"));
        assert_eq!(
            invocation.headers.get("accept").unwrap(),
            "application/json"
        );
        assert_eq!(&invocation.body[..], br#"{"documentId":"d"}"#);
    }

    #[test]
    fn envelope_tolerates_old_query_text_and_binary_bodies() {
        let json = r#"{"Data":{"req":{"Method":"POST","Query":"{}","Headers":{"Content-Type":["application/octet-stream"]},
            "Body":"eyJ0ZW5hbnRJZCI6InQifQ=="}}}"#;
        let EnvelopeRequest::Ok(invocation) =
            parse(json.as_bytes(), &mut RequestLog::default()).unwrap()
        else {
            panic!("expected an invocation");
        };
        assert_eq!(invocation.query, QueryParams::default());
        assert_eq!(&invocation.body[..], br#"{"tenantId":"t"}"#);
    }

    #[test]
    fn malformed_envelopes() {
        for json in [
            "",
            "{}",
            r#"{"Data":{}}"#,
            r#"{"Data":{"req":{"Method":"GE T"}}}"#,
            "[1]",
        ] {
            assert!(
                matches!(
                    parse(json.as_bytes(), &mut RequestLog::default()),
                    Err(Problem::MalformedInvocation { .. })
                ),
                "{json}"
            );
        }
    }

    #[test]
    fn header_names_are_title_cased() {
        assert_eq!(title_case(&header::CONTENT_TYPE), "Content-Type");
        assert_eq!(title_case(&header::RETRY_AFTER), "Retry-After");
        assert_eq!(title_case(&header::ALLOW), "Allow");
    }
}
