//! CLIP embeddings for clipgate.
//!
//! The gateway sees one thing from this crate: the [`Embedder`] trait. It is implemented by the
//! in-process tract model, by the client of a remote multi2vec-clip inference container, and by
//! the cache that wraps either of them. Nothing here knows about Weaviate's query languages.

mod embedder;
mod error;

pub use embedder::{Embedder, Vector};
pub use error::EmbedError;
