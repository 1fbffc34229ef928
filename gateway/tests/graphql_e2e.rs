//! GraphQL end to end over real loopback HTTP: client → clipgate → Weaviate double (or a small
//! recording upstream), with the real fixture model.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use common::TestEnv;
use gateway::config::Config;
use serde_json::{json, Value};

const SHAPES: [&str; 10] = [
    "red-circle",
    "red-square",
    "blue-circle",
    "blue-square",
    "green-triangle",
    "yellow-star",
    "orange-diamond",
    "purple-cross",
    "pink-heart",
    "brown-hexagon",
];

fn image_b64(name: &str) -> String {
    let path = format!(
        "{}/../fixtures/images/{name}.png",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn post_json(env: &TestEnv, url: String, body: &Value) -> (u16, Value) {
    let response = env
        .client
        .post(url)
        .json(body)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

async fn graphql(env: &TestEnv, query: &str) -> Value {
    let (status, body) = post_json(env, env.url("/v1/graphql"), &json!({ "query": query })).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn text_vector(env: &TestEnv, text: &str) -> Vec<f32> {
    let mut out = env.embedder().embed_texts(&[text.to_string()]).await;
    out.remove(0).expect("fixture text vector").to_vec()
}

async fn image_vector(env: &TestEnv, b64: &str) -> Vec<f32> {
    let mut out = env.embedder().embed_images(&[b64.to_string()]).await;
    out.remove(0).expect("fixture image vector").to_vec()
}

/// Cosine distance in f64, independently of the double.
fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    1.0 - dot / (na * nb)
}

/// A double with `Shape` (clip-managed, stored as Weaviate stores it for the gateway: `none` +
/// moduleConfig) and `Plain` (a genuine `none` class), the fixture images stored in `Shape` with
/// their image vectors. Returns the env and (name, vector) of each object.
async fn shapes() -> (TestEnv, Vec<(String, Vec<f32>)>) {
    let env = common::start().await;
    for class in [
        json!({"class": "Shape", "vectorizer": "none",
               "moduleConfig": {"multi2vec-clip": {"imageFields": ["image"]}},
               "properties": [{"name": "name", "dataType": ["text"]}, {"name": "image", "dataType": ["blob"]}]}),
        json!({"class": "Plain", "vectorizer": "none",
               "properties": [{"name": "name", "dataType": ["text"]}]}),
    ] {
        let (status, body) = post_json(&env, env.weaviate_url("/v1/schema"), &class).await;
        assert_eq!(status, 200, "{body}");
    }
    let mut stored = Vec::new();
    for (i, name) in SHAPES.iter().enumerate() {
        let vector = image_vector(&env, &image_b64(name)).await;
        let id = format!("00000000-0000-0000-0000-{:012}", i + 1);
        let object =
            json!({"class": "Shape", "id": id, "properties": {"name": name}, "vector": vector});
        let (status, body) = post_json(&env, env.weaviate_url("/v1/objects"), &object).await;
        assert_eq!(status, 200, "{body}");
        stored.push((name.to_string(), vector));
    }
    (env, stored)
}

/// The expected order and distances of a vector search, computed in the test.
fn ranking(stored: &[(String, Vec<f32>)], query: &[f32]) -> Vec<(String, f64)> {
    let mut ranked: Vec<(String, f64)> = stored
        .iter()
        .map(|(n, v)| (n.clone(), cosine_distance(query, v)))
        .collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    ranked
}

fn assert_hits(hits: &Value, expected: &[(String, f64)], n: usize) {
    let hits = hits.as_array().expect("hits");
    assert_eq!(hits.len(), n, "{hits:?}");
    for (hit, (name, distance)) in hits.iter().zip(expected) {
        assert_eq!(hit["name"], name.as_str(), "{hits:?}");
        let d = hit["_additional"]["distance"].as_f64().expect("distance");
        let c = hit["_additional"]["certainty"].as_f64().expect("certainty");
        assert!((d - distance).abs() < 1e-5, "{name}: {d} vs {distance}");
        assert!(
            (c - (1.0 - distance / 2.0)).abs() < 1e-5,
            "{name}: certainty {c}"
        );
    }
}

#[tokio::test]
async fn near_text_order_distance_and_certainty() {
    let (env, stored) = shapes().await;
    let query_vector = text_vector(&env, "a red circle").await;
    let expected = ranking(&stored, &query_vector);
    assert_eq!(expected[0].0, "red-circle", "the fixture model's semantics");
    let answer = graphql(
        &env,
        r#"{ Get { Shape(nearText: {concepts: ["a red circle"]}, limit: 4) { name _additional { distance certainty } } } }"#,
    )
    .await;
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_hits(&answer["data"]["Get"]["Shape"], &expected, 4);
}

#[tokio::test]
async fn near_image_and_certainty_filter() {
    let (env, stored) = shapes().await;
    let image = image_b64("blue-square");
    let expected = ranking(&stored, &image_vector(&env, &image).await);
    let threshold = 1.0 - expected[2].1 / 2.0 - 1e-6;
    let query = format!(
        r#"{{ Get {{ Shape(nearImage: {{image: "{image}", certainty: {threshold}}}) {{ name _additional {{ distance certainty }} }} }} }}"#
    );
    let answer = graphql(&env, &query).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_eq!(expected[0].0, "blue-square");
    assert_hits(&answer["data"]["Get"]["Shape"], &expected, 3);
}

#[tokio::test]
async fn moves_hybrid_aggregate_explore_and_batch() {
    let (env, stored) = shapes().await;
    // A move towards concepts.
    let query = r#"{ Get { Shape(nearText: {concepts: ["a red circle"], moveTo: {concepts: ["a blue square"], force: 0.9}}, limit: 1) { name } } }"#;
    let answer = graphql(&env, query).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let hybrid =
        r#"{ Get { Shape(hybrid: {query: "a yellow star", alpha: 1}, limit: 1) { name } } }"#;
    let answer = graphql(&env, hybrid).await;
    assert_eq!(
        answer["data"]["Get"]["Shape"][0]["name"], "yellow-star",
        "{answer}"
    );

    let aggregate = r#"{ Aggregate { Shape(nearText: {concepts: ["a red circle"]}, objectLimit: 3) { meta { count } } } }"#;
    let answer = graphql(&env, aggregate).await;
    assert_eq!(
        answer["data"]["Aggregate"]["Shape"][0]["meta"]["count"], 3,
        "{answer}"
    );

    let explore = r#"{ Explore(nearText: {concepts: ["a red circle"]}, limit: 2) { beacon className distance } }"#;
    let answer = graphql(&env, explore).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let first = &answer["data"]["Explore"][0];
    assert_eq!(first["className"], "Shape", "{answer}");
    assert_eq!(
        first["beacon"], "weaviate://localhost/Shape/00000000-0000-0000-0000-000000000001",
        "{answer}"
    );

    // A move away from a stored object, looked up through the gateway.
    let near_object_move = r#"{ Get { Shape(nearText: {concepts: ["a red circle"], moveAwayFrom: {objects: [{id: "00000000-0000-0000-0000-000000000001"}], force: 0.5}}, limit: 1) { name } } }"#;
    let answer = graphql(&env, near_object_move).await;
    assert!(answer.get("errors").is_none(), "{answer}");

    let batch = json!([
        {"query": r#"{ Get { Shape(nearText: {concepts: ["a green triangle"]}, limit: 1) { name } } }"#},
        {"query": r#"{ Get { Plain(nearText: {concepts: ["x"]}) { name } } }"#},
        {"query": r#"{ Get { Plain { name } } }"#},
        {"query": r#"{ Get { Shape(nearImage: {image: "not base64!"}) { name } } }"#},
    ]);
    let (status, answers) = post_json(&env, env.url("/v1/graphql/batch"), &batch).await;
    assert_eq!(status, 200, "{answers}");
    let answers = answers.as_array().expect("array");
    assert_eq!(answers.len(), 4);
    assert_eq!(
        answers[0]["data"]["Get"]["Shape"][0]["name"],
        "green-triangle"
    );
    assert_eq!(
        answers[1]["errors"][0]["message"],
        r#"Unknown argument "nearText" on field "Plain" of type "GetObjectsObj". Did you mean "nearVector" or "nearObject"?"#
    );
    assert_eq!(answers[2]["data"]["Get"]["Plain"], json!([]));
    assert_eq!(answers[3]["data"]["Get"]["Shape"], Value::Null);
    let message = answers[3]["errors"][0]["message"]
        .as_str()
        .expect("message");
    assert!(
        message.starts_with("explorer: get class: concurrentTargetVectorSearch): explorer: get class: vectorize search vector: vectorize params: vectorize params: vectorize image: "),
        "{message}"
    );
    let _ = stored;
}

#[tokio::test]
async fn errors_use_weaviates_envelopes() {
    let (env, _) = shapes().await;
    let answer = graphql(
        &env,
        "{\n  Get {\n    Plain(nearText: {concepts: [\"x\"]}) { name }\n  }\n}",
    )
    .await;
    assert_eq!(
        answer,
        json!({"errors":[{"locations":[{"column":11,"line":3}],
            "message":"Unknown argument \"nearText\" on field \"Plain\" of type \"GetObjectsObj\". Did you mean \"nearVector\" or \"nearObject\"?",
            "path":null}]})
    );
    let answer = graphql(
        &env,
        r#"{ Get { Shape(nearText: {concepts: ["x"], certainty: 0.5, distance: 0.2}) { name } } }"#,
    )
    .await;
    assert_eq!(
        answer,
        json!({"data":{"Get":{"Shape":null}},"errors":[{"locations":[{"column":9,"line":1}],
            "message":"explorer: get class: vectorize params: nearText cannot provide both distance and certainty",
            "path":["Get","Shape"]}]})
    );
}

#[tokio::test]
async fn documents_without_module_arguments_pass_byte_for_byte() {
    let (env, _) = shapes().await;
    let body = r#"{"query":"{ Get { Shape(limit: 2) { name } } }"}"#;
    let direct = env
        .client
        .post(env.weaviate_url("/v1/graphql"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("double")
        .bytes()
        .await
        .expect("body");
    let through = env
        .client
        .post(env.url("/v1/graphql"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("gateway")
        .bytes()
        .await
        .expect("body");
    assert_eq!(direct, through);
}

/// What the recording upstream saw.
#[derive(Default)]
struct Recorded {
    graphql: Vec<Value>,
    object_auth: Vec<Option<String>>,
}

type Shared = Arc<Mutex<Recorded>>;

/// A minimal Weaviate: one clip class, one object with a stored vector, and a GraphQL endpoint
/// that records the forwarded body.
async fn recording_upstream(object_vector: Vec<f32>) -> (String, Shared) {
    let recorded = Shared::default();
    let schema = json!({"classes": [{"class": "Item", "vectorizer": "none",
        "moduleConfig": {"multi2vec-clip": {"textFields": ["name"]}}}]});
    let object = json!({"class": "Item", "id": "00000000-0000-0000-0000-0000000000aa",
        "properties": {}, "vector": object_vector});
    let app = Router::new()
        .route("/v1/schema", get(move || async move { Json(schema) }))
        .route(
            "/v1/objects/{class}/{id}",
            get(
                move |State(rec): State<Shared>,
                      Path((_c, _id)): Path<(String, String)>,
                      headers: HeaderMap| async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    rec.lock().expect("lock").object_auth.push(auth);
                    Json(object)
                },
            ),
        )
        .route(
            "/v1/graphql",
            post(
                |State(rec): State<Shared>, Json(body): Json<Value>| async move {
                    rec.lock().expect("lock").graphql.push(body);
                    Json(json!({"data": {"Get": {"Item": []}}}))
                },
            ),
        )
        .with_state(recorded.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), recorded)
}

/// The numbers of the first `vector: [...]` literal in `query`, parsed as Weaviate does
/// (`strconv.ParseFloat(s, 64)`, then float32).
fn vector_in(query: &str) -> Vec<f32> {
    let start = query.find("vector: [").expect("a vector literal") + "vector: [".len();
    let end = start + query[start..].find(']').expect("end of the literal");
    query[start..end]
        .split(',')
        .map(|s| s.trim().parse::<f64>().expect("a float") as f32)
        .collect()
}

#[tokio::test]
async fn forwarded_vector_of_near_text_with_moves_is_bit_exact() {
    let embedder = common::embedder().await;
    let texts: Vec<String> = [
        "a red circle",
        "a red square",
        "a green triangle",
        "a blue circle",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let vectors: Vec<Vec<f32>> = embedder
        .embed_texts(&texts)
        .await
        .into_iter()
        .map(|r| r.expect("text vector").to_vec())
        .collect();
    let object: Vec<f32> = embedder
        .embed_images(&[image_b64("yellow-star")])
        .await
        .remove(0)
        .expect("image vector")
        .to_vec();
    let (upstream, recorded) = recording_upstream(object.clone()).await;
    let env = common::start_gateway(&upstream, Config::default()).await;
    let query = r#"{ Get { Item(nearText: {concepts: ["a red circle", "a red square"], moveTo: {concepts: ["a green triangle"], objects: [{id: "00000000-0000-0000-0000-0000000000aa"}], force: 0.7}, moveAwayFrom: {concepts: ["a blue circle"], force: 0.3}}) { name } } }"#;
    let response = env
        .client
        .post(env.url("/v1/graphql"))
        .header("authorization", "Bearer caller-key")
        .json(&json!({"query": query}))
        .send()
        .await
        .expect("gateway");
    assert_eq!(response.status(), 200);

    // The arithmetic written out (spec §3.1, §3.2), in f32, without gateway::arithmetic.
    let dims = vectors[0].len();
    let mut expected = vec![0f32; dims];
    for i in 0..dims {
        let sum = vectors[0][i] + vectors[1][i];
        let concepts = sum / 2.0f32;
        // moveTo target: mean of [mean(move concepts), object vector]; the concept mean of one
        // text is the text vector itself.
        let target = (vectors[2][i] + object[i]) / 2.0f32;
        let step = 0.7f32 * 0.5f32;
        let keep = 1.0f32 - step;
        let a = concepts * keep;
        let b = target * step;
        let moved = a + b;
        let away = 0.3f32 * 0.5f32;
        let diff = moved - vectors[3][i];
        let delta = away * diff;
        expected[i] = moved + delta;
    }

    let recorded = recorded.lock().expect("lock");
    assert_eq!(recorded.graphql.len(), 1);
    let forwarded = recorded.graphql[0]["query"].as_str().expect("query");
    assert!(
        forwarded.starts_with("{ Get { Item(nearVector: {vector: ["),
        "{forwarded}"
    );
    let got = vector_in(forwarded);
    assert_eq!(got.len(), dims);
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g.to_bits(), e.to_bits(), "dimension {i}: {g} vs {e}");
    }
    // The move object was looked up with the caller's own credentials.
    assert_eq!(
        recorded.object_auth,
        vec![Some("Bearer caller-key".to_string())]
    );
}

/// The rewrite cache (`gateway::memo`): a repeated body is answered as the first one
/// was; move objects (read from Weaviate) are never kept; a refreshed schema is never mixed with
/// an old rewrite.
#[tokio::test]
async fn rewritten_documents_are_reused_only_when_nothing_else_can_change() {
    let (env, stored) = shapes().await;
    let query = r#"{ Get { Shape(nearText: {concepts: ["a red circle"]}, limit: 3) { name _additional { distance certainty } } } }"#;
    let body = bytes::Bytes::from(json!({ "query": query }).to_string());
    let send = |body: bytes::Bytes| {
        let env = &env;
        async move {
            let response = env
                .client
                .post(env.url("/v1/graphql"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("answer");
            response.json::<Value>().await.expect("json")
        }
    };
    let first = send(body.clone()).await;
    assert!(
        env.state.memo.get(&body).await.is_some(),
        "the rewrite is kept"
    );
    let second = send(body.clone()).await;
    assert_eq!(first, second);
    let expected = ranking(&stored, &text_vector(&env, "a red circle").await);
    assert_hits(&second["data"]["Get"]["Shape"], &expected, 3);

    // A schema change made through the gateway (or a TTL refresh) invalidates the view: the kept
    // rewrite is not used with the new view, and the answer is still right.
    env.state.schema.invalidate();
    let third = send(body.clone()).await;
    assert_eq!(first, third);
    let kept = env.state.memo.get(&body).await.expect("re-kept");
    let view = env
        .state
        .schema
        .view(&env.state.upstream, &http::HeaderMap::new())
        .await
        .expect("view");
    assert!(kept.planned_against(&view));

    // Move objects are read from Weaviate with the caller's credentials: never kept.
    let moved = r#"{ Get { Shape(nearText: {concepts: ["a red circle"], moveTo: {force: 0.5, objects: [{id: "00000000-0000-0000-0000-000000000004"}]}}, limit: 3) { name } } }"#;
    let moved_body = bytes::Bytes::from(json!({ "query": moved }).to_string());
    let answer = send(moved_body.clone()).await;
    assert!(answer["data"]["Get"]["Shape"].is_array(), "{answer}");
    assert!(env.state.memo.get(&moved_body).await.is_none());
}
