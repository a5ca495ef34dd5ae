//! `additionalDetails` sent as bracket keys, the way axios ≥ 0.28 serializes an object into a
//! query: `additionalDetails[email]=a%40b.c&additionalDetails[tags][]=x&additionalDetails[tags][]=y`
//! (from axios 1.12 with the brackets percent-encoded, which query decoding has already undone).
//!
//! Published `AzureFunctionTokenProvider` versions send user details this way, so they are
//! assembled back into the object the app passed: `[k]` is an object key, `[n]` an array index
//! (0–255), `[]` appends. A query has no types, so every value is a string; keys keep the order
//! of the query, array items the order of their indexes. Anything ambiguous is refused rather
//! than guessed: mixed object and array shapes, a value and an object at one place, names that
//! are not well-formed brackets, more than [`MAX_DEPTH`] levels.
//!
//! The Functions host joins the values of a repeated query name with `,` before the handler
//! sees them (in both protocol modes), so the items of an `[]` array are split at `,`; send
//! indexes (`[0]`, `[1]`) for items that contain commas.

use serde_json::{Map, Value};

use crate::problem::Problem;

/// Levels of brackets after `additionalDetails`.
pub const MAX_DEPTH: usize = 8;
/// The largest array index.
pub const MAX_INDEX: usize = 255;

const PARAMETER: &str = "additionalDetails";

/// One bracket: `[name]`, `[n]` or `[]`.
#[derive(Debug, PartialEq, Eq)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
    Push,
}

/// The object being assembled: a value, or children in first-seen order.
enum Node {
    Leaf(String),
    Branch(Vec<(Key, Node)>),
}

#[derive(PartialEq, Eq)]
enum Key {
    Name(String),
    Index(usize),
    /// An `[]` item: appended after the indexed items, in query order.
    Pushed,
}

/// Whether a query name is a bracket key of `additionalDetails`.
pub fn is_bracket_key(name: &str) -> bool {
    name.strip_prefix(PARAMETER)
        .is_some_and(|rest| rest.starts_with('['))
}

/// Assembles the `(name, value)` pairs whose names are bracket keys of `additionalDetails`.
pub fn assemble<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Value, Problem> {
    let mut root = Node::Branch(Vec::new());
    for (name, value) in pairs {
        let segments = segments(&name[PARAMETER.len()..])?;
        insert(&mut root, &segments, value)?;
    }
    into_value(root)
}

fn invalid(detail: impl Into<String>) -> Problem {
    Problem::invalid(PARAMETER, detail)
}

/// `[a][0][]` → `Key("a"), Index(0), Push`.
fn segments(mut rest: &str) -> Result<Vec<Segment<'_>>, Problem> {
    let mut segments = Vec::new();
    while !rest.is_empty() {
        let inner = rest
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .filter(|(inner, _)| !inner.contains('['));
        let Some((inner, after)) = inner else {
            return Err(invalid(
                "bracket keys must look like additionalDetails[key][…]",
            ));
        };
        if segments.len() == MAX_DEPTH {
            return Err(invalid(format!(
                "bracket keys may nest at most {MAX_DEPTH} levels"
            )));
        }
        segments.push(segment(inner)?);
        rest = after;
    }
    Ok(segments)
}

/// A segment's meaning. Digits without a leading zero are an index, as in the `qs` library
/// that axios' format comes from; `01` is a key.
fn segment(inner: &str) -> Result<Segment<'_>, Problem> {
    if inner.is_empty() {
        return Ok(Segment::Push);
    }
    let numeric =
        inner.bytes().all(|b| b.is_ascii_digit()) && (inner == "0" || !inner.starts_with('0'));
    if !numeric {
        return Ok(Segment::Key(inner));
    }
    match inner.parse::<usize>() {
        Ok(index) if index <= MAX_INDEX => Ok(Segment::Index(index)),
        _ => Err(invalid(format!("array indexes may be at most {MAX_INDEX}"))),
    }
}

fn conflict() -> Problem {
    invalid(
        "bracket keys give one place two shapes (a value and an object, or an object and an array)",
    )
}

