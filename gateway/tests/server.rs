//! The gateway's own endpoints and shared parts over real loopback HTTP: `/v1/meta`, `/metrics`,
//! the schema cache, and the proxy fallback for unhandled methods.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use conformance::double::{ApiKey, Double};
use gateway::config::Config;
use gateway::error::GatewayError;
use gateway::server::{self, AppState};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};
use vectorizer::{RemoteClip, RemoteOptions};

#[tokio::test]
async fn meta_adds_the_module_and_keeps_the_rest() {
    let env = common::start().await;
    let direct: Value = env
        .client
        .get(env.weaviate_url("/v1/meta"))
        .send()
        .await
        .expect("double")
        .json()
        .await
        .expect("json");
    let response = env
        .client
        .get(env.url("/v1/meta"))
        .send()
        .await
        .expect("meta");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let merged: Value = response.json().await.expect("json");
    let model_meta = env.embedder().meta().await.expect("fixture meta");
    assert!(model_meta.is_object() && model_meta != json!({}));
    let mut expected = direct.clone();
    expected["modules"]["multi2vec-clip"] = model_meta;
    assert_eq!(merged, expected);
}

#[tokio::test]
async fn meta_reports_an_unreachable_container_like_weaviate() {
    let (double, _task) = conformance::double::spawn().await.expect("double");
    let dead = common::unreachable_base();
    let remote = RemoteClip::new(&dead, RemoteOptions::default()).expect("client");
    let config = Config {
        weaviate_url: Some(common::base(double)),
        ..Config::default()
    };
    let state = AppState::new(config, Arc::new(remote)).expect("state");
    let (addr, _gateway) = server::spawn_with(state).await.expect("gateway");
    let meta: Value = common::client()
        .get(format!("{}/v1/meta", common::base(addr)))
        .send()
        .await
        .expect("meta")
        .json()
        .await
        .expect("json");
    let error = meta["modules"]["multi2vec-clip"]["error"]
        .as_str()
        .expect("error text");
    assert!(
        error.starts_with(&format!("send GET meta request: Get \"{dead}/meta\": ")),
        "{error}"
    );
    assert_eq!(meta["version"], "1.39.0");
}

