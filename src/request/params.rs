//! The parameter reader the request parsers share: a parameter comes from the query string or a
//! JSON object body, and the query wins where both give one, as in the original Node function
//! (`req.query.x || req.body.x`).

use serde_json::{Map, Value};

use crate::invocation::QueryParams;
use crate::problem::Problem;

/// An empty body is no body; anything else must be a JSON object.
pub(crate) fn parse_body(body: &[u8]) -> Result<Map<String, Value>, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Problem::InvalidBody {
            detail: "The request body must be a JSON object.".to_string(),
        }),
        Err(_) => Err(Problem::InvalidBody {
            detail: "The request body is not valid JSON.".to_string(),
        }),
    }
}

/// Where one parameter's value came from.
pub(crate) enum Raw<'a> {
    Query(&'a str),
    Body(&'a Value),
}

/// Parameters from the query string or a JSON object body; the query wins.
pub(crate) struct Params<'a> {
    pub(crate) query: &'a QueryParams,
    pub(crate) body: &'a Map<String, Value>,
}

impl<'a> Params<'a> {
    /// The query value if there is one, else the body value; a JSON `null` counts as absent.
    pub(crate) fn get(&self, name: &str) -> Option<Raw<'a>> {
        if let Some(value) = self.query.get(name) {
            return Some(Raw::Query(value));
        }
        match self.body.get(name) {
            None | Some(Value::Null) => None,
            Some(value) => Some(Raw::Body(value)),
        }
    }

    /// Whether the query carries `additionalDetails` as bracket keys (`additionalDetails[k]=v`).
    pub(crate) fn has_bracket_details(&self) -> bool {
        self.query
            .iter()
            .any(|(name, _)| super::bracket_details::is_bracket_key(name))
    }

    /// A string parameter with a second spelling (`userId` / `id`, as published
    /// `AzureFunctionTokenProvider` versions from 2.0.0-rc.4 send it). Both may be given only
    /// with the same value.
    pub(crate) fn aliased(
        &self,
        name: &'static str,
        alias: &'static str,
    ) -> Result<Option<&'a str>, Problem> {
        match (self.string(name)?, self.string(alias)?) {
            (Some(value), Some(other)) if value != other => Err(Problem::invalid(
                name,
                format!("{name} and {alias} name the same field and differ; send one of them"),
            )),
            (value, other) => Ok(value.or(other)),
        }
    }

    /// A parameter that must be a string wherever it comes from.
    pub(crate) fn string(&self, name: &'static str) -> Result<Option<&'a str>, Problem> {
        match self.get(name) {
            None => Ok(None),
            Some(Raw::Query(value)) => Ok(Some(value)),
            Some(Raw::Body(Value::String(value))) => Ok(Some(value)),
            Some(Raw::Body(_)) => Err(Problem::invalid(name, "must be a string")),
        }
    }
}
