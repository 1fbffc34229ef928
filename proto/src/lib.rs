//! Weaviate's gRPC v1 messages and service (`weaviate.v1`), as far as clipgate needs them.
//!
//! The `.proto` files under `proto/weaviate/v1/` are clipgate's own subset written from
//! `shared/spec/weaviate-multi2vec-clip.md` §8: field numbers and types are Weaviate's, messages and
//! fields clipgate never reads are left out. Decoding with these types therefore DROPS fields they do
//! not declare: the gateway only decodes the sub-messages it rewrites and splices everything else at
//! the wire level (`gateway/src/grpc/wire.rs`).

/// The `weaviate.v1` package.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("weaviate.v1");
}

/// gRPC method paths of `weaviate.v1.Weaviate` that clipgate treats specially.
pub mod paths {
    /// `Search`: near_text / near_image / hybrid rewriting.
    pub const SEARCH: &str = "/weaviate.v1.Weaviate/Search";
    /// `Aggregate`: near_text / near_image rewriting.
    pub const AGGREGATE: &str = "/weaviate.v1.Weaviate/Aggregate";
    /// `BatchObjects`: vectorization on import.
    pub const BATCH_OBJECTS: &str = "/weaviate.v1.Weaviate/BatchObjects";
    /// The standard health service's `Check`.
    pub const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
}
