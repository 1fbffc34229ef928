//! The container API served by `server::router` (spec §7.1), over loopback HTTP.

mod common;

use std::sync::Arc;

use common::{serve, TestEmbedder};
use serde_json::{json, Value};
use vectorizer::server::{router, serve_inference};

async fn start() -> (String, Arc<TestEmbedder>) {
    let embedder = Arc::new(TestEmbedder::new());
    (serve(router(embedder.clone())).await, embedder)
}

async fn post(base: &str, body: &'static str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/vectorize"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn vectorize_answers_both_lists() {
    let (base, embedder) = start().await;
    let (status, body) = post(&base, r#"{"texts":["a","b"],"images":["x"]}"#).await;
    assert_eq!(status, 200);
    let texts: Vec<Vec<f32>> = serde_json::from_value(body["textVectors"].clone()).unwrap();
    let images: Vec<Vec<f32>> = serde_json::from_value(body["imageVectors"].clone()).unwrap();
    assert_eq!(
        texts,
        vec![
            embedder.vector("a", false).to_vec(),
            embedder.vector("b", false).to_vec()
        ]
    );
    assert_eq!(images, vec![embedder.vector("x", true).to_vec()]);

    let (status, body) = post(&base, r#"{"texts":["only text"]}"#).await;
    assert_eq!(status, 200);
    assert_eq!(body["imageVectors"], json!([]));
    let (status, body) = post(&base, "{}").await;
    assert_eq!(
        (status, body),
        (200, json!({"textVectors": [], "imageVectors": []}))
    );
}

/// Floats are written as Python writes a float32 tensor's `tolist()`: the f64 value of the f32.
#[tokio::test]
async fn floats_are_written_as_the_container_writes_them() {
    let (base, embedder) = start().await;
    let text = reqwest::Client::new()
        .post(format!("{base}/vectorize"))
        .body(r#"{"texts":["a"]}"#)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first = embedder.vector("a", false)[0];
    let python_repr = format!("{:?}", f64::from(first));
    assert!(
        text.starts_with(&format!("{{\"textVectors\":[[{python_repr},")),
        "{text}"
    );
}

#[tokio::test]
async fn one_failing_input_fails_the_request_with_500() {
    let (base, _) = start().await;
    let (status, body) = post(&base, r#"{"texts":["ok"],"images":["fine","fail.png"]}"#).await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        json!({"error": "cannot decode image: not an image: fail.png"})
    );
    let (status, body) = post(&base, r#"{"texts":["ok", 3]}"#).await;
    assert_eq!(status, 500);
    assert_eq!(body, json!({"error": "texts[1]: expected a string, got 3"}));
}

#[tokio::test]
async fn malformed_bodies_get_fastapi_422() {
    let (base, embedder) = start().await;
    let (status, body) = post(&base, r#"{"texts": "a red circle", "images": null}"#).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"detail": [
            {"type": "list_type", "loc": ["body", "texts"], "msg": "Input should be a valid list", "input": "a red circle"},
            {"type": "list_type", "loc": ["body", "images"], "msg": "Input should be a valid list", "input": null},
        ]})
    );
    let (status, body) = post(&base, r#"["a"]"#).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"detail": [{"type": "model_attributes_type", "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from", "input": ["a"]}]})
    );
    let (status, body) = post(&base, "").await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}]})
    );
    let (status, body) = post(&base, r#"{"texts": [}"#).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], "json_invalid");
    assert_eq!(body["detail"][0]["loc"], json!(["body", 11]));
    assert_eq!(body["detail"][0]["msg"], "JSON decode error");
    assert_eq!(embedder.calls(), 0);
}

#[tokio::test]
async fn health_meta_and_unknown_routes() {
    let (base, embedder) = start().await;
    let client = reqwest::Client::new();
    for path in ["/.well-known/live", "/.well-known/ready"] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 204);
        assert!(response.bytes().await.unwrap().is_empty());
    }
    embedder.set_ready(false);
    let response = client
        .get(format!("{base}/.well-known/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let response = client
        .get(format!("{base}/.well-known/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);

    let meta: Value = client
        .get(format!("{base}/meta"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta, json!({"model_type": "test", "projection_dim": 8}));

    let response = client.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"detail": "Not Found"})
    );
    let response = client
        .get(format!("{base}/vectorize"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"detail": "Method Not Allowed"})
    );
}

#[tokio::test]
async fn serve_inference_stops_on_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_inference(
        listener,
        Arc::new(TestEmbedder::new()),
        async {
            let _ = stopped.await;
        },
    ));
    let response = reqwest::get(format!("http://{addr}/.well-known/live"))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
