//! Brute-force vector search, filtering, counting and cross-class exploration over the store.
//!
//! Spec §3.3: exact distances, certainty = 1 − d/2 (cosine only), results dropped when
//! `1 − d/2 < certainty` or `d > distance`; ordered by distance ascending, ties by insertion order.
//! Non-vector listing follows Weaviate's storage order: by uuid without a filter (the object
//! bucket), by insertion (doc id) with a filter (the inverted index).

use std::collections::BTreeMap;

use uuid::Uuid;

use super::filter::{Filter, FilterError};
use super::store::{ClassData, Db, ObjectError, StoredObject};
use super::vector::{certainty_from_distance, Metric};

/// Weaviate's QUERY_MAXIMUM_RESULTS: the cap of an "unlimited" search.
pub const MAX_RESULTS: usize = 10_000;

/// The vector part of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSearch {
    pub query: QueryVector,
    /// Requested target vectors; empty = the class's only vector.
    pub targets: Vec<String>,
    pub combination: Combination,
    /// Weights for `manualWeights`, by target.
    pub weights: BTreeMap<String, f32>,
    /// `None` when absent or 0 (§3.3: certainty 0 means "not provided").
    pub certainty: Option<f32>,
    pub distance: Option<f32>,
}

impl VectorSearch {
    pub fn new(query: QueryVector) -> Self {
        Self {
            query,
            targets: Vec::new(),
            combination: Combination::Minimum,
            weights: BTreeMap::new(),
            certainty: None,
            distance: None,
        }
    }

    /// The certainty threshold, a distance converted as Aggregate does (§2.6).
    pub fn certainty_or_converted_distance(&self) -> Option<f32> {
        self.certainty
            .or(self.distance.map(certainty_from_distance))
    }

    fn keeps(&self, distance: f32) -> bool {
        if let Some(c) = self.certainty {
            if certainty_from_distance(distance) < c {
                return false;
            }
        }
        match self.distance {
            Some(max) => distance <= max + 1e-6,
            None => true,
        }
    }
}

/// Where the query vector comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryVector {
    /// One vector for every target.
    Vector(Vec<f32>),
    /// `vectorPerTarget`.
    PerTarget(BTreeMap<String, Vec<f32>>),
    /// `nearObject`: the stored vector(s) of another object (class from a beacon, if any).
    Object { id: Uuid, class: Option<String> },
}

/// How the distances of several target vectors combine (`targets.combinationMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combination {
    Minimum,
    Average,
    Sum,
    ManualWeights,
}

impl Combination {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "minimum" => Self::Minimum,
            "average" => Self::Average,
            "sum" => Self::Sum,
            "manualWeights" => Self::ManualWeights,
            _ => return None,
        })
    }
}

/// Search parameters for one class.
#[derive(Debug, Clone, Default)]
pub struct SearchParams<'a> {
    pub tenant: Option<&'a str>,
    pub filter: Option<&'a Filter>,
    pub vector: Option<&'a VectorSearch>,
    pub offset: usize,
    /// `None` = unlimited (capped at [`MAX_RESULTS`]).
    pub limit: Option<usize>,
}

/// One result.
#[derive(Debug, Clone)]
pub struct Hit {
    pub object: StoredObject,
    /// Set for vector searches.
    pub distance: Option<f32>,
}

