//! Schema handling: the cached view of which classes are clip-managed, and the translation of
//! multi2vec-clip classes to and from the form an unmodified Weaviate stores.

mod cache;
pub mod rest;
pub mod translate;
pub mod validate;
mod view;

pub use cache::SchemaCache;

pub use view::{number, ClassView, ClipSettings, ClipTarget, SchemaView, MODULE};
