//! `BatchObjects`: objects of clip-managed collections are vectorized from their properties
//! exactly as the REST batch does (`import::plan`, `import::embed`: one model call per modality
//! for the whole batch), the vector is added to the object's wire bytes (legacy vector →
//! `vector_bytes`, named → `vectors[{name, vector_bytes, SINGLE_FP32}]`), and the rest of every
//! object is forwarded unchanged. An object that cannot be vectorized is not sent; it appears in
//! the reply's `errors` with its index in the client's request, next to Weaviate's own errors,
//! whose indexes are mapped back from the forwarded batch (issue 6).

use std::collections::BTreeMap;

use prost::Message;
use serde_json::{Map, Value};
use weaviate_proto::v1::batch_objects_reply::BatchError;
use weaviate_proto::v1::{BatchObject, Vectors};

use super::search::single_vectors;
use super::wire::{self, Field, WireError};
use crate::import::embed::{self, Embedded};
use crate::import::managed_class;
use crate::import::plan::{self, TargetPlan};
use crate::schema::SchemaView;
use vectorizer::Embedder;

/// Field numbers (spec §8).
const REQUEST_OBJECTS: u32 = 1;
const OBJECT_VECTOR_BYTES: u32 = 6;
const OBJECT_VECTORS: u32 = 23;
const REPLY_ERRORS: u32 = 2;

/// A batch after vectorization.
#[derive(Debug)]
pub struct Prepared {
    /// The request to forward (only the objects that can be stored); `None` when none can.
    pub request: Option<Vec<u8>>,
    /// For each forwarded object, its index in the client's request.
    pub forwarded: Vec<usize>,
    /// The gateway's own per-object failures, by the client's index.
    pub failures: Vec<(usize, String)>,
}

fn decode_object(bytes: &[u8]) -> Result<BatchObject, WireError> {
    BatchObject::decode(bytes).map_err(|_| WireError("cannot decode a BatchObject"))
}

/// What to do with each object of a batch, in request order.
#[derive(Debug)]
enum Entry {
    /// Forwarded exactly as received.
    Keep,
    /// A clip-managed object to vectorize.
    Planned(Vec<TargetPlan>),
    /// Refused before inference (e.g. an invalid blob).
    Failed(String),
}

/// A batch with at least one object to vectorize or refuse.
#[derive(Debug)]
pub struct BatchPlan {
    fields: Vec<Field>,
    entries: Vec<Entry>,
}

/// Decodes each object of a `BatchObjectsRequest` once and plans it (`import::plan`); `None` when
/// no object needs the module, so the request is forwarded unchanged.
pub fn plan(message: &[u8], view: &SchemaView) -> Result<Option<BatchPlan>, WireError> {
    let fields = wire::fields(message)?;
    let mut entries = Vec::new();
    for field in fields.iter().filter(|f| f.number == REQUEST_OBJECTS) {
        let object = decode_object(&message[field.payload.clone()])?;
        let Some(class) = managed_class(view, &object.collection) else {
            entries.push(Entry::Keep);
            continue;
        };
        entries.push(match plan::plan_object(class, view, &as_json(&object)) {
            Ok(plans) if plans.is_empty() => Entry::Keep,
            Ok(plans) => Entry::Planned(plans),
            Err(error) => Entry::Failed(error.to_string()),
        });
    }
    if entries.iter().all(|e| matches!(e, Entry::Keep)) {
        return Ok(None);
    }
    Ok(Some(BatchPlan { fields, entries }))
}

/// Embeds the inputs of a planned batch (one call per modality) and attaches the vectors to
/// `message`, the request `batch` was planned from.
pub async fn prepare(batch: BatchPlan, message: &[u8], embedder: &dyn Embedder) -> Prepared {
    let BatchPlan { fields, entries } = batch;
    let all_plans = entries.iter().flat_map(|e| match e {
        Entry::Planned(plans) => plans.as_slice(),
        _ => <&[TargetPlan]>::default(),
    });
    let embedded: Embedded = embed::embed(embedder, all_plans).await;

    let mut out = Vec::with_capacity(message.len() + 1024);
    let mut forwarded = Vec::new();
    let mut failures = Vec::new();
    let mut index = 0usize;
    for field in &fields {
        if field.number != REQUEST_OBJECTS {
            out.extend_from_slice(&message[field.whole.clone()]);
            continue;
        }
        let entry = &entries[index];
        match entry {
            Entry::Keep => {
                out.extend_from_slice(&message[field.whole.clone()]);
                forwarded.push(index);
            }
            Entry::Failed(message) => failures.push((index, message.clone())),
            Entry::Planned(plans) => {
                match attach(&message[field.payload.clone()], plans, &embedded) {
                    Ok(object) => {
                        wire::put_len_field(&mut out, REQUEST_OBJECTS, &object);
                        forwarded.push(index);
                    }
                    Err(message) => failures.push((index, message)),
                }
            }
        }
        index += 1;
    }
    Prepared {
        request: (!forwarded.is_empty()).then_some(out),
        forwarded,
        failures,
    }
}

