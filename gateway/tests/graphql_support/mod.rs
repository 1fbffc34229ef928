//! Shared pieces of the pure GraphQL tests: a schema view with every kind of class, tiny fake
//! vectors, and a plan → rewrite driver.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use gateway::graphql::embed::{Inputs, Needs, ObjectKey, StoredVectors};
use gateway::graphql::errors::GqlError;
use gateway::graphql::plan::{self, Planned};
use gateway::graphql::rewrite::{rewrite, Rewritten};
use gateway::schema::SchemaView;
use serde_json::json;
use vectorizer::EmbedError;

pub const OBJ1: &str = "00000000-0000-0000-0000-000000000001";
pub const OBJ2: &str = "00000000-0000-0000-0000-000000000002";
pub const MISSING: &str = "00000000-0000-0000-0000-00000000dead";

/// `Item`: legacy clip class; `Plain`: a genuine `none` class; `Multi`: named vectors `a`, `b`
/// (clip) and `c` (not clip); `Single`: one named clip vector `img`; `Cold`: dot distance.
pub fn view() -> SchemaView {
    let clip = json!({"textFields": ["name"], "imageFields": ["image"]});
    SchemaView::from_upstream(&json!({"classes": [
        {"class": "Item", "vectorizer": "none", "moduleConfig": {"multi2vec-clip": clip}},
        {"class": "Plain", "vectorizer": "none"},
        {"class": "Multi", "vectorConfig": {
            "a": {"vectorizer": {"none": {"multi2vec-clip": clip}}},
            "b": {"vectorizer": {"none": {"multi2vec-clip": clip}}},
            "c": {"vectorizer": {"none": {}}}
        }},
        {"class": "Single", "vectorConfig": {"img": {"vectorizer": {"none": {"multi2vec-clip": clip}}}}},
    ]}))
}

/// A view in which no class is clip-managed (Explore has no module arguments).
pub fn plain_view() -> SchemaView {
    SchemaView::from_upstream(&json!({"classes": [{"class": "Plain", "vectorizer": "none"}]}))
}

/// A 3-dimensional fake vector that differs per text: exact binary fractions, so that the
/// snapshots show readable numbers.
pub fn fake(text: &str) -> Vec<f32> {
    let n = text.len();
    let first = text.bytes().next().unwrap_or(0) as f32;
    let sign = if n.is_multiple_of(2) { 0.5 } else { -0.25 };
    vec![n as f32 / 4.0, first / 128.0, sign]
}

/// Inputs for `needs`: fake vectors; texts starting with `fail` and images starting with `bad`
/// fail; objects OBJ1 (legacy vector, named `a` and `b`), OBJ2 (named `b` only), others not
/// found.
pub fn inputs(needs: &Needs) -> Inputs {
    let mut inputs = Inputs::default();
    for t in &needs.texts {
        let v = if t.starts_with("fail") {
            Err(EmbedError::RemoteStatus {
                status: 500,
                message: "boom".into(),
            })
        } else {
            Ok(Arc::from(fake(t)))
        };
        inputs.texts.insert(t.clone(), v);
    }
    for i in &needs.images {
        let v = if i.starts_with("bad") {
            Err(EmbedError::InvalidBase64("Incorrect padding".into()))
        } else {
            Ok(Arc::from(fake(i)))
        };
        inputs.images.insert(i.clone(), v);
    }
    for key in &needs.objects {
        inputs.objects.insert(key.clone(), object(key));
    }
    inputs
}

fn object(key: &ObjectKey) -> Result<StoredVectors, String> {
    match key.id.as_str() {
        OBJ1 => Ok(StoredVectors {
            vector: Some(vec![1.0, 0.0, 0.0]),
            vectors: HashMap::from([
                ("a".to_string(), vec![0.0, 1.0, 0.0]),
                ("b".to_string(), vec![0.0, 0.0, 2.0]),
            ]),
        }),
        OBJ2 => Ok(StoredVectors {
            vector: None,
            vectors: HashMap::from([("b".to_string(), vec![0.0, 0.0, 1.0])]),
        }),
        _ => Err("vector not found".to_string()),
    }
}

pub fn request(query: &str, variables: serde_json::Value) -> plan::Request {
    plan::Request {
        query: query.to_string(),
        operation_name: None,
        variables: variables.as_object().cloned().unwrap_or_default(),
    }
}

/// What the gateway does with a request, end to end but without I/O.
#[derive(Debug)]
pub enum Outcome {
    Forward,
    Invalid(Vec<GqlError>),
    Rewritten(Rewritten),
}

pub fn run_request(request: &plan::Request, view: &SchemaView) -> Outcome {
    match plan::plan(request, view) {
        Planned::Forward => Outcome::Forward,
        Planned::Invalid(errors) => Outcome::Invalid(errors),
        Planned::Rewrite(plan) => {
            let mut needs = Needs::default();
            needs.add(&plan);
            Outcome::Rewritten(rewrite(&plan, &inputs(&needs)))
        }
    }
}

pub fn run(query: &str) -> Outcome {
    run_request(&request(query, json!({})), &view())
}

/// The rewritten query, panicking on any other outcome.
pub fn rewritten(query: &str) -> String {
    match run(query) {
        Outcome::Rewritten(r) => {
            assert!(r.errors.is_empty(), "unexpected errors: {:?}", r.errors);
            r.query
        }
        other => panic!("expected a rewrite, got {other:?}"),
    }
}

/// The error messages a query produces (validation or field errors).
pub fn messages(query: &str) -> Vec<String> {
    messages_in(query, &view())
}

pub fn messages_in(query: &str, view: &SchemaView) -> Vec<String> {
    match run_request(&request(query, json!({})), view) {
        Outcome::Forward => Vec::new(),
        Outcome::Invalid(errors) => errors.into_iter().map(|e| e.message).collect(),
        Outcome::Rewritten(r) => r.errors.into_iter().map(|e| e.message).collect(),
    }
}
