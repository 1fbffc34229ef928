//! `Search` and `Aggregate`: `near_text` / `near_image` on a clip-managed collection become
//! `near_vector`, a hybrid `query` (alpha > 0, no vector) gains its vector and a hybrid
//! `near_text` becomes a hybrid `near_vector` (spec §8, issue 6).
//!
//! The request is checked and the vectors are computed exactly as for GraphQL: the gRPC
//! arguments are read into the GraphQL argument shape and go through the same resolver checks
//! (`graphql::validate::class_field`), the same embedding and move-object lookups
//! (`graphql::embed`), the same arithmetic. Only the output differs: the message is spliced at
//! the wire level (`wire.rs`), so every field the gateway does not rewrite reaches Weaviate with
//! its bytes unchanged.

use prost::Message;
use weaviate_proto::v1::{
    near_text_search, vectors::VectorType, AggregateRequest, Hybrid as HybridMsg, NearImageSearch,
    NearTextSearch, SearchRequest, VectorForTarget, Vectors,
};

use super::wire::{self, Field, WireError};
use crate::graphql::embed::{concepts_mean, near_vectors, text_vector, Inputs, Needs, Scope};
use crate::graphql::errors::Root;
use crate::graphql::limits::{self, Limits};
use crate::graphql::literal::Value;
use crate::graphql::validate::{self, Edit, HybridSource, NEAR_IMAGE, NEAR_TEXT};
use crate::import::managed_class;
use crate::schema::SchemaView;

/// Which request is rewritten; the field numbers differ (spec §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Search,
    Aggregate,
}

impl Kind {
    fn numbers(self) -> Numbers {
        match self {
            Kind::Search => Numbers {
                hybrid: 41,
                near_vector: 43,
                near_object: 44,
                near_text: 45,
                near_image: 46,
            },
            Kind::Aggregate => Numbers {
                hybrid: 41,
                near_vector: 42,
                near_object: 43,
                near_text: 44,
                near_image: 45,
            },
        }
    }

    fn root(self) -> Root {
        match self {
            Kind::Search => Root::Get,
            Kind::Aggregate => Root::Aggregate,
        }
    }
}

struct Numbers {
    hybrid: u32,
    near_vector: u32,
    near_object: u32,
    near_text: u32,
    near_image: u32,
}

/// Field numbers inside the messages (spec §8).
mod field {
    pub const NEAR_VECTOR_TARGET_VECTORS: u32 = 5;
    pub const NEAR_VECTOR_TARGETS: u32 = 6;
    pub const NEAR_VECTOR_FOR_TARGETS: u32 = 8;
    pub const NEAR_VECTOR_VECTORS: u32 = 9;
    pub const NEAR_VECTOR_SELECTION: u32 = 10;
    pub const HYBRID_NEAR_TEXT: u32 = 8;
    pub const HYBRID_NEAR_VECTOR: u32 = 9;
    pub const HYBRID_VECTORS: u32 = 21;
}

/// Why a request is refused: the message of the gRPC status (code Unknown, as Weaviate returns
/// its traverser errors, spec §8).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SearchError {
    #[error("{0}")]
    Malformed(#[from] WireError),
    #[error("{0}")]
    Refused(String),
}

/// What to do with one request.
#[derive(Debug)]
pub enum Planned {
    /// Nothing for the module: forward the original bytes.
    Forward,
    Rewrite(Plan),
}

/// A request to rewrite, with everything rendering needs besides the computed inputs.
#[derive(Debug)]
pub struct Plan {
    kind: Kind,
    message: Vec<u8>,
    fields: Vec<Field>,
    class: String,
    tenant: Option<String>,
    /// The module argument's field number and the GraphQL-shaped edit decided for it.
    edits: Vec<(u32, Edit)>,
}

/// Whether the request carries a search the module may handle (near_text, near_image, hybrid);
/// read without decoding, so that other requests skip the schema lookup.
pub fn mentions_module_search(kind: Kind, message: &[u8]) -> Result<bool, WireError> {
    let n = kind.numbers();
    Ok(wire::fields(message)?
        .iter()
        .any(|f| [n.near_text, n.near_image, n.hybrid].contains(&f.number)))
}

