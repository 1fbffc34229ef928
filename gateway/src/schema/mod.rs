//! Schema handling: the cached view of which classes are clip-managed, and the translation of
//! multi2vec-clip classes to and from the form an unmodified Weaviate stores.

mod view;

pub use view::{number, ClassView, ClipSettings, ClipTarget, SchemaView, MODULE};
