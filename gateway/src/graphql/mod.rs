//! GraphQL: `nearText` / `nearImage` / hybrid queries of clip-managed classes, answered as
//! Weaviate with the multi2vec-clip module would, by an unmodified Weaviate (spec §1–§4, §10).
//!
//! Three steps (ARCHITECTURE.md):
//! 1. [`plan`] (pure): parse, validate as Weaviate does (unknown arguments, literal types,
//!    resolver checks in Weaviate's order and wording), list the edits and the inputs;
//! 2. [`embed`] (I/O): one batched text call and one image call to the `Embedder`, move objects
//!    fetched with the caller's credentials;
//! 3. [`rewrite`] (pure): Weaviate's arithmetic, then splice `nearVector` literals into the text.
//!
//! ## Why `apollo-parser` and not `graphql-parser`
//! `graphql-parser` builds an AST without positions for arguments or values and can only print
//! the whole document back, normalized. The gateway needs the opposite: exact line/column of an
//! argument name (`Unknown argument` errors, spec §1.4) and of a value (literal errors, §1.5) and
//! of a field (resolver errors, §2.1), and a forwarded document that differs from the client's
//! only in the rewritten arguments — comments, formatting, other fields and their arguments
//! reach Weaviate untouched, so every error Weaviate reports about them points at the client's
//! own positions. `apollo-parser` is lossless (a concrete syntax tree with byte ranges for every
//! node, error-tolerant, with a recursion limit), so the rewrite replaces just the argument's
//! byte range with new text.

pub mod embed;
pub mod errors;
pub mod handler;
pub mod input_types;
pub mod limits;
pub mod literal;
pub mod plan;
pub mod rewrite;
pub mod validate;

pub use handler::{graphql, graphql_batch, routes};
