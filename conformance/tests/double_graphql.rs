//! The double's GraphQL: vector search arithmetic, filters, Explore, Aggregate, and the
//! validation errors an unmodified Weaviate gives for module arguments (spec §1.4, §2, §3.3).

mod double_support;

use double_support::{cosine_distance, ids, Client};
use serde_json::{json, Value};

const A: &str = "00000000-0000-0000-0000-00000000000a";
const B: &str = "00000000-0000-0000-0000-00000000000b";
const C: &str = "00000000-0000-0000-0000-00000000000c";
const D: &str = "00000000-0000-0000-0000-00000000000d";
const E: &str = "00000000-0000-0000-0000-00000000000e";

fn data() -> Vec<(&'static str, Value, Option<[f64; 3]>)> {
    vec![
        (
            A,
            json!({"name": "red circle", "size": 3, "weight": 1.5, "round": true}),
            Some([1.0, 0.0, 0.0]),
        ),
        (
            B,
            json!({"name": "blue circle", "size": 5, "weight": 2.5, "round": true}),
            Some([0.9, 0.1, 0.0]),
        ),
        (
            C,
            json!({"name": "red square", "size": 2, "weight": 0.5, "round": false}),
            Some([0.0, 1.0, 0.0]),
        ),
        (
            D,
            json!({"name": "green triangle", "size": 7, "weight": 3.0, "round": false}),
            Some([-1.0, 0.0, 0.0]),
        ),
        (E, json!({"name": "empty thing", "size": 1}), None),
    ]
}

async fn shapes() -> Client {
    let c = Client::start().await;
    c.class(json!({"class": "Shape", "properties": [
        {"name": "name", "dataType": ["text"]}, {"name": "size", "dataType": ["int"]},
        {"name": "weight", "dataType": ["number"]}, {"name": "round", "dataType": ["boolean"]}]}))
        .await;
    for (id, props, vector) in data() {
        let mut obj = json!({"class": "Shape", "id": id, "properties": props});
        if let Some(v) = vector {
            obj["vector"] = json!(v);
        }
        c.object(obj).await;
    }
    c
}

fn get(body: &Value, class: &str) -> Value {
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["Get"][class].clone()
}

#[tokio::test]
async fn near_vector_orders_by_exact_cosine_distance() {
    let c = shapes().await;
    let q = [1.0, 0.05, 0.0];
    let body = c
        .gql("{ Get { Shape(nearVector: {vector: [1, 0.05, 0]}) { name _additional { id distance certainty } } } }")
        .await;
    let results = get(&body, "Shape");
    let mut expected: Vec<(f64, &str)> = data()
        .into_iter()
        .filter_map(|(id, _, v)| v.map(|v| (cosine_distance(&q, &v), id)))
        .collect();
    expected.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(
        ids(&results),
        expected
            .iter()
            .map(|(_, id)| id.to_string())
            .collect::<Vec<_>>()
    );
    for (r, (d, _)) in results.as_array().unwrap().iter().zip(&expected) {
        let distance = r["_additional"]["distance"].as_f64().unwrap();
        let certainty = r["_additional"]["certainty"].as_f64().unwrap();
        assert!((distance - d).abs() < 1e-6, "{distance} vs {d}");
        assert!((certainty - (1.0 - d / 2.0)).abs() < 1e-6, "{certainty}");
    }
    assert_eq!(results[0]["name"], "red circle");
}

#[tokio::test]
async fn certainty_and_distance_thresholds() {
    let c = shapes().await;
    let body = c.gql("{ Get { Shape(nearVector: {vector: [1, 0.05, 0], certainty: 0.9}) { _additional { id } } } }").await;
    assert_eq!(ids(&get(&body, "Shape")), [A, B]);
    let body = c.gql("{ Get { Shape(nearVector: {vector: [1, 0.05, 0], distance: 1.0}) { _additional { id } } } }").await;
    assert_eq!(ids(&get(&body, "Shape")), [A, B, C]);
    let body = c.gql("{ Get { Shape(nearVector: {vector: [1, 0.05, 0]}, limit: 1, offset: 1) { _additional { id } } } }").await;
    assert_eq!(ids(&get(&body, "Shape")), [B]);

    let body = c
        .gql("{ Get { Shape(nearVector: {vector: [1, 0, 0], certainty: 0.9, distance: 0.2}) { name } } }")
        .await;
    assert_eq!(
        body["errors"][0]["message"],
        "failed to extract nearVector params: cannot provide distance and certainty"
    );
    assert_eq!(body["data"], json!({"Get": {"Shape": null}}));
    assert_eq!(body["errors"][0]["path"], json!(["Get", "Shape"]));
}