/// Search failures; messages without the GraphQL layer's prefixes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SearchError {
    #[error("class {0} not found")]
    ClassNotFound(String),
    #[error("{0}")]
    Tenant(String),
    #[error("invalid 'where' filter: {0}")]
    Filter(#[from] FilterError),
    #[error("multiple vectorizers configuration found, please specify target vector name")]
    TargetRequired,
    #[error("target vector \"{target}\" does not exist in class {class}")]
    UnknownTarget { class: String, target: String },
    #[error("class {0} has no vector index to search")]
    NoVectorIndex(String),
    #[error("vectorPerTarget has no vector for target \"{0}\"")]
    MissingTargetVector(String),
    #[error("vector lengths don't match: {query} vs {stored}")]
    Dimensions { query: usize, stored: usize },
    #[error("nearObject: object with id {0} not found")]
    ObjectNotFound(Uuid),
    #[error("nearObject: object with id {0} has no vector for this search")]
    ObjectWithoutVector(Uuid),
    #[error("multiple target vectors are not supported with certainty")]
    CertaintyWithTargets,
    #[error(
        "can't compute and return certainty when vector index is configured with {0} distance"
    )]
    CertaintyNotCosine(Metric),
    #[error("weight for target {0} is not provided")]
    MissingWeight(String),
    #[error("vector search across classes not possible: found different distance metrics: {0}")]
    MixedMetrics(String),
}

impl From<ObjectError> for SearchError {
    fn from(e: ObjectError) -> Self {
        Self::Tenant(e.to_string())
    }
}

/// Resolved targets of a class: `None` = legacy index.
fn resolve_targets(
    class: &ClassData,
    vs: &VectorSearch,
) -> Result<Vec<Option<String>>, SearchError> {
    let info = &class.info;
    let mut requested = vs.targets.clone();
    if requested.is_empty() {
        if let QueryVector::PerTarget(map) = &vs.query {
            requested = map.keys().cloned().collect();
        }
    }
    if requested.is_empty() {
        if info.legacy_metric.is_some() {
            return Ok(vec![None]);
        }
        return match info.named.as_slice() {
            [(only, _)] => Ok(vec![Some(only.clone())]),
            [] => Err(SearchError::NoVectorIndex(info.name.clone())),
            _ => Err(SearchError::TargetRequired),
        };
    }
    requested
        .into_iter()
        .map(|t| {
            if info.named.iter().any(|(n, _)| *n == t) {
                Ok(Some(t))
            } else {
                Err(SearchError::UnknownTarget {
                    class: info.name.clone(),
                    target: t,
                })
            }
        })
        .collect()
}

/// The query vector of each target.
fn query_vectors(
    db: &Db,
    class: &ClassData,
    tenant: Option<&str>,
    vs: &VectorSearch,
    targets: &[Option<String>],
) -> Result<Vec<Vec<f32>>, SearchError> {
    match &vs.query {
        QueryVector::Vector(v) => Ok(targets.iter().map(|_| v.clone()).collect()),
        QueryVector::PerTarget(map) => targets
            .iter()
            .map(|t| {
                let name = t.clone().unwrap_or_default();
                map.get(&name)
                    .cloned()
                    .ok_or(SearchError::MissingTargetVector(name))
            })
            .collect(),
        QueryVector::Object {
            id,
            class: beacon_class,
        } => {
            let in_class = beacon_class.as_deref().unwrap_or(&class.info.name);
            let obj = db
                .find_object(Some(in_class), *id, tenant)
                .or_else(|| db.find_object(None, *id, tenant))
                .ok_or(SearchError::ObjectNotFound(*id))?;
            targets
                .iter()
                .map(|t| {
                    obj.vector_for(t.as_deref())
                        .map(<[f32]>::to_vec)
                        .ok_or(SearchError::ObjectWithoutVector(*id))
                })
                .collect()
        }
    }
}

