//! Hostile and malformed input: always a clear 4xx problem, never a panic, never a 5xx, and the
//! process keeps serving.

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test]
async fn malformed_queries_and_bodies_get_clear_errors() {
    for protocol in [Protocol::Forwarding, Protocol::Envelope] {
        let mut app = TestApp::spawn(protocol).await;
        let targets = [
            "/api/TokenFunction?tenantId=%ZZ",
            "/api/TokenFunction?tenantId=%FF%FE",
            "/api/TokenFunction?tenantId=t1&additionalDetails=%FF",
            "/api/TokenFunction?tenantId=t1&scopes=,,,",
            "/api/TokenFunction?tenantId=t1&lifetime=18446744073709551616",
            "/api/TokenFunction?=&&&tenantId",
            "/api/TokenFunction?tenantId=t1&tenantId=t1",
        ];
        for target in targets {
            let response = app.send(PublicRequest::get(target)).await;
            // A 400 naming the query or the parameter (through the host a bad escape arrives
            // already decoded, so the refusal names the parameter instead).
            let doc = assert_problem(&response, 400);
            let slug = doc["type"].as_str().unwrap().rsplit('/').next().unwrap();
            assert!(
                ["invalid-query", "invalid-parameter"].contains(&slug),
                "{protocol:?} {target}: {doc}"
            );
        }
        let bodies: Vec<Vec<u8>> = vec![
            vec![0xff, 0xfe, b'{'],
            "[".repeat(100_000)
                .into_bytes()
                .into_iter()
                .take(60_000)
                .collect(),
            format!("{}{}", "{\"a\":".repeat(5000), "}".repeat(5000)).into_bytes(),
            br#"{"tenantId":"t1","tenantId":"t1","scopes":{"$ne":1}}"#.to_vec(),
            br#"{"tenantId":["t1"]}"#.to_vec(),
            br#"{"tenantId":"t1","lifetime":1e400}"#.to_vec(),
            b"\0\0\0".to_vec(),
        ];
        for body in bodies {
            let response = app
                .send(PublicRequest::post("/api/TokenFunction").body(body.clone()))
                .await;
            assert_problem(&response, 400);
        }
        // Still serving after all of that.
        verify(&app.get_token("tenantId=t1").await.text(), KEY).unwrap();
        let output = app.host.finish().await;
        assert!(!output.contains("panicked"), "{output}");
        assert!(!output.contains(KEY));
    }
}

#[tokio::test]
async fn a_request_is_never_answered_with_a_key_or_internals() {
    let app = TestApp::spawn(Protocol::Forwarding).await;
    let responses = [
        (
            app.get_token("tenantId=nobody").await,
            404,
            "unknown-tenant",
        ),
        (app.get_token("").await, 400, "invalid-parameter"),
        (
            app.send(
                PublicRequest::post("/api/TokenFunction")
                    .json(&json!({"tenantId": "t1", "scopes": "x"})),
            )
            .await,
            400,
            "invalid-parameter",
        ),
    ];
    for (response, status, slug) in responses {
        // The right refusal, not just any error (an empty 500 would pass the checks below).
        let doc = assert_problem_type(&response, status, slug);
        assert!(!doc["detail"].as_str().unwrap().is_empty());
        let text = response.text();
        assert!(!text.contains(KEY) && !text.contains(OTHER_KEY));
        for internal in ["src/", ".rs", "serde", "panicked", "Error("] {
            assert!(!text.contains(internal), "{internal} in {text}");
        }
    }
}

/// Raw HTTP/1.1 straight to the handler, for framings a client library will not produce.
async fn raw(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// [`raw`], for a request whose body is not (all) sent: the answer must not wait for it.
async fn answered_at_once(port: u16, request: &[u8]) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(10), raw(port, request))
        .await
        .expect("an answer without waiting for the body")
}

