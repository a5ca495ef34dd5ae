//! The parameters of `AcsTokenFunction`, parsed once: `action` (a token, by default; `revoke` or
//! `delete`), an optional `communicationUserId`, `newIdentity` (a new identity even when the
//! caller has one), `scopes` (default `voip`), `expiresInMinutes` (60–1440, default 60).

use serde_json::Value;

use crate::invocation::QueryParams;
use crate::problem::Problem;
use crate::request::{Params, Raw, parse_body};

/// The scopes ACS user access tokens can carry (Identity API 2026-09-23).
pub const SCOPES: [&str; 5] = [
    "chat",
    "voip",
    "chat.join",
    "chat.join.limited",
    "voip.join",
];

/// What the caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcsAction {
    /// A user access token (the default).
    Token,
    /// `action=revoke`: revoke every token of the caller's identity.
    Revoke,
    /// `action=delete`: delete the caller's identity and its binding.
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcsTokenRequest {
    pub action: AcsAction,
    pub communication_user_id: Option<String>,
    /// `newIdentity=true`: create an identity even when the caller already has one.
    pub new_identity: bool,
    pub scopes: Vec<&'static str>,
    pub expires_in_minutes: u32,
}

impl AcsTokenRequest {
    pub fn parse(query: &QueryParams, body: &[u8]) -> Result<Self, Problem> {
        let body = parse_body(body)?;
        let params = Params { query, body: &body };

        let action = match params.string("action")? {
            None | Some("") | Some("token") => AcsAction::Token,
            Some("revoke") => AcsAction::Revoke,
            Some("delete") => AcsAction::Delete,
            Some(_) => {
                return Err(Problem::invalid(
                    "action",
                    "must be token (the default), revoke or delete",
                ));
            }
        };
        let new_identity = match params.get("newIdentity") {
            None => false,
            Some(Raw::Query("true") | Raw::Body(Value::Bool(true))) => true,
            Some(Raw::Query("false") | Raw::Body(Value::Bool(false))) => false,
            Some(_) => return Err(Problem::invalid("newIdentity", "must be true or false")),
        };
        let communication_user_id = match params.string("communicationUserId")? {
            None | Some("") => None,
            Some(id) => {
                let valid = id.len() <= 256
                    && id.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-' | b'.')
                    });
                if !valid {
                    return Err(Problem::invalid(
                        "communicationUserId",
                        "must be an ACS identity such as 8:acs:…",
                    ));
                }
                Some(id.to_string())
            }
        };

        let names: Vec<&str> = match params.get("scopes") {
            None => vec!["voip"],
            Some(Raw::Query(list)) => list.split(',').map(str::trim).collect(),
            Some(Raw::Body(Value::Array(items))) => items
                .iter()
                .map(|item| item.as_str().ok_or_else(scopes_problem))
                .collect::<Result<_, _>>()?,
            Some(Raw::Body(_)) => return Err(scopes_problem()),
        };
        let mut scopes: Vec<&'static str> = Vec::new();
        for name in names {
            let scope = SCOPES
                .into_iter()
                .find(|s| *s == name)
                .ok_or_else(scopes_problem)?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() {
            return Err(scopes_problem());
        }

        let expires_in_minutes = match params.get("expiresInMinutes") {
            None => 60,
            Some(raw) => {
                let minutes = match raw {
                    Raw::Query(text) => text.parse::<u32>().ok(),
                    Raw::Body(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                    Raw::Body(_) => None,
                };
                minutes.filter(|m| (60..=1440).contains(m)).ok_or_else(|| {
                    Problem::invalid("expiresInMinutes", "must be an integer from 60 to 1440")
                })?
            }
        };

        if new_identity && communication_user_id.is_some() {
            return Err(Problem::invalid(
                "newIdentity",
                "cannot be combined with communicationUserId",
            ));
        }
        Ok(AcsTokenRequest {
            action,
            communication_user_id,
            new_identity,
            scopes,
            expires_in_minutes,
        })
    }
}

fn scopes_problem() -> Problem {
    Problem::invalid(
        "scopes",
        "must be a non-empty list of chat, voip, chat.join, chat.join.limited, voip.join",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str, body: &str) -> Result<AcsTokenRequest, Problem> {
        AcsTokenRequest::parse(&QueryParams::parse(query).unwrap(), body.as_bytes())
    }

    #[test]
    fn defaults() {
        let request = parse("", "").unwrap();
        assert_eq!(
            request,
            AcsTokenRequest {
                action: AcsAction::Token,
                communication_user_id: None,
                new_identity: false,
                scopes: vec!["voip"],
                expires_in_minutes: 60
            }
        );
    }

    #[test]
    fn values_from_query_and_body() {
        let request = parse(
            "scopes=chat,voip,chat&expiresInMinutes=1440&communicationUserId=8:acs:abc_123",
            "",
        )
        .unwrap();
        assert_eq!(request.scopes, ["chat", "voip"]);
        assert_eq!(request.expires_in_minutes, 1440);
        assert_eq!(
            request.communication_user_id.as_deref(),
            Some("8:acs:abc_123")
        );
        let body = parse("", r#"{"scopes":["chat.join"],"expiresInMinutes":90}"#).unwrap();
        assert_eq!(
            (body.scopes, body.expires_in_minutes),
            (vec!["chat.join"], 90)
        );
    }

    #[test]
    fn actions_and_new_identity() {
        assert_eq!(
            parse("action=revoke", "").unwrap().action,
            AcsAction::Revoke
        );
        assert_eq!(
            parse("", r#"{"action":"delete"}"#).unwrap().action,
            AcsAction::Delete
        );
        assert_eq!(parse("action=token", "").unwrap().action, AcsAction::Token);
        assert!(parse("newIdentity=true", "").unwrap().new_identity);
        assert!(parse("", r#"{"newIdentity":true}"#).unwrap().new_identity);
        assert!(!parse("newIdentity=false", "").unwrap().new_identity);
    }

    #[test]
    fn bad_values_name_the_parameter() {
        for (query, body, parameter) in [
            ("scopes=video", "", "scopes"),
            ("scopes=", "", "scopes"),
            ("", r#"{"scopes":[]}"#, "scopes"),
            ("", r#"{"scopes":"chat"}"#, "scopes"),
            ("expiresInMinutes=59", "", "expiresInMinutes"),
            ("expiresInMinutes=1441", "", "expiresInMinutes"),
            ("expiresInMinutes=abc", "", "expiresInMinutes"),
            (
                "communicationUserId=8:acs:../../x",
                "",
                "communicationUserId",
            ),
            ("action=purge", "", "action"),
            ("newIdentity=yes", "", "newIdentity"),
            ("", r#"{"newIdentity":"true"}"#, "newIdentity"),
            (
                "newIdentity=true&communicationUserId=8:acs:a",
                "",
                "newIdentity",
            ),
        ] {
            match parse(query, body) {
                Err(Problem::InvalidParameter { parameter: p, .. }) => {
                    assert_eq!(p, parameter, "{query} {body}")
                }
                other => panic!("{query} {body}: {other:?}"),
            }
        }
    }
}
