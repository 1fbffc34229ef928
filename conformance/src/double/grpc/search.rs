//! `Search`: the gRPC form of `Get`, executed by the same search code as GraphQL.
//!
//! Spec §8: near operators are optional fields (not a oneof); `near_text` / `near_image` fail on a
//! Weaviate without a vectorizer (§1.4); hybrid alpha comes from `alpha_param` (default 0.75) when
//! `use_alpha_param` is set, else from the deprecated `alpha` as-is; hybrid's vector is
//! `vectors[0]` > `vector_bytes` > `vector` > `near_vector`. Errors keep the GraphQL `Get`
//! prefixes (the traverser is shared in Weaviate).

use weaviate_proto::v1::{
    hybrid, vectors::VectorType, Hybrid, MetadataRequest, MetadataResult, PropertiesResult,
    SearchReply, SearchRequest, SearchResult, Vectors,
};

use super::near::{self, f32s_le, f32s_to_le, no_vectorizer};
use super::{filters, properties, GrpcError};
use crate::double::graphql::exec::get_error;
use crate::double::search::{self, Hit, HybridSearch, QueryVector, SearchParams, VectorSearch};
use crate::double::store::Db;
use crate::double::vector::{certainty_from_distance, Metric};

/// Weaviate's `QUERY_DEFAULTS_LIMIT`.
const DEFAULT_LIMIT: usize = 10;

fn unsupported(what: &str) -> GrpcError {
    GrpcError::msg(format!(
        "the Weaviate double does not support {what} over gRPC"
    ))
}

/// Runs one `SearchRequest` (the caller has authorized the collection).
pub fn search(db: &Db, req: &SearchRequest) -> Result<SearchReply, GrpcError> {
    let collection = req.collection.as_str();
    if req.near_text.is_some() {
        return Err(no_vectorizer(collection, "nearText"));
    }
    if req.near_image.is_some() {
        return Err(no_vectorizer(collection, "nearImage"));
    }
    let searching = req.near_vector.is_some()
        || req.near_object.is_some()
        || req.hybrid_search.is_some()
        || req.bm25_search.is_some();
    if !req.sort_by.is_empty() {
        return Err(if searching {
            GrpcError::msg("sorting cannot be combined with search")
        } else {
            unsupported("sort_by")
        });
    }
    if req.group_by.is_some() {
        return Err(unsupported("group_by"));
    }
    if req.bm25_search.is_some() {
        return Err(unsupported("bm25_search"));
    }
    if !req.after.is_empty() || req.autocut > 0 {
        return Err(unsupported("after / autocut"));
    }
    let class = db
        .class(collection)
        .ok_or_else(|| GrpcError::msg(format!("class {collection} not found")))?;
    let info = &class.info;
    let filter = req.filters.as_ref().map(filters::filter).transpose()?;
    let tenant = Some(req.tenant.as_str()).filter(|t| !t.is_empty());
    let offset = req.offset as usize;
    let explicit_limit = (req.limit > 0).then_some(req.limit as usize);

    let vector = match (&req.near_vector, &req.near_object) {
        (Some(_), Some(_)) => {
            return Err(GrpcError::msg("explorer: get class: vectorize params: found both 'nearVector' and 'nearObject' parameters which are conflicting, choose one instead"))
        }
        (Some(nv), None) => Some(near::near_vector(nv)?),
        (None, Some(no)) => Some(near::near_object(no)?),
        (None, None) => None,
    };

    if req.metadata.as_ref().is_some_and(|m| m.certainty) {
        let target = vector
            .as_ref()
            .and_then(|v| v.targets.first())
            .map(String::as_str);
        if let Some(m) = info.metric(target).filter(|m| *m != Metric::Cosine) {
            return Err(GrpcError::msg(
                search::SearchError::CertaintyNotCosine(m).to_string(),
            ));
        }
    }

    let mut scores: Vec<f32> = Vec::new();
    let hits: Vec<Hit> = if let Some(vs) = &vector {
        let limit = match explicit_limit {
            Some(l) => Some(l),
            None if vs.certainty.is_some() || vs.distance.is_some() => None,
            None => Some(DEFAULT_LIMIT),
        };
        let params = SearchParams {
            tenant,
            filter: filter.as_ref(),
            vector: Some(vs),
            offset,
            limit,
        };
        search::search(db, collection, &params).map_err(|e| GrpcError::msg(get_error(e)))?
    } else if let Some(h) = &req.hybrid_search {
        let parsed = parse_hybrid(collection, h)?;
        let params = SearchParams {
            tenant,
            filter: filter.as_ref(),
            vector: None,
            offset,
            limit: Some(explicit_limit.unwrap_or(DEFAULT_LIMIT)),
        };
        let hs = HybridSearch {
            query: &h.query,
            alpha: parsed.alpha,
            vector: parsed.vector.as_ref(),
            max_vector_distance: parsed.max_vector_distance,
            properties: &h.properties,
            ranked: h.fusion_type == hybrid::FusionType::Ranked as i32,
        };
        let scored = search::hybrid(db, collection, &params, &hs)
            .map_err(|e| GrpcError::msg(get_error(e)))?;
        scored
            .into_iter()
            .map(|(hit, s)| {
                scores.push(s);
                Hit {
                    distance: None,
                    ..hit
                }
            })
            .collect()
    } else {
        let params = SearchParams {
            tenant,
            filter: filter.as_ref(),
            vector: None,
            offset,
            limit: Some(explicit_limit.unwrap_or(DEFAULT_LIMIT)),
        };
        search::search(db, collection, &params).map_err(|e| GrpcError::msg(get_error(e)))?
    };

    let results = hits
        .iter()
        .enumerate()
        .map(|(i, hit)| SearchResult {
            properties: Some(PropertiesResult {
                non_ref_props: Some(properties::non_ref_props(
                    info,
                    &hit.object,
                    req.properties.as_ref(),
                )),
                target_collection: info.name.clone(),
                ..PropertiesResult::default()
            }),
            metadata: Some(metadata(hit, scores.get(i).copied(), req.metadata.as_ref())),
        })
        .collect();
    Ok(SearchReply {
        took: 0.0,
        results,
        group_by_results: Vec::new(),
    })
}