/// The object's bytes with its computed vectors appended; the first failing target fails it.
fn attach(object: &[u8], plans: &[TargetPlan], embedded: &Embedded) -> Result<Vec<u8>, String> {
    let mut out = object.to_vec();
    for plan in plans {
        let vector = embedded.vector(plan).map_err(|e| e.to_string())?;
        match &plan.target {
            None => {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                wire::put_len_field(&mut out, OBJECT_VECTOR_BYTES, &bytes);
            }
            Some(name) => {
                let vectors = Vectors {
                    name: name.clone(),
                    ..single_vectors(&vector)
                };
                wire::put_len_field(&mut out, OBJECT_VECTORS, &vectors.encode_to_vec());
            }
        }
    }
    Ok(out)
}

/// The object in the REST shape the import planner reads: `class`, `properties` (the Struct
/// and the typed text arrays; other types are never clip inputs), and which vectors the client
/// sent (`vector`, `vectors.<name>`; an unnamed `Vectors` entry is the legacy vector).
fn as_json(object: &BatchObject) -> Value {
    let mut properties = Map::new();
    if let Some(p) = &object.properties {
        if let Some(s) = &p.non_ref_properties {
            for (k, v) in &s.fields {
                properties.insert(k.clone(), struct_value(v));
            }
        }
        for arr in &p.text_array_properties {
            properties.insert(
                arr.prop_name.clone(),
                Value::Array(arr.values.iter().cloned().map(Value::String).collect()),
            );
        }
    }
    let mut json = Map::new();
    json.insert("class".into(), Value::String(object.collection.clone()));
    json.insert("properties".into(), Value::Object(properties));
    let present = || Value::Array(vec![Value::from(0.0)]);
    if !object.vector.is_empty() || !object.vector_bytes.is_empty() {
        json.insert("vector".into(), present());
    }
    let mut named = Map::new();
    for v in &object.vectors {
        if v.vector_bytes.is_empty() {
            continue;
        }
        if v.name.is_empty() {
            json.insert("vector".into(), present());
        } else {
            named.insert(v.name.clone(), present());
        }
    }
    if !named.is_empty() {
        json.insert("vectors".into(), Value::Object(named));
    }
    Value::Object(json)
}

fn struct_value(value: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::NumberValue(n)) => Value::from(*n),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StructValue(s)) => Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), struct_value(v)))
                .collect(),
        ),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(struct_value).collect()),
    }
}

/// The client's reply: upstream's `BatchObjectsReply` (or an empty one when nothing was sent)
/// with its error indexes mapped back to the client's request and the gateway's failures added,
/// all errors in index order; every other field's bytes unchanged.
pub fn merge_reply(upstream: Option<&[u8]>, prepared: &Prepared) -> Result<Vec<u8>, WireError> {
    let upstream = upstream.unwrap_or_default();
    let fields: Vec<Field> = wire::fields(upstream)?;
    let mut errors: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    for field in fields.iter().filter(|f| f.number == REPLY_ERRORS) {
        let mut error = BatchError::decode(&upstream[field.payload.clone()])
            .map_err(|_| WireError("cannot decode a BatchError"))?;
        let original = usize::try_from(error.index)
            .ok()
            .and_then(|i| prepared.forwarded.get(i).copied())
            .ok_or(WireError("BatchError index out of range"))?;
        error.index = i32::try_from(original).map_err(|_| WireError("index too large"))?;
        errors.insert(original, error.encode_to_vec());
    }
    for (index, message) in &prepared.failures {
        let error = BatchError {
            index: i32::try_from(*index).map_err(|_| WireError("index too large"))?,
            error: message.clone(),
        };
        errors.insert(*index, error.encode_to_vec());
    }
    let mut append = Vec::new();
    for error in errors.values() {
        wire::put_len_field(&mut append, REPLY_ERRORS, error);
    }
    Ok(wire::splice(upstream, &fields, &[REPLY_ERRORS], &append))
}
