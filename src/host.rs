//! The Azure Functions custom-handler protocol.
//!
//! The host talks to this process over HTTP on 127.0.0.1 in one of two ways per function:
//!
//! - **Forwarding** (`enableForwardingHttpRequest` / `enableProxyingHttpRequest` in host.json):
//!   the client's request arrives as it was sent, at its public path
//!   `/{routePrefix}/{FunctionName}`, and our HTTP response goes back to the client as it is.
//! - **Envelope** (the default): `POST /{FunctionName}` with a JSON invocation whose `Data.req`
//!   describes the client's request; we answer HTTP 200 with
//!   `{"Outputs":{"res":{statusCode,headers,body}},"Logs":[…],"ReturnValue":null}`.
//!
//! Both are served at all times, so the handler works whatever host.json says (older hosts
//! ignore `enableProxyingHttpRequest` and silently fall back to the envelope). Both become the
//! same [`Invocation`], so a request gets the same status, headers and body either way.
//! `GET /` answers the host's readiness poll.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use warp::Filter;
use warp::filters::path::FullPath;
use warp::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use warp::reply::Response;

use crate::invocation::{Invocation, MAX_BODY_BYTES, QueryParams, Reply, RequestLog};
use crate::problem::Problem;
use crate::routes::{AppState, Function};
use crate::standalone;

/// An envelope carries the client's body JSON-escaped (up to 6 bytes per byte) or base64'd, plus
/// headers; this bounds what we read before the body itself is checked against [`MAX_BODY_BYTES`].
const MAX_ENVELOPE_BYTES: usize = 8 * MAX_BODY_BYTES;

/// The header the host sets on every invocation, in both modes.
const INVOCATION_ID: &str = "x-azure-functions-invocationid";

/// Where requests are routed; fixed at startup.
#[derive(Debug, Clone)]
pub struct Routing {
    /// `extensions.http.routePrefix` from host.json, without slashes (`api` by default).
    pub route_prefix: String,
    /// Whether host.json turns on forwarding or proxying. Only consulted when `route_prefix` is
    /// empty, where `/{FunctionName}` could be either a forwarded request or an envelope.
    pub forwarding: bool,
}

/// The whole HTTP surface of the handler as one warp filter. `standalone`: a run without the
/// Functions host (which otherwise decides which requests reach us) checks `Host` itself.
pub fn handler(
    state: Arc<AppState>,
    routing: Routing,
    standalone: bool,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let routing = Arc::new(routing);
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(
            move |method, path: FullPath, query: String, headers, body| {
                let state = Arc::clone(&state);
                let routing = Arc::clone(&routing);
                async move {
                    if standalone && !standalone::is_local_host(&headers) {
                        return into_response(Problem::ForeignHost.to_reply());
                    }
                    let request = HttpRequest {
                        method,
                        path: path.as_str().to_owned(),
                        query,
                        headers,
                    };
                    dispatch(&state, &routing, request, body).await
                }
            },
        )
        .recover(|_rejection| async {
            Ok::<_, Infallible>(into_response(Problem::Internal.to_reply()))
        })
        .unify()
}

struct HttpRequest {
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
}

#[derive(Clone, Copy)]
enum Route {
    Readiness,
    Forwarded(Function),
    Envelope(Function),
    NotFound,
}

fn route(method: &Method, path: &str, routing: &Routing) -> Route {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    if path == "/" {
        return Route::Readiness;
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Route::NotFound;
    };
    let prefix = routing.route_prefix.as_str();
    let forwarded_name = if prefix.is_empty() {
        routing.forwarding.then_some(rest)
    } else {
        rest.get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .and_then(|_| rest[prefix.len()..].strip_prefix('/'))
    };
    if let Some(function) = forwarded_name.and_then(Function::from_name) {
        return Route::Forwarded(function);
    }
    match Function::from_name(rest) {
        Some(function) if *method == Method::POST => Route::Envelope(function),
        _ => Route::NotFound,
    }
}

/// The status the client sees, and the HTTP response for the host.
type Outcome = (StatusCode, Response);

async fn dispatch<S, B>(
    state: &AppState,
    routing: &Routing,
    request: HttpRequest,
    body: S,
) -> Response
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let started = Instant::now();
    let route = route(&request.method, &request.path, routing);
    let (mode, function) = match route {
        Route::Readiness => {
            return into_response(Reply::new(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                "ready",
            ));
        }
        Route::Forwarded(function) => ("forwarded", Some(function)),
        Route::Envelope(function) => ("envelope", Some(function)),
        Route::NotFound => ("none", None),
    };
    // A stalled stdout holds requests back here, asynchronously, before they do any work;
    // readiness (above) is never held.
    crate::log_writer::room().await;
    let invocation_id = request
        .headers
        .get(INVOCATION_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut log = RequestLog::default();
    let (status, response) = match route {
        Route::Envelope(function) => {
            invoke_envelope(state, function, request, body, &mut log).await
        }
        Route::Forwarded(function) => {
            invoke_forwarded(state, function, request, body, &mut log).await
        }
        Route::Readiness | Route::NotFound => {
            log.client_request(&request.method, request.path);
            plain(Problem::NotFound.to_reply())
        }
    };
    // One flat event per request: cheaper than a span per request, and just as searchable.
    tracing::info!(
        mode,
        method = log.method.as_ref().map(Method::as_str),
        path = log.path.as_deref(),
        function = function.map(Function::name),
        invocation_id = invocation_id.as_deref(),
        tenant_id = log.tenant_id.as_deref(),
        status = status.as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

fn plain(reply: Reply) -> Outcome {
    (reply.status, into_response(reply))
}

/// Forwarding mode: the client's own request in, our response straight back.
async fn invoke_forwarded<S, B>(
    state: &AppState,
    function: Function,
    request: HttpRequest,
    body: S,
    log: &mut RequestLog,
) -> Outcome
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    log.client_request(&request.method, request.path);
    let body = match read_body(&request.headers, body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(problem) => return plain(problem.to_reply()),
    };
    let query = match QueryParams::parse(&request.query) {
        Ok(query) => query,
        Err(problem) => return plain(problem.to_reply()),
    };
    let invocation = Invocation {
        method: request.method,
        query,
        headers: request.headers,
        body,
    };
    plain(function.invoke(state, invocation, log).await)
}

/// Reads a body of at most `limit` bytes; a larger one is refused as soon as it is seen.
async fn read_body<S, B>(headers: &HeaderMap, mut body: S, limit: usize) -> Result<Bytes, Problem>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let too_large = Problem::BodyTooLarge {
        limit: MAX_BODY_BYTES,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large);
    }
    let mut bytes = BytesMut::with_capacity(declared.map_or(0, |l| l as usize));
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|_| Problem::InvalidBody {
            detail: "The request body could not be read.".to_string(),
        })?;
        if bytes.len() + chunk.remaining() > limit {
            return Err(too_large);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            bytes.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(bytes.freeze())
}

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

