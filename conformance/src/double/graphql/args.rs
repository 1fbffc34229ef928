//! Typed extraction of core search arguments (spec §1.2) from GraphQL values, with Weaviate's
//! extraction error texts (callers add the `failed to extract … params: ` prefixes).

use std::collections::BTreeMap;

use uuid::Uuid;

use super::doc::Arg;
use crate::double::filter::{Filter, FilterValue, Operator};
use crate::double::search::{Combination, QueryVector, VectorSearch};

/// A `nearVector` / `hybrid.vector` literal (§1.6: list of Float/Int literals, parsed as f64 and
/// cast to f32). A vector from a variable is not a literal: the custom scalar yields nil.
pub fn vector_literal(arg: &Arg, what: &str) -> Result<Vec<f32>, String> {
    if arg.is_variable() {
        return Err(format!(
            "{what}: vectors must be written as literal lists, GraphQL variables are not supported"
        ));
    }
    let items = arg
        .as_list()
        .ok_or_else(|| format!("{what} must be a list of numbers"))?;
    items
        .iter()
        .map(|x| {
            x.as_f64().map(|f| f as f32).ok_or_else(|| {
                if x.as_list().is_some() {
                    format!("{what}: multi-vectors are not supported by the Weaviate double")
                } else {
                    format!("{what} must be a list of numbers")
                }
            })
        })
        .collect()
}

fn strings(arg: Option<&Arg>) -> Vec<String> {
    arg.and_then(Arg::as_list)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// certainty / distance / targetVectors / targets shared by nearVector and nearObject.
fn common(arg: &Arg, vs: &mut VectorSearch) -> Result<(), String> {
    if arg.get("certainty").is_some() && arg.get("distance").is_some() {
        return Err("cannot provide distance and certainty".into());
    }
    vs.certainty = arg
        .get("certainty")
        .and_then(Arg::as_f64)
        .map(|c| c as f32)
        .filter(|c| *c != 0.0);
    vs.distance = arg.get("distance").and_then(Arg::as_f64).map(|d| d as f32);
    vs.targets = strings(arg.get("targetVectors"));
    if let Some(targets) = arg.get("targets") {
        let listed = strings(targets.get("targetVectors"));
        if !listed.is_empty() {
            vs.targets = listed;
        }
        if let Some(method) = targets.get("combinationMethod").and_then(Arg::as_str) {
            vs.combination = Combination::parse(method)
                .ok_or_else(|| format!("unsupported combination method {method}"))?;
        }
        if let Some(weights) = targets.get("weights").and_then(Arg::as_object) {
            for (name, w) in weights {
                let w = w
                    .as_f64()
                    .or_else(|| w.as_list().and_then(|l| l.first()).and_then(Arg::as_f64))
                    .ok_or_else(|| format!("weight for target {name} must be a number"))?;
                vs.weights.insert(name.clone(), w as f32);
            }
        }
        if vs.combination == Combination::ManualWeights {
            if let Some(missing) = vs.targets.iter().find(|t| !vs.weights.contains_key(*t)) {
                return Err(format!("weight for target {missing} is not provided"));
            }
        }
    }
    Ok(())
}

/// `nearVector { vector | vectorPerTarget, certainty, distance, targetVectors, targets }`.
pub fn near_vector(arg: &Arg) -> Result<VectorSearch, String> {
    let query = if let Some(per) = arg.get("vectorPerTarget") {
        let map = per.as_object().ok_or("vectorPerTarget must be an object")?;
        let mut out = BTreeMap::new();
        for (name, v) in map {
            out.insert(
                name.clone(),
                vector_literal(v, &format!("vectorPerTarget.{name}"))?,
            );
        }
        QueryVector::PerTarget(out)
    } else {
        let v = arg
            .as_object()
            .and_then(|m| m.get("vector"))
            .ok_or("vector is required")?;
        QueryVector::Vector(vector_literal(v, "vector")?)
    };
    let mut vs = VectorSearch::new(query);
    common(arg, &mut vs)?;
    Ok(vs)
}

/// Parses `weaviate://localhost/<Class>/<id>` or `weaviate://localhost/<id>`.
fn beacon(raw: &str) -> Result<(Option<String>, Uuid), String> {
    let rest = raw
        .strip_prefix("weaviate://localhost/")
        .ok_or_else(|| format!("invalid beacon {raw}"))?;
    let (class, id) = match rest.split_once('/') {
        Some((c, id)) => (Some(c.to_owned()), id),
        None => (None, rest),
    };
    let id = Uuid::parse_str(id).map_err(|_| format!("invalid beacon {raw}"))?;
    Ok((class, id))
}

/// `nearObject { id | beacon, certainty, distance, targetVectors, targets }`.
pub fn near_object(arg: &Arg) -> Result<VectorSearch, String> {
    let (class, id) = match (
        arg.get("id").and_then(Arg::as_str),
        arg.get("beacon").and_then(Arg::as_str),
    ) {
        (Some(id), _) => (
            None,
            Uuid::parse_str(id).map_err(|_| format!("invalid id {id}"))?,
        ),
        (None, Some(b)) => beacon(b)?,
        (None, None) => return Err("empty id and beacon".into()),
    };
    let mut vs = VectorSearch::new(QueryVector::Object { id, class });
    common(arg, &mut vs)?;
    Ok(vs)
}

/// `where { operator, path, value*, operands }`.
pub fn filter(arg: &Arg) -> Result<Filter, String> {
    let op = arg
        .get("operator")
        .and_then(Arg::as_str)
        .ok_or("operator is required")?;
    match op {
        "And" | "Or" => {
            let operands = arg
                .get("operands")
                .and_then(Arg::as_list)
                .ok_or_else(|| format!("operator {op} requires operands"))?;
            let parsed = operands.iter().map(filter).collect::<Result<Vec<_>, _>>()?;
            Ok(if op == "And" {
                Filter::And(parsed)
            } else {
                Filter::Or(parsed)
            })
        }
        other => {
            let op = Operator::parse(other)
                .ok_or_else(|| format!("the Weaviate double does not support operator {other}"))?;
            let path = strings(arg.get("path"));
            if path.is_empty() {
                return Err("path is required".into());
            }
            let value = if let Some(v) = arg.get("valueText") {
                FilterValue::Text(v.as_str().unwrap_or_default().to_owned())
            } else if let Some(v) = arg.get("valueString") {
                FilterValue::String(v.as_str().unwrap_or_default().to_owned())
            } else if let Some(v) = arg.get("valueInt") {
                FilterValue::Int(v.as_i64().ok_or("valueInt must be an integer")?)
            } else if let Some(v) = arg.get("valueNumber") {
                FilterValue::Number(v.as_f64().ok_or("valueNumber must be a number")?)
            } else if let Some(v) = arg.get("valueBoolean") {
                FilterValue::Boolean(v.as_bool().ok_or("valueBoolean must be a boolean")?)
            } else {
                return Err(
                    "got operator but no value (valueText, valueInt, valueNumber, valueBoolean)"
                        .into(),
                );
            };
            Ok(Filter::Compare { path, op, value })
        }
    }
}

/// Fusion algorithm of `hybrid.fusionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fusion {
    Ranked,
    RelativeScore,
}

