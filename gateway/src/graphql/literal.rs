//! GraphQL input values: read from the parsed document or from the request's `variables`, and
//! printed back, both as Weaviate's GraphQL library prints them in error messages (spec §1.5) and
//! as valid GraphQL for the forwarded query, with vectors written losslessly (spec §1.6).

use std::collections::HashMap;

use apollo_parser::cst;

/// An input value. Numbers keep their source text so that a carried-over `certainty: 0.80`
/// reaches Weaviate exactly as the client wrote it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(String),
    Float(String),
    String(String),
    Boolean(bool),
    Enum(String),
    List(Vec<Value>),
    Object(Vec<(String, Value)>),
    Variable(String),
}

/// The variables of the executed operation: the request's `variables` object, then the defaults
/// of the operation's variable definitions.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    pub provided: serde_json::Map<String, serde_json::Value>,
    pub defaults: HashMap<String, Value>,
}

impl Variables {
    /// The value of `$name`; `None` when neither provided nor defaulted (GraphQL then treats an
    /// input-object field holding it as absent).
    pub fn get(&self, name: &str) -> Option<Value> {
        match self.provided.get(name) {
            Some(json) => Some(Value::from_json(json)),
            None => self.defaults.get(name).cloned(),
        }
    }
}

impl Value {
    /// Reads a CST value. Only called on documents that parsed without errors, whose string
    /// escapes the lexer has already checked.
    pub fn from_cst(value: &cst::Value) -> Value {
        match value {
            cst::Value::Variable(v) => {
                Value::Variable(v.name().map(|n| n.text().to_string()).unwrap_or_default())
            }
            cst::Value::StringValue(s) => Value::String(String::from(s)),
            cst::Value::FloatValue(f) => Value::Float(
                f.float_token()
                    .map(|t| t.text().to_string())
                    .unwrap_or_default(),
            ),
            cst::Value::IntValue(i) => Value::Int(
                i.int_token()
                    .map(|t| t.text().to_string())
                    .unwrap_or_default(),
            ),
            cst::Value::BooleanValue(b) => Value::Boolean(b.true_token().is_some()),
            cst::Value::NullValue(_) => Value::Null,
            cst::Value::EnumValue(e) => {
                Value::Enum(e.name().map(|n| n.text().to_string()).unwrap_or_default())
            }
            cst::Value::ListValue(l) => {
                Value::List(l.values().map(|v| Value::from_cst(&v)).collect())
            }
            cst::Value::ObjectValue(o) => Value::Object(
                o.object_fields()
                    .filter_map(|f| {
                        let name = f.name()?.text().to_string();
                        let value = f.value()?;
                        Some((name, Value::from_cst(&value)))
                    })
                    .collect(),
            ),
        }
    }