/// Decides the rewrite of `message` (a `SearchRequest` or `AggregateRequest`) against `view`;
/// searches over the per-search limits (concepts, text size, move objects) are refused.
pub fn plan(
    kind: Kind,
    message: &[u8],
    view: &SchemaView,
    limits: &Limits,
) -> Result<Planned, SearchError> {
    let fields = wire::fields(message)?;
    let n = kind.numbers();
    let decoded = Decoded::read(kind, message)?;
    // Classes without the module are answered by Weaviate as Weaviate with the module would.
    let Some(class) = managed_class(view, &decoded.collection) else {
        return Ok(Planned::Forward);
    };
    if decoded.near_vector_bounds == (true, true) {
        return Err(SearchError::Refused(
            "near_vector: cannot provide distance and certainty".into(),
        ));
    }
    let mut args: Vec<(String, Value)> = Vec::new();
    if let Some(nt) = &decoded.near_text {
        args.push((NEAR_TEXT.into(), near_text_value(nt, true)?));
    }
    if let Some(ni) = &decoded.near_image {
        if ni.certainty.is_some() && ni.distance.is_some() {
            return Err(SearchError::Refused(
                "near_image: cannot provide distance and certainty".into(),
            ));
        }
        args.push((NEAR_IMAGE.into(), near_image_value(ni)));
    }
    if let Some(h) = &decoded.hybrid {
        if let Some(value) = hybrid_value(h)? {
            args.push(("hybrid".into(), value));
        }
    }
    if wire::last(message, &fields, n.near_vector).is_some() {
        args.push((
            "nearVector".into(),
            presence_object(&decoded.near_vector_bounds),
        ));
    }
    if wire::last(message, &fields, n.near_object).is_some() {
        args.push((
            "nearObject".into(),
            presence_object(&decoded.near_object_bounds),
        ));
    }
    if let Some(limit) = decoded.object_limit {
        args.push(("objectLimit".into(), Value::Int(limit.to_string())));
    }
    if args.is_empty() {
        return Ok(Planned::Forward);
    }
    let edits = validate::class_field(kind.root(), class, &args).map_err(SearchError::Refused)?;
    let mut numbered = Vec::new();
    for (name, edit) in edits {
        limits::check_edit(&edit, limits).map_err(|e| SearchError::Refused(e.to_string()))?;
        let number = match name.as_str() {
            NEAR_TEXT => n.near_text,
            NEAR_IMAGE => n.near_image,
            _ => n.hybrid,
        };
        numbered.push((number, edit));
    }
    if numbered.is_empty() {
        return Ok(Planned::Forward);
    }
    Ok(Planned::Rewrite(Plan {
        kind,
        message: message.to_vec(),
        fields,
        class: class.name.clone(),
        tenant: decoded.tenant.filter(|t| !t.is_empty()),
        edits: numbered,
    }))
}

