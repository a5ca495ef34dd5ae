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
//!
//! This file is the warp filter and the exchange; `routing.rs` decides where a request goes (once
//! per request), `envelope.rs` reads and writes the envelope format, `body.rs` reads a body under
//! its limit (and what it does with one it refuses).

mod body;
mod envelope;
mod routing;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Buf;
use futures_util::Stream;
use warp::Filter;
use warp::filters::path::FullPath;
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::Response;

use crate::invocation::{Invocation, MAX_BODY_BYTES, QueryParams, Reply};
use crate::net;
use crate::problem::Problem;
use crate::request_log::{Exchange, RequestLog};
use crate::routes::{self, AppState, Function};
use envelope::EnvelopeRequest;
pub use routing::Routing;
use routing::{Route, route};

/// An envelope carries the client's body JSON-escaped (up to 6 bytes per byte) or base64'd, plus
/// headers; this bounds what we read before the body itself is checked against [`MAX_BODY_BYTES`].
const MAX_ENVELOPE_BYTES: usize = 8 * MAX_BODY_BYTES;

/// How long a request waits for room in the log buffer (stdout stalled) before it is refused:
/// nothing is issued that cannot be logged, and no client hangs.
const LOG_ROOM_WAIT: Duration = Duration::from_secs(2);
/// What a refused client is asked to wait.
const LOG_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The header the host sets on every invocation, in both modes.
const INVOCATION_ID: &str = "x-azure-functions-invocationid";

/// The whole HTTP surface of the handler as one warp filter.
///
/// `standalone`: a run without the Functions host, which otherwise decides which requests reach
/// the handler. Standalone, the handler listens on 127.0.0.1 for a developer — and a web page the
/// developer visits can reach 127.0.0.1 too — so it answers only requests whose `Host` names this
/// machine ([`net::host_header_is_loopback`]): DNS rebinding gets `421`.
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
                    // No CORS headers: a page that reached us by DNS rebinding learns nothing.
                    if standalone && !net::host_header_is_loopback(&headers) {
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
    let invocation_id = request
        .headers
        .get(INVOCATION_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut log = RequestLog::default();
    // The W3C trace context the host forwards (and creates when Application Insights is on); in
    // envelope mode it may come inside the envelope, with the client's headers.
    log.trace_from(&request.headers);
    let (status, response) = match route(&request.method, &request.path, routing) {
        // Readiness is never held back by a stalled stdout, and is not logged.
        Route::Readiness => {
            return into_response(Reply::new(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                "ready",
            ));
        }
        Route::Forwarded(function) => {
            invoke_forwarded(state, function, request, body, &mut log).await
        }
        Route::Envelope(function) => {
            invoke_envelope(state, function, request, body, &mut log).await
        }
        Route::NotFound => {
            log.client_request(&request.method, request.path);
            body::discard(&request.headers, body).await;
            let problem = held_back().await.unwrap_or(Problem::NotFound);
            plain(refused(state, &request.headers, problem, &mut log))
        }
    };
    // One flat event per request: cheaper than a span per request, and just as searchable.
    log.emit(&Exchange {
        invocation_id: invocation_id.as_deref(),
        status: status.as_u16(),
        latency: started.elapsed(),
    });
    response
}

fn plain(reply: Reply) -> Outcome {
    (reply.status, into_response(reply))
}

/// A stalled stdout holds requests back here, asynchronously, before a function does any work:
/// `Some(503)` when the log buffer has had no room for [`LOG_ROOM_WAIT`].
async fn held_back() -> Option<Problem> {
    if crate::log_writer::room_within(LOG_ROOM_WAIT).await {
        return None;
    }
    Some(Problem::LogUnavailable {
        retry_after: LOG_RETRY_AFTER,
    })
}

/// A problem answered before any function ran, with the CORS headers of the client's request
/// (`headers`), noted on the log line.
fn refused(state: &AppState, headers: &HeaderMap, problem: Problem, log: &mut RequestLog) -> Reply {
    log.problem = Some(problem.slug());
    routes::refusal(state, headers, &problem)
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
    // The body first (at most 64 KiB): refusing with part of it unread would reset its sender.
    let body = match body::read(&request.headers, body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(problem) => return plain(refused(state, &request.headers, problem, log)),
    };
    if let Some(problem) = held_back().await {
        return plain(refused(state, &request.headers, problem, log));
    }
    let query = match QueryParams::parse(&request.query) {
        Ok(query) => query,
        // A preflight is answered whatever its query: a browser reads any other status as a
        // CORS failure, and the request it announces gets the query's 400 with CORS headers.
        Err(_) if request.method == Method::OPTIONS => QueryParams::default(),
        Err(error) => return plain(refused(state, &request.headers, error.into(), log)),
    };
    let invocation = Invocation {
        method: request.method,
        query,
        headers: request.headers,
        body,
    };
    plain(function.invoke(state, invocation, log).await)
}

fn into_response(reply: Reply) -> Response {
    let mut response = Response::new(reply.body.into());
    *response.status_mut() = reply.status;
    for (name, value) in reply.headers {
        response.headers_mut().append(name, value);
    }
    response
}

/// Envelope mode: the client's request inside the JSON invocation, our response inside the
/// JSON result. The host turns any status of its own exchange other than 200 into a 500 for
/// the client, so every refusal the client should see travels inside the result; only a body
/// that is not an invocation at all (no host sends one) is answered to the host directly.
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
    let envelope = match body::read(&request.headers, body, MAX_ENVELOPE_BYTES).await {
        Ok(bytes) => envelope::parse(&bytes, log),
        Err(problem) => Err(problem),
    };
    let reply = match envelope {
        Ok(EnvelopeRequest::Ok(invocation)) => {
            log.trace_from(&invocation.headers);
            match held_back().await {
                Some(problem) => refused(state, &invocation.headers, problem, log),
                None => function.invoke(state, invocation, log).await,
            }
        }
        Ok(EnvelopeRequest::TooLarge { problem, headers }) => {
            log.trace_from(&headers);
            let problem = held_back().await.unwrap_or(problem);
            refused(state, &headers, problem, log)
        }
        // Too large to read even as an envelope: the client's body was over the limit. Refused
        // in the result, without CORS headers (they are in what was not read).
        Err(problem @ Problem::BodyTooLarge { .. }) => {
            refused(state, &HeaderMap::new(), problem, log)
        }
        Err(problem) => return plain(refused(state, &HeaderMap::new(), problem, log)),
    };
    let response = into_response(Reply::new(
        StatusCode::OK,
        "application/json; charset=utf-8",
        envelope::result(function.name(), &reply),
    ));
    (reply.status, response)
}
