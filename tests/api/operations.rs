//! The Kusto queries of docs/operations.md hold against what the handler prints: every
//! `line.<field>` they use is in the lines a run prints, with the type the query casts it to
//! (`todouble`, `toint` → a number; `tostring` and comparisons with text → a string), every
//! `line.message == "…"` names a message the handler writes, and every problem type they name is
//! one the handler answers with.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// The `kusto` blocks of docs/operations.md.
fn queries() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("docs/operations.md")).unwrap();
    text.split("```kusto\n")
        .skip(1)
        .map(|block| block[..block.find("```").unwrap()].to_string())
        .collect()
}

/// Field → how the queries use it: `number` (cast with `todouble`/`toint`/`sum(toint`) or
/// `string` (`tostring`, or compared with a quoted text), or `any`.
fn fields_used(queries: &[String]) -> BTreeMap<String, &'static str> {
    let mut fields = BTreeMap::new();
    for query in queries {
        for (at, _) in query.match_indices("line.") {
            let name: String = query[at + 5..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let before = &query[..at];
            let after = &query[at + 5 + name.len()..];
            let kind = if before.ends_with("todouble(") || before.ends_with("toint(") {
                "number"
            } else if before.ends_with("tostring(")
                || after.trim_start().starts_with("== \"")
                || after.trim_start().starts_with("in (\"")
            {
                "string"
            } else {
                "any"
            };
            let entry = fields.entry(name).or_insert(kind);
            if *entry == "any" {
                *entry = kind;
            }
        }
    }
    fields
}

/// The quoted texts a query compares `line.<field>` with (`== "x"`, `in ("x", "y")`).
fn texts_compared(queries: &[String], field: &str) -> BTreeSet<String> {
    let mut texts = BTreeSet::new();
    for query in queries {
        for pattern in [
            format!("line.{field} =="),
            format!("line.{field}) in ("),
            format!("line.{field} in ("),
        ] {
            for (at, _) in query.match_indices(&pattern) {
                texts.extend(quoted_texts(
                    &query[at + pattern.len()..],
                    pattern.ends_with('('),
                ));
            }
        }
    }
    texts
}

/// The quoted text at the start of `rest` (after spaces), or with `list`, every one up to the
/// closing parenthesis.
fn quoted_texts(rest: &str, list: bool) -> Vec<String> {
    let mut texts = Vec::new();
    let mut chars = rest.chars();
    loop {
        match chars.by_ref().find(|c| !matches!(c, ' ' | ',')) {
            Some('"') => texts.push(chars.by_ref().take_while(|c| *c != '"').collect()),
            _ => return texts,
        }
        if !list {
            return texts;
        }
    }
}

#[tokio::test]
async fn the_documented_queries_match_the_lines_the_handler_prints() {
    let queries = queries();
    assert!(queries.len() >= 5, "{queries:?}");
    let fields = fields_used(&queries);
    for expected in [
        "message",
        "tenant_id",
        "problem",
        "latency_ms",
        "caller_id",
        "trace_id",
    ] {
        assert!(fields.contains_key(expected), "{fields:?}");
    }

    // A run with what the queries look for: a token issued (with a trace), refusals, a caller
    // limited and then allowed again.
    let app = TestApp::spawn_with(
        Protocol::Forwarding,
        &[
            ("AUTH_MODE", "easyauth"),
            ("WEBSITE_AUTH_ENABLED", "True"),
            ("CALLER_RATE_LIMIT", "1"),
            ("CALLER_RATE_BURST", "1"),
        ],
    )
    .await;
    let token = |tenant: &str| {
        PublicRequest::get(format!("/api/TokenFunction?tenantId={tenant}&documentId=d"))
            .header("X-MS-CLIENT-PRINCIPAL-ID", "oid-ops")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
    };
    assert_eq!(app.send(token(TENANT)).await.status, 200);
    assert_eq!(app.send(token(TENANT)).await.status, 429);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.send(token("no-such-tenant")).await.status, 404);
    let output = app.host.wait_for_output("no longer rate-limited").await;
    let lines: Vec<Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();

    for (field, kind) in &fields {
        let values: Vec<&Value> = lines.iter().filter_map(|l| l.get(field)).collect();
        assert!(!values.is_empty(), "no line has `{field}`:\n{output}");
        match *kind {
            "number" => assert!(
                values.iter().all(|v| v.is_number()),
                "`{field}`: {values:?}"
            ),
            "string" => assert!(
                values.iter().all(|v| v.is_string()),
                "`{field}`: {values:?}"
            ),
            _ => {}
        }
    }
    let messages: BTreeSet<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    for message in texts_compared(&queries, "message") {
        assert!(
            messages.contains(message.as_str()),
            "no line says {message:?}: {messages:?}"
        );
    }
    let audits: BTreeSet<&str> = lines.iter().filter_map(|l| l["audit"].as_str()).collect();
    for audit in texts_compared(&queries, "audit") {
        assert!(audits.contains(audit.as_str()), "{audit}: {audits:?}");
    }
    // The problem types the queries name are ones the handler answers with.
    let problems = std::fs::read_to_string(repo_root().join("src/problem.rs")).unwrap();
    let named = texts_compared(&queries, "problem");
    assert!(named.contains("key-store-unavailable"), "{named:?}");
    for problem in named {
        assert!(problems.contains(&format!("(\"{problem}\"")), "{problem}");
    }
}