fn insert(node: &mut Node, segments: &[Segment<'_>], value: &str) -> Result<(), Problem> {
    let Node::Branch(children) = node else {
        return Err(conflict());
    };
    let Some((first, rest)) = segments.split_first() else {
        // `additionalDetails` itself is not a bracket key; `assemble` never gets here.
        return Err(conflict());
    };
    let key = match first {
        Segment::Push => {
            if !rest.is_empty() {
                return Err(invalid("[] may only end a bracket key"));
            }
            for item in value.split(',') {
                children.push((Key::Pushed, Node::Leaf(item.to_owned())));
            }
            return Ok(());
        }
        Segment::Key(name) => Key::Name((*name).to_owned()),
        Segment::Index(index) => Key::Index(*index),
    };
    let position = match children.iter().position(|(existing, _)| *existing == key) {
        Some(position) => position,
        None => {
            children.push((key, Node::Branch(Vec::new())));
            children.len() - 1
        }
    };
    let child = &mut children[position].1;
    if rest.is_empty() {
        // A name is unique in the (already joined) query, so a leaf here means two spellings
        // of one place, or a value where an object was built.
        match child {
            Node::Branch(grandchildren) if grandchildren.is_empty() => {
                *child = Node::Leaf(value.to_owned());
                Ok(())
            }
            _ => Err(conflict()),
        }
    } else {
        insert(child, rest, value)
    }
}

fn into_value(node: Node) -> Result<Value, Problem> {
    let children = match node {
        Node::Leaf(value) => return Ok(Value::String(value)),
        Node::Branch(children) => children,
    };
    let is_array = children
        .first()
        .is_some_and(|(key, _)| !matches!(key, Key::Name(_)));
    if is_array {
        let mut indexed = Vec::with_capacity(children.len());
        let mut pushed = Vec::new();
        for (key, child) in children {
            match key {
                Key::Index(index) => indexed.push((index, into_value(child)?)),
                Key::Pushed => pushed.push(into_value(child)?),
                Key::Name(_) => return Err(conflict()),
            }
        }
        // Sparse indexes close up, as in qs: [2]=a&[0]=b → ["b","a"].
        indexed.sort_by_key(|(index, _)| *index);
        let items = indexed.into_iter().map(|(_, value)| value).chain(pushed);
        Ok(Value::Array(items.collect()))
    } else {
        let mut object = Map::with_capacity(children.len());
        for (key, child) in children {
            let Key::Name(name) = key else {
                return Err(conflict());
            };
            object.insert(name, into_value(child)?);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assemble_query(query: &str) -> Result<Value, Problem> {
        let pairs: Vec<(String, String)> = query
            .split('&')
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap();
                (name.to_owned(), value.to_owned())
            })
            .collect();
        assemble(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }

    fn refused(query: &str) -> String {
        match assemble_query(query) {
            Err(Problem::InvalidParameter { parameter, detail }) => {
                assert_eq!(parameter, "additionalDetails", "{query}");
                detail
            }
            other => panic!("{query}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn keys_nest_and_keep_query_order() {
        assert_eq!(
            assemble_query(
                "additionalDetails[z]=1&additionalDetails[a][b]=2&additionalDetails[a][c]=3"
            )
            .unwrap(),
            json!({"z": "1", "a": {"b": "2", "c": "3"}})
        );
        assert_eq!(
            serde_json::to_string(
                &assemble_query("additionalDetails[z]=1&additionalDetails[a]=2").unwrap()
            )
            .unwrap(),
            r#"{"z":"1","a":"2"}"#
        );
    }

    #[test]
    fn arrays_by_push_or_index() {
        assert_eq!(
            assemble_query("additionalDetails[l][]=x,y").unwrap(),
            json!({"l": ["x", "y"]}),
            "the host joined repeated [] values with ','"
        );
        assert_eq!(
            assemble_query("additionalDetails[l][1]=y&additionalDetails[l][0]=x").unwrap(),
            json!({"l": ["x", "y"]})
        );
        assert_eq!(
            assemble_query("additionalDetails[l][5]=b&additionalDetails[l][2]=a").unwrap(),
            json!({"l": ["a", "b"]}),
            "sparse indexes close up"
        );
        assert_eq!(
            assemble_query("additionalDetails[l][0][k]=v&additionalDetails[l][1][k]=w").unwrap(),
            json!({"l": [{"k": "v"}, {"k": "w"}]})
        );
        assert_eq!(
            assemble_query("additionalDetails[l][255]=x").unwrap(),
            json!({"l": ["x"]})
        );
        assert_eq!(
            assemble_query("additionalDetails[01]=x").unwrap(),
            json!({"01": "x"}),
            "a leading zero makes a key"
        );
        assert_eq!(
            assemble_query("additionalDetails[]=x").unwrap(),
            json!(["x"])
        );
        assert_eq!(
            assemble_query("additionalDetails[e]=").unwrap(),
            json!({"e": ""})
        );
    }

    #[test]
    fn depth_limit_is_eight_levels() {
        let eight = format!("additionalDetails{}=v", "[a]".repeat(8));
        let mut expected = json!("v");
        for _ in 0..8 {
            expected = json!({ "a": expected });
        }
        assert_eq!(assemble_query(&eight).unwrap(), expected);
        let nine = format!("additionalDetails{}=v", "[a]".repeat(9));
        assert!(refused(&nine).contains("8 levels"));
    }

    #[test]
    fn ambiguous_shapes_are_refused() {
        assert!(refused("additionalDetails[l][256]=x").contains("at most 255"));
        assert!(refused("additionalDetails[l][99999999999999999999999]=x").contains("at most 255"));
        for query in [
            "additionalDetails[a][b]=1&additionalDetails[a]=2",
            "additionalDetails[a]=2&additionalDetails[a][b]=1",
            "additionalDetails[a][0]=1&additionalDetails[a][b]=2",
            "additionalDetails[a][b]=1&additionalDetails[a][0]=2",
            "additionalDetails[a][]=1&additionalDetails[a][b]=2",
            "additionalDetails[0]=1&additionalDetails[00]=2&additionalDetails[x]=3",
        ] {
            assert!(refused(query).contains("two shapes"), "{query}");
        }
        for query in [
            "additionalDetails[a=1",
            "additionalDetails[a]b=1",
            "additionalDetails[a[b]]=1",
            "additionalDetails[a]]=1",
        ] {
            assert!(refused(query).contains("must look like"), "{query}");
        }
        assert!(refused("additionalDetails[][a]=1").contains("[] may only end"));
    }

    #[test]
    fn only_bracket_names_of_additional_details_are_bracket_keys() {
        assert!(is_bracket_key("additionalDetails[a]"));
        assert!(is_bracket_key("additionalDetails[]"));
        assert!(!is_bracket_key("additionalDetails"));
        assert!(!is_bracket_key("additionalDetailsX[a]"));
        assert!(!is_bracket_key("userId[a]"));
    }
}
