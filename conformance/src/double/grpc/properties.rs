//! Property values between gRPC and the store's JSON.
//!
//! Import (`BatchObject.Properties`): primitives arrive in the `non_ref_properties` Struct, arrays
//! and nested objects in typed side lists (numbers as little-endian f64 bytes, spec §8 / proto
//! `base.proto`). Results (`PropertiesResult.non_ref_props`): typed `Value`s chosen from the
//! property's schema data type, because the clients decode by kind (text, int, number, date, uuid,
//! lists as packed bytes, nested objects); a property the schema does not type is inferred from JSON.

use prost_types::value::Kind as StructKind;
use serde_json::{Map, Number, Value};
use weaviate_proto::v1::{
    batch_object, list_value, value, BoolValues, DateValues, GeoCoordinate, IntValues, ListValue,
    NumberValues, ObjectPropertiesValue, ObjectValues, PhoneNumber, Properties, PropertiesRequest,
    TextValues, UuidValues, Value as PValue,
};

use super::GrpcError;
use crate::double::schema::ClassInfo;
use crate::double::store::StoredObject;

// ------------------------------------------------------------------ import

fn json_number(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// A `google.protobuf.Value` as JSON.
fn struct_value(v: &prost_types::Value) -> Value {
    match &v.kind {
        None | Some(StructKind::NullValue(_)) => Value::Null,
        Some(StructKind::NumberValue(n)) => json_number(*n),
        Some(StructKind::StringValue(s)) => Value::String(s.clone()),
        Some(StructKind::BoolValue(b)) => Value::Bool(*b),
        Some(StructKind::StructValue(s)) => Value::Object(struct_fields(s)),
        Some(StructKind::ListValue(l)) => Value::Array(l.values.iter().map(struct_value).collect()),
    }
}

fn struct_fields(s: &prost_types::Struct) -> Map<String, Value> {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), struct_value(v)))
        .collect()
}

fn f64s_le(bytes: &[u8]) -> Result<Vec<f64>, GrpcError> {
    if !bytes.len().is_multiple_of(8) {
        return Err(GrpcError::msg(format!(
            "number array bytes length {} is not a multiple of 8",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}

/// The typed side lists shared by `BatchObject.Properties` and `ObjectPropertiesValue`.
struct Typed<'a> {
    non_ref: Option<&'a prost_types::Struct>,
    numbers: &'a [weaviate_proto::v1::NumberArrayProperties],
    ints: &'a [weaviate_proto::v1::IntArrayProperties],
    texts: &'a [weaviate_proto::v1::TextArrayProperties],
    bools: &'a [weaviate_proto::v1::BooleanArrayProperties],
    objects: &'a [weaviate_proto::v1::ObjectProperties],
    object_arrays: &'a [weaviate_proto::v1::ObjectArrayProperties],
    empty_lists: &'a [String],
}

impl Typed<'_> {
    fn to_json(&self) -> Result<Map<String, Value>, GrpcError> {
        let mut out = self.non_ref.map(struct_fields).unwrap_or_default();
        for p in self.numbers {
            let values = if p.values_bytes.is_empty() {
                p.values.clone()
            } else {
                f64s_le(&p.values_bytes)?
            };
            out.insert(
                p.prop_name.clone(),
                Value::Array(values.into_iter().map(json_number).collect()),
            );
        }
        for p in self.ints {
            out.insert(
                p.prop_name.clone(),
                Value::Array(p.values.iter().map(|i| Value::from(*i)).collect()),
            );
        }
        for p in self.texts {
            out.insert(
                p.prop_name.clone(),
                Value::Array(p.values.iter().cloned().map(Value::String).collect()),
            );
        }
        for p in self.bools {
            out.insert(
                p.prop_name.clone(),
                Value::Array(p.values.iter().copied().map(Value::Bool).collect()),
            );
        }
        for p in self.objects {
            let v = p
                .value
                .as_ref()
                .map(nested)
                .transpose()?
                .unwrap_or_default();
            out.insert(p.prop_name.clone(), Value::Object(v));
        }
        for p in self.object_arrays {
            let items = p
                .values
                .iter()
                .map(|v| nested(v).map(Value::Object))
                .collect::<Result<Vec<_>, _>>()?;
            out.insert(p.prop_name.clone(), Value::Array(items));
        }
        for name in self.empty_lists {
            out.insert(name.clone(), Value::Array(Vec::new()));
        }
        Ok(out)
    }
}

fn nested(v: &ObjectPropertiesValue) -> Result<Map<String, Value>, GrpcError> {
    Typed {
        non_ref: v.non_ref_properties.as_ref(),
        numbers: &v.number_array_properties,
        ints: &v.int_array_properties,
        texts: &v.text_array_properties,
        bools: &v.boolean_array_properties,
        objects: &v.object_properties,
        object_arrays: &v.object_array_properties,
        empty_lists: &v.empty_list_props,
    }
    .to_json()
}

/// The properties of one imported object as the store's JSON.
pub fn batch_properties(p: &batch_object::Properties) -> Result<Map<String, Value>, GrpcError> {
    if !p.single_target_ref_props.is_empty() || !p.multi_target_ref_props.is_empty() {
        return Err(GrpcError::msg(
            "the Weaviate double does not support cross-references",
        ));
    }
    Typed {
        non_ref: p.non_ref_properties.as_ref(),
        numbers: &p.number_array_properties,
        ints: &p.int_array_properties,
        texts: &p.text_array_properties,
        bools: &p.boolean_array_properties,
        objects: &p.object_properties,
        object_arrays: &p.object_array_properties,
        empty_lists: &p.empty_list_props,
    }
    .to_json()
}

// ------------------------------------------------------------------ results

fn kind(k: value::Kind) -> PValue {
    PValue { kind: Some(k) }
}

fn list(k: list_value::Kind) -> PValue {
    kind(value::Kind::ListValue(ListValue { kind: Some(k) }))
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

fn strings(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// A nested object, its members typed from their JSON.
fn object(map: &Map<String, Value>) -> Properties {
    Properties {
        fields: map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), typed(None, v)?)))
            .collect(),
    }
}