impl Plan {
    fn scope(&self) -> Scope<'_> {
        Scope {
            class: Some(&self.class),
            tenant: self.tenant.as_deref(),
        }
    }

    /// What must be embedded or fetched.
    pub fn needs(&self) -> Needs {
        let mut needs = Needs::default();
        for (_, edit) in &self.edits {
            needs.add_edit(edit, self.scope());
        }
        needs
    }

    /// The request to forward, or the error Weaviate would report.
    pub fn render(&self, inputs: &Inputs) -> Result<Vec<u8>, SearchError> {
        let n = self.kind.numbers();
        let root = self.kind.root();
        let mut drop = Vec::new();
        let mut append = Vec::new();
        for (number, edit) in &self.edits {
            let original = wire::last(&self.message, &self.fields, *number).unwrap_or_default();
            match edit {
                Edit::Remove => drop.push(*number),
                Edit::Near(near) => {
                    let vectors = near_vectors(self.scope(), near, inputs)
                        .map_err(|m| SearchError::Refused(root.vectorize_error(&m)))?;
                    let carried = carried_fields(*number == n.near_text, original)?;
                    let near_vector = near_vector_message(&near.targets, &vectors, &carried);
                    drop.push(*number);
                    wire::put_len_field(&mut append, n.near_vector, &near_vector);
                }
                Edit::Hybrid(hybrid) => {
                    let hybrid_fields = wire::fields(original)?;
                    let (hybrid_drop, hybrid_append) = match &hybrid.source {
                        HybridSource::Query(query) => {
                            let vector = concepts_mean(std::slice::from_ref(query), inputs)
                                .map_err(|e| {
                                    SearchError::Refused(root.hybrid_vectorize_error(&format!(
                                        "remote client vectorize: {e}"
                                    )))
                                })?;
                            let mut out = Vec::new();
                            wire::put_len_field(
                                &mut out,
                                field::HYBRID_VECTORS,
                                &single_vectors(&vector).encode_to_vec(),
                            );
                            (vec![], out)
                        }
                        HybridSource::SearchNearText { recipe, .. } => {
                            let vector =
                                text_vector(self.scope(), recipe, None, inputs).map_err(|m| {
                                    SearchError::Refused(root.hybrid_vectorize_error(&m))
                                })?;
                            // Weaviate forwards neither certainty nor distance of a hybrid
                            // near_text (spec §8).
                            let near_vector = near_vector_message(&[None], &[vector], &[]);
                            let mut out = Vec::new();
                            wire::put_len_field(&mut out, field::HYBRID_NEAR_VECTOR, &near_vector);
                            (vec![field::HYBRID_NEAR_TEXT], out)
                        }
                    };
                    let new_hybrid =
                        wire::splice(original, &hybrid_fields, &hybrid_drop, &hybrid_append);
                    drop.push(*number);
                    wire::put_len_field(&mut append, n.hybrid, &new_hybrid);
                }
            }
        }
        Ok(wire::splice(&self.message, &self.fields, &drop, &append))
    }
}

/// The parts of the request the plan reads (a lossy decode: never re-encoded).
struct Decoded {
    collection: String,
    tenant: Option<String>,
    near_text: Option<NearTextSearch>,
    near_image: Option<NearImageSearch>,
    hybrid: Option<HybridMsg>,
    near_vector_bounds: (bool, bool),
    near_object_bounds: (bool, bool),
    object_limit: Option<u32>,
}

impl Decoded {
    fn read(kind: Kind, message: &[u8]) -> Result<Self, WireError> {
        let malformed = |_| WireError("cannot decode the request");
        Ok(match kind {
            Kind::Search => {
                let r = SearchRequest::decode(message).map_err(malformed)?;
                Decoded {
                    collection: r.collection,
                    tenant: Some(r.tenant),
                    near_text: r.near_text,
                    near_image: r.near_image,
                    hybrid: r.hybrid_search,
                    near_vector_bounds: r
                        .near_vector
                        .map(|v| (v.certainty.is_some(), v.distance.is_some()))
                        .unwrap_or_default(),
                    near_object_bounds: r
                        .near_object
                        .map(|v| (v.certainty.is_some(), v.distance.is_some()))
                        .unwrap_or_default(),
                    object_limit: None,
                }
            }
            Kind::Aggregate => {
                use weaviate_proto::v1::aggregate_request::Search;
                let r = AggregateRequest::decode(message).map_err(malformed)?;
                let mut d = Decoded {
                    collection: r.collection,
                    tenant: Some(r.tenant),
                    near_text: None,
                    near_image: None,
                    hybrid: None,
                    near_vector_bounds: (false, false),
                    near_object_bounds: (false, false),
                    object_limit: r.object_limit,
                };
                match r.search {
                    Some(Search::NearText(v)) => d.near_text = Some(v),
                    Some(Search::NearImage(v)) => d.near_image = Some(v),
                    Some(Search::Hybrid(v)) => d.hybrid = Some(v),
                    Some(Search::NearVector(v)) => {
                        d.near_vector_bounds = (v.certainty.is_some(), v.distance.is_some())
                    }
                    Some(Search::NearObject(v)) => {
                        d.near_object_bounds = (v.certainty.is_some(), v.distance.is_some())
                    }
                    None => {}
                }
                d
            }
        })
    }
}

