//! The double's object REST endpoints and batch import (spec §5.3, §9).

mod double_support;

use double_support::Client;
use reqwest::Method;
use serde_json::json;

const ID: &str = "00000000-0000-0000-0000-000000000001";

async fn with_class() -> Client {
    let c = Client::start().await;
    c.class(json!({"class": "Doc", "properties": [
        {"name": "title", "dataType": ["text"]},
        {"name": "image", "dataType": ["blob"]},
        {"name": "rank", "dataType": ["int"]}]}))
        .await;
    c
}

#[tokio::test]
async fn create_get_include_vector_head_delete() {
    let c = with_class().await;
    let created = c
        .object(json!({"class": "Doc", "id": ID, "properties": {"title": "hello"}, "vector": [0.1, 0.2, 1.0]}))
        .await;
    assert_eq!(created["id"], ID);
    assert_eq!(created["vector"].to_string(), "[0.1,0.2,1]");

    let (status, plain) = c.get(&format!("/v1/objects/Doc/{ID}")).await;
    assert_eq!(status, 200);
    assert_eq!(plain["properties"], json!({"title": "hello"}));
    assert!(plain.get("vector").is_none());
    let keys: Vec<&String> = plain.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "class",
            "creationTimeUnix",
            "id",
            "lastUpdateTimeUnix",
            "properties"
        ]
    );

    let (_, with_vector) = c.get(&format!("/v1/objects/Doc/{ID}?include=vector")).await;
    assert_eq!(with_vector["vector"], json!([0.1, 0.2, 1]));
    // f32 exactly as given: 0.1f32 printed with Go's 32-bit shortest formatting.
    let (_, raw) = c
        .raw(
            Method::GET,
            &format!("/v1/objects/Doc/{ID}?include=vector"),
            None,
        )
        .await;
    assert!(raw.contains("\"vector\":[0.1,0.2,1]"), "{raw}");

    let (status, body) = c
        .get(&format!("/v1/objects/Doc/{ID}?include=interpretation"))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"][0]["message"],
        "unrecognized property 'interpretation' in ?include list"
    );

    let (status, body) = c
        .post(
            "/v1/objects",
            json!({"class": "Doc", "id": ID, "properties": {}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"][0]["message"],
        format!("id '{ID}' already exists")
    );

    assert_eq!(
        c.call(Method::HEAD, &format!("/v1/objects/Doc/{ID}"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        c.call(Method::DELETE, &format!("/v1/objects/Doc/{ID}"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        c.call(Method::HEAD, &format!("/v1/objects/Doc/{ID}"), None)
            .await
            .0,
        404
    );
    assert_eq!(c.get(&format!("/v1/objects/Doc/{ID}")).await.0, 404);
    assert_eq!(
        c.call(Method::DELETE, &format!("/v1/objects/Doc/{ID}"), None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn put_and_patch() {
    let c = with_class().await;
    c.object(json!({"class": "Doc", "id": ID, "properties": {"title": "a", "rank": 1}, "vector": [1, 0]})).await;

    let other = "00000000-0000-0000-0000-000000000002";
    let (status, body) = c
        .call(
            Method::PUT,
            &format!("/v1/objects/Doc/{ID}"),
            Some(json!({"class": "Doc", "id": other, "properties": {}})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"][0]["message"],
        "invalid update: field 'id' is immutable"
    );

    // PATCH merges properties and keeps the old vector.
    let (status, _) = c
        .call(
            Method::PATCH,
            &format!("/v1/objects/Doc/{ID}"),
            Some(json!({"class": "Doc", "properties": {"title": "b"}})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, got) = c.get(&format!("/v1/objects/Doc/{ID}?include=vector")).await;
    assert_eq!(got["properties"], json!({"rank": 1, "title": "b"}));
    assert_eq!(got["vector"], json!([1, 0]));

    // PATCH with a vector replaces it.
    c.call(
        Method::PATCH,
        &format!("/v1/objects/Doc/{ID}"),
        Some(json!({"vector": [0, 1]})),
    )
    .await;
    let (_, got) = c.get(&format!("/v1/objects/Doc/{ID}?include=vector")).await;
    assert_eq!(got["vector"], json!([0, 1]));

    // PUT replaces everything.
    let (status, put) = c
        .call(
            Method::PUT,
            &format!("/v1/objects/Doc/{ID}"),
            Some(json!({"class": "Doc", "properties": {"title": "c"}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(put["properties"], json!({"title": "c"}));
    let (_, got) = c.get(&format!("/v1/objects/Doc/{ID}?include=vector")).await;
    assert!(got.get("vector").is_none());
    assert_eq!(
        c.call(
            Method::PATCH,
            "/v1/objects/Doc/00000000-0000-0000-0000-0000000000ff",
            Some(json!({}))
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn blob_validation_and_validate_endpoint() {
    let c = with_class().await;
    let (status, body) = c
        .post(
            "/v1/objects",
            json!({"class": "Doc", "properties": {"image": "data:image/png;base64,iVBORw0KGgo="}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"][0]["message"],
        "invalid object: invalid blob property 'image' on class 'Doc': not a valid blob base64 string"
    );
    let (status, _) = c
        .post(
            "/v1/objects/validate",
            json!({"class": "Doc", "properties": {"image": "iVBORw0KGgo="}}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .post(
            "/v1/objects/validate",
            json!({"class": "Doc", "properties": {"image": "###"}}),
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn named_vectors_round_trip() {
    let c = Client::start().await;
    c.class(json!({"class": "Multi", "vectorConfig": {
        "a": {"vectorizer": {"none": {}}}, "b": {"vectorizer": {"none": {}}}}}))
        .await;
    c.object(
        json!({"class": "Multi", "id": ID, "vectors": {"a": [1, 2], "b": [0.5, 0.25, 0.125]}}),
    )
    .await;
    let (_, got) = c
        .get(&format!("/v1/objects/Multi/{ID}?include=vector"))
        .await;
    assert_eq!(
        got["vectors"],
        json!({"a": [1, 2], "b": [0.5, 0.25, 0.125]})
    );
    assert!(got.get("vector").is_none());
}

#[tokio::test]
async fn tenants_isolate_objects() {
    let c = Client::start().await;
    c.class(json!({"class": "T", "multiTenancyConfig": {"enabled": true}}))
        .await;
    c.post(
        "/v1/schema/T/tenants",
        json!([{"name": "A"}, {"name": "B"}]),
    )
    .await;
    c.object(
        json!({"class": "T", "id": ID, "tenant": "A", "properties": {"x": "a"}, "vector": [1, 0]}),
    )
    .await;

    assert_eq!(c.get(&format!("/v1/objects/T/{ID}?tenant=A")).await.0, 200);
    assert_eq!(c.get(&format!("/v1/objects/T/{ID}?tenant=B")).await.0, 404);
    let (status, body) = c.get(&format!("/v1/objects/T/{ID}")).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"][0]["message"],
        "class T has multi-tenancy enabled, but request was without tenant"
    );
    let (status, body) = c
        .post(
            "/v1/objects",
            json!({"class": "T", "tenant": "C", "properties": {}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"][0]["message"], "tenant not found: \"C\"");

    let q = r#"{ Get { T(tenant: "B") { x } } }"#;
    assert_eq!(c.gql(q).await["data"]["Get"]["T"], json!([]));
    let q = r#"{ Get { T(tenant: "A") { x } } }"#;
    assert_eq!(c.gql(q).await["data"]["Get"]["T"], json!([{"x": "a"}]));
}

#[tokio::test]
async fn listing() {
    let c = with_class().await;
    for i in 1..=3 {
        c.object(json!({"class": "Doc", "id": format!("00000000-0000-0000-0000-00000000000{i}"), "properties": {"rank": i}})).await;
    }
    let (status, list) = c.get("/v1/objects?class=Doc&limit=2&offset=1").await;
    assert_eq!(status, 200);
    assert_eq!(list["totalResults"], 2);
    assert_eq!(list["objects"][0]["properties"]["rank"], 2);
    assert!(list.as_object().unwrap().contains_key("deprecations"));
}

#[tokio::test]
async fn batch_reports_each_object_in_input_order() {
    let c = with_class().await;
    let (status, body) = c.post("/v1/batch/objects", json!({"objects": []})).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"][0]["message"],
        "invalid param 'objects': cannot be empty, need at least one object for batching"
    );

    let (status, results) = c
        .post(
            "/v1/batch/objects",
            json!({"fields": ["ALL"], "objects": [
                {"class": "Doc", "id": ID, "properties": {"title": "one"}, "vector": [1, 0, 0]},
                {"class": "Doc", "properties": {"image": "not base64!"}},
                {"class": "Doc", "properties": {"title": "three"}, "vector": [0, 1]}
            ]}),
        )
        .await;
    assert_eq!(status, 200);
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["result"], json!({"status": "SUCCESS"}));
    assert_eq!(results[0]["id"], ID);
    assert_eq!(results[0]["vector"], json!([1, 0, 0]));
    assert!(results[0].as_object().unwrap().contains_key("deprecations"));
    assert_eq!(results[1]["result"]["status"], "FAILED");
    assert_eq!(
        results[1]["result"]["errors"]["error"][0]["message"],
        "invalid object: invalid blob property 'image' on class 'Doc': not a valid blob base64 string"
    );
    // A vector of another length than the index's is a storage error for that object only.
    assert_eq!(results[2]["result"]["status"], "FAILED");
    let (_, list) = c.get("/v1/objects?class=Doc").await;
    assert_eq!(list["totalResults"], 1);
}

#[tokio::test]
async fn auto_schema_creates_missing_class_and_properties() {
    let c = Client::start().await;
    c.object(json!({"class": "auto", "properties": {"name": "x", "count": 3, "tags": ["a"]}}))
        .await;
    let (status, class) = c.get("/v1/schema/Auto").await;
    assert_eq!(status, 200);
    let types: Vec<(String, String)> = class["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["dataType"][0].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(types.contains(&("name".into(), "text".into())));
    assert!(types.contains(&("count".into(), "number".into())));
    assert!(types.contains(&("tags".into(), "text[]".into())));
}
