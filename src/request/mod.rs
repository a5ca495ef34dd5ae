//! The token request, parsed once into types that cannot hold invalid values.
//!
//! Parameters come from the query string or a JSON object body; the query wins where both give
//! one, as in the original Node function (`req.query.x || req.body.x`). Every rule of the request
//! contract lives in a constructor below, so code after [`TokenRequest::parse`] never re-checks.

mod bracket_details;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::invocation::QueryParams;
use crate::problem::Problem;

/// An Azure Fluid Relay tenant id: 1–128 characters of `[A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub const PARAMETER: &'static str = "tenantId";

    pub fn parse(value: &str) -> Result<Self, Problem> {
        if value.is_empty() {
            return Err(Problem::invalid(Self::PARAMETER, "is required"));
        }
        if value.len() > 128 {
            return Err(Problem::invalid(
                Self::PARAMETER,
                "must be at most 128 characters",
            ));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(Problem::invalid(
                Self::PARAMETER,
                "may contain only letters, digits, '.', '_' and '-'",
            ));
        }
        Ok(TenantId(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A container id, or `""` when the token is for creating a container (the service assigns the
/// id then). At most 256 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DocumentId(String);

impl DocumentId {
    pub const PARAMETER: &'static str = "documentId";

    pub fn parse(value: &str) -> Result<Self, Problem> {
        check_length(Self::PARAMETER, value, 256)?;
        if value.chars().any(char::is_control) {
            return Err(Problem::invalid(
                Self::PARAMETER,
                "must not contain control characters",
            ));
        }
        Ok(DocumentId(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user id or display name supplied by the caller: 1–256 characters. An empty value counts as
/// absent, as in `generateToken`, which replaces an empty id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserField(String);

impl UserField {
    pub fn parse(parameter: &'static str, value: &str) -> Result<Option<Self>, Problem> {
        check_length(parameter, value, 256)?;
        Ok((!value.is_empty()).then(|| UserField(value.to_owned())))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// One Fluid scope. There are exactly three (`ScopeType` in `@fluidframework/driver-definitions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    DocRead,
    DocWrite,
    SummaryWrite,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::DocRead, Scope::DocWrite, Scope::SummaryWrite];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::DocRead => "doc:read",
            Scope::DocWrite => "doc:write",
            Scope::SummaryWrite => "summary:write",
        }
    }

    fn parse(value: &str) -> Result<Self, Problem> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == value)
            .ok_or_else(|| {
                Problem::invalid(
                    Scopes::PARAMETER,
                    "each scope must be one of doc:read, doc:write, summary:write",
                )
            })
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A non-empty set of scopes in the order first requested, without duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes {
    items: [Scope; 3],
    len: usize,
}

impl Scopes {
    pub const PARAMETER: &'static str = "scopes";

    /// `doc:read`, `doc:write`, `summary:write`: what a collaborating client (and its
    /// summarizer, which shares the token provider) needs.
    pub fn all() -> Self {
        Scopes {
            items: Scope::ALL,
            len: 3,
        }
    }

    /// Scopes from a comma-separated list such as `doc:read,doc:write`.
    pub fn parse_list(list: &str) -> Result<Self, Problem> {
        Scopes::from_names(list.split(',').map(str::trim))
    }

    fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, Problem> {
        let mut scopes = Scopes {
            items: Scope::ALL,
            len: 0,
        };
        for name in names {
            let scope = Scope::parse(name)?;
            if !scopes.as_slice().contains(&scope) {
                scopes.items[scopes.len] = scope;
                scopes.len += 1;
            }
        }
        if scopes.len == 0 {
            return Err(Problem::invalid(
                Self::PARAMETER,
                "must name at least one scope",
            ));
        }
        Ok(scopes)
    }

    pub fn as_slice(&self) -> &[Scope] {
        &self.items[..self.len]
    }

    /// The scopes `keep` accepts, in the same order; `None` when it accepts none.
    pub fn retain(&self, keep: impl Fn(&Scope) -> bool) -> Option<Scopes> {
        let mut kept = Scopes {
            items: Scope::ALL,
            len: 0,
        };
        for scope in self.as_slice().iter().filter(|s| keep(s)) {
            kept.items[kept.len] = *scope;
            kept.len += 1;
        }
        (kept.len > 0).then_some(kept)
    }
}

/// Space-separated, as OAuth writes scope lists (`doc:read doc:write`): written straight into the
/// log line, with no list or string built for it.
impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, scope) in self.as_slice().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.as_slice())
    }
}

/// Token lifetime in seconds: at least 1, at most the configured maximum (itself ≤ 3600, the
/// limit Azure Fluid Relay enforces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lifetime(u32);

impl Lifetime {
    pub const PARAMETER: &'static str = "lifetime";
    /// Azure Fluid Relay rejects tokens whose `exp - iat` exceeds one hour.
    pub const HARD_CAP: Lifetime = Lifetime(3600);

    /// A lifetime within `1..=max`.
    pub fn new(seconds: u64, max: Lifetime) -> Result<Self, String> {
        match u32::try_from(seconds) {
            Ok(s) if (1..=max.0).contains(&s) => Ok(Lifetime(s)),
            _ => Err(format!("must be an integer from 1 to {}", max.0)),
        }
    }

    pub fn seconds(self) -> u32 {
        self.0
    }
}

/// `user.additionalDetails`: any JSON value other than `null`, at most 4 KiB once serialized.
/// Fluid broadcasts the user to every collaborator, so it is kept small.
#[derive(Debug, Clone, PartialEq)]
pub struct AdditionalDetails(Value);

impl AdditionalDetails {
    pub const PARAMETER: &'static str = "additionalDetails";
    const MAX_BYTES: usize = 4096;

    fn new(value: Value) -> Result<Self, Problem> {
        let size = serde_json::to_vec(&value)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > Self::MAX_BYTES {
            return Err(Problem::invalid(
                Self::PARAMETER,
                format!("must be at most {} bytes of JSON", Self::MAX_BYTES),
            ));
        }
        Ok(AdditionalDetails(value))
    }

    pub fn as_value(&self) -> &Value {
        &self.0
    }
}

/// Everything a caller may ask for, validated. Defaults (a generated user id, all scopes, the
/// maximum lifetime) are decided later by the policy, not here.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRequest {
    pub tenant_id: TenantId,
    pub document_id: DocumentId,
    pub user_id: Option<UserField>,
    pub user_name: Option<UserField>,
    pub scopes: Option<Scopes>,
    pub additional_details: Option<AdditionalDetails>,
    pub lifetime: Option<Lifetime>,
}

impl TokenRequest {
    /// Parses the query string and body of one invocation. `max_lifetime` bounds `lifetime`.
    pub fn parse(
        query: &QueryParams,
        body: &[u8],
        max_lifetime: Lifetime,
    ) -> Result<Self, Problem> {
        let body = parse_body(body)?;
        let params = Params { query, body: &body };

        let tenant_id = match params.string(TenantId::PARAMETER)? {
            Some(value) => TenantId::parse(value)?,
            None => return Err(Problem::invalid(TenantId::PARAMETER, "is required")),
        };
        let document_id = match params.string(DocumentId::PARAMETER)? {
            Some(value) => DocumentId::parse(value)?,
            None => DocumentId::default(),
        };
        let user_id = match params.aliased("userId", "id")? {
            Some(value) => UserField::parse("userId", value)?,
            None => None,
        };
        let user_name = match params.aliased("userName", "name")? {
            Some(value) => UserField::parse("userName", value)?,
            None => None,
        };
        let scopes = match params.get(Scopes::PARAMETER) {
            None => None,
            Some(Raw::Query(list)) => Some(Scopes::parse_list(list)?),
            Some(Raw::Body(Value::Array(items))) => {
                let names = items
                    .iter()
                    .map(|item| item.as_str().ok_or_else(not_a_scope_array))
                    .collect::<Result<Vec<_>, _>>()?;
                Some(Scopes::from_names(names)?)
            }
            Some(Raw::Body(_)) => return Err(not_a_scope_array()),
        };
        let additional_details = match params.get(AdditionalDetails::PARAMETER) {
            _ if params.has_bracket_details() => {
                if query.get(AdditionalDetails::PARAMETER).is_some() {
                    return Err(Problem::invalid(
                        AdditionalDetails::PARAMETER,
                        "send either JSON text or bracket keys, not both",
                    ));
                }
                let pairs = query
                    .iter()
                    .filter(|(name, _)| bracket_details::is_bracket_key(name));
                Some(AdditionalDetails::new(bracket_details::assemble(pairs)?)?)
            }
            None => None,
            Some(Raw::Query(text)) => {
                let value = serde_json::from_str(text).map_err(|_| {
                    Problem::invalid(AdditionalDetails::PARAMETER, "must be valid JSON")
                })?;
                (value != Value::Null)
                    .then(|| AdditionalDetails::new(value))
                    .transpose()?
            }
            Some(Raw::Body(value)) => Some(AdditionalDetails::new(value.clone())?),
        };
        let lifetime = match params.get(Lifetime::PARAMETER) {
            None => None,
            Some(raw) => {
                let seconds = match raw {
                    Raw::Query(text) => text.parse::<u64>().ok(),
                    Raw::Body(Value::Number(n)) => n.as_u64(),
                    Raw::Body(Value::String(text)) => text.parse::<u64>().ok(),
                    Raw::Body(_) => None,
                };
                let lifetime = seconds
                    .ok_or_else(|| format!("must be an integer from 1 to {}", max_lifetime.0))
                    .and_then(|s| Lifetime::new(s, max_lifetime))
                    .map_err(|detail| Problem::invalid(Lifetime::PARAMETER, detail))?;
                Some(lifetime)
            }
        };

        Ok(TokenRequest {
            tenant_id,
            document_id,
            user_id,
            user_name,
            scopes,
            additional_details,
            lifetime,
        })
    }
}

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

fn not_a_scope_array() -> Problem {
    Problem::invalid(Scopes::PARAMETER, "must be a JSON array of scope strings")
}

fn check_length(parameter: &'static str, value: &str, max: usize) -> Result<(), Problem> {
    // Byte length bounds char count from above, so most values skip the count.
    if value.len() > max && value.chars().count() > max {
        return Err(Problem::invalid(
            parameter,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
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
    fn has_bracket_details(&self) -> bool {
        self.query
            .iter()
            .any(|(name, _)| bracket_details::is_bracket_key(name))
    }

    /// A string parameter with a second spelling (`userId` / `id`, as published
    /// `AzureFunctionTokenProvider` versions from 2.0.0-rc.4 send it). Both may be given only
    /// with the same value.
    fn aliased(&self, name: &'static str, alias: &'static str) -> Result<Option<&'a str>, Problem> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MAX: Lifetime = Lifetime::HARD_CAP;

    fn parse(query: &str, body: &str) -> Result<TokenRequest, Problem> {
        TokenRequest::parse(&QueryParams::parse(query).unwrap(), body.as_bytes(), MAX)
    }

    fn parameter_of(result: Result<TokenRequest, Problem>) -> &'static str {
        match result {
            Err(Problem::InvalidParameter { parameter, .. }) => parameter,
            other => panic!("expected an invalid parameter, got {other:?}"),
        }
    }

    #[test]
    fn minimal_query() {
        let request = parse("tenantId=t1", "").unwrap();
        assert_eq!(request.tenant_id.as_str(), "t1");
        assert_eq!(request.document_id.as_str(), "");
        assert_eq!(request.user_id, None);
        assert_eq!(request.scopes, None);
        assert_eq!(request.lifetime, None);
    }

    #[test]
    fn query_wins_over_body() {
        let request = parse(
            "tenantId=fromQuery",
            r#"{"tenantId":"fromBody","documentId":"d"}"#,
        )
        .unwrap();
        assert_eq!(request.tenant_id.as_str(), "fromQuery");
        assert_eq!(request.document_id.as_str(), "d");
    }

    #[test]
    fn tenant_id_rules() {
        assert_eq!(parameter_of(parse("", "")), "tenantId");
        assert_eq!(parameter_of(parse("tenantId=", "")), "tenantId");
        assert_eq!(parameter_of(parse("tenantId=a%2Fb", "")), "tenantId");
        assert_eq!(
            parameter_of(parse(&format!("tenantId={}", "a".repeat(129)), "")),
            "tenantId"
        );
        assert!(parse(&format!("tenantId={}", "a".repeat(128)), "").is_ok());
        assert!(parse("tenantId=A-z_0.9", "").is_ok());
        assert_eq!(parameter_of(parse("", r#"{"tenantId":5}"#)), "tenantId");
    }

    #[test]
    fn length_and_character_rules() {
        let long_doc = "é".repeat(256);
        let ok = parse(&format!("tenantId=t&documentId={long_doc}"), "").unwrap();
        assert_eq!(
            ok.document_id.as_str(),
            long_doc,
            "256 characters, not bytes"
        );
        for (query, parameter) in [
            ("documentId=a%0Ab".to_string(), "documentId"),
            (format!("documentId={}", "x".repeat(257)), "documentId"),
            (format!("userId={}", "u".repeat(257)), "userId"),
            (format!("userName={}", "n".repeat(257)), "userName"),
        ] {
            assert_eq!(
                parameter_of(parse(&format!("tenantId=t&{query}"), "")),
                parameter
            );
        }
    }

    #[test]
    fn user_fields() {
        let request = parse("tenantId=t&userId=u1&userName=Ann", "").unwrap();
        assert_eq!(request.user_id.unwrap().into_string(), "u1");
        assert_eq!(request.user_name.unwrap().into_string(), "Ann");
        assert_eq!(parse("tenantId=t&userId=", "").unwrap().user_id, None);
    }

    #[test]
    fn id_and_name_are_second_spellings_of_user_id_and_user_name() {
        for (query, body) in [
            ("tenantId=t&id=u1&name=Ann", ""),
            ("", r#"{"tenantId":"t","id":"u1","name":"Ann"}"#),
            ("tenantId=t&id=u1&userId=u1&name=Ann&userName=Ann", ""),
            ("tenantId=t&id=u1", r#"{"name":"Ann","userId":"u1"}"#),
        ] {
            let request = parse(query, body).unwrap();
            assert_eq!(
                request.user_id.unwrap().into_string(),
                "u1",
                "{query} {body}"
            );
            assert_eq!(
                request.user_name.unwrap().into_string(),
                "Ann",
                "{query} {body}"
            );
        }
        assert_eq!(
            parameter_of(parse("tenantId=t&id=u1&userId=u2", "")),
            "userId"
        );
        assert_eq!(
            parameter_of(parse("tenantId=t&name=A&userName=B", "")),
            "userName"
        );
        assert_eq!(
            parameter_of(parse("tenantId=t&id=u1", r#"{"userId":"u2"}"#)),
            "userId"
        );
        assert_eq!(parameter_of(parse("", r#"{"tenantId":"t","id":7}"#)), "id");
        assert_eq!(
            parameter_of(parse(&format!("tenantId=t&id={}", "u".repeat(257)), "")),
            "userId"
        );
    }

    #[test]
    fn additional_details_as_bracket_keys_raw_or_encoded() {
        for query in [
            "tenantId=t&additionalDetails[email]=a%40b.c&additionalDetails[n]=1",
            "tenantId=t&additionalDetails%5Bemail%5D=a%40b.c&additionalDetails%5Bn%5D=1",
        ] {
            let request = parse(query, "").unwrap();
            assert_eq!(
                serde_json::to_string(request.additional_details.unwrap().as_value()).unwrap(),
                r#"{"email":"a@b.c","n":"1"}"#,
                "{query}"
            );
        }
        // The query's bracket keys win over a body's additionalDetails, as any query value does.
        let request = parse(
            "tenantId=t&additionalDetails[a]=q",
            r#"{"additionalDetails":{"a":"body"}}"#,
        )
        .unwrap();
        assert_eq!(
            request.additional_details.unwrap().as_value(),
            &json!({"a": "q"})
        );
        for query in [
            "tenantId=t&additionalDetails=%7B%7D&additionalDetails[a]=1",
            "tenantId=t&additionalDetails[a]=1&additionalDetails=2",
            "tenantId=t&additionalDetails[a]=1&additionalDetails[a][b]=2",
        ] {
            assert_eq!(
                parameter_of(parse(query, "")),
                "additionalDetails",
                "{query}"
            );
        }
    }

    #[test]
    fn the_four_kib_limit_applies_to_the_assembled_object() {
        // {"k":"…"} is 8 bytes of JSON around the value.
        let at_limit = format!("tenantId=t&additionalDetails[k]={}", "x".repeat(4096 - 8));
        assert!(parse(&at_limit, "").is_ok());
        let past = format!("tenantId=t&additionalDetails[k]={}", "x".repeat(4096 - 7));
        assert_eq!(parameter_of(parse(&past, "")), "additionalDetails");
        // Many small keys add up.
        let many: String = (0..400)
            .map(|i| format!("&additionalDetails[k{i}]=v"))
            .collect();
        assert_eq!(
            parameter_of(parse(&format!("tenantId=t{many}"), "")),
            "additionalDetails"
        );
    }

    #[test]
    fn scopes_from_query_dedupe_and_keep_order() {
        let request = parse("tenantId=t&scopes=doc:write,doc:read&scopes=doc:write", "").unwrap();
        assert_eq!(
            request.scopes.unwrap().as_slice(),
            &[Scope::DocWrite, Scope::DocRead]
        );
    }

    #[test]
    fn scopes_display_space_separated_and_retain_keeps_order() {
        assert_eq!(
            Scopes::all().to_string(),
            "doc:read doc:write summary:write"
        );
        let asked = Scopes::parse_list("summary:write,doc:read").unwrap();
        assert_eq!(asked.to_string(), "summary:write doc:read");
        let kept = Scopes::all().retain(|s| *s != Scope::DocWrite).unwrap();
        assert_eq!(kept.as_slice(), &[Scope::DocRead, Scope::SummaryWrite]);
        assert_eq!(asked.retain(|s| *s == Scope::DocWrite), None);
    }

    #[test]
    fn scopes_from_body() {
        let request = parse("", r#"{"tenantId":"t","scopes":["doc:read","doc:read"]}"#).unwrap();
        assert_eq!(request.scopes.unwrap().as_slice(), &[Scope::DocRead]);
        assert_eq!(
            parameter_of(parse("", r#"{"tenantId":"t","scopes":[]}"#)),
            "scopes"
        );
        assert_eq!(
            parameter_of(parse("", r#"{"tenantId":"t","scopes":"doc:read"}"#)),
            "scopes"
        );
        assert_eq!(
            parameter_of(parse("", r#"{"tenantId":"t","scopes":[1]}"#)),
            "scopes"
        );
    }

    #[test]
    fn unknown_or_empty_scopes_are_rejected() {
        assert_eq!(parameter_of(parse("tenantId=t&scopes=", "")), "scopes");
        assert_eq!(
            parameter_of(parse("tenantId=t&scopes=doc:delete", "")),
            "scopes"
        );
        assert_eq!(
            parameter_of(parse("tenantId=t&scopes=summary:read", "")),
            "scopes"
        );
    }

    #[test]
    fn additional_details() {
        let request = parse(
            "tenantId=t&additionalDetails=%7B%22b%22%3A1%2C%22a%22%3A2%7D",
            "",
        )
        .unwrap();
        let details = request.additional_details.unwrap();
        // Key order is the caller's, as JSON.stringify would keep it.
        assert_eq!(
            serde_json::to_string(details.as_value()).unwrap(),
            r#"{"b":1,"a":2}"#
        );
        assert_eq!(
            parameter_of(parse("tenantId=t&additionalDetails=%7Bnope", "")),
            "additionalDetails"
        );
        let body = parse(
            "",
            r#"{"tenantId":"t","additionalDetails":["x",{"y":true}]}"#,
        )
        .unwrap();
        assert_eq!(
            body.additional_details.unwrap().as_value(),
            &json!(["x", {"y": true}])
        );
        let big = json!({ "tenantId": "t", "additionalDetails": "x".repeat(5000) }).to_string();
        assert_eq!(parameter_of(parse("", &big)), "additionalDetails");
    }

    #[test]
    fn lifetime_bounds() {
        assert_eq!(
            parse("tenantId=t&lifetime=1", "")
                .unwrap()
                .lifetime
                .unwrap()
                .seconds(),
            1
        );
        assert_eq!(
            parse("tenantId=t&lifetime=3600", "")
                .unwrap()
                .lifetime
                .unwrap()
                .seconds(),
            3600
        );
        for bad in ["0", "3601", "-5", "1.5", "abc", "99999999999999999999"] {
            assert_eq!(
                parameter_of(parse(&format!("tenantId=t&lifetime={bad}"), "")),
                "lifetime",
                "{bad}"
            );
        }
        assert_eq!(
            parse("", r#"{"tenantId":"t","lifetime":60}"#)
                .unwrap()
                .lifetime
                .unwrap()
                .seconds(),
            60
        );
        assert_eq!(
            parameter_of(parse("", r#"{"tenantId":"t","lifetime":60.5}"#)),
            "lifetime"
        );
        let short = Lifetime::new(600, MAX).unwrap();
        assert_eq!(
            parameter_of(TokenRequest::parse(
                &QueryParams::parse("tenantId=t&lifetime=601").unwrap(),
                b"",
                short
            )),
            "lifetime"
        );
    }

    #[test]
    fn body_must_be_a_json_object() {
        for body in ["[1]", "\"t\"", "{", "tenantId=t", "\u{0}"] {
            assert!(
                matches!(parse("", body), Err(Problem::InvalidBody { .. })),
                "{body}"
            );
        }
        assert!(parse("tenantId=t", "  \n").is_ok());
    }

    #[test]
    fn null_counts_as_absent() {
        let request = parse(
            "",
            r#"{"tenantId":"t","documentId":null,"additionalDetails":null}"#,
        )
        .unwrap();
        assert_eq!(request.document_id.as_str(), "");
        assert_eq!(request.additional_details, None);
    }
}
