//! JSON rendering helpers that reproduce how Weaviate (Go's `encoding/json`) prints values.
//!
//! Why: clients and the conformance suite compare bodies; Go prints a `float32` with its shortest
//! 32-bit representation and whole floats without a fraction (`1`, not `1.0`), and sorts the keys
//! of maps (GraphQL `data`, object `properties`).

use serde_json::{Map, Number, Value};

/// A float as Go prints it: whole values without a fraction, NaN/Inf (which Go refuses) as null.
pub fn go_float(x: f64) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        // Exact: |x| < 2^53.
        return Value::Number(Number::from(x as i64));
    }
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// A `float32` as Go prints it: the shortest decimal that round-trips through `f32`.
pub fn go_f32(x: f32) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    // Rust's `Display` for f32 is the shortest round-trip decimal; re-parsing it as f64 gives the
    // f64 whose own shortest representation is that same decimal.
    let shortest = x.to_string().parse::<f64>().unwrap_or(f64::from(x));
    go_float(shortest)
}

/// A vector of `float32` as Go prints `[]float32`.
pub fn go_f32_vec(v: &[f32]) -> Value {
    Value::Array(v.iter().map(|x| go_f32(*x)).collect())
}

/// Recursively sorts object keys, as Go does when it encodes a `map[string]interface{}`.
pub fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Normalizes every number as Go's `float64` round trip would (integers stay integers, whole
/// floats lose their fraction). Weaviate decodes schema JSON into `interface{}` (§6: "the parser
/// only normalizes JSON numbers") and prints it back this way.
pub fn go_numbers(value: Value) -> Value {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => go_float(f),
            _ => Value::Number(n),
        },
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, go_numbers(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(go_numbers).collect()),
        other => other,
    }
}

/// Go's `%v` of a decoded JSON value, used in messages such as
/// `module config for <m> is not a map, got <v>` (§6).
pub fn go_v(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{}", f as i128),
            Some(f) => format!("{f}"),
            None => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_v).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_v(&map[k.as_str()])))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

/// Go's `%T` of a decoded JSON value (`variables must be a JSON object, got %T`, §2.1).
pub fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_f32(0.1).to_string(), "0.1");
        assert_eq!(go_f32(1.0).to_string(), "1");
        assert_eq!(go_f32(-0.25).to_string(), "-0.25");
        assert_eq!(go_float(2.5).to_string(), "2.5");
        assert_eq!(
            go_numbers(json!({"a": 1.0, "b": [0.5, 2]})),
            json!({"a": 1, "b": [0.5, 2]})
        );
    }

    #[test]
    fn go_v_formats_like_fmt() {
        assert_eq!(go_v(&json!("x")), "x");
        assert_eq!(go_v(&json!([1, true])), "[1 true]");
        assert_eq!(go_v(&json!(1.5)), "1.5");
    }

    #[test]
    fn sorted_sorts_nested_keys() {
        let v = sorted(json!({"b": {"d": 1, "c": 2}, "a": 0}));
        assert_eq!(v.to_string(), r#"{"a":0,"b":{"c":2,"d":1}}"#);
    }
}
