//! Execution of `Get`, `Aggregate` and `Explore` over the store (spec §2.1 envelope, §2.2 order
//! of checks, §2.6 Aggregate/Explore rules, §3.3 certainty/distance, §10.1–10.2 output).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::args::{self, Fusion};
use super::doc::{key, Arg, Ctx, GField};
use super::GqlError;
use crate::double::auth::Principal;
use crate::double::filter::Filter;
use crate::double::json::{go_f32, go_f32_vec, go_numbers};
use crate::double::schema::ClassInfo;
use crate::double::search::{self, Hit, HybridSearch, SearchError, SearchParams, VectorSearch};
use crate::double::store::Db;
use crate::double::vector::{certainty_from_distance, Metric};

/// Weaviate's `QUERY_DEFAULTS_LIMIT`.
const DEFAULT_LIMIT: usize = 10;
/// Explore's default limit (§2.6).
const EXPLORE_DEFAULT_LIMIT: usize = 20;

/// Runs the root fields; returns `data` and resolver errors.
pub fn run<'q>(
    db: &Db,
    principal: &Principal,
    ctx: &Ctx<'q>,
    root: &[&'q GField<'q>],
) -> (Map<String, Value>, Vec<GqlError>) {
    let mut data = Map::new();
    let mut errors = Vec::new();
    for &field in root {
        let k = key(field);
        match field.name.as_str() {
            "__typename" => {
                data.insert(k, json!("WeaviateObj"));
            }
            "Get" | "Aggregate" => {
                let aggregate = field.name == "Aggregate";
                let mut out = Map::new();
                for class_field in ctx.fields(&field.selection_set) {
                    let ck = key(class_field);
                    if class_field.name == "__typename" {
                        let t = if aggregate {
                            "AggregateObjectsObj"
                        } else {
                            "GetObjectsObj"
                        };
                        out.insert(ck, json!(t));
                        continue;
                    }
                    let result = if aggregate {
                        aggregate_class(db, principal, ctx, class_field)
                    } else {
                        get_class(db, principal, ctx, class_field)
                    };
                    match result {
                        Ok(v) => {
                            out.insert(ck, v);
                        }
                        Err(message) => {
                            errors.push(GqlError::resolver(
                                message,
                                ctx.field_location(class_field),
                                vec![k.clone(), ck.clone()],
                            ));
                            out.insert(ck, Value::Null);
                        }
                    }
                }
                data.insert(k, Value::Object(out));
            }
            "Explore" => match explore(db, principal, ctx, field) {
                Ok(v) => {
                    data.insert(k, v);
                }
                Err(message) => {
                    errors.push(GqlError::resolver(
                        message,
                        ctx.field_location(field),
                        vec![k.clone()],
                    ));
                    data.insert(k, Value::Null);
                }
            },
            _ => {}
        }
    }
    (data, errors)
}

fn unsupported(name: &str) -> String {
    format!("the Weaviate double does not support the '{name}' argument")
}

fn parse_where(args: &BTreeMap<String, Arg>) -> Result<Option<Filter>, String> {
    args.get("where")
        .filter(|a| !a.is_null())
        .map(|w| args::filter(w).map_err(|e| format!("could not extract filters: {e}")))
        .transpose()
}

fn parse_near(
    args: &BTreeMap<String, Arg>,
) -> Result<(Option<VectorSearch>, Option<VectorSearch>), String> {
    let nv = args
        .get("nearVector")
        .filter(|a| !a.is_null())
        .map(|a| {
            args::near_vector(a).map_err(|e| format!("failed to extract nearVector params: {e}"))
        })
        .transpose()?;
    let no = args
        .get("nearObject")
        .filter(|a| !a.is_null())
        .map(|a| {
            args::near_object(a).map_err(|e| format!("failed to extract nearObject params: {e}"))
        })
        .transpose()?;
    Ok((nv, no))
}

fn non_negative(args: &BTreeMap<String, Arg>, name: &str) -> Option<usize> {
    args.get(name)
        .and_then(Arg::as_i64)
        .and_then(|v| usize::try_from(v).ok())
}

/// Weaviate's wording per failure, with the `Get` prefixes of §2.2.
pub(crate) fn get_error(e: SearchError) -> String {
    match e {
        SearchError::Tenant(m) => m,
        SearchError::Filter(_)
        | SearchError::CertaintyNotCosine(_)
        | SearchError::CertaintyWithTargets => e.to_string(),
        SearchError::TargetRequired => format!("explorer: get class: validate target vector: {e}"),
        SearchError::ObjectNotFound(_) | SearchError::ObjectWithoutVector(_) => {
            format!("explorer: get class: vectorize params: {e}")
        }
        other => format!("explorer: get class: vector search: {other}"),
    }
}

