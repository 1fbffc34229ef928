//! clipgate: a drop-in Weaviate gateway that emulates the multi2vec-clip module.
//!
//! Request path (see ARCHITECTURE.md): plan (pure) → embed (I/O through the `Embedder`) →
//! rewrite (pure) → forward to an unmodified Weaviate.

pub mod arithmetic;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod front;
pub mod graphql;
pub mod grpc;
pub mod import;
pub mod memo;
pub mod meta;
pub mod observability;
pub mod proxy;
pub mod schema;
pub mod server;
pub mod upstream;