fn float(x: f64) -> Value {
    Value::Float(format!("{x:?}"))
}

fn strings(items: &[String]) -> Value {
    Value::List(items.iter().cloned().map(Value::String).collect())
}

/// An object with `certainty` / `distance` present as sent (only presence matters to the
/// checks that look at other searches).
fn presence_object((certainty, distance): &(bool, bool)) -> Value {
    let mut fields = Vec::new();
    if *certainty {
        fields.push(("certainty".to_string(), float(0.5)));
    }
    if *distance {
        fields.push(("distance".to_string(), float(0.5)));
    }
    Value::Object(fields)
}

fn targets_value(
    target_vectors: &[String],
    targets: Option<&weaviate_proto::v1::Targets>,
) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if !target_vectors.is_empty() {
        out.push(("targetVectors".into(), strings(target_vectors)));
    }
    if let Some(t) = targets {
        out.push((
            "targets".into(),
            Value::Object(vec![("targetVectors".into(), strings(&t.target_vectors))]),
        ));
    }
    out
}

/// A `NearTextSearch` in GraphQL's `nearText` shape; move `uuids` become `objects: [{id}]` after
/// Weaviate's `uuid.Parse` (spec §8), whose error is returned raw.
fn near_text_value(nt: &NearTextSearch, with_objects: bool) -> Result<Value, SearchError> {
    let mut fields = vec![("concepts".to_string(), strings(&nt.query))];
    if let Some(c) = nt.certainty {
        fields.push(("certainty".into(), float(c)));
    }
    if let Some(d) = nt.distance {
        fields.push(("distance".into(), float(d)));
    }
    for (key, movement) in [("moveTo", &nt.move_to), ("moveAwayFrom", &nt.move_away)] {
        if let Some(m) = movement {
            fields.push((key.into(), move_value(m, with_objects)?));
        }
    }
    fields.extend(targets_value(&nt.target_vectors, nt.targets.as_ref()));
    Ok(Value::Object(fields))
}

fn move_value(m: &near_text_search::Move, with_objects: bool) -> Result<Value, SearchError> {
    let mut fields = vec![
        ("force".to_string(), float(f64::from(m.force))),
        ("concepts".to_string(), strings(&m.concepts)),
    ];
    if with_objects && !m.uuids.is_empty() {
        let mut objects = Vec::new();
        for id in &m.uuids {
            let parsed = parse_go_uuid(id).map_err(SearchError::Refused)?;
            objects.push(Value::Object(vec![("id".into(), Value::String(parsed))]));
        }
        fields.push(("objects".into(), Value::List(objects)));
    }
    Ok(Value::Object(fields))
}

/// Go's `uuid.Parse` accepts the canonical form, `urn:uuid:…`, `{…}` and 32 hex digits; its
/// errors are `invalid UUID length: N` and `invalid UUID format`.
fn parse_go_uuid(id: &str) -> Result<String, String> {
    match uuid::Uuid::parse_str(id) {
        Ok(u) => Ok(u.hyphenated().to_string()),
        Err(_) if ![32, 36, 38, 45].contains(&id.len()) => {
            Err(format!("invalid UUID length: {}", id.len()))
        }
        Err(_) => Err("invalid UUID format".to_string()),
    }
}

fn near_image_value(ni: &NearImageSearch) -> Value {
    let mut fields = vec![("image".to_string(), Value::String(ni.image.clone()))];
    if let Some(c) = ni.certainty {
        fields.push(("certainty".into(), float(c)));
    }
    if let Some(d) = ni.distance {
        fields.push(("distance".into(), float(d)));
    }
    fields.extend(targets_value(&ni.target_vectors, ni.targets.as_ref()));
    Value::Object(fields)
}

