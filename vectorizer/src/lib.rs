//! CLIP embeddings for clipgate.
//!
//! The gateway sees one thing from this crate: the [`Embedder`] trait. It is implemented by the
//! in-process tract model, by the client of a remote multi2vec-clip inference container, and by
//! the cache that wraps either of them. Nothing here knows about Weaviate's query languages.

mod cache;
mod embedder;
mod error;
pub mod image;
mod local;
pub mod metrics;
pub mod model_dir;
mod remote;
pub mod server;
pub mod tokenize;
pub mod tract;

pub use cache::{entry_weight, CacheOptions, CacheStats, Cached};
pub use embedder::{Embedder, Vector};
pub use error::EmbedError;
pub use local::{ModelOptions, TractClip};
pub use remote::{RemoteClip, RemoteOptions};
