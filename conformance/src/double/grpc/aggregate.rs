//! `Aggregate`: `objects_count` and simple property aggregations over the objects a filter and/or
//! a vector search select, with the GraphQL `Aggregate` rules (spec §2.6: `object_limit` needs a
//! near search; a near search needs certainty, distance (converted to a certainty) or
//! `object_limit`).

use std::collections::BTreeMap;

use serde_json::Value;
use weaviate_proto::v1::aggregate_reply::aggregations::aggregation as reply_agg;
use weaviate_proto::v1::aggregate_reply::aggregations::aggregation::text::{
    top_occurrences::TopOccurrence, TopOccurrences,
};
use weaviate_proto::v1::aggregate_reply::aggregations::Aggregation as ReplyAggregation;
use weaviate_proto::v1::aggregate_reply::{self, Aggregations, Single};
use weaviate_proto::v1::aggregate_request::{aggregation as req_agg, Aggregation, Search};
use weaviate_proto::v1::{AggregateReply, AggregateRequest};

use super::near::{self, no_vectorizer};
use super::{filters, GrpcError};
use crate::double::search::{self, SearchParams, VectorSearch};
use crate::double::store::{Db, StoredObject};

/// Weaviate's default `topOccurrences` limit.
const TOP_OCCURRENCES_DEFAULT: usize = 5;

fn unsupported(what: &str) -> GrpcError {
    GrpcError::msg(format!(
        "the Weaviate double does not support {what} in Aggregate"
    ))
}

/// Runs one `AggregateRequest` (the caller has authorized the collection).
pub fn aggregate(db: &Db, req: &AggregateRequest) -> Result<AggregateReply, GrpcError> {
    let collection = req.collection.as_str();
    if req.group_by.is_some() {
        return Err(unsupported("group_by"));
    }
    let vector: Option<VectorSearch> = match &req.search {
        None => None,
        Some(Search::NearVector(nv)) => Some(near::near_vector(nv)?),
        Some(Search::NearObject(no)) => Some(near::near_object(no)?),
        Some(Search::NearText(_)) => return Err(no_vectorizer(collection, "nearText")),
        Some(Search::NearImage(_)) => return Err(no_vectorizer(collection, "nearImage")),
        Some(Search::Hybrid(_)) => return Err(unsupported("hybrid")),
    };
    if let Some(l) = req.object_limit {
        if l == 0 {
            return Err(GrpcError::msg("objectLimit must be a positive integer"));
        }
        if vector.is_none() {
            return Err(GrpcError::msg(
                "objectLimit can only be used with a near<Media> or hybrid filter",
            ));
        }
    }
    if let Some(vs) = &vector {
        if vs.certainty_or_converted_distance().is_none() && req.object_limit.is_none() {
            return Err(GrpcError::msg(
                "must provide certainty or objectLimit with vector search",
            ));
        }
    }
    let filter = req.filters.as_ref().map(filters::filter).transpose()?;
    let tenant = Some(req.tenant.as_str()).filter(|t| !t.is_empty());
    let object_limit = req.object_limit.map(|l| l as usize);
    let count = search::count(
        db,
        collection,
        tenant,
        filter.as_ref(),
        vector.as_ref(),
        object_limit,
    )
    .map_err(|e| GrpcError::msg(e.to_string()))?;

    let aggregations = if req.aggregations.is_empty() {
        None
    } else {
        let converted = vector.map(|mut vs| {
            vs.certainty = vs.certainty_or_converted_distance();
            vs.distance = None;
            vs
        });
        let params = SearchParams {
            tenant,
            filter: filter.as_ref(),
            vector: converted.as_ref(),
            offset: 0,
            limit: if converted.is_some() {
                object_limit
            } else {
                None
            },
        };
        let hits =
            search::search(db, collection, &params).map_err(|e| GrpcError::msg(e.to_string()))?;
        let objects: Vec<&StoredObject> = hits.iter().map(|h| &h.object).collect();
        Some(Aggregations {
            aggregations: req
                .aggregations
                .iter()
                .map(|a| aggregate_property(a, &objects))
                .collect::<Result<_, _>>()?,
        })
    };
    Ok(AggregateReply {
        took: 0.0,
        result: Some(aggregate_reply::Result::SingleResult(Single {
            objects_count: req.objects_count.then_some(count as i64),
            aggregations,
        })),
    })
}

/// The values of a property over the selected objects (array properties contribute each item).
fn values<'a>(objects: &[&'a StoredObject], prop: &str) -> Vec<&'a Value> {
    objects
        .iter()
        .filter_map(|o| o.properties.get(prop))
        .flat_map(|v| match v {
            Value::Array(items) => items.iter().collect::<Vec<_>>(),
            Value::Null => Vec::new(),
            single => vec![single],
        })
        .collect()
}

