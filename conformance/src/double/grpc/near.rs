//! `NearVector` / `NearObject` / `Targets` messages → the double's [`VectorSearch`].
//!
//! Spec §8 "gRPC parsing notes": vector precedence `vectors` (exactly one) > `vector_bytes` >
//! `vector`; `vector_per_target` / `vector_for_targets` exclude a single vector; vectors travel as
//! little-endian f32 bytes (§8 "Byte encodings"); certainty and distance are exclusive by presence.

use std::collections::BTreeMap;

use uuid::Uuid;
use weaviate_proto::v1::{
    vectors::VectorType, CombinationMethod, NearObject, NearVector, Targets, Vectors,
};

use super::GrpcError;
use crate::double::search::{Combination, QueryVector, VectorSearch};

/// Decodes a single vector: concatenated little-endian f32, no header.
pub fn f32s_le(bytes: &[u8]) -> Result<Vec<f32>, GrpcError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(GrpcError::msg(format!(
            "vector bytes length {} is not a multiple of 4",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Encodes a single vector as little-endian f32 bytes.
pub fn f32s_to_le(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// One `Vectors` entry as a single vector (UNSPECIFIED is read as single, §8).
pub fn single(v: &Vectors) -> Result<Vec<f32>, GrpcError> {
    if v.r#type == VectorType::MultiFp32 as i32 {
        return Err(GrpcError::msg(
            "the Weaviate double does not support multi-vectors",
        ));
    }
    f32s_le(&v.vector_bytes)
}

/// `certainty` / `distance` of a near operator: both present (even 0) is an error; a certainty of
/// 0 means "not provided" downstream (§3.3).
fn thresholds(
    vs: &mut VectorSearch,
    certainty: Option<f64>,
    distance: Option<f64>,
    operator: &str,
) -> Result<(), GrpcError> {
    if certainty.is_some() && distance.is_some() {
        return Err(GrpcError::msg(format!(
            "{operator}: cannot provide distance and certainty"
        )));
    }
    vs.certainty = certainty.filter(|c| *c != 0.0).map(|c| c as f32);
    vs.distance = distance.map(|d| d as f32);
    Ok(())
}

/// `targets` (or the deprecated `target_vectors`) → target names, combination and weights.
pub fn apply_targets(
    vs: &mut VectorSearch,
    targets: Option<&Targets>,
    deprecated: &[String],
) -> Result<(), GrpcError> {
    let Some(t) = targets else {
        vs.targets = deprecated.to_vec();
        return Ok(());
    };
    vs.targets = t.target_vectors.clone();
    vs.combination =
        match CombinationMethod::try_from(t.combination) {
            Ok(CombinationMethod::Unspecified | CombinationMethod::TypeMin) | Err(_) => {
                Combination::Minimum
            }
            Ok(CombinationMethod::TypeSum) => Combination::Sum,
            Ok(CombinationMethod::TypeAverage) => Combination::Average,
            Ok(CombinationMethod::TypeManual) => Combination::ManualWeights,
            Ok(CombinationMethod::TypeRelativeScore) => return Err(GrpcError::msg(
                "the Weaviate double does not support the relative score combination of targets",
            )),
        };
    vs.weights = t
        .weights_for_targets
        .iter()
        .map(|w| (w.target.clone(), w.weight))
        .collect();
    Ok(())
}

/// Parses `NearVector` (used by Search, Aggregate and hybrid).
pub fn near_vector(nv: &NearVector) -> Result<VectorSearch, GrpcError> {
    let has_single = !nv.vectors.is_empty() || !nv.vector_bytes.is_empty() || !nv.vector.is_empty();
    let has_per_target = !nv.vector_per_target.is_empty() || !nv.vector_for_targets.is_empty();
    if has_single && has_per_target {
        return Err(GrpcError::msg(
            "near_vector: either vector or VectorPerTarget must be provided, not both",
        ));
    }
    let query = if !nv.vectors.is_empty() {
        let [only] = nv.vectors.as_slice() else {
            return Err(GrpcError::msg(format!(
                "near_vector: only 1 vector supported, found {} vectors",
                nv.vectors.len()
            )));
        };
        QueryVector::Vector(single(only)?)
    } else if !nv.vector_bytes.is_empty() {
        QueryVector::Vector(f32s_le(&nv.vector_bytes)?)
    } else if !nv.vector.is_empty() {
        QueryVector::Vector(nv.vector.clone())
    } else if !nv.vector_for_targets.is_empty() {
        let mut map = BTreeMap::new();
        for vft in &nv.vector_for_targets {
            let v = match vft.vectors.first() {
                Some(v) => single(v)?,
                None => f32s_le(&vft.vector_bytes)?,
            };
            map.insert(vft.name.clone(), v);
        }
        QueryVector::PerTarget(map)
    } else if !nv.vector_per_target.is_empty() {
        let mut map = BTreeMap::new();
        for (name, bytes) in &nv.vector_per_target {
            map.insert(name.clone(), f32s_le(bytes)?);
        }
        QueryVector::PerTarget(map)
    } else {
        return Err(GrpcError::msg("near_vector: vector is required"));
    };
    let mut vs = VectorSearch::new(query);
    thresholds(&mut vs, nv.certainty, nv.distance, "near_vector")?;
    apply_targets(&mut vs, nv.targets.as_ref(), &nv.target_vectors)?;
    Ok(vs)
}

/// Parses `NearObject`.
pub fn near_object(no: &NearObject) -> Result<VectorSearch, GrpcError> {
    let id = Uuid::parse_str(&no.id).map_err(|e| GrpcError::msg(format!("near_object: {e}")))?;
    let mut vs = VectorSearch::new(QueryVector::Object { id, class: None });
    thresholds(&mut vs, no.certainty, no.distance, "near_object")?;
    apply_targets(&mut vs, no.targets.as_ref(), &no.target_vectors)?;
    Ok(vs)
}

/// The error an unmodified Weaviate gives for a module search (`near_text`, `near_image`) on a
/// collection without a vectorizer (spec §1.4).
pub fn no_vectorizer(collection: &str, search_type: &str) -> GrpcError {
    GrpcError::msg(format!(
        "explorer: get class: vectorize params: could not vectorize input for collection {collection} with search-type {search_type}. Make sure a vectorizer module is configured for this collection"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_round_trip() {
        let v = vec![1.0f32, -2.5, 0.125];
        assert_eq!(f32s_le(&f32s_to_le(&v)), Ok(v));
        assert!(f32s_le(&[0, 0, 0]).is_err());
    }

    #[test]
    fn precedence_and_errors() {
        let nv = NearVector {
            vectors: vec![Vectors {
                vector_bytes: f32s_to_le(&[1.0, 0.0]),
                ..Default::default()
            }],
            vector_bytes: f32s_to_le(&[0.0, 1.0]),
            vector: vec![5.0, 5.0],
            ..Default::default()
        };
        assert_eq!(
            near_vector(&nv).map(|v| v.query),
            Ok(QueryVector::Vector(vec![1.0, 0.0]))
        );
        let none = NearVector::default();
        assert_eq!(
            near_vector(&none).map(|v| v.query),
            Err(GrpcError::msg("near_vector: vector is required"))
        );
        let both = NearVector {
            vector: vec![1.0],
            certainty: Some(0.0),
            distance: Some(0.0),
            ..Default::default()
        };
        assert_eq!(
            near_vector(&both).map(|v| v.query),
            Err(GrpcError::msg(
                "near_vector: cannot provide distance and certainty"
            ))
        );
    }
}