fn get_class<'q>(
    db: &Db,
    principal: &Principal,
    ctx: &Ctx<'q>,
    field: &'q GField<'q>,
) -> Result<Value, String> {
    let class_name = field.name.as_str();
    if !principal.can_access(class_name) {
        return Err(principal.forbidden_message(class_name));
    }
    let class = db
        .class(class_name)
        .ok_or_else(|| format!("class {class_name} not found"))?;
    let info = &class.info;
    let args = ctx.args(field);
    for name in [
        "after",
        "autocut",
        "sort",
        "group",
        "groupBy",
        "bm25",
        "consistencyLevel",
    ] {
        if args.get(name).is_some_and(|a| !a.is_null()) {
            return Err(unsupported(name));
        }
    }
    let filter = parse_where(&args)?;
    let (near_vector, near_object) = parse_near(&args)?;
    let hybrid = args
        .get("hybrid")
        .filter(|a| !a.is_null())
        .map(|a| args::hybrid(a).map_err(|e| format!("failed to extract hybrid params: {e}")))
        .transpose()?;
    let tenant = args.get("tenant").and_then(Arg::as_str);
    let offset = non_negative(&args, "offset").unwrap_or(0);
    let explicit_limit = non_negative(&args, "limit");

    let selection = ctx.fields(&field.selection_set);
    let wants_certainty = selection
        .iter()
        .copied()
        .filter(|f| f.name == "_additional")
        .any(|a| {
            ctx.fields(&a.selection_set)
                .iter()
                .any(|f| f.name == "certainty")
        });
    let vector = match (near_vector, near_object) {
        (Some(_), Some(_)) => {
            return Err("explorer: get class: vectorize params: found both 'nearVector' and 'nearObject' parameters which are conflicting, choose one instead".into())
        }
        (Some(v), None) | (None, Some(v)) => Some(v),
        (None, None) => None,
    };
    if wants_certainty {
        let target = vector
            .as_ref()
            .and_then(|v| v.targets.first())
            .map(String::as_str);
        if let Some(m) = info.metric(target).filter(|m| *m != Metric::Cosine) {
            return Err(SearchError::CertaintyNotCosine(m).to_string());
        }
    }

    let mut scores: Vec<Option<f32>> = Vec::new();
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
        search::search(db, class_name, &params).map_err(get_error)?
    } else if let Some(h) = &hybrid {
        if h.alpha > 0.0 && h.vector.is_none() {
            if h.near_text {
                return Err(format!("explorer: get class: vectorize search vector: could not vectorize input for collection {class_name} with search-type nearText. Make sure a vectorizer module is configured for this collection"));
            }
            return Err(format!(
                "VectorFromInput was called without vectorizer on class {class_name} for input {}",
                h.query
            ));
        }
        let params = SearchParams {
            tenant,
            filter: filter.as_ref(),
            vector: None,
            offset,
            limit: Some(explicit_limit.unwrap_or(DEFAULT_LIMIT)),
        };
        let hs = HybridSearch {
            query: &h.query,
            alpha: h.alpha,
            vector: h.vector.as_ref(),
            max_vector_distance: h.max_vector_distance,
            properties: &h.properties,
            ranked: h.fusion == Fusion::Ranked,
        };
        let scored = search::hybrid(db, class_name, &params, &hs).map_err(get_error)?;
        scored
            .into_iter()
            .map(|(hit, s)| {
                scores.push(Some(s));
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
        search::search(db, class_name, &params).map_err(get_error)?
    };

    let rendered: Vec<Value> = hits
        .iter()
        .enumerate()
        .map(|(i, hit)| render_object(ctx, info, &selection, hit, scores.get(i).copied().flatten()))
        .collect();
    Ok(Value::Array(rendered))
}

fn render_object<'q>(
    ctx: &Ctx<'q>,
    info: &ClassInfo,
    selection: &[&'q GField<'q>],
    hit: &Hit,
    score: Option<f32>,
) -> Value {
    let o = &hit.object;
    let mut out = Map::new();
    for &f in selection {
        let value = match f.name.as_str() {
            "__typename" => json!(info.name),
            "_additional" => {
                let mut add = Map::new();
                for a in ctx.fields(&f.selection_set) {
                    let v = match a.name.as_str() {
                        "id" => json!(o.id),
                        "distance" => hit.distance.map_or(Value::Null, go_f32),
                        "certainty" => hit
                            .distance
                            .map_or(Value::Null, |d| go_f32(certainty_from_distance(d))),
                        "vector" => o.vector.as_deref().map_or(Value::Null, go_f32_vec),
                        "vectors" => {
                            let mut named = Map::new();
                            for n in ctx.fields(&a.selection_set) {
                                let v = o
                                    .vectors
                                    .get(&n.name)
                                    .map_or(Value::Null, |v| go_f32_vec(v));
                                named.insert(key(n), v);
                            }
                            Value::Object(named)
                        }
                        "creationTimeUnix" => json!(o.creation_time_unix.to_string()),
                        "lastUpdateTimeUnix" => json!(o.last_update_time_unix.to_string()),
                        "score" => score.map_or(Value::Null, |s| json!(s.to_string())),
                        "explainScore" => score.map_or(Value::Null, |s| {
                            json!(format!(
                                "(hybrid) Document {} contributed {s} to the score",
                                o.id
                            ))
                        }),
                        "__typename" => json!(format!("{}AdditionalFields", info.name)),
                        _ => Value::Null,
                    };
                    add.insert(key(a), v);
                }
                Value::Object(add)
            }
            name => match info.property(name) {
                Some(p) if p.data_type.starts_with(|c: char| c.is_ascii_uppercase()) => Value::Null,
                _ => o
                    .properties
                    .get(name)
                    .cloned()
                    .map_or(Value::Null, go_numbers),
            },
        };
        out.insert(key(f), value);
    }
    Value::Object(out)
}

