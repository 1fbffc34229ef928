//! `BatchObjects`: stores each object through the same store call as the REST batch (upsert,
//! validation, dimension checks) and answers per-object failures as `{index, error}` with
//! Weaviate's text; objects without a failure are not listed.
//!
//! Vectors (spec §8 `BatchObject`): `vector_bytes` (LE f32) or the deprecated float list is the
//! unnamed vector; `vectors[]` carries named vectors (an empty name means the unnamed one).

use std::collections::BTreeMap;

use uuid::Uuid;
use weaviate_proto::v1::{batch_objects_reply::BatchError, BatchObject, BatchObjectsRequest};

use super::near::{f32s_le, single};
use super::{authorize, properties, GrpcError};
use crate::double::auth::Principal;
use crate::double::schema::class_name;
use crate::double::store::{ObjectInput, Store, WriteMode};

/// Converts one gRPC object into a store write.
fn input(obj: &BatchObject) -> Result<ObjectInput, GrpcError> {
    let id = if obj.uuid.is_empty() {
        None
    } else {
        Some(Uuid::parse_str(&obj.uuid).map_err(|e| GrpcError::msg(e.to_string()))?)
    };
    let mut vector = if !obj.vector_bytes.is_empty() {
        Some(f32s_le(&obj.vector_bytes)?)
    } else if !obj.vector.is_empty() {
        Some(obj.vector.clone())
    } else {
        None
    };
    let mut vectors = BTreeMap::new();
    for v in &obj.vectors {
        let values = single(v)?;
        if v.name.is_empty() {
            vector = Some(values);
        } else {
            vectors.insert(v.name.clone(), values);
        }
    }
    let properties = obj
        .properties
        .as_ref()
        .map(properties::batch_properties)
        .transpose()?
        .unwrap_or_default();
    Ok(ObjectInput {
        class: class_name(&obj.collection),
        id,
        tenant: Some(obj.tenant.clone()).filter(|t| !t.is_empty()),
        properties,
        vector,
        vectors,
    })
}

/// Imports the batch; returns the per-object errors. A collection the key may not access fails
/// the whole call (`PermissionDenied`), as the REST batch answers 403.
pub fn batch_objects(
    store: &Store,
    principal: &Principal,
    req: BatchObjectsRequest,
) -> Result<Vec<BatchError>, GrpcError> {
    for obj in &req.objects {
        authorize(principal, &class_name(&obj.collection))?;
    }
    let mut errors = Vec::new();
    for (index, obj) in req.objects.iter().enumerate() {
        let result = input(obj).and_then(|input| {
            if store.class_def(&input.class).is_none() {
                // Weaviate's gRPC batch parser looks the collection up before importing.
                return Err(GrpcError::msg(format!(
                    "could not find class {} in schema",
                    obj.collection
                )));
            }
            store
                .put_object(input, WriteMode::Upsert)
                .map(|_| ())
                .map_err(|e| GrpcError::msg(e.to_string()))
        });
        if let Err(e) = result {
            errors.push(BatchError {
                index: i32::try_from(index).unwrap_or(i32::MAX),
                error: e.to_string(),
            });
        }
    }
    Ok(errors)
}
