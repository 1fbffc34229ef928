//! The double's REST schema and meta endpoints behave like an unmodified Weaviate (spec §6, §9).

mod double_support;

use double_support::Client;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn meta_and_well_known() {
    let c = Client::start().await;
    let (status, meta) = c.get("/v1/meta").await;
    assert_eq!(status, 200);
    assert_eq!(
        meta,
        json!({"grpcMaxMessageSize": 104858000, "hostname": "http://[::]:8080", "modules": {}, "version": "1.39.0"})
    );
    assert_eq!(c.get("/v1/.well-known/live").await.0, 200);
    assert_eq!(c.get("/v1/.well-known/ready").await.0, 200);
    assert_eq!(c.get("/v1/.well-known/openid-configuration").await.0, 404);
}

#[tokio::test]
async fn create_applies_defaults_and_rejects_duplicates() {
    let c = Client::start().await;
    let (status, created) = c
        .post(
            "/v1/schema",
            json!({"class": "article", "properties": [{"name": "Title", "dataType": ["text"]}]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(created["class"], "Article");
    assert_eq!(created["vectorizer"], "none");
    assert_eq!(created["vectorIndexType"], "hnsw");
    assert_eq!(created["vectorIndexConfig"]["distance"], "cosine");
    assert_eq!(created["properties"][0]["name"], "title");
    assert_eq!(created["properties"][0]["tokenization"], "word");

    let (status, schema) = c.get("/v1/schema").await;
    assert_eq!(status, 200);
    assert_eq!(schema["classes"][0]["class"], "Article");
    let (status, one) = c.get("/v1/schema/Article").await;
    assert_eq!(status, 200);
    assert_eq!(one, created);
    assert_eq!(c.get("/v1/schema/Nope").await.0, 404);

    let (status, body) = c.post("/v1/schema", json!({"class": "Article"})).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"allowed": null, "error": [{"message": "class name \"Article\" already exists"}]})
    );
}