    /// A JSON variable value as a GraphQL value (strings stay strings: enums sent as variables
    /// are JSON strings and Weaviate coerces them).
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Boolean(*b),
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Value::Int(n.to_string()),
            serde_json::Value::Number(n) => Value::Float(n.to_string()),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The value with every variable replaced by its value. An object field whose variable has
    /// no value is dropped (absent, as GraphQL coerces it); a list element becomes `null`.
    pub fn resolve(&self, vars: &Variables) -> Value {
        match self {
            Value::Variable(name) => vars.get(name).unwrap_or(Value::Null),
            Value::List(items) => Value::List(items.iter().map(|v| v.resolve(vars)).collect()),
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .filter_map(|(k, v)| match v {
                        Value::Variable(name) => vars.get(name).map(|v| (k.clone(), v)),
                        other => Some((k.clone(), other.resolve(vars))),
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// The field `name` of an object value.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(fields) => fields.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A Float or Int as a number (`strconv.ParseFloat(text, 64)`, as graphql-go coerces).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(t) | Value::Float(t) => t.parse().ok(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A list of strings; a single string counts as a one-element list (GraphQL input
    /// coercion of a non-list value for a list type).
    pub fn as_strings(&self) -> Option<Vec<String>> {
        match self {
            Value::List(items) => Some(
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            ),
            Value::String(s) => Some(vec![s.clone()]),
            _ => None,
        }
    }

    /// Printed as graphql-go's printer prints a literal in validation messages (spec §1.5):
    /// `{concepts: ["a"], moveTo: {force: 1}}`, strings in quotes without escaping.
    pub fn print_go(&self) -> String {
        self.print(false)
    }

    /// Printed as valid GraphQL for the forwarded document.
    pub fn render(&self) -> String {
        self.print(true)
    }

    fn print(&self, escape: bool) -> String {
        match self {
            Value::Null => "null".to_string(),
            Value::Int(t) | Value::Float(t) => t.clone(),
            Value::String(s) if escape => quote(s),
            Value::String(s) => format!("\"{s}\""),
            Value::Boolean(b) => b.to_string(),
            Value::Enum(e) => e.clone(),
            Value::Variable(v) => format!("${v}"),
            Value::List(items) => {
                let inner: Vec<String> = items.iter().map(|v| v.print(escape)).collect();
                format!("[{}]", inner.join(", "))
            }
            Value::Object(fields) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.print(escape)))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
        }
    }
}

/// A GraphQL string literal. JSON's escapes are a subset of GraphQL's, so JSON quoting is valid.
pub fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A vector contains NaN or an infinity, which no GraphQL literal can carry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the computed vector contains a non-finite value and cannot be sent to Weaviate")]
pub struct NonFiniteVector;

/// A vector as a GraphQL list literal. Each f32 is printed as the shortest decimal that
/// round-trips `x as f64`: Weaviate parses it with `strconv.ParseFloat(s, 64)` and casts to
/// float32, both exact, so the vector arrives bit for bit (spec §1.6). Integral values keep a
/// `.0` so that every element is a Float literal (a `[Float]` list accepts only Float/Int, and
/// Go's `Atoi` would reject huge Int literals).
pub fn vector_literal(vector: &[f32]) -> Result<String, NonFiniteVector> {
    let mut out = String::with_capacity(vector.len() * 12 + 2);
    out.push('[');
    for (i, x) in vector.iter().enumerate() {
        if !x.is_finite() {
            return Err(NonFiniteVector);
        }
        if i > 0 {
            out.push_str(", ");
        }
        // `{:?}` is the shortest round-trip form, with an exponent for very small or large
        // magnitudes (`1e-7`), which is a valid GraphQL FloatValue.
        out.push_str(&format!("{:?}", *x as f64));
    }
    out.push(']');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_literals_round_trip_bit_for_bit() {
        let v = [
            0.1f32,
            -0.0,
            1.0,
            1e-7,
            3.4028235e38,
            f32::MIN_POSITIVE,
            -0.33333334,
        ];
        let lit = vector_literal(&v).unwrap();
        let parsed: Vec<f32> = lit
            .trim_matches(['[', ']'])
            .split(", ")
            .map(|s| s.parse::<f64>().unwrap() as f32)
            .collect();
        for (a, b) in v.iter().zip(&parsed) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a} vs {b} in {lit}");
        }
        assert!(
            lit.starts_with("[0.10000000149011612, -0.0, 1.0, 1.0000000116860974e-7, "),
            "{lit}"
        );
        assert_eq!(vector_literal(&[f32::NAN]), Err(NonFiniteVector));
        assert_eq!(vector_literal(&[]).unwrap(), "[]");
    }

    #[test]
    fn go_printing_and_rendering() {
        let v = Value::Object(vec![
            (
                "concepts".into(),
                Value::List(vec![Value::String("a \"b\"".into())]),
            ),
            ("force".into(), Value::Float("0.5".into())),
            ("m".into(), Value::Enum("minimum".into())),
            ("x".into(), Value::Variable("v".into())),
        ]);
        assert_eq!(
            v.print_go(),
            r#"{concepts: ["a "b""], force: 0.5, m: minimum, x: $v}"#
        );
        assert_eq!(
            v.render(),
            r#"{concepts: ["a \"b\""], force: 0.5, m: minimum, x: $v}"#
        );
    }

    #[test]
    fn variables_resolve_and_absent_fields_drop() {
        let mut vars = Variables::default();
        vars.provided
            .insert("q".into(), serde_json::json!(["red", 1.5, {"a": true}]));
        let v = Value::Object(vec![
            ("concepts".into(), Value::Variable("q".into())),
            ("certainty".into(), Value::Variable("missing".into())),
        ]);
        assert_eq!(
            v.resolve(&vars),
            Value::Object(vec![(
                "concepts".into(),
                Value::List(vec![
                    Value::String("red".into()),
                    Value::Float("1.5".into()),
                    Value::Object(vec![("a".into(), Value::Boolean(true))]),
                ])
            )])
        );
    }
}
