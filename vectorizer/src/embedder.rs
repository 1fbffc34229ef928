//! The one interface between the gateway and every way of computing a CLIP vector.

use std::sync::Arc;

use async_trait::async_trait;

use crate::EmbedError;

/// One embedding. Shared, immutable and cheap to clone: the cache hands the same allocation to
/// every request that asks for the same input.
pub type Vector = Arc<[f32]>;

/// Computes CLIP vectors the way the multi2vec-clip inference container does.
///
/// Both methods take a whole batch and return exactly one result per input, in input order, so
/// that one undecodable image in an import batch fails only its own object (spec §5.7) while the
/// rest of the batch is computed in one model call. A failure of the whole backend (container
/// down, queue full) is reported as the same error for every input.
#[async_trait]
pub trait Embedder: Send + Sync + 'static {
    /// Text vectors for `texts` (raw strings, no lower-casing: clip uses `lowerCaseInput=false`).
    async fn embed_texts(&self, texts: &[String]) -> Vec<Result<Vector, EmbedError>>;

    /// Image vectors for `images`, each the base64 string exactly as the client sent it
    /// (Weaviate passes it verbatim to the container, spec §4).
    async fn embed_images(&self, images: &[String]) -> Vec<Result<Vector, EmbedError>>;

    /// What the container's `GET /meta` answers: the model configuration as a JSON object.
    async fn meta(&self) -> Result<serde_json::Value, EmbedError>;

    /// Whether the backend can serve now (`GET /.well-known/ready` of the container).
    async fn ready(&self) -> Result<(), EmbedError>;

    /// A stable identifier of the model and preprocessing settings: part of every cache key, so
    /// that two models never share cached vectors.
    fn fingerprint(&self) -> &str;
}