/// Infers a data type for a JSON value the schema does not describe.
fn inferred(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        Value::Number(_) => "number",
        Value::Object(_) => "object",
        Value::Array(items) => match items.first() {
            Some(first) => match inferred(first) {
                "boolean" => "boolean[]",
                "int" => "int[]",
                "number" => "number[]",
                "object" => "object[]",
                _ => "text[]",
            },
            None => "text[]",
        },
        _ => "text",
    }
}

/// One stored value as a typed gRPC `Value` (`None` for null).
fn typed(data_type: Option<&str>, v: &Value) -> Option<PValue> {
    if v.is_null() {
        return None;
    }
    let dt = data_type.unwrap_or_else(|| inferred(v));
    let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
    Some(match dt {
        "int" => kind(value::Kind::IntValue(as_i64(v)?)),
        "number" => kind(value::Kind::NumberValue(v.as_f64()?)),
        "boolean" => kind(value::Kind::BoolValue(v.as_bool()?)),
        "date" => kind(value::Kind::DateValue(v.as_str()?.to_owned())),
        "uuid" => kind(value::Kind::UuidValue(v.as_str()?.to_owned())),
        "blob" => kind(value::Kind::BlobValue(v.as_str()?.to_owned())),
        "object" => kind(value::Kind::ObjectValue(object(v.as_object()?))),
        "geoCoordinates" => kind(value::Kind::GeoValue(GeoCoordinate {
            latitude: v.get("latitude")?.as_f64()? as f32,
            longitude: v.get("longitude")?.as_f64()? as f32,
        })),
        "phoneNumber" => kind(value::Kind::PhoneValue(PhoneNumber {
            input: v
                .get("input")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            default_country: v
                .get("defaultCountry")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            ..PhoneNumber::default()
        })),
        "int[]" => list(list_value::Kind::IntValues(IntValues {
            values: items
                .iter()
                .filter_map(as_i64)
                .flat_map(i64::to_le_bytes)
                .collect(),
        })),
        "number[]" => list(list_value::Kind::NumberValues(NumberValues {
            values: items
                .iter()
                .filter_map(Value::as_f64)
                .flat_map(f64::to_le_bytes)
                .collect(),
        })),
        "boolean[]" => list(list_value::Kind::BoolValues(BoolValues {
            values: items.iter().filter_map(Value::as_bool).collect(),
        })),
        "date[]" => list(list_value::Kind::DateValues(DateValues {
            values: strings(items),
        })),
        "uuid[]" => list(list_value::Kind::UuidValues(UuidValues {
            values: strings(items),
        })),
        "object[]" => list(list_value::Kind::ObjectValues(ObjectValues {
            values: items
                .iter()
                .filter_map(Value::as_object)
                .map(object)
                .collect(),
        })),
        d if d.ends_with("[]") => list(list_value::Kind::TextValues(TextValues {
            values: strings(items),
        })),
        _ => kind(value::Kind::TextValue(v.as_str()?.to_owned())),
    })
}

/// Cross-references start with an upper-case class name in `dataType`.
fn is_reference(data_type: &str) -> bool {
    data_type.starts_with(|c: char| c.is_ascii_uppercase())
}

/// `PropertiesResult.non_ref_props` for one object. Without a request, or with
/// `return_all_nonref_properties`, every non-reference, non-blob property is returned (Weaviate
/// leaves blobs out of "all properties"); listed properties are returned as asked.
pub fn non_ref_props(
    info: &ClassInfo,
    obj: &StoredObject,
    req: Option<&PropertiesRequest>,
) -> Properties {
    let mut fields = std::collections::HashMap::new();
    let mut put = |name: &str, filter_nested: Option<&[String]>| {
        let Some(v) = obj.properties.get(name) else {
            return;
        };
        let dt = info.property(name).map(|p| p.data_type.as_str());
        if dt.is_some_and(is_reference) {
            return;
        }
        let v = match (filter_nested, v) {
            (Some(keep), Value::Object(m)) => Value::Object(
                m.iter()
                    .filter(|(k, _)| keep.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => v.clone(),
        };
        if let Some(t) = typed(dt, &v) {
            fields.insert(name.to_owned(), t);
        }
    };
    match req {
        None => {
            for name in obj.properties.keys() {
                if info.property(name).is_none_or(|p| p.data_type != "blob") {
                    put(name, None);
                }
            }
        }
        Some(r) => {
            if r.return_all_nonref_properties {
                for name in obj.properties.keys() {
                    if info.property(name).is_none_or(|p| p.data_type != "blob") {
                        put(name, None);
                    }
                }
            }
            for name in &r.non_ref_properties {
                put(name, None);
            }
            for o in &r.object_properties {
                put(&o.prop_name, Some(&o.primitive_properties));
            }
        }
    }
    Properties { fields }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_values_follow_the_schema() {
        assert_eq!(
            typed(Some("int"), &json!(3.0)),
            Some(kind(value::Kind::IntValue(3)))
        );
        assert_eq!(
            typed(Some("number[]"), &json!([1.5])),
            Some(list(list_value::Kind::NumberValues(NumberValues {
                values: 1.5f64.to_le_bytes().to_vec()
            })))
        );
        assert_eq!(
            typed(None, &json!("x")),
            Some(kind(value::Kind::TextValue("x".into())))
        );
        assert_eq!(typed(Some("text"), &Value::Null), None);
    }
}
