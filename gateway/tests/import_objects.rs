//! Single-object import through the gateway into the Weaviate double (issue 5, "Import";
//! spec §5.3–§5.5, §5.7): every stored vector is read back from the double and compared BIT FOR
//! BIT with the module's arithmetic written out in the test on the fixture model's vectors.

mod common;
mod import_support;

use import_support::{
    assert_bits, call, create_class, expected, image_b64, images, legacy_vector, named_vector,
    post, stored, texts,
};
use reqwest::Method;
use serde_json::{json, Value};

fn props() -> Value {
    json!([
        {"name": "title", "dataType": ["text"]},
        {"name": "description", "dataType": ["text"]},
        {"name": "caption", "dataType": ["text"]},
        {"name": "tags", "dataType": ["text[]"]},
        {"name": "image", "dataType": ["blob"]},
        {"name": "count", "dataType": ["int"]}
    ])
}

async fn legacy_class(env: &common::TestEnv, name: &str, clip: Value) {
    create_class(
        env,
        &json!({"class": name, "vectorizer": "multi2vec-clip",
        "moduleConfig": {"multi2vec-clip": clip}, "properties": props()}),
    )
    .await;
}

async fn insert(env: &common::TestEnv, object: Value) -> Value {
    let (status, body) = post(env, "/v1/objects", &object).await;
    assert_eq!(status, 200, "{body}");
    stored(
        env,
        object["class"].as_str().expect("class"),
        object["id"].as_str().expect("id"),
    )
    .await
}

#[tokio::test]
async fn weights_follow_vector_position_not_field_name() {
    let env = common::start().await;
    // textFields lists title first, but description sorts first: it gets 0.7 (spec §5.4).
    legacy_class(
        &env,
        "Doc",
        json!({"textFields": ["title", "description"],
        "weights": {"textFields": [0.7, 0.3]}}),
    )
    .await;
    let object = insert(
        &env,
        json!({"class": "Doc", "id": import_support::id(1),
        "properties": {"title": "a red circle", "description": "a blue square", "count": 3}}),
    )
    .await;
    let v = texts(&env, &["a blue square", "a red circle"]).await;
    let want = expected(&v, Some(&[0.7, 0.3]));
    assert_bits(&legacy_vector(&object).expect("vector"), &want);
    // Matching weights by name would have given something else.
    let by_name = expected(&v, Some(&[0.3, 0.7]));
    assert_ne!(want, by_name);
    // The object itself is stored as sent.
    assert_eq!(object["properties"]["title"], "a red circle");
    assert_eq!(object["properties"]["count"], 3);
}

#[tokio::test]
async fn text_array_elements_are_separate_vectors() {
    let env = common::start().await;
    legacy_class(&env, "Tagged", json!({"textFields": ["title", "tags"]})).await;
    let object = insert(
        &env,
        json!({"class": "Tagged", "id": import_support::id(2),
        "properties": {"title": "a green triangle", "tags": ["red", "a yellow star"]}}),
    )
    .await;
    // Properties sorted (tags < title), all elements of tags in order, plain mean.
    let v = texts(&env, &["red", "a yellow star", "a green triangle"]).await;
    assert_bits(
        &legacy_vector(&object).expect("vector"),
        &expected(&v, None),
    );
}