/// Searches one class.
pub fn search(
    db: &Db,
    class_name: &str,
    params: &SearchParams<'_>,
) -> Result<Vec<Hit>, SearchError> {
    let class = db
        .class(class_name)
        .ok_or_else(|| SearchError::ClassNotFound(class_name.into()))?;
    class.check_tenant(params.tenant)?;
    if let Some(f) = params.filter {
        f.check(&class.info)?;
    }
    let candidates = class
        .objects_of(params.tenant)
        .filter(|o| params.filter.is_none_or(|f| f.matches(&class.info, o)));
    let limit = params.limit.unwrap_or(MAX_RESULTS).min(MAX_RESULTS);

    let Some(vs) = params.vector else {
        let mut all: Vec<&StoredObject> = candidates.collect();
        if params.filter.is_some() {
            all.sort_by_key(|o| o.seq);
        } else {
            all.sort_by_key(|o| o.id);
        }
        return Ok(all
            .into_iter()
            .skip(params.offset)
            .take(limit)
            .map(|o| Hit {
                object: o.clone(),
                distance: None,
            })
            .collect());
    };

    let targets = resolve_targets(class, vs)?;
    let metrics: Vec<Metric> = targets
        .iter()
        .map(|t| class.info.metric(t.as_deref()).unwrap_or(Metric::Cosine))
        .collect();
    if vs.certainty.is_some() {
        if targets.len() > 1 {
            return Err(SearchError::CertaintyWithTargets);
        }
        if let Some(m) = metrics.iter().find(|m| **m != Metric::Cosine) {
            return Err(SearchError::CertaintyNotCosine(*m));
        }
    }
    if vs.combination == Combination::ManualWeights {
        for t in targets.iter().flatten() {
            if !vs.weights.contains_key(t) {
                return Err(SearchError::MissingWeight(t.clone()));
            }
        }
    }
    let queries = query_vectors(db, class, params.tenant, vs, &targets)?;

    let mut scored: Vec<(f32, &StoredObject)> = Vec::new();
    'objects: for obj in candidates {
        let mut distances = Vec::with_capacity(targets.len());
        for ((target, query), metric) in targets.iter().zip(&queries).zip(&metrics) {
            let Some(stored) = obj.vector_for(target.as_deref()) else {
                continue 'objects;
            };
            if stored.len() != query.len() {
                return Err(SearchError::Dimensions {
                    query: query.len(),
                    stored: stored.len(),
                });
            }
            distances.push(metric.distance(query, stored));
        }
        let d = combine(vs, &targets, &distances);
        if vs.keeps(d) {
            scored.push((d, obj));
        }
    }
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.seq.cmp(&b.1.seq)));
    Ok(scored
        .into_iter()
        .skip(params.offset)
        .take(limit)
        .map(|(d, o)| Hit {
            object: o.clone(),
            distance: Some(d),
        })
        .collect())
}

fn combine(vs: &VectorSearch, targets: &[Option<String>], distances: &[f32]) -> f32 {
    match vs.combination {
        Combination::Minimum => distances.iter().copied().fold(f32::INFINITY, f32::min),
        Combination::Sum => distances.iter().sum(),
        Combination::Average => distances.iter().sum::<f32>() / distances.len().max(1) as f32,
        Combination::ManualWeights => targets
            .iter()
            .zip(distances)
            .map(|(t, d)| {
                d * t
                    .as_ref()
                    .and_then(|t| vs.weights.get(t))
                    .copied()
                    .unwrap_or(1.0)
            })
            .sum(),
    }
}

/// Counts the objects of an Aggregate: filter, then (for a vector search) the `object_limit`
/// nearest objects whose certainty passes (§2.6: a distance is converted to a certainty).
pub fn count(
    db: &Db,
    class_name: &str,
    tenant: Option<&str>,
    filter: Option<&Filter>,
    vector: Option<&VectorSearch>,
    object_limit: Option<usize>,
) -> Result<usize, SearchError> {
    let converted = vector.map(|vs| {
        let mut vs = vs.clone();
        vs.certainty = vs.certainty_or_converted_distance();
        vs.distance = None;
        vs
    });
    let params = SearchParams {
        tenant,
        filter,
        vector: converted.as_ref(),
        offset: 0,
        limit: if vector.is_some() { object_limit } else { None },
    };
    if vector.is_none() {
        let class = db
            .class(class_name)
            .ok_or_else(|| SearchError::ClassNotFound(class_name.into()))?;
        class.check_tenant(tenant)?;
        if let Some(f) = filter {
            f.check(&class.info)?;
        }
        return Ok(class
            .objects_of(tenant)
            .filter(|o| filter.is_none_or(|f| f.matches(&class.info, o)))
            .count());
    }
    Ok(search(db, class_name, &params)?.len())
}