/// A `Hybrid` in GraphQL's `hybrid` shape, after gRPC's own checks (spec §8). `None` when there
/// is nothing for the module (no query and no near_text).
fn hybrid_value(h: &HybridMsg) -> Result<Option<Value>, SearchError> {
    let has_vector = !h.vectors.is_empty() || !h.vector_bytes.is_empty() || !h.vector.is_empty();
    if h.near_text.is_some() {
        if h.near_vector.is_some() {
            return Err(SearchError::Refused(
                "cannot combine nearText and nearVector in hybrid search".into(),
            ));
        }
        if has_vector {
            return Err(SearchError::Refused(
                "cannot combine nearText and query in hybrid search".into(),
            ));
        }
    }
    // gRPC alpha (spec §8): the deprecated `alpha` as-is unless `use_alpha_param`.
    let alpha = if h.use_alpha_param {
        h.alpha_param.map(f64::from).unwrap_or(0.75)
    } else {
        f64::from(h.alpha)
    };
    let mut fields = vec![
        ("query".to_string(), Value::String(h.query.clone())),
        ("alpha".to_string(), float(alpha)),
    ];
    if has_vector || h.near_vector.is_some() {
        fields.push(("vector".into(), Value::List(vec![float(0.0)])));
    }
    if let Some(nt) = &h.near_text {
        let near_text = near_text_value(nt, false)?;
        fields.push((
            "searches".into(),
            Value::List(vec![Value::Object(vec![(NEAR_TEXT.into(), near_text)])]),
        ));
    }
    if h.query.is_empty() && h.near_text.is_none() {
        return Ok(None);
    }
    Ok(Some(Value::Object(fields)))
}

/// The fields of the original search that `NearVector` carries, renumbered: certainty (2) and
/// distance (3) keep their numbers; deprecated `target_vectors`, `targets` and `selection` move
/// (NearTextSearch 6/7/8, NearImageSearch 4/5/6 → NearVector 5/6/10).
fn carried_fields(near_text: bool, original: &[u8]) -> Result<Vec<u8>, WireError> {
    let fields = wire::fields(original)?;
    let map: &[(u32, u32)] = if near_text {
        &[
            (2, 2),
            (3, 3),
            (6, field::NEAR_VECTOR_TARGET_VECTORS),
            (7, field::NEAR_VECTOR_TARGETS),
            (8, field::NEAR_VECTOR_SELECTION),
        ]
    } else {
        &[
            (2, 2),
            (3, 3),
            (4, field::NEAR_VECTOR_TARGET_VECTORS),
            (5, field::NEAR_VECTOR_TARGETS),
            (6, field::NEAR_VECTOR_SELECTION),
        ]
    };
    Ok(wire::renumbered(original, &fields, map))
}

/// A single f32 vector as Weaviate's gRPC bytes: little-endian f32s, no header (spec §8).
pub fn single_vectors(vector: &[f32]) -> Vectors {
    Vectors {
        name: String::new(),
        index: 0,
        vector_bytes: vector.iter().flat_map(|x| x.to_le_bytes()).collect(),
        r#type: VectorType::SingleFp32 as i32,
    }
}

/// A `NearVector` with the computed vector(s) and the carried fields: one target →
/// `vectors`; several → `vector_for_targets` in target order (spec §8 "Lossless rewrite").
fn near_vector_message(
    targets: &[Option<String>],
    vectors: &[Vec<f32>],
    carried: &[u8],
) -> Vec<u8> {
    let mut out = carried.to_vec();
    if targets.len() > 1 {
        for (target, vector) in targets.iter().zip(vectors) {
            let per_target = VectorForTarget {
                name: target.clone().unwrap_or_default(),
                vector_bytes: Vec::new(),
                vectors: vec![single_vectors(vector)],
            };
            wire::put_len_field(
                &mut out,
                field::NEAR_VECTOR_FOR_TARGETS,
                &per_target.encode_to_vec(),
            );
        }
    } else if let Some(vector) = vectors.first() {
        wire::put_len_field(
            &mut out,
            field::NEAR_VECTOR_VECTORS,
            &single_vectors(vector).encode_to_vec(),
        );
    }
    out
}
