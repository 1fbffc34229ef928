//! Schema REST through the gateway (issue 5, "Schema"; spec §5.2, §6): multi2vec-clip classes
//! are validated with Weaviate's messages, stored on the unmodified upstream (the double) as
//! `none` classes, shown back as created; genuine `none` classes stay `none`; changes refresh the
//! schema cache at once.

mod common;
mod import_support;

use std::time::Duration;

use gateway::config::Config;
use import_support::{call, create_class, legacy_vector, post, stored};
use reqwest::Method;
use serde_json::{json, Value};

async fn upstream_class(env: &common::TestEnv, class: &str) -> (u16, Value) {
    let response = env
        .client
        .get(env.weaviate_url(&format!("/v1/schema/{class}")))
        .send()
        .await
        .expect("double answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn class_in<'a>(schema: &'a Value, name: &str) -> &'a Value {
    schema["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .find(|c| c["class"] == name)
        .unwrap_or_else(|| panic!("class {name} in {schema}"))
}

#[tokio::test]
async fn legacy_class_is_stored_as_none_and_shown_as_created() {
    let env = common::start().await;
    let clip = json!({"textFields": ["title", "description"], "imageFields": ["image"],
        "weights": {"textFields": [0.7, 0.3], "imageFields": [1]}});
    let (status, created) = post(
        &env,
        "/v1/schema",
        &json!({
        "class": "Shape", "vectorizer": "multi2vec-clip", "moduleConfig": {"multi2vec-clip": clip},
        "properties": [
            {"name": "title", "dataType": ["text"]},
            {"name": "description", "dataType": ["text"]},
            {"name": "image", "dataType": ["blob"]}
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["vectorizer"], "multi2vec-clip");
    assert_eq!(created["moduleConfig"]["multi2vec-clip"], clip);

    // Upstream: an ordinary `none` class with the module config kept verbatim (spec §6).
    let (status, upstream) = upstream_class(&env, "Shape").await;
    assert_eq!(status, 200);
    assert_eq!(upstream["vectorizer"], "none");
    assert_eq!(upstream["moduleConfig"]["multi2vec-clip"], clip);

    // A genuine `none` class created through the gateway stays `none`.
    create_class(
        &env,
        &json!({"class": "Plain", "vectorizer": "none",
        "properties": [{"name": "title", "dataType": ["text"]}]}),
    )
    .await;

    let (status, schema) = call(&env, Method::GET, "/v1/schema", None).await;
    assert_eq!(status, 200);
    let shape = class_in(&schema, "Shape");
    assert_eq!(shape["vectorizer"], "multi2vec-clip");
    assert_eq!(shape["moduleConfig"]["multi2vec-clip"], clip);
    assert_eq!(class_in(&schema, "Plain")["vectorizer"], "none");

    let (status, one) = call(&env, Method::GET, "/v1/schema/Shape", None).await;
    assert_eq!(status, 200);
    assert_eq!(&one, shape);
    // Everything but the vectorizer is the upstream's own answer.
    let mut expected = upstream.clone();
    expected["vectorizer"] = json!("multi2vec-clip");
    assert_eq!(one, expected);
    let (_, plain) = call(&env, Method::GET, "/v1/schema/Plain", None).await;
    assert_eq!(plain, upstream_class(&env, "Plain").await.1);
}

#[tokio::test]
async fn class_without_module_config_round_trips() {
    let env = common::start().await;
    create_class(
        &env,
        &json!({"class": "Bare", "vectorizer": "multi2vec-clip"}),
    )
    .await;
    let (_, upstream) = upstream_class(&env, "Bare").await;
    assert_eq!(upstream["vectorizer"], "none");
    assert_eq!(upstream["moduleConfig"], json!({"multi2vec-clip": null}));
    let (_, shown) = call(&env, Method::GET, "/v1/schema/Bare", None).await;
    assert_eq!(shown["vectorizer"], "multi2vec-clip");
    assert!(shown.get("moduleConfig").is_none(), "{shown}");
}

#[tokio::test]
async fn named_vectors_round_trip() {
    let env = common::start().await;
    let clip = json!({"textFields": ["title"], "imageFields": ["image"]});
    create_class(&env, &json!({"class": "Multi", "vectorConfig": {
        "clip": {"vectorizer": {"multi2vec-clip": clip}, "vectorIndexType": "hnsw"},
        "manual": {"vectorizer": {"none": {}}, "vectorIndexType": "hnsw"}
    }, "properties": [{"name": "title", "dataType": ["text"]}, {"name": "image", "dataType": ["blob"]}]}))
    .await;
    let (_, upstream) = upstream_class(&env, "Multi").await;
    assert_eq!(
        upstream["vectorConfig"]["clip"]["vectorizer"],
        json!({"none": {"multi2vec-clip": clip}})
    );
    let (_, shown) = call(&env, Method::GET, "/v1/schema/Multi", None).await;
    assert_eq!(
        shown["vectorConfig"]["clip"]["vectorizer"],
        json!({"multi2vec-clip": clip})
    );
    assert_eq!(
        shown["vectorConfig"]["manual"]["vectorizer"],
        json!({"none": {}})
    );
    let mut expected = upstream.clone();
    expected["vectorConfig"]["clip"]["vectorizer"] = json!({"multi2vec-clip": clip});
    assert_eq!(shown, expected);
}

#[tokio::test]
async fn invalid_module_configs_get_weaviates_messages() {
    let env = common::start().await;
    let cases = [
        (
            json!({"textFields": "title"}),
            "module 'multi2vec-clip': textFields must be an array",
        ),
        (
            json!({"imageFields": []}),
            "module 'multi2vec-clip': must contain at least one image field name in imageFields",
        ),
        (
            json!({"textFields": [3]}),
            "module 'multi2vec-clip': textField must be a string",
        ),
        (
            json!({"imageFields": [""]}),
            "module 'multi2vec-clip': imageField values cannot be empty",
        ),
        (
            json!({"textFields": ["a", "b"], "weights": {"textFields": [1]}}),
            "module 'multi2vec-clip': weights.textFields does not equal number of textFields",
        ),
        (
            json!({"imageFields": ["a"], "weights": {"imageFields": [true]}}),
            "module 'multi2vec-clip': unrecognized type: bool",
        ),
        (
            json!({"imageFields": ["a"], "weights": {"imageFields": ["heavy"]}}),
            "module 'multi2vec-clip': strconv.ParseFloat: parsing \"heavy\": invalid syntax",
        ),
    ];
    for (cfg, message) in cases {
        let (status, body) = post(
            &env,
            "/v1/schema",
            &json!({"class": "Bad", "vectorizer": "multi2vec-clip",
            "moduleConfig": {"multi2vec-clip": cfg}}),
        )
        .await;
        assert_eq!(status, 422, "{cfg}");
        assert_eq!(
            body,
            json!({"allowed": null, "error": [{"message": message}]}),
            "{cfg}"
        );
    }
    // Named vectors are validated the same way.
    let (status, body) = post(
        &env,
        "/v1/schema",
        &json!({"class": "Bad", "vectorConfig": {
        "v": {"vectorizer": {"multi2vec-clip": {"textFields": "x"}}, "vectorIndexType": "hnsw"}}}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"][0]["message"],
        "module 'multi2vec-clip': textFields must be an array"
    );
    // Nothing reached the upstream.
    assert_eq!(upstream_class(&env, "Bad").await.0, 404);
}

#[tokio::test]
async fn per_class_inference_url_must_be_allowed() {
    let env = common::start().await;
    let class = json!({"class": "Remote", "vectorizer": "multi2vec-clip",
        "moduleConfig": {"multi2vec-clip": {"imageFields": ["image"], "inferenceUrl": "http://169.254.169.254"}}});
    let (status, body) = post(&env, "/v1/schema", &class).await;
    assert_eq!(status, 422);
    let message = body["error"][0]["message"].as_str().expect("message");
    assert!(
        message.starts_with(
            "module 'multi2vec-clip': inferenceUrl \"http://169.254.169.254\" is not allowed"
        ),
        "{message}"
    );
    assert_eq!(upstream_class(&env, "Remote").await.0, 404);

    let allowed = common::start_with(Config {
        allowed_inference_urls: vec!["http://169.254.169.254".into()],
        ..Config::default()
    })
    .await;
    create_class(&allowed, &class).await;
}

#[tokio::test]
async fn schema_changes_refresh_the_cache_at_once() {
    // A TTL far longer than the test: only invalidation can explain a fresh view.
    let env = common::start_with(Config {
        schema_ttl: Duration::from_secs(3600),
        ..Config::default()
    })
    .await;
    let object = json!({"class": "Fresh", "id": import_support::id(1), "properties": {"title": "a red circle"}});
    // Fill the cache while the class does not exist yet (an import reads the view).
    create_class(&env, &json!({"class": "Other", "vectorizer": "none"})).await;
    let (status, body) = post(
        &env,
        "/v1/objects",
        &json!({"class": "Other", "properties": {"title": "x"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    create_class(
        &env,
        &json!({"class": "Fresh", "vectorizer": "multi2vec-clip",
        "moduleConfig": {"multi2vec-clip": {"textFields": ["title"]}},
        "properties": [{"name": "title", "dataType": ["text"]}]}),
    )
    .await;
    let (status, body) = post(&env, "/v1/objects", &object).await;
    assert_eq!(status, 200, "{body}");
    assert!(legacy_vector(&stored(&env, "Fresh", &import_support::id(1)).await).is_some());

    // Deleted and re-created as a genuine `none` class: no longer vectorized.
    let (status, _) = call(&env, Method::DELETE, "/v1/schema/Fresh", None).await;
    assert_eq!(status, 200);
    create_class(
        &env,
        &json!({"class": "Fresh", "vectorizer": "none",
        "properties": [{"name": "title", "dataType": ["text"]}]}),
    )
    .await;
    let (status, body) = post(&env, "/v1/objects", &object).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        legacy_vector(&stored(&env, "Fresh", &import_support::id(1)).await),
        None
    );
}