/// `Explore`: a vector search across every class that can take part (not multi-tenant, has the
/// requested target, vectors of the query's length), merged by distance.
pub fn explore(
    db: &Db,
    vs: &VectorSearch,
    offset: usize,
    limit: usize,
    allowed: impl Fn(&str) -> bool,
) -> Result<Vec<Hit>, SearchError> {
    let query: Vec<f32> = match &vs.query {
        QueryVector::Vector(v) => v.clone(),
        QueryVector::PerTarget(_) => return Err(SearchError::TargetRequired),
        QueryVector::Object { id, class } => {
            let obj = db
                .find_object(class.as_deref(), *id, None)
                .ok_or(SearchError::ObjectNotFound(*id))?;
            let target = vs.targets.first().map(String::as_str);
            obj.vector_for(target)
                .or_else(|| obj.vectors.values().next().map(Vec::as_slice))
                .map(<[f32]>::to_vec)
                .ok_or(SearchError::ObjectWithoutVector(*id))?
        }
    };
    let mut participating: Vec<(&ClassData, Option<String>, Metric)> = Vec::new();
    for class in db.classes() {
        if class.info.multi_tenancy || !allowed(&class.info.name) {
            continue;
        }
        let target = match vs.targets.first() {
            Some(t) if class.info.named.iter().any(|(n, _)| n == t) => Some(t.clone()),
            Some(_) => continue,
            None if class.info.legacy_metric.is_some() => None,
            None => match class.info.named.as_slice() {
                [(only, _)] => Some(only.clone()),
                _ => continue,
            },
        };
        let metric = class
            .info
            .metric(target.as_deref())
            .unwrap_or(Metric::Cosine);
        participating.push((class, target, metric));
    }
    if let Some((_, _, first)) = participating.first() {
        if participating.iter().any(|(_, _, m)| m != first) {
            let listed: Vec<String> = participating
                .iter()
                .map(|(c, _, m)| format!("class '{}' uses distance metric '{m}'", c.info.name))
                .collect();
            return Err(SearchError::MixedMetrics(listed.join(", ")));
        }
        if vs.certainty.is_some() && *first != Metric::Cosine {
            return Err(SearchError::CertaintyNotCosine(*first));
        }
    }
    let mut scored: Vec<(f32, &StoredObject)> = Vec::new();
    for (class, target, metric) in &participating {
        for obj in class.objects_of(None) {
            let Some(stored) = obj.vector_for(target.as_deref()) else {
                continue;
            };
            if stored.len() != query.len() {
                continue;
            }
            let d = metric.distance(&query, stored);
            if vs.keeps(d) {
                scored.push((d, obj));
            }
        }
    }
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.seq.cmp(&b.1.seq)));
    Ok(scored
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(d, o)| Hit {
            object: o.clone(),
            distance: Some(d),
        })
        .collect())
}

/// The keyword + vector parts of a `hybrid` search (spec §1.2, §3.5).
#[derive(Debug, Clone)]
pub struct HybridSearch<'a> {
    pub query: &'a str,
    pub alpha: f32,
    /// The vector part; required when `alpha > 0` (the caller reports Weaviate's error otherwise).
    pub vector: Option<&'a VectorSearch>,
    pub max_vector_distance: Option<f32>,
    /// Properties searched by the keyword part (empty = all text properties).
    pub properties: &'a [String],
    /// `rankedFusion` instead of the default `relativeScoreFusion`.
    pub ranked: bool,
}

