//! End to end (issue 5, Acceptance): the fixture images imported through the gateway are found
//! by a `nearText` query through the gateway: "a red circle" returns the red-circle object first.

mod common;
mod import_support;

use import_support::{create_class, image_b64, post, SHAPES};
use serde_json::{json, Value};

#[tokio::test]
async fn near_text_finds_the_imported_red_circle_first() {
    let env = common::start().await;
    create_class(&env, &json!({"class": "Shape", "vectorizer": "multi2vec-clip",
        "moduleConfig": {"multi2vec-clip": {"imageFields": ["image"]}},
        "properties": [{"name": "name", "dataType": ["text"]}, {"name": "image", "dataType": ["blob"]}]}))
    .await;
    let objects: Vec<Value> = SHAPES
        .iter()
        .map(|s| json!({"class": "Shape", "properties": {"name": s, "image": image_b64(s)}}))
        .collect();
    let (status, results) = post(&env, "/v1/batch/objects", &json!({"objects": objects})).await;
    assert_eq!(status, 200, "{results}");
    for entry in results.as_array().expect("array") {
        assert_eq!(entry["result"]["status"], "SUCCESS", "{entry}");
    }

    let query = r#"{ Get { Shape(nearText: {concepts: ["a red circle"]}, limit: 3) { name _additional { distance } } } }"#;
    let (status, answer) = post(&env, "/v1/graphql", &json!({"query": query})).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("errors").is_none(), "{answer}");
    let hits = answer["data"]["Get"]["Shape"].as_array().expect("hits");
    assert_eq!(hits[0]["name"], "red-circle", "{answer}");
}