#[tokio::test]
async fn metrics_are_exposed_in_prometheus_text() {
    let env = common::start().await;
    env.client
        .get(env.url("/v1/meta"))
        .send()
        .await
        .expect("meta");
    env.client
        .get(env.url("/v1/.well-known/ready"))
        .send()
        .await
        .expect("ready");
    let dead = common::unreachable_base();
    let down = common::start_gateway(&dead, Config::default()).await;
    let failed = down
        .client
        .get(down.url("/v1/nodes"))
        .send()
        .await
        .expect("502");
    assert_eq!(failed.status(), StatusCode::BAD_GATEWAY);

    let response = env
        .client
        .get(env.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/plain"));
    let text = response.text().await.expect("text");
    for line in [
        "clipgate_http_requests_total{route=\"/v1/meta\",status=\"200\"}",
        "clipgate_http_requests_total{route=\"proxy\",status=\"200\"}",
        "clipgate_http_requests_total{route=\"proxy\",status=\"502\"}",
        "clipgate_http_request_duration_seconds_bucket{route=\"/v1/meta\",le=",
        "clipgate_upstream_request_duration_seconds_bucket{le=",
        "clipgate_upstream_errors_total{kind=\"upstream_unreachable\"}",
        "# TYPE clipgate_http_requests_total counter",
        "# TYPE clipgate_upstream_request_duration_seconds histogram",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

/// An upstream whose `GET /v1/schema` counts its calls (and takes a moment, so that concurrent
/// callers overlap); every other request is answered `echo <method>`.
async fn counting_upstream(calls: Arc<AtomicUsize>) -> String {
    let app = Router::new()
        .route(
            "/v1/schema",
            get(move || {
                let calls = calls.clone();
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    axum::Json(json!({"classes": [{
                        "class": "Clip",
                        "vectorizer": "none",
                        "moduleConfig": {"multi2vec-clip": {"textFields": ["name"]}}
                    }]}))
                }
            }),
        )
        .fallback(|method: http::Method| async move { format!("echo {method}") });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    common::base(addr)
}

#[tokio::test]
async fn schema_is_fetched_once_for_concurrent_callers_and_refetched_after_invalidate() {
    let calls = Arc::new(AtomicUsize::new(0));
    let upstream = counting_upstream(calls.clone()).await;
    let config = Config {
        schema_ttl: Duration::from_secs(3600),
        ..Config::default()
    };
    let env = common::start_gateway(&upstream, config).await;
    let headers = HeaderMap::new();
    let views = futures::future::join_all(
        (0..16).map(|_| env.state.schema.view(&env.state.upstream, &headers)),
    )
    .await;
    for view in views {
        let view = view.expect("view");
        assert!(view.class("Clip").expect("class").is_clip_managed());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    env.state
        .schema
        .view(&env.state.upstream, &headers)
        .await
        .expect("cached");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    env.state.schema.invalidate();
    env.state
        .schema
        .view(&env.state.upstream, &headers)
        .await
        .expect("refetched");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn schema_view_tracks_the_double_and_refreshes_on_ttl() {
    let config = Config {
        schema_ttl: Duration::ZERO,
        ..Config::default()
    };
    let env = common::start_with(config).await;
    let headers = HeaderMap::new();
    let view = env
        .state
        .schema
        .view(&env.state.upstream, &headers)
        .await
        .expect("view");
    assert!(view.class("Photo").is_none());
    let created = env
        .client
        .post(env.weaviate_url("/v1/schema"))
        .json(&json!({
            "class": "Photo",
            "vectorizer": "none",
            "moduleConfig": {"multi2vec-clip": {"imageFields": ["image"]}},
            "properties": [{"name": "image", "dataType": ["blob"]}]
        }))
        .send()
        .await
        .expect("create");
    assert_eq!(
        created.status(),
        200,
        "{}",
        created.text().await.unwrap_or_default()
    );
    let view = env
        .state
        .schema
        .view(&env.state.upstream, &headers)
        .await
        .expect("view");
    let photo = view.class("Photo").expect("class");
    assert!(photo.is_clip_managed());
    assert_eq!(
        photo
            .clip_target(None)
            .expect("legacy")
            .settings
            .image_fields,
        ["image"]
    );
}

#[tokio::test]
async fn schema_fetch_uses_the_callers_credentials() {
    let double = Double::new().with_api_keys([ApiKey::new("reader-key", "reader")]);
    let env = common::start_double_with(double, Config::default()).await;
    let anonymous = env
        .state
        .schema
        .view(&env.state.upstream, &HeaderMap::new())
        .await;
    match anonymous {
        Err(GatewayError::Upstream { status, .. }) => assert_eq!(status, StatusCode::UNAUTHORIZED),
        other => panic!("expected the upstream's 401, got {other:?}"),
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_static("Bearer reader-key"),
    );
    env.state
        .schema
        .view(&env.state.upstream, &headers)
        .await
        .expect("authorized view");
}

#[tokio::test]
async fn unhandled_methods_and_paths_go_to_the_upstream() {
    let upstream = counting_upstream(Arc::new(AtomicUsize::new(0))).await;
    let env = common::start_gateway(&upstream, Config::default()).await;
    let response = env
        .client
        .delete(env.url("/v1/meta"))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("text"), "echo DELETE");
    let response = env
        .client
        .get(env.url("/v1/nodes"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.text().await.expect("text"), "echo GET");
}

#[tokio::test]
async fn errors_use_weaviates_rest_envelope() {
    use axum::response::IntoResponse;
    let response =
        GatewayError::rest(StatusCode::UNPROCESSABLE_ENTITY, "bad thing").into_response();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    assert_eq!(
        serde_json::from_slice::<Value>(&body).expect("json"),
        json!({"error":[{"message":"bad thing"}]})
    );
}

#[tokio::test]
async fn embed_subcommand_prints_the_models_vectors() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_clipgate"))
        .args(["embed", "--text", "a red circle", "--text", ""])
        .output()
        .await
        .expect("clipgate runs");
    assert!(output.status.success(), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).expect("json on stdout");
    let expected = common::embedder()
        .await
        .embed_texts(&["a red circle".to_string(), String::new()])
        .await;
    let texts = printed["textVectors"].as_array().expect("textVectors");
    assert_eq!(texts.len(), 2);
    for (printed, expected) in texts.iter().zip(expected) {
        let printed: Vec<f32> = serde_json::from_value(printed.clone()).expect("floats");
        assert_eq!(printed, &*expected.expect("vector"));
    }
    assert_eq!(printed["imageVectors"], json!([]));
}

#[tokio::test]
async fn embed_subcommand_fails_clearly_on_bad_input() {
    let not_an_image =
        std::env::temp_dir().join(format!("clipgate-not-image-{}.png", std::process::id()));
    std::fs::write(&not_an_image, b"definitely not a png").expect("write");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_clipgate"))
        .args(["embed", "--image"])
        .arg(&not_an_image)
        .output()
        .await
        .expect("clipgate runs");
    let _ = std::fs::remove_file(&not_an_image);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("clipgate: image {}: ", not_an_image.display())),
        "{stderr}"
    );
}
