//! Optional API keys: anonymous callers get 401, a key limited to some classes gets 403 elsewhere.

mod double_support;

use conformance::double::{ApiKey, Double};
use double_support::Client;
use serde_json::json;

const ID: &str = "00000000-0000-0000-0000-000000000001";

#[tokio::test]
async fn keys_authenticate_and_limit_classes() {
    let double = Double::new().with_api_keys([
        ApiKey::new("admin-key", "admin"),
        ApiKey::new("reader-key", "reader").only_classes(["Public"]),
    ]);
    let anon = Client::start_with(double).await;
    let (status, body) = anon.get("/v1/schema").await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"code": 401, "message": "anonymous access not enabled, please provide an auth scheme such as OIDC"})
    );
    assert_eq!(anon.get("/v1/.well-known/ready").await.0, 200);
    assert_eq!(anon.with_token("wrong").get("/v1/meta").await.0, 401);

    let admin = anon.with_token("admin-key");
    admin.class(json!({"class": "Public"})).await;
    admin.class(json!({"class": "Secret"})).await;
    admin
        .object(json!({"class": "Secret", "id": ID, "vector": [1, 0]}))
        .await;
    admin
        .object(json!({"class": "Public", "id": ID, "vector": [1, 0]}))
        .await;

    let reader = anon.with_token("reader-key");
    assert_eq!(
        reader
            .get(&format!("/v1/objects/Public/{ID}?include=vector"))
            .await
            .0,
        200
    );
    let (status, body) = reader
        .get(&format!("/v1/objects/Secret/{ID}?include=vector"))
        .await;
    assert_eq!(status, 403);
    let message = body["error"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("forbidden: "), "{message}");
    assert!(body.to_string().find("\"vector\"").is_none());

    let body = reader
        .gql("{ Get { Secret { _additional { id vector } } } }")
        .await;
    assert_eq!(body["data"]["Get"]["Secret"], json!(null));
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("forbidden: "));
    let body = reader
        .gql("{ Explore(nearVector: {vector: [1, 0]}) { className } }")
        .await;
    assert_eq!(body["data"]["Explore"], json!([{"className": "Public"}]));
    let (status, _) = reader
        .post("/v1/objects", json!({"class": "Secret", "properties": {}}))
        .await;
    assert_eq!(status, 403);
}
