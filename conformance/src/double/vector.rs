//! Exact (brute-force) vector distances, as Weaviate's distancers compute them.
//!
//! Why exact: the double stands in for HNSW in tests, where the expected order and `_additional`
//! values are computed independently; an approximate index would make them flaky.
//! Spec §3.3: `certainty = 1 - distance/2`, only defined for `cosine`.

use std::fmt;

/// The `vectorIndexConfig.distance` of an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Cosine,
    Dot,
    L2Squared,
    Manhattan,
    Hamming,
}

impl Metric {
    /// Parses Weaviate's metric name; `None` for an unknown one.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "cosine" => Some(Self::Cosine),
            "dot" => Some(Self::Dot),
            "l2-squared" => Some(Self::L2Squared),
            "manhattan" => Some(Self::Manhattan),
            "hamming" => Some(Self::Hamming),
            _ => None,
        }
    }

    /// The distance between a query and a stored vector of the same length, in f32.
    ///
    /// Cosine: Weaviate normalizes both vectors at insert / query time, then takes
    /// `1 - dot(a, b)`.
    pub fn distance(self, query: &[f32], stored: &[f32]) -> f32 {
        match self {
            Self::Cosine => 1.0 - dot(&normalize(query), &normalize(stored)),
            Self::Dot => -dot(query, stored),
            Self::L2Squared => query
                .iter()
                .zip(stored)
                .map(|(a, b)| (a - b) * (a - b))
                .fold(0.0, |s, x| s + x),
            Self::Manhattan => query
                .iter()
                .zip(stored)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, |s, x| s + x),
            Self::Hamming => query.iter().zip(stored).filter(|(a, b)| a != b).count() as f32,
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cosine => "cosine",
            Self::Dot => "dot",
            Self::L2Squared => "l2-squared",
            Self::Manhattan => "manhattan",
            Self::Hamming => "hamming",
        })
    }
}

/// Dot product accumulated in f32 in index order.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0f32, |s, (x, y)| s + x * y)
}

/// L2 normalization in f32 (`v / sqrt(Σ v²)`); a zero vector stays zero.
pub fn normalize(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().fold(0.0f32, |s, x| s + x * x).sqrt();
    if norm == 0.0 {
        return v.to_vec();
    }
    v.iter().map(|x| x / norm).collect()
}

/// `certainty = 1 - distance/2` (§3.3).
pub fn certainty_from_distance(distance: f32) -> f32 {
    1.0 - distance / 2.0
}

/// `distance = (1 - certainty) * 2` (§3.3).
pub fn distance_from_certainty(certainty: f32) -> f32 {
    (1.0 - certainty) * 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_parallel_and_orthogonal() {
        assert_eq!(Metric::Cosine.distance(&[1.0, 0.0], &[2.0, 0.0]), 0.0);
        assert_eq!(Metric::Cosine.distance(&[1.0, 0.0], &[0.0, 3.0]), 1.0);
        assert_eq!(Metric::Cosine.distance(&[1.0, 0.0], &[-1.0, 0.0]), 2.0);
        assert_eq!(certainty_from_distance(1.0), 0.5);
    }

    #[test]
    fn other_metrics() {
        assert_eq!(Metric::Dot.distance(&[1.0, 2.0], &[3.0, 4.0]), -11.0);
        assert_eq!(Metric::L2Squared.distance(&[1.0, 2.0], &[3.0, 4.0]), 8.0);
        assert_eq!(Metric::Manhattan.distance(&[1.0, 2.0], &[3.0, 5.0]), 5.0);
        assert_eq!(Metric::Hamming.distance(&[1.0, 2.0], &[1.0, 5.0]), 1.0);
    }
}