#[tokio::test]
async fn where_filters() {
    let c = shapes().await;
    let run = |w: &'static str| {
        let c = &c;
        async move {
            let body = c
                .gql(&format!(
                    "{{ Get {{ Shape(where: {w}) {{ _additional {{ id }} }} }} }}"
                ))
                .await;
            ids(&get(&body, "Shape"))
        }
    };
    assert_eq!(
        run(r#"{path: ["name"], operator: Equal, valueText: "circle"}"#).await,
        [A, B]
    );
    assert_eq!(
        run(r#"{path: ["name"], operator: NotEqual, valueText: "circle"}"#).await,
        [C, D, E]
    );
    assert_eq!(
        run(r#"{path: ["name"], operator: Like, valueText: "sq*"}"#).await,
        [C]
    );
    assert_eq!(
        run(r#"{path: ["name"], operator: Like, valueText: "?ed"}"#).await,
        [A, C]
    );
    assert_eq!(
        run(r#"{path: ["size"], operator: GreaterThan, valueInt: 3}"#).await,
        [B, D]
    );
    assert_eq!(
        run(r#"{path: ["size"], operator: GreaterThanEqual, valueInt: 3}"#).await,
        [A, B, D]
    );
    assert_eq!(
        run(r#"{path: ["weight"], operator: LessThan, valueNumber: 1.5}"#).await,
        [C]
    );
    assert_eq!(
        run(r#"{path: ["weight"], operator: LessThanEqual, valueNumber: 1.5}"#).await,
        [A, C]
    );
    assert_eq!(
        run(r#"{path: ["round"], operator: Equal, valueBoolean: false}"#).await,
        [C, D]
    );
    assert_eq!(
        run(r#"{operator: And, operands: [{path: ["round"], operator: Equal, valueBoolean: true}, {path: ["size"], operator: LessThan, valueInt: 4}]}"#).await,
        [A]
    );
    assert_eq!(
        run(r#"{operator: Or, operands: [{path: ["name"], operator: Equal, valueText: "square"}, {path: ["size"], operator: Equal, valueInt: 7}]}"#).await,
        [C, D]
    );

    let body = c.gql(r#"{ Get { Shape(where: {path: ["size"], operator: Equal, valueText: "3"}) { name } } }"#).await;
    assert_eq!(
        body["errors"][0]["message"],
        "invalid 'where' filter: data type filter cannot use \"valueText\" on type \"int\", use \"valueInt\" instead"
    );
    let body = c.gql(r#"{ Get { Shape(where: {path: ["nope"], operator: Equal, valueText: "3"}) { name } } }"#).await;
    assert_eq!(
        body["errors"][0]["message"],
        "invalid 'where' filter: no such prop with name 'nope' found in class 'Shape' in the schema. Check your schema files for which properties in this class are available"
    );

    // A filter combined with a vector search.
    let body = c
        .gql(r#"{ Get { Shape(nearVector: {vector: [0, 1, 0]}, where: {path: ["round"], operator: Equal, valueBoolean: true}) { _additional { id } } } }"#)
        .await;
    assert_eq!(ids(&get(&body, "Shape")), [B, A]);
}

#[tokio::test]
async fn near_object_and_vector_output() {
    let c = shapes().await;
    let body = c
        .gql(&format!(r#"{{ Get {{ Shape(nearObject: {{id: "{A}"}}, limit: 2) {{ _additional {{ id distance vector }} }} }} }}"#))
        .await;
    let results = get(&body, "Shape");
    assert_eq!(ids(&results), [A, B]);
    assert_eq!(results[0]["_additional"]["distance"], json!(0));
    assert_eq!(results[0]["_additional"]["vector"], json!([1, 0, 0]));
    let body = c
        .gql(&format!(r#"{{ Get {{ Shape(nearObject: {{beacon: "weaviate://localhost/Shape/{C}"}}, limit: 1) {{ _additional {{ id }} }} }} }}"#))
        .await;
    assert_eq!(ids(&get(&body, "Shape")), [C]);

    let body = c
        .gql(&format!(r#"{{ Get {{ Shape(nearObject: {{id: "{A}"}}, nearVector: {{vector: [1, 0, 0]}}) {{ name }} }} }}"#))
        .await;
    assert_eq!(
        body["errors"][0]["message"],
        "explorer: get class: vectorize params: found both 'nearVector' and 'nearObject' parameters which are conflicting, choose one instead"
    );
}

#[tokio::test]
async fn explore_across_classes() {
    let c = shapes().await;
    c.class(json!({"class": "Other"})).await;
    let o = "00000000-0000-0000-0000-0000000000f0";
    c.object(json!({"class": "Other", "id": o, "vector": [1, 0, 0.1]}))
        .await;
    let body = c
        .gql("{ Explore(nearVector: {vector: [1, 0, 0]}, limit: 3) { beacon className certainty distance } }")
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let items = body["data"]["Explore"].as_array().unwrap().clone();
    let beacons: Vec<&str> = items
        .iter()
        .map(|i| i["beacon"].as_str().unwrap())
        .collect();
    assert_eq!(
        beacons,
        [
            format!("weaviate://localhost/Shape/{A}"),
            format!("weaviate://localhost/Other/{o}"),
            format!("weaviate://localhost/Shape/{B}")
        ]
    );
    assert_eq!(items[1]["className"], "Other");
    let d = cosine_distance(&[1.0, 0.0, 0.0], &[1.0, 0.0, 0.1]);
    assert!((items[1]["distance"].as_f64().unwrap() - d).abs() < 1e-6);
    assert!((items[1]["certainty"].as_f64().unwrap() - (1.0 - d / 2.0)).abs() < 1e-6);

    let body = c.gql("{ Explore(limit: 3) { beacon } }").await;
    assert_eq!(
        body,
        json!({"data": {"Explore": null}, "errors": [{"locations": [{"column": 3, "line": 1}],
            "message": "invalid params: received no search params, one of [nearVector, nearObject] or module search params is required for an exploration",
            "path": ["Explore"]}]})
    );
}

#[tokio::test]
async fn aggregate_count_and_its_rules() {
    let c = shapes().await;
    let count = |body: Value| body["data"]["Aggregate"]["Shape"][0]["meta"]["count"].clone();
    assert_eq!(
        count(c.gql("{ Aggregate { Shape { meta { count } } } }").await),
        json!(5)
    );
    assert_eq!(
        count(c.gql(r#"{ Aggregate { Shape(where: {path: ["name"], operator: Equal, valueText: "circle"}) { meta { count } } } }"#).await),
        json!(2)
    );
    assert_eq!(
        count(c.gql("{ Aggregate { Shape(nearVector: {vector: [1, 0.05, 0], certainty: 0.9}) { meta { count } } } }").await),
        json!(2)
    );
    assert_eq!(
        count(c.gql("{ Aggregate { Shape(nearVector: {vector: [1, 0.05, 0], distance: 0.2}) { meta { count } } } }").await),
        json!(2)
    );
    assert_eq!(
        count(c.gql("{ Aggregate { Shape(nearVector: {vector: [1, 0.05, 0]}, objectLimit: 3) { meta { count } } } }").await),
        json!(3)
    );

    let body = c
        .gql("{ Aggregate { Shape(nearVector: {vector: [1, 0, 0]}) { meta { count } } } }")
        .await;
    assert_eq!(
        body,
        json!({"data": {"Aggregate": {"Shape": null}}, "errors": [{"locations": [{"column": 15, "line": 1}],
            "message": "must provide certainty or objectLimit with vector search", "path": ["Aggregate", "Shape"]}]})
    );
    let body = c
        .gql("{ Aggregate { Shape(objectLimit: 2) { meta { count } } } }")
        .await;
    assert_eq!(
        body["errors"][0]["message"],
        "objectLimit can only be used with a near<Media> or hybrid filter"
    );
    let body = c.gql("{ Aggregate { Shape(nearVector: {vector: [1, 0, 0]}, objectLimit: 0) { meta { count } } } }").await;
    assert_eq!(
        body["errors"][0]["message"],
        "objectLimit must be a positive integer"
    );
}

#[tokio::test]
async fn module_arguments_are_unknown_with_exact_text_and_location() {
    let c = shapes().await;
    let query = "{\n  Get {\n    Shape(\n      limit: 1,\n      nearText: {concepts: [\"red\"]}\n    ) { name }\n  }\n}";
    let (status, raw) = c
        .raw(
            reqwest::Method::POST,
            "/v1/graphql",
            Some(json!({"query": query})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        raw,
        r#"{"errors":[{"locations":[{"column":7,"line":5}],"message":"Unknown argument \"nearText\" on field \"Shape\" of type \"GetObjectsObj\". Did you mean \"nearVector\" or \"nearObject\"?","path":null}]}"#
    );

    let body = c
        .gql(r#"{ Get { Shape(nearImage: {image: "iVBORw0KGgo="}) { name } } }"#)
        .await;
    assert_eq!(
        body,
        json!({"errors": [{"locations": [{"column": 15, "line": 1}],
            "message": "Unknown argument \"nearImage\" on field \"Shape\" of type \"GetObjectsObj\".", "path": null}]})
    );

    let body = c
        .gql("{ Aggregate {\n\tShape(nearText: {concepts: [\"x\"]}) { meta { count } } } }")
        .await;
    assert_eq!(
        body["errors"][0]["message"],
        "Unknown argument \"nearText\" on field \"Shape\" of type \"AggregateObjectsObj\". Did you mean \"nearVector\" or \"nearObject\"?"
    );
    assert_eq!(
        body["errors"][0]["locations"],
        json!([{"column": 8, "line": 2}])
    );

    let body = c
        .gql("{ Explore(nearText: {concepts: [\"x\"]}) { beacon } }")
        .await;
    assert_eq!(
        body["errors"][0]["message"],
        "Unknown argument \"nearText\" on field \"Explore\" of type \"WeaviateObj\". Did you mean \"nearVector\" or \"nearObject\"?"
    );
    assert_eq!(
        body["errors"][0]["locations"],
        json!([{"column": 11, "line": 1}])
    );

    // With an alias, several classes and a comment before the argument.
    let body = c
        .gql("{ Get {\n  a: Shape { name }\n  b: Shape( # c\n    nearImage: {image: \"x\"}) { name } } }")
        .await;
    assert_eq!(
        body["errors"][0]["locations"],
        json!([{"column": 5, "line": 4}])
    );

    let body = c
        .gql("{ Get { Shape(nearVector: {vector: [1, 0, 0]}, nearVector: {vector: [0, 1, 0]}) { name } } }")
        .await;
    assert_eq!(
        body,
        json!({"errors": [{"locations": [{"column": 15, "line": 1}, {"column": 48, "line": 1}],
            "message": "There can be only one argument named \"nearVector\".", "path": null}]})
    );

    let body = c.gql("{ Get { Zebra { name } } }").await;
    assert_eq!(
        body["errors"][0]["message"],
        "Cannot query field \"Zebra\" on type \"GetObjectsObj\"."
    );
    let body = c.gql("{ Get { Shape { nope } } }").await;
    assert_eq!(
        body["errors"][0]["message"],
        "Cannot query field \"nope\" on type \"Shape\". Did you mean \"name\"?"
    );
}

#[tokio::test]
async fn hybrid_vector_part_and_errors() {
    let c = shapes().await;
    let body = c
        .gql(r#"{ Get { Shape(hybrid: {query: "red"}) { name } } }"#)
        .await;
    assert_eq!(
        body["errors"][0]["message"],
        "VectorFromInput was called without vectorizer on class Shape for input red"
    );
    let body = c
        .gql(r#"{ Get { Shape(hybrid: {query: "red", searches: [{nearText: {concepts: ["red"]}}]}) { name } } }"#)
        .await;
    assert_eq!(
        body["errors"][0]["message"],
        "explorer: get class: vectorize search vector: could not vectorize input for collection Shape with search-type nearText. Make sure a vectorizer module is configured for this collection"
    );
    let body = c
        .gql(r#"{ Get { Shape(hybrid: {query: "red", alpha: 2}) { name } } }"#)
        .await;
    assert_eq!(
        body["errors"][0]["message"],
        "failed to extract hybrid params: alpha should be between 0.0 and 1.0"
    );

    let body = c
        .gql(r#"{ Get { Shape(hybrid: {query: "", alpha: 1, vector: [0, 1, 0]}, limit: 2) { _additional { id score } } } }"#)
        .await;
    let results = get(&body, "Shape");
    assert_eq!(ids(&results), [C, B]);
    assert!(results[0]["_additional"]["score"].is_string());
    let body = c
        .gql(r#"{ Get { Shape(hybrid: {query: "red", alpha: 0}) { _additional { id } } } }"#)
        .await;
    assert_eq!(ids(&get(&body, "Shape")), [A, C]);
    let body = c
        .gql(r#"{ Get { Shape(hybrid: {query: "square", alpha: 0.5, vector: [1, 0, 0]}, limit: 1) { name } } }"#)
        .await;
    assert_eq!(get(&body, "Shape").as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn variables_fragments_aliases_operations_and_batch() {
    let c = shapes().await;
    let query = r#"
        query Other { Get { Shape { name } } }
        query Q($lim: Int, $name: String = "circle") {
          Get {
            first: Shape(limit: $lim, where: {path: ["name"], operator: Equal, valueText: $name}) { ...F }
            all: Shape(limit: 10) { n: name }
          }
        }
        fragment F on Shape { name _additional { id } }"#;
    let (status, body) = c
        .post(
            "/v1/graphql",
            json!({"query": query, "operationName": "Q", "variables": {"lim": 1}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["Get"]["first"],
        json!([{"_additional": {"id": A}, "name": "red circle"}])
    );
    assert_eq!(body["data"]["Get"]["all"].as_array().map(Vec::len), Some(5));
    assert_eq!(body["data"]["Get"]["all"][0], json!({"n": "red circle"}));

    let (_, body) = c.post("/v1/graphql", json!({"query": query})).await;
    assert_eq!(
        body["errors"][0]["message"],
        "Must provide operation name if query contains multiple operations."
    );

    // Vectors cannot come from variables (§1.6).
    let (_, body) = c
        .post("/v1/graphql", json!({"query": "query($v: [Float]) { Get { Shape(nearVector: {vector: $v}) { name } } }", "variables": {"v": [1, 0, 0]}}))
        .await;
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("failed to extract nearVector params"));

    let (status, body) = c.post("/v1/graphql", json!({"query": ""})).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"][0]["message"], "query cannot be empty");
    let (status, body) = c
        .post(
            "/v1/graphql",
            json!({"query": "{ Get { Shape { name } } }", "variables": [1]}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"][0]["message"],
        "variables must be a JSON object, got []interface {}"
    );

    let (status, batch) = c
        .post(
            "/v1/graphql/batch",
            json!([
                {"query": "{ Get { Shape(limit: 1) { name } } }"},
                {"query": "{ Aggregate { Shape { meta { count } } } }"}
            ]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        batch[0]["data"]["Get"]["Shape"],
        json!([{"name": "red circle"}])
    );
    assert_eq!(
        batch[1]["data"]["Aggregate"]["Shape"][0]["meta"]["count"],
        json!(5)
    );
}

#[tokio::test]
async fn named_vectors_need_a_target_when_several_exist() {
    let c = Client::start().await;
    c.class(json!({"class": "Multi", "vectorConfig": {
        "a": {"vectorizer": {"none": {}}}, "b": {"vectorizer": {"none": {}}}}}))
        .await;
    c.object(json!({"class": "Multi", "id": A, "vectors": {"a": [1, 0], "b": [0, 1]}}))
        .await;
    c.object(json!({"class": "Multi", "id": B, "vectors": {"a": [0, 1], "b": [1, 0]}}))
        .await;
    let body = c
        .gql("{ Get { Multi(nearVector: {vector: [1, 0]}) { _additional { id } } } }")
        .await;
    assert_eq!(
        body["errors"][0]["message"],
        "explorer: get class: validate target vector: multiple vectorizers configuration found, please specify target vector name"
    );
    let body = c
        .gql(r#"{ Get { Multi(nearVector: {vector: [1, 0], targetVectors: ["b"]}) { _additional { id vectors { b } } } } }"#)
        .await;
    let results = get(&body, "Multi");
    assert_eq!(ids(&results), [B, A]);
    assert_eq!(results[0]["_additional"]["vectors"]["b"], json!([1, 0]));
    let body = c
        .gql(r#"{ Get { Multi(nearVector: {vectorPerTarget: {a: [0, 1]}}) { _additional { id } } } }"#)
        .await;
    assert_eq!(ids(&get(&body, "Multi")), [B, A]);
}