#[tokio::test]
async fn module_vectorizers_are_rejected_with_weaviates_messages() {
    let c = Client::start().await;
    let (status, body) = c
        .post("/v1/schema", json!({"class": "Img", "vectorizer": "multi2vec-clip", "moduleConfig": {"multi2vec-clip": {"imageFields": ["image"]}}}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"allowed": null, "error": [{"message": "vectorizer: no module with name \"multi2vec-clip\" present"}]})
    );

    let (status, body) = c
        .post("/v1/schema", json!({"class": "Img", "vectorConfig": {"clip": {"vectorizer": {"multi2vec-clip": {}}, "vectorIndexType": "hnsw"}}}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"][0]["message"],
        "target vector \"clip\": vectorizer: no module with name \"multi2vec-clip\" present"
    );

    let (status, body) = c
        .post(
            "/v1/schema",
            json!({"class": "Img", "vectorizer": "none", "moduleConfig": {"multi2vec-clip": "x"}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"][0]["message"],
        "module config for multi2vec-clip is not a map, got x"
    );

    let (status, body) = c
        .post(
            "/v1/schema",
            json!({"class": "Img", "vectorConfig": {"v": {"vectorizer": {"none": {}}}},
            "moduleConfig": {"multi2vec-clip": {"imageFields": ["image"]}}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"][0]["message"],
        "module with name multi2vec-clip doesn't exist"
    );
    assert_eq!(c.get("/v1/schema").await.1, json!({"classes": []}));
}

#[tokio::test]
async fn none_vectorizer_module_config_is_kept_verbatim() {
    let c = Client::start().await;
    let module_config = json!({"multi2vec-clip": {"imageFields": ["image"], "textFields": ["title"],
        "weights": {"imageFields": [0.75], "textFields": [0.25]}, "inferenceUrl": "http://x:8080"}});
    let (status, created) = c
        .post("/v1/schema", json!({"class": "Img", "vectorizer": "none", "moduleConfig": module_config,
            "properties": [{"name": "image", "dataType": ["blob"]}, {"name": "title", "dataType": ["text"]}]}))
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["moduleConfig"], module_config);
    let (_, stored) = c.get("/v1/schema/Img").await;
    assert_eq!(stored["moduleConfig"], module_config);
    assert_eq!(stored["vectorizer"], "none");

    // Whole floats print as Go prints them.
    let (_, created) = c
        .post(
            "/v1/schema",
            json!({"class": "W", "moduleConfig": {"m": {"w": [1.0, 0.5]}}}),
        )
        .await;
    assert_eq!(created["moduleConfig"]["m"]["w"].to_string(), "[1,0.5]");
}

#[tokio::test]
async fn named_vector_none_config_is_kept_verbatim() {
    let c = Client::start().await;
    let inner =
        json!({"clipgate": {"multi2vec-clip": {"imageFields": ["image"]}}, "anything": [1, "x"]});
    let (status, created) = c
        .post(
            "/v1/schema",
            json!({"class": "Named", "vectorConfig": {
            "clip": {"vectorizer": {"none": inner}, "vectorIndexType": "hnsw"},
            "other": {"vectorizer": {"none": {}}, "vectorIndexConfig": {"distance": "dot"}}}}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["vectorConfig"]["clip"]["vectorizer"]["none"], inner);
    assert_eq!(
        created["vectorConfig"]["clip"]["vectorIndexConfig"]["distance"],
        "cosine"
    );
    assert_eq!(
        created["vectorConfig"]["other"]["vectorIndexConfig"]["distance"],
        "dot"
    );
    assert!(created.get("vectorizer").is_none());
    let (_, stored) = c.get("/v1/schema/Named").await;
    assert_eq!(stored["vectorConfig"]["clip"]["vectorizer"]["none"], inner);
}

#[tokio::test]
async fn updates_keep_module_configs_and_vectorizers_immutable() {
    let c = Client::start().await;
    c.class(
        json!({"class": "Img", "moduleConfig": {"multi2vec-clip": {"imageFields": ["image"]}}}),
    )
    .await;
    let (status, body) = c
        .call(
            Method::PUT,
            "/v1/schema/Img",
            Some(json!({"class": "Img", "vectorizer": "none",
            "moduleConfig": {"multi2vec-clip": {"imageFields": ["photo"]}}})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"][0]["message"],
        "can only update generative and reranker module configs. Got: multi2vec-clip for class: Img"
    );
    let (status, body) = c
        .call(Method::PUT, "/v1/schema/Img", Some(json!({"class": "Img", "vectorizer": "none",
            "moduleConfig": {"multi2vec-clip": {"imageFields": ["image"]}, "generative-openai": {"model": "x"}}})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["moduleConfig"]["generative-openai"]["model"], "x");

    c.class(json!({"class": "Named", "vectorConfig": {"v": {"vectorizer": {"none": {"a": 1}}}}}))
        .await;
    let (status, body) = c
        .call(
            Method::PUT,
            "/v1/schema/Named",
            Some(json!({"class": "Named",
            "vectorConfig": {"v": {"vectorizer": {"text2vec-openai": {}}}}})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"][0]["message"],
        "vectorizer of vector \"v\" is immutable: attempted change from \"none\" to \"text2vec-openai\""
    );
}

#[tokio::test]
async fn properties_tenants_and_delete() {
    let c = Client::start().await;
    c.class(json!({"class": "Doc", "multiTenancyConfig": {"enabled": true}}))
        .await;
    let (status, prop) = c
        .post(
            "/v1/schema/Doc/properties",
            json!({"name": "body", "dataType": ["text"]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(prop["name"], "body");
    let (status, body) = c
        .post(
            "/v1/schema/Doc/properties",
            json!({"name": "body", "dataType": ["text"]}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"][0]["message"],
        "class \"Doc\": conflict for property \"body\": already in use or provided multiple times"
    );
    let (status, tenants) = c
        .post(
            "/v1/schema/Doc/tenants",
            json!([{"name": "A"}, {"name": "B"}]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(tenants[1]["name"], "B");
    assert_eq!(
        c.get("/v1/schema/Doc/tenants")
            .await
            .1
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let (status, _) = c.call(Method::DELETE, "/v1/schema/Doc", None).await;
    assert_eq!(status, 200);
    assert_eq!(c.get("/v1/schema/Doc").await.0, 404);
}