fn aggregate_class<'q>(
    db: &Db,
    principal: &Principal,
    ctx: &Ctx<'q>,
    field: &'q GField<'q>,
) -> Result<Value, String> {
    let class_name = field.name.as_str();
    if !principal.can_access(class_name) {
        return Err(principal.forbidden_message(class_name));
    }
    let args = ctx.args(field);
    let has_near = ["nearVector", "nearObject", "hybrid"]
        .iter()
        .any(|n| args.get(*n).is_some_and(|a| !a.is_null()));
    let object_limit = args
        .get("objectLimit")
        .filter(|a| !a.is_null())
        .and_then(Arg::as_i64);
    if let Some(l) = object_limit {
        if l <= 0 {
            return Err("objectLimit must be a positive integer".into());
        }
        if !has_near {
            return Err("objectLimit can only be used with a near<Media> or hybrid filter".into());
        }
    }
    for name in ["groupBy", "hybrid"] {
        if args.get(name).is_some_and(|a| !a.is_null()) {
            return Err(unsupported(name));
        }
    }
    let filter = parse_where(&args)?;
    let (near_vector, near_object) = parse_near(&args)?;
    let tenant = args.get("tenant").and_then(Arg::as_str);
    let vector = match (near_vector, near_object) {
        (Some(_), Some(_)) => {
            return Err("found both 'nearVector' and 'nearObject' parameters which are conflicting, choose one instead".into())
        }
        (Some(v), None) | (None, Some(v)) => Some(v),
        (None, None) => None,
    };
    if let Some(vs) = &vector {
        if vs.certainty_or_converted_distance().is_none() && object_limit.is_none() {
            return Err("must provide certainty or objectLimit with vector search".into());
        }
    }
    let object_limit = object_limit.and_then(|l| usize::try_from(l).ok());
    let count = search::count(
        db,
        class_name,
        tenant,
        filter.as_ref(),
        vector.as_ref(),
        object_limit,
    )
    .map_err(|e| e.to_string())?;

    let mut group = Map::new();
    for f in ctx.fields(&field.selection_set) {
        let v = match f.name.as_str() {
            "__typename" => json!(format!("Aggregate{class_name}")),
            "meta" => {
                let mut meta = Map::new();
                for m in ctx.fields(&f.selection_set) {
                    let v = match m.name.as_str() {
                        "count" => json!(count),
                        "__typename" => json!(format!("Aggregate{class_name}MetaObject")),
                        _ => Value::Null,
                    };
                    meta.insert(key(m), v);
                }
                Value::Object(meta)
            }
            _ => Value::Null,
        };
        group.insert(key(f), v);
    }
    Ok(Value::Array(vec![Value::Object(group)]))
}

fn explore<'q>(
    db: &Db,
    principal: &Principal,
    ctx: &Ctx<'q>,
    field: &'q GField<'q>,
) -> Result<Value, String> {
    let args = ctx.args(field);
    let (near_vector, near_object) = parse_near(&args)?;
    let vs = match (near_vector, near_object) {
        (Some(_), Some(_)) => {
            return Err("vectorize params: found both 'nearVector' and 'nearObject' parameters which are conflicting, choose one instead".into())
        }
        (Some(v), None) | (None, Some(v)) => v,
        (None, None) => {
            return Err("invalid params: received no search params, one of [nearVector, nearObject] or module search params is required for an exploration".into())
        }
    };
    let offset = non_negative(&args, "offset").unwrap_or(0);
    let limit = non_negative(&args, "limit").unwrap_or(EXPLORE_DEFAULT_LIMIT);
    let hits = search::explore(db, &vs, offset, limit, |c| principal.can_access(c)).map_err(
        |e| match e {
            SearchError::ObjectNotFound(_) | SearchError::ObjectWithoutVector(_) => {
                format!("vectorize params: {e}")
            }
            other => other.to_string(),
        },
    )?;
    let selection = ctx.fields(&field.selection_set);
    let items: Vec<Value> = hits
        .iter()
        .map(|hit| {
            let mut m = Map::new();
            for f in &selection {
                let d = hit.distance.unwrap_or(0.0);
                let v = match f.name.as_str() {
                    "beacon" => json!(format!(
                        "weaviate://localhost/{}/{}",
                        hit.object.class, hit.object.id
                    )),
                    "className" => json!(hit.object.class),
                    "certainty" => go_f32(certainty_from_distance(d)),
                    "distance" => go_f32(d),
                    "__typename" => json!("ExploreObj"),
                    _ => Value::Null,
                };
                m.insert(key(f), v);
            }
            Value::Object(m)
        })
        .collect();
    Ok(Value::Array(items))
}