/// Hybrid search. The keyword part is a plain term-frequency score over `word` tokens (no BM25
/// statistics); fusion follows Weaviate's formulas: relative score = min-max normalized scores
/// weighted by alpha / 1 − alpha; ranked = alpha/(60+rank) + (1 − alpha)/(60+rank).
pub fn hybrid(
    db: &Db,
    class_name: &str,
    params: &SearchParams<'_>,
    h: &HybridSearch<'_>,
) -> Result<Vec<(Hit, f32)>, SearchError> {
    let class = db
        .class(class_name)
        .ok_or_else(|| SearchError::ClassNotFound(class_name.into()))?;
    let mut vector_hits: Vec<Hit> = Vec::new();
    if let (true, Some(vs)) = (h.alpha > 0.0, h.vector) {
        let mut vs = vs.clone();
        vs.distance = h.max_vector_distance.or(vs.distance);
        let p = SearchParams {
            vector: Some(&vs),
            offset: 0,
            limit: None,
            ..params.clone()
        };
        vector_hits = search(db, class_name, &p)?;
    }
    let mut keyword_hits: Vec<(f32, &StoredObject)> = Vec::new();
    if h.alpha < 1.0 {
        class.check_tenant(params.tenant)?;
        if let Some(f) = params.filter {
            f.check(&class.info)?;
        }
        let wanted = super::filter::tokenize("word", h.query, false);
        for obj in class.objects_of(params.tenant) {
            if params.filter.is_some_and(|f| !f.matches(&class.info, obj)) {
                continue;
            }
            let mut score = 0.0f32;
            for prop in &class.info.properties {
                if !h.properties.is_empty() && !h.properties.contains(&prop.name) {
                    continue;
                }
                let texts: Vec<&str> = match obj.properties.get(&prop.name) {
                    Some(serde_json::Value::String(s)) => vec![s.as_str()],
                    Some(serde_json::Value::Array(items)) => {
                        items.iter().filter_map(serde_json::Value::as_str).collect()
                    }
                    _ => continue,
                };
                for text in texts {
                    let tokens = super::filter::tokenize(&prop.tokenization, text, false);
                    score += tokens.iter().filter(|t| wanted.contains(t)).count() as f32;
                }
            }
            if score > 0.0 {
                keyword_hits.push((score, obj));
            }
        }
        keyword_hits.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.seq.cmp(&b.1.seq)));
    }

    let mut fused: Vec<(f32, Hit)> = Vec::new();
    let mut add =
        |hit: Hit, score: f32| match fused.iter_mut().find(|(_, f)| f.object.id == hit.object.id) {
            Some((s, _)) => *s += score,
            None => fused.push((score, hit)),
        };
    let normalize = |scores: Vec<f32>| -> Vec<f32> {
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let min = scores.iter().copied().fold(f32::INFINITY, f32::min);
        scores
            .iter()
            .map(|s| {
                if max > min {
                    (s - min) / (max - min)
                } else {
                    1.0
                }
            })
            .collect()
    };
    if h.ranked {
        for (rank, hit) in vector_hits.into_iter().enumerate() {
            add(hit, h.alpha / (60.0 + rank as f32));
        }
        for (rank, (_, obj)) in keyword_hits.into_iter().enumerate() {
            add(
                Hit {
                    object: obj.clone(),
                    distance: None,
                },
                (1.0 - h.alpha) / (60.0 + rank as f32),
            );
        }
    } else {
        let vnorm = normalize(
            vector_hits
                .iter()
                .map(|hit| -hit.distance.unwrap_or(0.0))
                .collect(),
        );
        for (hit, n) in vector_hits.into_iter().zip(vnorm) {
            add(hit, h.alpha * n);
        }
        let knorm = normalize(keyword_hits.iter().map(|(s, _)| *s).collect());
        for ((_, obj), n) in keyword_hits.into_iter().zip(knorm) {
            add(
                Hit {
                    object: obj.clone(),
                    distance: None,
                },
                (1.0 - h.alpha) * n,
            );
        }
    }
    fused.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.object.seq.cmp(&b.1.object.seq))
    });
    let limit = params.limit.unwrap_or(MAX_RESULTS).min(MAX_RESULTS);
    Ok(fused
        .into_iter()
        .skip(params.offset)
        .take(limit)
        .map(|(s, hit)| (hit, s))
        .collect())
}
