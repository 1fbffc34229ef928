//! `POST /v1/batch/objects` through the gateway (issue 5, "Batch"; spec §5.6, §5.7, §9): 500
//! objects with 3 bad ones → 497 stored with bit-exact vectors, 3 explained in Weaviate's
//! per-object shape at their positions; the whole batch is embedded with one model call per
//! modality.

mod common;
mod import_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use gateway::config::Config;
use gateway::server::{self, AppState};
use import_support::{
    assert_bits, expected, image_b64, images, legacy_vector, stored, texts, SHAPES,
};
use serde_json::{json, Value};
use vectorizer::{EmbedError, Embedder, Vector};

/// The fixture model, counting calls.
struct Counting {
    inner: Arc<dyn Embedder>,
    text_calls: AtomicUsize,
    image_calls: AtomicUsize,
}

#[async_trait]
impl Embedder for Counting {
    async fn embed_texts(&self, texts: &[String]) -> Vec<Result<Vector, EmbedError>> {
        self.text_calls.fetch_add(1, Ordering::SeqCst);
        self.inner.embed_texts(texts).await
    }
    async fn embed_images(&self, images: &[String]) -> Vec<Result<Vector, EmbedError>> {
        self.image_calls.fetch_add(1, Ordering::SeqCst);
        self.inner.embed_images(images).await
    }
    async fn meta(&self) -> Result<Value, EmbedError> {
        self.inner.meta().await
    }
    async fn ready(&self) -> Result<(), EmbedError> {
        self.inner.ready().await
    }
    fn fingerprint(&self) -> &str {
        self.inner.fingerprint()
    }
}

#[tokio::test]
async fn batch_of_500_with_3_bad_objects() {
    let env = common::start().await;
    let counting = Arc::new(Counting {
        inner: common::embedder().await,
        text_calls: AtomicUsize::new(0),
        image_calls: AtomicUsize::new(0),
    });
    let state = AppState::new(
        Config {
            weaviate_url: Some(env.weaviate.clone()),
            ..Config::default()
        },
        counting.clone(),
    )
    .expect("state");
    let (addr, _task) = server::spawn_with(state).await.expect("gateway");
    let gateway = common::base(addr);

    import_support::create_class(&env, &json!({"class": "Photo", "vectorizer": "multi2vec-clip",
        "moduleConfig": {"multi2vec-clip": {"textFields": ["caption"], "imageFields": ["image"],
            "weights": {"textFields": [0.25], "imageFields": [0.75]}}},
        "properties": [{"name": "caption", "dataType": ["text"]}, {"name": "image", "dataType": ["blob"]}]}))
    .await;
    create_plain(&env).await;

    let pictures: Vec<String> = SHAPES.iter().map(|s| image_b64(s)).collect();
    let captions: Vec<String> = SHAPES
        .iter()
        .map(|s| format!("a {}", s.replace('-', " ")))
        .collect();
    let not_an_image = "AAAAAAAAAAAA".to_string();
    let mut objects: Vec<Value> = (0..500)
        .map(|i| {
            json!({"class": "Photo", "id": import_support::id(i),
            "properties": {"caption": captions[i % 10], "image": pictures[(i / 10) % 10]}})
        })
        .collect();
    objects[7]["properties"]["image"] = json!("data:image/png;base64,AAAA");
    objects[250]["properties"]["image"] = json!(not_an_image);
    objects[499]["properties"]["image"] = json!("%%%%");
    // An object of a class the gateway does not manage rides along untouched.
    objects[3] =
        json!({"class": "Plain", "id": import_support::id(3), "properties": {"caption": "plain"}});

    let response = env
        .client
        .post(format!("{gateway}/v1/batch/objects"))
        .json(&json!({"objects": objects}))
        .send()
        .await
        .expect("batch");
    assert_eq!(response.status(), 200);
    let results: Vec<Value> = response.json().await.expect("json");
    assert_eq!(results.len(), 500);

    // One model call per modality for the whole batch.
    assert_eq!(counting.text_calls.load(Ordering::SeqCst), 1);
    assert_eq!(counting.image_calls.load(Ordering::SeqCst), 1);

    let embed_error = env
        .embedder()
        .embed_images(std::slice::from_ref(&not_an_image))
        .await
        .remove(0)
        .expect_err("not an image")
        .to_string();
    let blob = "invalid blob property 'image' on class 'Photo': not a valid blob base64 string";
    for (i, entry) in results.iter().enumerate() {
        assert_eq!(entry["id"], json!(import_support::id(i)), "position {i}");
        let want = match i {
            7 | 499 => Some(blob.to_string()),
            250 => Some(embed_error.clone()),
            _ => None,
        };
        match want {
            Some(message) => {
                assert_eq!(entry["result"]["status"], "FAILED", "position {i}");
                assert_eq!(
                    entry["result"]["errors"]["error"][0]["message"],
                    json!(message),
                    "position {i}"
                );
                assert_eq!(entry["class"], "Photo");
            }
            None => assert_eq!(
                entry["result"],
                json!({"status": "SUCCESS"}),
                "position {i}: {entry}"
            ),
        }
    }

    // 497 stored (496 Photo + the plain one); the bad ones are not.
    let listed: Value = env
        .client
        .get(env.weaviate_url("/v1/objects?class=Photo&limit=1000"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["objects"].as_array().map(Vec::len), Some(496));
    for bad in [7, 250, 499] {
        let status = env
            .client
            .get(env.weaviate_url(&format!("/v1/objects/Photo/{}", import_support::id(bad))))
            .send()
            .await
            .expect("get")
            .status();
        assert_eq!(status, 404);
    }
    assert_eq!(
        legacy_vector(&stored(&env, "Plain", &import_support::id(3)).await),
        None
    );

    // Vectors bit for bit, for a spread of objects.
    for i in [0usize, 1, 11, 123, 498] {
        let object = stored(&env, "Photo", &import_support::id(i)).await;
        let text = texts(&env, &[&captions[i % 10]]).await.remove(0);
        let image = images(&env, &[&pictures[(i / 10) % 10]]).await.remove(0);
        assert_bits(
            &legacy_vector(&object).expect("vector"),
            &expected(&[text, image], Some(&[0.25, 0.75])),
        );
    }
}

#[tokio::test]
async fn a_batch_whose_objects_all_fail_answers_every_failure() {
    let env = common::start().await;
    import_support::create_class(
        &env,
        &json!({"class": "Photo", "vectorizer": "multi2vec-clip",
        "moduleConfig": {"multi2vec-clip": {"imageFields": ["image"]}},
        "properties": [{"name": "image", "dataType": ["blob"]}]}),
    )
    .await;
    let (status, body) = import_support::post(
        &env,
        "/v1/batch/objects",
        &json!({"objects": [
            {"class": "Photo", "properties": {"image": "!"}},
            {"class": "Photo", "properties": {"image": "data:,"}}
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let entries = body.as_array().expect("array");
    assert_eq!(entries.len(), 2);
    for entry in entries {
        assert_eq!(entry["result"]["status"], "FAILED");
        assert_eq!(entry["deprecations"], Value::Null);
        assert_eq!(
            entry["id"].as_str().map(str::len),
            Some(36),
            "an id is assigned"
        );
    }
}

async fn create_plain(env: &common::TestEnv) {
    import_support::create_class(
        env,
        &json!({"class": "Plain", "vectorizer": "none",
        "properties": [{"name": "caption", "dataType": ["text"]}]}),
    )
    .await;
}
