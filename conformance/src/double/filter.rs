//! `where` filters: a typed model shared by the GraphQL (and later gRPC) layers, validated against
//! the class and evaluated against stored objects.
//!
//! Text semantics follow Weaviate's inverted index: a `word`-tokenized property matches `Equal` when
//! every token of the filter value is among the property's tokens; `Like` matches token-wise with
//! `*` / `?` wildcards; `field` tokenization compares the whole (trimmed) value. `NotEqual` is the
//! complement of `Equal` (objects without the property included), as Weaviate inverts the bitmap.

use serde_json::Value;

use super::schema::{ClassInfo, PropInfo};
use super::store::StoredObject;

/// A `where` filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Compare {
        path: Vec<String>,
        op: Operator,
        value: FilterValue,
    },
}

/// Comparison operators the double supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equal,
    NotEqual,
    Like,
    GreaterThan,
    GreaterThanEqual,
    LessThan,
    LessThanEqual,
}

impl Operator {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "Equal" => Self::Equal,
            "NotEqual" => Self::NotEqual,
            "Like" => Self::Like,
            "GreaterThan" => Self::GreaterThan,
            "GreaterThanEqual" => Self::GreaterThanEqual,
            "LessThan" => Self::LessThan,
            "LessThanEqual" => Self::LessThanEqual,
            _ => return None,
        })
    }
}

/// The typed value of a comparison, remembering which `value*` field carried it.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    Text(String),
    String(String),
    Int(i64),
    Number(f64),
    Boolean(bool),
}

impl FilterValue {
    fn field_name(&self) -> &'static str {
        match self {
            Self::Text(_) => "valueText",
            Self::String(_) => "valueString",
            Self::Int(_) => "valueInt",
            Self::Number(_) => "valueNumber",
            Self::Boolean(_) => "valueBoolean",
        }
    }
}

/// Why a filter does not fit the class (message without the `invalid 'where' filter: ` prefix).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    #[error("no such prop with name '{prop}' found in class '{class}' in the schema. Check your schema files for which properties in this class are available")]
    UnknownProperty { prop: String, class: String },
    #[error("data type filter cannot use \"{used}\" on type \"{data_type}\", use \"{expected}\" instead")]
    WrongValueType {
        used: &'static str,
        data_type: String,
        expected: &'static str,
    },
    #[error("the Weaviate double supports only single-element filter paths, got {0:?}")]
    UnsupportedPath(Vec<String>),
    #[error("the Weaviate double does not support filtering on data type \"{0}\"")]
    UnsupportedType(String),
}

/// `id` filters compare the object's uuid as text.
fn is_id_path(p: &str) -> bool {
    p == "id" || p == "_id"
}

impl Filter {
    /// Checks property names and value types against the class.
    pub fn check(&self, class: &ClassInfo) -> Result<(), FilterError> {
        match self {
            Self::And(ops) | Self::Or(ops) => ops.iter().try_for_each(|f| f.check(class)),
            Self::Compare { path, value, .. } => {
                let [prop] = path.as_slice() else {
                    return Err(FilterError::UnsupportedPath(path.clone()));
                };
                if is_id_path(prop) {
                    return expect(value, "uuid", &["valueText", "valueString"]);
                }
                let info = class
                    .property(prop)
                    .ok_or_else(|| FilterError::UnknownProperty {
                        prop: prop.clone(),
                        class: class.name.clone(),
                    })?;
                let base = info.data_type.trim_end_matches("[]");
                match base {
                    "text" | "string" | "uuid" | "blob" => {
                        expect(value, &info.data_type, &["valueText", "valueString"])
                    }
                    "int" => expect(value, &info.data_type, &["valueInt"]),
                    "number" => expect(value, &info.data_type, &["valueNumber"]),
                    "boolean" => expect(value, &info.data_type, &["valueBoolean"]),
                    other => Err(FilterError::UnsupportedType(other.to_owned())),
                }
            }
        }
    }

    /// Whether a stored object satisfies the (checked) filter.
    pub fn matches(&self, class: &ClassInfo, obj: &StoredObject) -> bool {
        match self {
            Self::And(ops) => ops.iter().all(|f| f.matches(class, obj)),
            Self::Or(ops) => ops.iter().any(|f| f.matches(class, obj)),
            Self::Compare { path, op, value } => {
                let Some(prop) = path.first() else {
                    return false;
                };
                if is_id_path(prop) {
                    let id = Value::String(obj.id.to_string());
                    let info = PropInfo {
                        name: prop.clone(),
                        data_type: "uuid".into(),
                        tokenization: "field".into(),
                    };
                    return compare(&info, Some(&id), *op, value);
                }
                let Some(info) = class.property(prop) else {
                    return false;
                };
                compare(info, obj.properties.get(prop), *op, value)
            }
        }
    }
}