#[tokio::test]
async fn invalid_utf8_in_the_query_is_refused_not_replaced() {
    // Through the host the value would already be decoded (lossily, by ASP.NET); a direct or
    // standalone request reaches our decoder, which refuses rather than alter a document id.
    let app = TestApp::spawn(Protocol::Forwarding).await;
    let response = raw(
        app.host.port(),
        b"GET /api/TokenFunction?tenantId=t1&documentId=%FF HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(
        response.contains("invalid-query") && response.contains("documentId"),
        "{response}"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_early() {
    let app = TestApp::spawn(Protocol::Forwarding).await;
    let port = app.host.port();
    // Refused before any of the body is read, so the answer cannot wait for it: a declared
    // length over the limit (and over what a refusal still reads); one whose sender waits for
    // `100 Continue` before sending it, whatever its size; and a body of unknown length, from a
    // sender waiting to be asked for it, to a path no function serves.
    let refused_unread: [(&[u8], &str); 3] = [
        (
            b"POST /api/TokenFunction HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1000000000\r\n\r\n{",
            "413",
        ),
        (
            b"POST /api/TokenFunction HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n",
            "413",
        ),
        (
            b"POST /api/Nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
            "404",
        ),
    ];
    for (request, status) in refused_unread {
        let answer = answered_at_once(port, request).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        assert!(answer.contains("application/problem+json"), "{answer}");
    }

    // A chunked body has no declared length: it is counted as it arrives.
    let mut chunked = b"POST /api/TokenFunction HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..20 {
        chunked.extend_from_slice(format!("{:x}\r\n{}\r\n", 4096, "a".repeat(4096)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let response = raw(port, &chunked).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");

    // And a small chunked body is fine.
    let small = raw(
        port,
        b"POST /api/TokenFunction HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n{\"tenantId\":\"t1\"}\r\n0\r\n\r\n",
    )
    .await;
    assert!(small.starts_with("HTTP/1.1 200"), "{small}");
}

/// The host forwards a body it has already accepted and writes all of it before it reads our
/// answer. Answering 413 and closing with part of it unread makes the kernel reset the
/// connection: the host's next write fails with a broken pipe and the client gets the host's
/// 500 (seen once in CI). So a refused body of moderate size is read to its end first — over
/// the limit, or sent to a path no function serves. The sender here writes at a steady pace, as
/// a host relaying a client's upload does.
#[tokio::test]
async fn a_refused_body_is_read_to_its_end_so_the_sender_sees_the_refusal_not_a_reset() {
    let app = TestApp::spawn(Protocol::Forwarding).await;
    let body = vec![b' '; 3 * 1024 * 1024];
    let mut with_length = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    with_length.extend_from_slice(&body);
    let mut chunked = b"Transfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in body.chunks(16 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let cases = [
        (
            "declared",
            "TokenFunction",
            &with_length,
            413,
            "body-too-large",
        ),
        ("chunked", "TokenFunction", &chunked, 413, "body-too-large"),
        ("declared", "Nope", &with_length, 404, "not-found"),
    ];
    for (framing, function, rest, status, problem) in cases {
        let mut request =
            format!("POST /api/{function} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n")
                .into_bytes();
        request.extend_from_slice(rest);
        let pace = std::time::Duration::from_millis(1);
        send_paced(("127.0.0.1", app.host.port()), &request, 16 * 1024, pace)
            .await
            .assert_refused(status, problem, &format!("{framing} to {function}"));
    }
}

/// What a refusal reads is bounded too: a body that never ends is not read past a few MiB. The
/// handler answers and closes, so the sender's writes fail long before it has sent 64 MiB.
#[tokio::test]
async fn a_body_that_never_ends_is_not_read_forever() {
    let app = TestApp::spawn(Protocol::Forwarding).await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.host.port()))
        .await
        .unwrap();
    stream
        .write_all(
            b"POST /api/TokenFunction HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
    let chunk = [
        format!("{:x}\r\n", 64 * 1024).into_bytes(),
        vec![b' '; 64 * 1024],
        b"\r\n".to_vec(),
    ]
    .concat();
    let mut sent = 0usize;
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while sent < 64 * 1024 * 1024 {
            if stream.write_all(&chunk).await.is_err() {
                return true;
            }
            sent += chunk.len();
        }
        false
    })
    .await
    .expect("the handler neither reads on nor closes the connection");
    assert!(
        stopped,
        "the handler read all {sent} bytes of a refused body"
    );
}

/// Reading a refused body has a deadline: a sender that stops in the middle of one is answered
/// within seconds, and does not keep a task and its buffers for as long as it likes.
#[tokio::test]
async fn a_sender_that_stalls_in_a_refused_body_is_answered_anyway() {
    let app = TestApp::spawn(Protocol::Forwarding).await;
    let part = vec![b' '; 70 * 1024];
    let chunked = [
        format!("{:x}\r\n", part.len()).into_bytes(),
        part.clone(),
        b"\r\n".to_vec(),
    ]
    .concat();
    let cases = [
        ("TokenFunction", "Content-Length: 102400", &part, "413"),
        (
            "TokenFunction",
            "Transfer-Encoding: chunked",
            &chunked,
            "413",
        ),
        ("Nope", "Content-Length: 102400", &part, "404"),
    ];
    for (function, framing, sent, status) in cases {
        let mut stream = TcpStream::connect(("127.0.0.1", app.host.port()))
            .await
            .unwrap();
        let head = format!("POST /api/{function} HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(sent).await.unwrap();
        // And then nothing more, with the connection left open.
        let mut answer = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await
        .unwrap_or_else(|_| panic!("{function}, {framing}: no answer to a stalled body"))
        .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{function}, {framing}: {answer}"
        );
    }
}