/// Envelope mode: the client's request inside the JSON invocation, our response inside the
/// JSON result. A body that is not a valid invocation is answered to the host directly.
async fn invoke_envelope<S, B>(
    state: &AppState,
    function: Function,
    request: HttpRequest,
    body: S,
    log: &mut RequestLog,
) -> Outcome
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let envelope = match read_body(&request.headers, body, MAX_ENVELOPE_BYTES).await {
        Ok(bytes) => parse_envelope(&bytes, log),
        Err(problem) => Err(problem),
    };
    let reply = match envelope {
        Ok(EnvelopeRequest::Ok(invocation)) => function.invoke(state, invocation, log).await,
        Ok(EnvelopeRequest::TooLarge(problem)) => problem.to_reply(),
        Err(problem) => return plain(problem.to_reply()),
    };
    let status = reply.status;
    let result = InvocationResult {
        outputs: Outputs {
            res: HttpOutput {
                status_code: status.as_u16(),
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
        logs: vec![format!("{} answered {}", function.name(), status.as_u16())],
        return_value: None,
    };
    let json = serde_json::to_vec(&result).expect("an invocation result always serializes");
    let response = into_response(Reply::new(
        StatusCode::OK,
        "application/json; charset=utf-8",
        json,
    ));
    (status, response)
}

enum EnvelopeRequest {
    Ok(Invocation),
    /// The client's body is over the limit: a client error, answered inside the envelope.
    TooLarge(Problem),
}

fn parse_envelope(bytes: &[u8], log: &mut RequestLog) -> Result<EnvelopeRequest, Problem> {
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
        return Ok(EnvelopeRequest::TooLarge(Problem::BodyTooLarge {
            limit: MAX_BODY_BYTES,
        }));
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

fn into_response(reply: Reply) -> Response {
    let mut response = Response::new(reply.body.into());
    *response.status_mut() = reply.status;
    for (name, value) in reply.headers {
        response.headers_mut().append(name, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(prefix: &str, forwarding: bool) -> Routing {
        Routing {
            route_prefix: prefix.to_string(),
            forwarding,
        }
    }

    fn name(route: Route) -> String {
        match route {
            Route::Readiness => "ready".into(),
            Route::Forwarded(f) => format!("forwarded {}", f.name()),
            Route::Envelope(f) => format!("envelope {}", f.name()),
            Route::NotFound => "not found".into(),
        }
    }

    #[test]
    fn routes() {
        let api = routing("api", false);
        for (method, path, expected) in [
            (Method::GET, "/", "ready"),
            (Method::GET, "/api/TokenFunction", "forwarded TokenFunction"),
            (
                Method::PUT,
                "/API/tokenfunction/",
                "forwarded TokenFunction",
            ),
            (Method::POST, "/TokenFunction", "envelope TokenFunction"),
            (Method::GET, "/TokenFunction", "not found"),
            (Method::GET, "/apix/TokenFunction", "not found"),
            (Method::GET, "/api/Other", "not found"),
            (Method::GET, "/api", "not found"),
        ] {
            assert_eq!(
                name(route(&method, path, &api)),
                expected,
                "{method} {path}"
            );
        }
        // With an empty prefix, host.json's mode decides what `/TokenFunction` is.
        for (forwarding, expected) in [
            (true, "forwarded TokenFunction"),
            (false, "envelope TokenFunction"),
        ] {
            let routing = routing("", forwarding);
            assert_eq!(
                name(route(&Method::POST, "/TokenFunction", &routing)),
                expected
            );
        }
    }

    #[test]
    fn envelope_parsing() {
        let json = r#"{"Data":{"req":{"Url":"http://localhost:7071/api/TokenFunction?tenantId=t","Method":"POST",
            "Query":{"tenantId":"t","scopes":"doc:read,doc:write"},
            "Headers":{"Content-Type":["application/json"],"Accept":"application/json"},
            "Params":{},"Identities":[],"Body":"{\"documentId\":\"d\"}"}},"Metadata":{}}"#;
        let EnvelopeRequest::Ok(invocation) =
            parse_envelope(json.as_bytes(), &mut RequestLog::default()).unwrap()
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
            parse_envelope(json.as_bytes(), &mut RequestLog::default()).unwrap()
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
                    parse_envelope(json.as_bytes(), &mut RequestLog::default()),
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
