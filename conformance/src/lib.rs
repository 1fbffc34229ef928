//! The conformance suite and an in-memory Weaviate double.

pub mod double;
pub mod suite;