/// The parts of a gRPC `Hybrid` the double's hybrid search takes.
struct ParsedHybrid {
    alpha: f32,
    vector: Option<VectorSearch>,
    max_vector_distance: Option<f32>,
}

fn parse_hybrid(collection: &str, h: &Hybrid) -> Result<ParsedHybrid, GrpcError> {
    let alpha = if h.use_alpha_param {
        h.alpha_param.unwrap_or(0.75)
    } else {
        h.alpha
    };
    let has_vector = !h.vectors.is_empty() || !h.vector_bytes.is_empty() || !h.vector.is_empty();
    if h.near_text.is_some() {
        if h.near_vector.is_some() {
            return Err(GrpcError::msg(
                "cannot combine nearText and nearVector in hybrid search",
            ));
        }
        if has_vector {
            return Err(GrpcError::msg(
                "cannot combine nearText and query in hybrid search",
            ));
        }
    }
    if h.near_vector.is_some() && has_vector {
        return Err(GrpcError::msg(
            "cannot combine nearVector and vector in hybrid search",
        ));
    }
    let direct = if let Some(first) = h.vectors.first() {
        Some(near::single(first)?)
    } else if !h.vector_bytes.is_empty() {
        Some(f32s_le(&h.vector_bytes)?)
    } else if !h.vector.is_empty() {
        Some(h.vector.clone())
    } else {
        None
    };
    let vector = match (direct, &h.near_vector) {
        (Some(v), _) => {
            let mut vs = VectorSearch::new(QueryVector::Vector(v));
            near::apply_targets(&mut vs, h.targets.as_ref(), &h.target_vectors)?;
            Some(vs)
        }
        (None, Some(nv)) => {
            let mut vs = near::near_vector(nv)?;
            if vs.targets.is_empty() {
                near::apply_targets(&mut vs, h.targets.as_ref(), &h.target_vectors)?;
            }
            Some(vs)
        }
        (None, None) => None,
    };
    if alpha > 0.0 && vector.is_none() {
        if h.near_text.is_some() {
            return Err(GrpcError::msg(format!("explorer: get class: vectorize search vector: could not vectorize input for collection {collection} with search-type nearText. Make sure a vectorizer module is configured for this collection")));
        }
        return Err(GrpcError::msg(format!(
            "VectorFromInput was called without vectorizer on class {collection} for input {}",
            h.query
        )));
    }
    let max_vector_distance = h.threshold.map(|hybrid::Threshold::VectorDistance(d)| d);
    Ok(ParsedHybrid {
        alpha,
        vector,
        max_vector_distance,
    })
}

fn vectors_entry(name: &str, v: &[f32]) -> Vectors {
    Vectors {
        name: name.to_owned(),
        index: 0,
        vector_bytes: f32s_to_le(v),
        r#type: VectorType::SingleFp32 as i32,
    }
}

/// `MetadataResult`: the id always (as text and as 16 big-endian bytes, which the Python client
/// reads), everything else when requested, with the `*_present` flags.
fn metadata(hit: &Hit, score: Option<f32>, req: Option<&MetadataRequest>) -> MetadataResult {
    let o = &hit.object;
    let mut m = MetadataResult {
        id: o.id.to_string(),
        id_as_bytes: o.id.as_bytes().to_vec(),
        ..MetadataResult::default()
    };
    let Some(req) = req else {
        return m;
    };
    if let Some(d) = hit.distance {
        if req.distance {
            m.distance = d;
            m.distance_present = true;
        }
        if req.certainty {
            m.certainty = certainty_from_distance(d);
            m.certainty_present = true;
        }
    }
    if let Some(s) = score {
        if req.score {
            m.score = s;
            m.score_present = true;
        }
        if req.explain_score {
            m.explain_score = format!("(hybrid) Document {} contributed {s} to the score", o.id);
            m.explain_score_present = true;
        }
    }
    if req.creation_time_unix {
        m.creation_time_unix = o.creation_time_unix;
        m.creation_time_unix_present = true;
    }
    if req.last_update_time_unix {
        m.last_update_time_unix = o.last_update_time_unix;
        m.last_update_time_unix_present = true;
    }
    if req.is_consistent {
        m.is_consistent = Some(true);
        m.is_consistent_present = true;
    }
    if req.vector {
        if let Some(v) = &o.vector {
            m.vector_bytes = f32s_to_le(v);
        }
        m.vectors = o
            .vectors
            .iter()
            .map(|(name, v)| vectors_entry(name, v))
            .collect();
    } else {
        m.vectors = req
            .vectors
            .iter()
            .filter_map(|name| o.vectors.get(name).map(|v| vectors_entry(name, v)))
            .collect();
    }
    m
}
