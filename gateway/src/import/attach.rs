//! Import step 3 (pure): combine a target's text and image vectors the way the multi2vec-clip
//! module does (spec §5.3 steps 3–5, §5.4) and put the result where an unmodified Weaviate reads
//! a client-supplied vector (spec §9): `vector` for the legacy vector, `vectors.<name>` for a
//! named one.

use serde_json::{Map, Value};

use crate::arithmetic::{self, ArithmeticError};

use super::plan::TargetPlan;

/// The target's vector: `vectors = text vectors ++ image vectors`; with weights, the weights are
/// matched to vectors by POSITION after `NormalizeWeights`, and the weighted sum is still divided
/// by the number of vectors. Too few weights is Weaviate's recovered index panic (spec §5.4).
pub fn combine(
    plan: &TargetPlan,
    text_vectors: &[&[f32]],
    image_vectors: &[&[f32]],
) -> Result<Vec<f32>, ArithmeticError> {
    let vectors: Vec<&[f32]> = text_vectors.iter().chain(image_vectors).copied().collect();
    let weights = plan.weights.as_deref().map(arithmetic::normalize_weights);
    arithmetic::combine(&vectors, weights.as_deref())
}

/// Writes `vector` into `object` for `target`. Each f32 is written as the f64 of the same value,
/// which every JSON parser (Go's `ParseFloat(s, 32)`, serde's f64-then-f32) reads back exactly.
pub fn attach(object: &mut Value, target: Option<&str>, vector: &[f32]) {
    let json = Value::Array(vector.iter().map(|x| Value::from(f64::from(*x))).collect());
    let Some(obj) = object.as_object_mut() else {
        return;
    };
    match target {
        None => {
            obj.insert("vector".into(), json);
        }
        Some(name) => {
            let vectors = obj
                .entry("vectors")
                .or_insert_with(|| Value::Object(Map::new()));
            if !vectors.is_object() {
                *vectors = Value::Object(Map::new());
            }
            if let Some(map) = vectors.as_object_mut() {
                map.insert(name.to_string(), json);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(weights: Option<Vec<f32>>) -> TargetPlan {
        TargetPlan {
            target: None,
            texts: vec!["a".into()],
            images: vec!["b".into()],
            weights,
        }
    }

    #[test]
    fn weights_by_position_normalized_and_divided_by_count() {
        let t = [0.5f32, -1.0];
        let i = [0.25f32, 2.0];
        let out = combine(&plan(Some(vec![0.4, 0.6])), &[&t], &[&i]).unwrap();
        let n = 1.0f32 / (0.4f32 + 0.6f32);
        let (w0, w1) = (0.4f32 * n, 0.6f32 * n);
        let expected: Vec<f32> = (0..2).map(|k| (t[k] * w0 + i[k] * w1) / 2.0).collect();
        assert_eq!(out, expected);
        let mean = combine(&plan(None), &[&t], &[&i]).unwrap();
        assert_eq!(mean, vec![(0.5f32 + 0.25) / 2.0, (-1.0f32 + 2.0) / 2.0]);
    }

    #[test]
    fn too_few_weights_is_the_panic_text() {
        let t = [1.0f32];
        let err = combine(&plan(Some(vec![1.0])), &[&t], &[&t]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "panic occurred: runtime error: index out of range [1] with length 1"
        );
    }

    #[test]
    fn attach_legacy_and_named() {
        let mut o = json!({"class": "C", "vectors": {"other": [1.0]}});
        attach(&mut o, None, &[0.1]);
        attach(&mut o, Some("v"), &[0.5]);
        assert_eq!(o["vector"][0].as_f64().map(|f| f as f32), Some(0.1f32));
        assert_eq!(o["vectors"]["v"], json!([0.5]));
        assert_eq!(o["vectors"]["other"], json!([1.0]));
    }
}