fn expect(
    value: &FilterValue,
    data_type: &str,
    allowed: &[&'static str],
) -> Result<(), FilterError> {
    let used = value.field_name();
    if allowed.contains(&used) {
        Ok(())
    } else {
        Err(FilterError::WrongValueType {
            used,
            data_type: data_type.to_owned(),
            expected: allowed[0],
        })
    }
}

fn compare(info: &PropInfo, stored: Option<&Value>, op: Operator, value: &FilterValue) -> bool {
    let positive = match op {
        Operator::NotEqual => return !compare(info, stored, Operator::Equal, value),
        _ => op,
    };
    let Some(stored) = stored else { return false };
    match value {
        FilterValue::Text(q) | FilterValue::String(q) => {
            let texts: Vec<&str> = match stored {
                Value::String(s) => vec![s.as_str()],
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                _ => return false,
            };
            compare_text(&info.tokenization, &texts, positive, q)
        }
        FilterValue::Int(q) => numbers(stored).any(|n| ordered(n, *q as f64, positive)),
        FilterValue::Number(q) => numbers(stored).any(|n| ordered(n, *q, positive)),
        FilterValue::Boolean(q) => {
            let bools: Vec<bool> = match stored {
                Value::Bool(b) => vec![*b],
                Value::Array(items) => items.iter().filter_map(Value::as_bool).collect(),
                _ => return false,
            };
            positive == Operator::Equal && bools.contains(q)
        }
    }
}

fn numbers(stored: &Value) -> impl Iterator<Item = f64> + '_ {
    let items: Box<dyn Iterator<Item = &Value> + '_> = match stored {
        Value::Array(items) => Box::new(items.iter()),
        single => Box::new(std::iter::once(single)),
    };
    items.filter_map(Value::as_f64)
}

fn ordered(stored: f64, q: f64, op: Operator) -> bool {
    match op {
        Operator::Equal => stored == q,
        Operator::GreaterThan => stored > q,
        Operator::GreaterThanEqual => stored >= q,
        Operator::LessThan => stored < q,
        Operator::LessThanEqual => stored <= q,
        Operator::Like | Operator::NotEqual => false,
    }
}

fn compare_text(tokenization: &str, texts: &[&str], op: Operator, q: &str) -> bool {
    match op {
        Operator::Equal | Operator::Like => {
            let wildcards = op == Operator::Like;
            let stored: Vec<String> = texts
                .iter()
                .flat_map(|t| tokenize(tokenization, t, false))
                .collect();
            let wanted = tokenize(tokenization, q, wildcards);
            !wanted.is_empty()
                && wanted.iter().all(|w| {
                    stored
                        .iter()
                        .any(|s| if wildcards { like(w, s) } else { w == s })
                })
        }
        _ => texts.iter().any(|t| ordered_text(t, q, op)),
    }
}

fn ordered_text(stored: &str, q: &str, op: Operator) -> bool {
    match op {
        Operator::GreaterThan => stored > q,
        Operator::GreaterThanEqual => stored >= q,
        Operator::LessThan => stored < q,
        Operator::LessThanEqual => stored <= q,
        _ => false,
    }
}

/// Splits a text as Weaviate's tokenizers do (`word`, `lowercase`, `whitespace`, `field`).
pub fn tokenize(tokenization: &str, text: &str, keep_wildcards: bool) -> Vec<String> {
    match tokenization {
        "field" => {
            let t = text.trim();
            if t.is_empty() {
                vec![]
            } else {
                vec![t.to_owned()]
            }
        }
        "whitespace" => text.split_whitespace().map(str::to_owned).collect(),
        "lowercase" => text.split_whitespace().map(str::to_lowercase).collect(),
        _ => text
            .split(|c: char| !(c.is_alphanumeric() || (keep_wildcards && (c == '*' || c == '?'))))
            .filter(|t| !t.is_empty())
            .map(str::to_lowercase)
            .collect(),
    }
}

/// Wildcard match: `*` any run of characters, `?` exactly one.
fn like(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(like("red*", "reddish"));
        assert!(like("r?d", "red"));
        assert!(!like("r?d", "reed"));
        assert!(like("*", ""));
        assert!(like("*cle", "circle"));
    }

    #[test]
    fn word_tokens() {
        assert!(compare_text(
            "word",
            &["A red Circle"],
            Operator::Equal,
            "circle red"
        ));
        assert!(!compare_text(
            "word",
            &["A red Circle"],
            Operator::Equal,
            "blue"
        ));
        assert!(compare_text(
            "field",
            &["A red Circle"],
            Operator::Equal,
            "A red Circle"
        ));
        assert!(!compare_text(
            "field",
            &["A red Circle"],
            Operator::Equal,
            "red"
        ));
        assert!(compare_text(
            "word",
            &["A red Circle"],
            Operator::Like,
            "circ*"
        ));
    }
}