#[tokio::test]
async fn text_and_image_weights_and_patch_revectorizes_the_merged_object() {
    let env = common::start().await;
    legacy_class(
        &env,
        "Photo",
        json!({"textFields": ["caption"], "imageFields": ["image"],
        "weights": {"textFields": [0.3], "imageFields": [0.7]}}),
    )
    .await;
    let red = image_b64("red-circle");
    let id = import_support::id(3);
    let object = insert(
        &env,
        json!({"class": "Photo", "id": id,
        "properties": {"caption": "a red circle", "image": red}}),
    )
    .await;
    let image = images(&env, &[&red]).await.remove(0);
    let text = texts(&env, &["a red circle"]).await.remove(0);
    assert_bits(
        &legacy_vector(&object).expect("vector"),
        &expected(&[text, image.clone()], Some(&[0.3, 0.7])),
    );

    // PATCH only the caption: the vector is recomputed from the MERGED properties.
    let (status, body) = call(
        &env,
        Method::PATCH,
        &format!("/v1/objects/Photo/{id}"),
        Some(&json!({"class": "Photo", "properties": {"caption": "a blue square"}})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let patched = stored(&env, "Photo", &id).await;
    assert_eq!(patched["properties"]["caption"], "a blue square");
    assert_eq!(patched["properties"]["image"], json!(red));
    let text = texts(&env, &["a blue square"]).await.remove(0);
    assert_bits(
        &legacy_vector(&patched).expect("vector"),
        &expected(&[text, image.clone()], Some(&[0.3, 0.7])),
    );

    // PUT replaces the object and vectorizes what it carries.
    let (status, body) = call(
        &env,
        Method::PUT,
        &format!("/v1/objects/Photo/{id}"),
        Some(&json!({"class": "Photo", "id": id, "properties": {"caption": "a yellow star"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let replaced = stored(&env, "Photo", &id).await;
    let text = texts(&env, &["a yellow star"]).await;
    // One vector only: with weights [0.3, 0.7] normalized, the text vector gets 0.3 and is divided by 1.
    assert_bits(
        &legacy_vector(&replaced).expect("vector"),
        &expected(&text, Some(&[0.3, 0.7])),
    );
}

#[tokio::test]
async fn a_supplied_vector_is_kept_and_nothing_to_embed_stores_no_vector() {
    let env = common::start().await;
    legacy_class(&env, "Doc", json!({"textFields": ["title"]})).await;
    let mine: Vec<f32> = (0..64).map(|i| i as f32 / 64.0 - 0.5).collect();
    let object = insert(
        &env,
        json!({"class": "Doc", "id": import_support::id(4),
        "properties": {"title": "a red circle"}, "vector": mine}),
    )
    .await;
    assert_bits(&legacy_vector(&object).expect("vector"), &mine);

    // `"vector": []` also skips vectorization (a non-nil empty slice in Go, spec §5.5).
    let object = insert(
        &env,
        json!({"class": "Doc", "id": import_support::id(5),
        "properties": {"title": "a red circle"}, "vector": []}),
    )
    .await;
    assert_eq!(legacy_vector(&object), None);

    // No configured field has a value: stored without a vector, no error.
    let object = insert(
        &env,
        json!({"class": "Doc", "id": import_support::id(6),
        "properties": {"description": "not a clip field"}}),
    )
    .await;
    assert_eq!(legacy_vector(&object), None);
}

#[tokio::test]
async fn named_vectors_are_vectorized_per_target() {
    let env = common::start().await;
    create_class(&env, &json!({"class": "Multi", "vectorConfig": {
        "text": {"vectorizer": {"multi2vec-clip": {"textFields": ["title"]}}, "vectorIndexType": "hnsw"},
        "both": {"vectorizer": {"multi2vec-clip": {"textFields": ["title"], "imageFields": ["image"],
            "weights": {"textFields": [1], "imageFields": [3]}}}, "vectorIndexType": "hnsw"},
        "manual": {"vectorizer": {"none": {}}, "vectorIndexType": "hnsw"}
    }, "properties": props()})).await;
    let star = image_b64("yellow-star");
    let manual: Vec<f32> = vec![0.125; 64];
    let object = insert(
        &env,
        json!({"class": "Multi", "id": import_support::id(7),
        "properties": {"title": "a yellow star", "image": star},
        "vectors": {"manual": manual}}),
    )
    .await;
    let text = texts(&env, &["a yellow star"]).await.remove(0);
    let image = images(&env, &[&star]).await.remove(0);
    assert_bits(
        &named_vector(&object, "text").expect("text"),
        &expected(std::slice::from_ref(&text), None),
    );
    assert_bits(
        &named_vector(&object, "both").expect("both"),
        &expected(&[text.clone(), image], Some(&[1.0, 3.0])),
    );
    assert_bits(&named_vector(&object, "manual").expect("manual"), &manual);
    assert_eq!(legacy_vector(&object), None);

    // A supplied named vector skips only its own target.
    let mine: Vec<f32> = vec![-0.25; 64];
    let object = insert(
        &env,
        json!({"class": "Multi", "id": import_support::id(8),
        "properties": {"title": "a yellow star"}, "vectors": {"text": mine}}),
    )
    .await;
    assert_bits(&named_vector(&object, "text").expect("text"), &mine);
    assert_bits(
        &named_vector(&object, "both").expect("both"),
        &expected(&[text], Some(&[1.0, 3.0])),
    );
}

#[tokio::test]
async fn errors_have_weaviates_wording() {
    let env = common::start().await;
    legacy_class(
        &env,
        "Photo",
        json!({"textFields": ["caption"], "imageFields": ["image"]}),
    )
    .await;

    // Invalid blob: Weaviate's validation message, before any inference (spec §5.3).
    let (status, body) = post(
        &env,
        "/v1/objects",
        &json!({"class": "Photo",
        "properties": {"caption": "x", "image": "data:image/png;base64,AAAA"}}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"error": [{"message":
        "invalid object: invalid blob property 'image' on class 'Photo': not a valid blob base64 string"}]})
    );

    // Valid base64 that is not an image: the vectorizer's error, wrapped as Weaviate wraps it
    // for the legacy target (empty name, double space; spec §5.7).
    let not_image = "AAAAAAAA";
    let embed_error = env
        .embedder()
        .embed_images(&[not_image.to_string()])
        .await
        .remove(0)
        .expect_err("not an image");
    let (status, body) = post(
        &env,
        "/v1/objects",
        &json!({"class": "Photo",
        "properties": {"caption": "x", "image": not_image}}),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(
        body["error"][0]["message"],
        format!("vectorize target vector : update vector: {embed_error}")
    );

    // Fewer weights than vectors: Weaviate's recovered index panic, as a clear error (spec §5.4).
    legacy_class(
        &env,
        "Few",
        json!({"textFields": ["tags"], "weights": {"textFields": [1]}}),
    )
    .await;
    let (status, body) = post(
        &env,
        "/v1/objects",
        &json!({"class": "Few",
        "properties": {"tags": ["one", "two"]}}),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(
        body["error"][0]["message"],
        "panic occurred: runtime error: index out of range [1] with length 1"
    );

    // Nothing of the failed writes was stored.
    let listed: Value = env
        .client
        .get(env.weaviate_url("/v1/objects?class=Photo"))
        .send()
        .await
        .expect("double")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["objects"], json!([]));
}

#[tokio::test]
async fn classes_the_gateway_does_not_manage_pass_through() {
    let env = common::start().await;
    create_class(
        &env,
        &json!({"class": "Plain", "vectorizer": "none", "properties": props()}),
    )
    .await;
    let object = insert(
        &env,
        json!({"class": "Plain", "id": import_support::id(9),
        "properties": {"title": "a red circle"}}),
    )
    .await;
    assert_eq!(legacy_vector(&object), None);
}