/// count, mean, median, mode, min, max, sum of numbers (mode: the most frequent, smallest first).
struct Stats {
    count: i64,
    mean: Option<f64>,
    median: Option<f64>,
    mode: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    sum: Option<f64>,
}

fn stats(mut xs: Vec<f64>) -> Stats {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let sum: f64 = xs.iter().sum();
    let median = match n {
        0 => None,
        _ if n % 2 == 1 => Some(xs[n / 2]),
        _ => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
    };
    let mut mode: Option<(f64, usize)> = None;
    let mut i = 0;
    while i < n {
        let run = xs[i..].iter().take_while(|x| **x == xs[i]).count();
        if mode.is_none_or(|(_, best)| run > best) {
            mode = Some((xs[i], run));
        }
        i += run;
    }
    Stats {
        count: n as i64,
        mean: (n > 0).then(|| sum / n as f64),
        median,
        mode: mode.map(|(x, _)| x),
        min: xs.first().copied(),
        max: xs.last().copied(),
        sum: (n > 0).then_some(sum),
    }
}

fn aggregate_property(
    a: &Aggregation,
    objects: &[&StoredObject],
) -> Result<ReplyAggregation, GrpcError> {
    let vals = values(objects, &a.property);
    let numbers = || vals.iter().filter_map(|v| v.as_f64()).collect::<Vec<_>>();
    let out = match &a.aggregation {
        Some(req_agg::Aggregation::Int(r)) => {
            let s = stats(numbers());
            let i = |x: Option<f64>| x.map(|x| x as i64);
            reply_agg::Aggregation::Int(reply_agg::Integer {
                count: r.count.then_some(s.count),
                r#type: r.r#type.then(|| "int".to_owned()),
                mean: s.mean.filter(|_| r.mean),
                median: s.median.filter(|_| r.median),
                mode: i(s.mode).filter(|_| r.mode),
                maximum: i(s.max).filter(|_| r.maximum),
                minimum: i(s.min).filter(|_| r.minimum),
                sum: i(s.sum).filter(|_| r.sum),
            })
        }
        Some(req_agg::Aggregation::Number(r)) => {
            let s = stats(numbers());
            reply_agg::Aggregation::Number(reply_agg::Number {
                count: r.count.then_some(s.count),
                r#type: r.r#type.then(|| "number".to_owned()),
                mean: s.mean.filter(|_| r.mean),
                median: s.median.filter(|_| r.median),
                mode: s.mode.filter(|_| r.mode),
                maximum: s.max.filter(|_| r.maximum),
                minimum: s.min.filter(|_| r.minimum),
                sum: s.sum.filter(|_| r.sum),
            })
        }
        Some(req_agg::Aggregation::Text(r)) => {
            let texts: Vec<&str> = vals.iter().filter_map(|v| v.as_str()).collect();
            let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
            for t in &texts {
                *counts.entry(t).or_default() += 1;
            }
            let mut top: Vec<(&str, i64)> = counts.into_iter().collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let limit = r
                .top_occurences_limit
                .map_or(TOP_OCCURRENCES_DEFAULT, |l| l as usize);
            reply_agg::Aggregation::Text(reply_agg::Text {
                count: r.count.then_some(texts.len() as i64),
                r#type: r.r#type.then(|| "text".to_owned()),
                top_occurences: r.top_occurences.then(|| TopOccurrences {
                    items: top
                        .into_iter()
                        .take(limit)
                        .map(|(value, occurs)| TopOccurrence {
                            value: value.to_owned(),
                            occurs,
                        })
                        .collect(),
                }),
            })
        }
        Some(req_agg::Aggregation::Boolean(r)) => {
            let bools: Vec<bool> = vals.iter().filter_map(|v| v.as_bool()).collect();
            let n = bools.len() as i64;
            let t = bools.iter().filter(|b| **b).count() as i64;
            let pct = |k: i64| if n == 0 { 0.0 } else { k as f64 / n as f64 };
            reply_agg::Aggregation::Boolean(reply_agg::Boolean {
                count: r.count.then_some(n),
                r#type: r.r#type.then(|| "boolean".to_owned()),
                total_true: r.total_true.then_some(t),
                total_false: r.total_false.then_some(n - t),
                percentage_true: r.percentage_true.then(|| pct(t)),
                percentage_false: r.percentage_false.then(|| pct(n - t)),
            })
        }
        None => return Err(unsupported("an aggregation without a kind")),
    };
    Ok(ReplyAggregation {
        property: a.property.clone(),
        aggregation: Some(out),
    })
}