/// `hybrid { query alpha vector targetVectors maxVectorDistance properties fusionType searches }`.
#[derive(Debug, Clone)]
pub struct Hybrid {
    pub query: String,
    pub alpha: f32,
    pub vector: Option<VectorSearch>,
    /// `searches[0].nearText` was given (core argument, needs a vectorizer at execution).
    pub near_text: bool,
    pub max_vector_distance: Option<f32>,
    pub properties: Vec<String>,
    pub fusion: Fusion,
}

/// Spec §2.4 checks and defaults (alpha 0.75, relativeScoreFusion).
pub fn hybrid(arg: &Arg) -> Result<Hybrid, String> {
    let alpha = arg.get("alpha").and_then(Arg::as_f64).unwrap_or(0.75);
    if !(0.0..=1.0).contains(&alpha) {
        return Err("alpha should be between 0.0 and 1.0".into());
    }
    let search = arg
        .get("searches")
        .and_then(Arg::as_list)
        .and_then(|l| l.first());
    let near_text = search.and_then(|s| s.get("nearText")).is_some();
    let search_vector = search.and_then(|s| s.get("nearVector"));
    if near_text && search_vector.is_some() {
        return Err("hybrid search cannot have both nearText and nearVector parameters".into());
    }
    let direct = arg.get("vector");
    if direct.is_some() && near_text {
        return Err("cannot have both vector and nearTextParams".into());
    }
    if direct.is_some() && search_vector.is_some() {
        return Err("cannot have both vector and nearVectorParams".into());
    }
    let targets = strings(arg.get("targetVectors"));
    let vector = match (direct, search_vector) {
        (Some(v), _) => {
            let mut vs = VectorSearch::new(QueryVector::Vector(
                v.as_list()
                    .ok_or("vector must be a list of numbers")?
                    .iter()
                    .map(|x| {
                        x.as_f64()
                            .map(|f| f as f32)
                            .ok_or("vector must be a list of numbers")
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ));
            vs.targets = targets;
            Some(vs)
        }
        (None, Some(nv)) => {
            let mut vs = near_vector(nv)?;
            if vs.targets.is_empty() {
                vs.targets = targets;
            }
            Some(vs)
        }
        (None, None) => None,
    };
    let fusion = match arg.get("fusionType").and_then(Arg::as_str) {
        Some("rankedFusion") => Fusion::Ranked,
        _ => Fusion::RelativeScore,
    };
    Ok(Hybrid {
        query: arg
            .get("query")
            .and_then(Arg::as_str)
            .unwrap_or_default()
            .to_owned(),
        alpha: alpha as f32,
        vector,
        near_text,
        max_vector_distance: arg
            .get("maxVectorDistance")
            .and_then(Arg::as_f64)
            .map(|d| d as f32),
        properties: strings(arg.get("properties")),
        fusion,
    })
}
