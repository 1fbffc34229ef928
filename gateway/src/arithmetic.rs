//! Weaviate's vector arithmetic, reproduced bit for bit (spec §3.1, §3.2, §5.3, §10.3).
//!
//! Everything is `f32`, accumulated in input order, with separate multiply and add (Go does not
//! fuse them on amd64), so that a vector computed here equals the one the multi2vec-clip module
//! would have computed. GraphQL, gRPC and import all use these functions; there is no second copy.

/// Why two vectors could not be combined.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArithmeticError {
    #[error("movement: vector lengths don't match: got {0} and {1}")]
    MoveToLength(usize, usize),
    #[error("movement: force must be between 0 and 1: got {0:.6}")]
    MoveToForce(f32),
    #[error("movement (moveAwayFrom): vector lengths don't match: got {0} and {1}")]
    MoveAwayLength(usize, usize),
    /// Weaviate indexes the weights by vector position and panics when there are fewer weights
    /// than vectors (spec §5.4); we report the same text instead of crashing.
    #[error("panic occurred: runtime error: index out of range [{index}] with length {len}")]
    WeightIndex { index: usize, len: usize },
}

/// Element-wise mean (`CombineVectors`): per dimension, the sum in vector order divided by the
/// number of vectors that have that dimension. No normalisation. An empty list gives an empty
/// vector.
pub fn mean(vectors: &[&[f32]]) -> Vec<f32> {
    combine(vectors, None).unwrap_or_default()
}

/// `NormalizeWeights`: `w_k * (1 / Σw)`, the reciprocal computed once in f32.
pub fn normalize_weights(weights: &[f32]) -> Vec<f32> {
    let sum: f32 = weights.iter().fold(0.0f32, |acc, w| acc + *w);
    let normalizer = 1.0f32 / sum;
    weights.iter().map(|w| *w * normalizer).collect()
}

/// `CombineVectorsWithWeights`: `out[i] = (Σ_k v_k[i] * w_k) / n_i`, or the plain mean when
/// `weights` is `None`. `n_i` counts the vectors that have dimension `i`.
pub fn combine(vectors: &[&[f32]], weights: Option<&[f32]>) -> Result<Vec<f32>, ArithmeticError> {
    let dims = vectors.iter().map(|v| v.len()).max().unwrap_or(0);
    let mut sums = vec![0.0f32; dims];
    let mut counts = vec![0u32; dims];
    for (k, vector) in vectors.iter().enumerate() {
        let weight = match weights {
            Some(w) => Some(*w.get(k).ok_or(ArithmeticError::WeightIndex {
                index: k,
                len: w.len(),
            })?),
            None => None,
        };
        for (i, x) in vector.iter().enumerate() {
            let term = match weight {
                Some(w) => *x * w,
                None => *x,
            };
            sums[i] += term;
            counts[i] += 1;
        }
    }
    Ok(sums
        .into_iter()
        .zip(counts)
        .map(|(s, n)| s / n as f32)
        .collect())
}

/// `moveTo`: `out[i] = s[i]*(1 - w*0.5) + t[i]*(w*0.5)`; the caller skips moves with force ≤ 0.
pub fn move_to(source: &[f32], target: &[f32], force: f32) -> Result<Vec<f32>, ArithmeticError> {
    if source.len() != target.len() {
        return Err(ArithmeticError::MoveToLength(source.len(), target.len()));
    }
    if force > 1.0 {
        return Err(ArithmeticError::MoveToForce(force));
    }
    let step = force * 0.5f32;
    let keep = 1.0f32 - step;
    Ok(source
        .iter()
        .zip(target)
        .map(|(s, t)| {
            let a = *s * keep;
            let b = *t * step;
            a + b
        })
        .collect())
}

/// `moveAwayFrom`: `out[i] = s[i] + w*0.5*(s[i] - t[i])`; no upper bound on the force.
pub fn move_away_from(
    source: &[f32],
    target: &[f32],
    force: f32,
) -> Result<Vec<f32>, ArithmeticError> {
    if source.len() != target.len() {
        return Err(ArithmeticError::MoveAwayLength(source.len(), target.len()));
    }
    let step = force * 0.5f32;
    Ok(source
        .iter()
        .zip(target)
        .map(|(s, t)| {
            let diff = *s - *t;
            let delta = step * diff;
            *s + delta
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_two() {
        assert_eq!(mean(&[&[1.0, 2.0], &[3.0, 6.0]]), vec![2.0, 4.0]);
        assert!(mean(&[]).is_empty());
    }

    #[test]
    fn weighted_combine_divides_by_count() {
        // Weaviate's own test: text*0.4 + image*0.6, then divided by 2.
        let w = normalize_weights(&[0.4, 0.6]);
        let out = combine(&[&[1.0], &[1.0]], Some(&w)).unwrap();
        assert_eq!(out, vec![(1.0f32 * w[0] + 1.0f32 * w[1]) / 2.0]);
    }

    #[test]
    fn too_few_weights_is_an_error_not_a_panic() {
        let err = combine(&[&[1.0], &[2.0]], Some(&[1.0])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "panic occurred: runtime error: index out of range [1] with length 1"
        );
    }

    #[test]
    fn moves() {
        assert_eq!(move_to(&[0.0], &[1.0], 1.0).unwrap(), vec![0.5]);
        assert_eq!(move_away_from(&[1.0], &[0.0], 1.0).unwrap(), vec![1.5]);
        assert_eq!(
            move_to(&[0.0], &[1.0], 1.5).unwrap_err().to_string(),
            "movement: force must be between 0 and 1: got 1.500000"
        );
        assert_eq!(
            move_away_from(&[0.0], &[1.0, 2.0], 1.0)
                .unwrap_err()
                .to_string(),
            "movement (moveAwayFrom): vector lengths don't match: got 1 and 2"
        );
    }
}
