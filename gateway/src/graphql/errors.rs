//! GraphQL errors in Weaviate's wording and envelopes (spec §2.1).
//!
//! Two kinds reach a client:
//! - validation errors (unknown argument, literal types): the document is not executed; HTTP 200
//!   with `{"errors":[{"locations":[…],"message":…,"path":null}]}` and no `data` (spec §1.4);
//! - resolver errors of one class field: that field is `null` in `data` and the error carries
//!   its response path, e.g. `["Get","<C>"]`; the other fields of the query still run.

use serde_json::{json, Map, Value};

/// A position in the query document, 1-based, as graphql-go reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The line and column of byte `offset` in `source` (columns count characters).
    pub fn at(source: &str, offset: usize) -> Location {
        let before = source.get(..offset).unwrap_or(source);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        Location { line, column }
    }
}

/// One entry of a GraphQL response's `errors`.
#[derive(Debug, Clone, PartialEq)]
pub struct GqlError {
    pub message: String,
    pub location: Location,
    /// `None` for validation errors (`"path": null`).
    pub path: Option<Vec<String>>,
}

impl GqlError {
    /// Key order `locations, message, path`, as Weaviate's REST model serializes it.
    pub fn to_json(&self) -> Value {
        json!({
            "locations": [{"column": self.location.column, "line": self.location.line}],
            "message": self.message,
            "path": self.path,
        })
    }
}

/// The answer to a document that fails validation: `{"errors":[…]}` without `data`.
pub fn validation_response(errors: &[GqlError]) -> Value {
    json!({ "errors": errors.iter().map(GqlError::to_json).collect::<Vec<_>>() })
}

/// The three root fields that can carry `nearText` / `nearImage` (spec §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Root {
    Get,
    Aggregate,
    Explore,
}

impl Root {
    /// The GraphQL type whose fields carry the arguments, as named in `Unknown argument`
    /// messages (spec §1.4).
    pub fn parent_type(self) -> &'static str {
        match self {
            Root::Get => "GetObjectsObj",
            Root::Aggregate => "AggregateObjectsObj",
            Root::Explore => "WeaviateObj",
        }
    }

    /// The prefix of the module's input type names: `GetObjects<C>`, `Aggregate<C>`, `Explore`
    /// (spec §1.3).
    pub fn type_prefix(self, class: &str) -> String {
        match self {
            Root::Get => format!("GetObjects{class}"),
            Root::Aggregate => format!("Aggregate{class}"),
            Root::Explore => "Explore".to_string(),
        }
    }

    /// How `validateNearParams` errors are wrapped (spec §2.3): Get with
    /// `explorer: get class: vectorize params: `, Aggregate raw, Explore with `vectorize params: `.
    pub fn near_params_error(self, message: &str) -> String {
        match self {
            Root::Get => format!("explorer: get class: vectorize params: {message}"),
            Root::Aggregate => message.to_string(),
            Root::Explore => format!("vectorize params: {message}"),
        }
    }

    /// How an error of the module's searcher (embedding, move objects, arithmetic) is wrapped:
    /// Get as spec §2.2 step 6c (with the literal `)`), Aggregate through `vectorFromModules` and
    /// `vectorFromSearchParam`, Explore additionally through `CrossClassVectorSearch`
    /// (UNCONFIRMED: the real Explore crashes first, spec §10.6).
    pub fn vectorize_error(self, message: &str) -> String {
        match self {
            Root::Get => format!(
                "explorer: get class: concurrentTargetVectorSearch): explorer: get class: vectorize search vector: vectorize params: vectorize params: {message}"
            ),
            Root::Aggregate => format!("vectorize params: vectorize params: {message}"),
            Root::Explore => {
                format!("vectorize params: vectorize params: vectorize params: {message}")
            }
        }
    }

    /// How a hybrid extraction error is wrapped (spec §2.4): `failed to extract hybrid params: `
    /// in Get; Aggregate's resolver reports the message itself.
    pub fn hybrid_error(self, message: &str) -> String {
        match self {
            Root::Get => format!("failed to extract hybrid params: {message}"),
            _ => message.to_string(),
        }
    }

    /// How a failure to vectorize a hybrid query or `searches[0].nearText` is wrapped
    /// (UNCONFIRMED: explorer_hybrid.go wraps its sub-searches in `vectorize search vector`).
    pub fn hybrid_vectorize_error(self, message: &str) -> String {
        match self {
            Root::Get => format!("explorer: get class: vectorize search vector: {message}"),
            _ => message.to_string(),
        }
    }
}

/// Sets every failed field of `response` (an upstream GraphQL answer whose failed fields were
/// replaced by `<key>: __typename`) to `null` and adds the errors, ahead of the upstream's own.
pub fn merge_field_errors(response: &mut Value, errors: &[GqlError]) {
    if errors.is_empty() {
        return;
    }
    let Some(object) = response.as_object_mut() else {
        return;
    };
    let data = object
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if data.is_null() {
        *data = Value::Object(Map::new());
    }
    for error in errors {
        if let Some(path) = &error.path {
            set_null(data, path);
        }
    }
    let mut all: Vec<Value> = errors.iter().map(GqlError::to_json).collect();
    if let Some(Value::Array(upstream)) = object.get("errors") {
        all.extend(upstream.iter().cloned());
    }
    object.insert("errors".to_string(), Value::Array(all));
}

fn set_null(data: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = data;
    for key in parents {
        let Some(object) = node.as_object_mut() else {
            return;
        };
        node = object
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if node.is_null() {
            *node = Value::Object(Map::new());
        }
    }
    if let Some(object) = node.as_object_mut() {
        object.insert(last.clone(), Value::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_count_lines_and_characters() {
        let src = "{\n  Get {\n    Ä(nearText";
        let offset = src.find("nearText").unwrap();
        assert_eq!(Location::at(src, offset), Location { line: 3, column: 7 });
        assert_eq!(Location::at(src, 0), Location { line: 1, column: 1 });
    }

    #[test]
    fn envelopes_have_weaviates_key_order() {
        let e = GqlError {
            message: "m".into(),
            location: Location { line: 2, column: 3 },
            path: None,
        };
        assert_eq!(
            validation_response(&[e]).to_string(),
            r#"{"errors":[{"locations":[{"column":3,"line":2}],"message":"m","path":null}]}"#
        );
    }

    #[test]
    fn failed_fields_become_null_and_errors_come_first() {
        let mut response = json!({"data":{"Get":{"A":"GetObjectsObj","B":[{"x":1}]}},
                                  "errors":[{"message":"upstream"}]});
        let e = GqlError {
            message: "mine".into(),
            location: Location { line: 1, column: 9 },
            path: Some(vec!["Get".into(), "A".into()]),
        };
        merge_field_errors(&mut response, &[e]);
        assert_eq!(
            response.to_string(),
            r#"{"data":{"Get":{"A":null,"B":[{"x":1}]}},"errors":[{"locations":[{"column":9,"line":1}],"message":"mine","path":["Get","A"]},{"message":"upstream"}]}"#
        );
    }
}
