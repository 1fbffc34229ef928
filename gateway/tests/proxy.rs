//! The transparent proxy over real loopback HTTP: client → clipgate → a small axum upstream that
//! reports what it received.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::Router;
use bytes::Bytes;
use futures::StreamExt;
use gateway::config::Config;
use http::StatusCode;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Mutex};

/// Channels a streaming test uses to step the upstream.
#[derive(Clone, Default)]
struct Steps {
    /// The upstream reports here when the first request chunk arrived.
    first_chunk_seen: Arc<Mutex<Option<mpsc::Sender<()>>>>,
    /// The upstream's response body chunks come from here.
    response_chunks: Arc<Mutex<Option<mpsc::Receiver<Bytes>>>>,
}

/// Answers with what it received: method, path and query, headers, body length.
async fn echo(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let report = json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "length": body.len(),
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from(report.to_string()))
        .expect("valid response")
}

/// Status, headers (incl. a hop-by-hop one named in `Connection`) and body to pass unchanged.
async fn teapot() -> Response {
    Response::builder()
        .status(StatusCode::IM_A_TEAPOT)
        .header("x-upstream", "yes")
        .header("connection", "x-resp-hop")
        .header("x-resp-hop", "must not pass")
        .header("content-type", "application/octet-stream")
        .body(Body::from(vec![0u8, 159, 146, 150, 255]))
        .expect("valid response")
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(30)).await;
    "too late"
}

/// Reads the request body as a stream: reports the first chunk, then counts the rest.
async fn stream_in(State(steps): State<Steps>, request: Request) -> String {
    let mut stream = request.into_body().into_data_stream();
    let mut total = 0usize;
    let mut first = true;
    while let Some(chunk) = stream.next().await {
        total += chunk.expect("request body chunk").len();
        if first {
            first = false;
            if let Some(tx) = steps.first_chunk_seen.lock().await.take() {
                let _ = tx.send(()).await;
            }
        }
    }
    total.to_string()
}

/// Streams its response body from the test's channel.
async fn stream_out(State(steps): State<Steps>) -> Response {
    let rx = steps
        .response_chunks
        .lock()
        .await
        .take()
        .expect("test set the response channel");
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<Bytes, std::io::Error>(chunk), rx))
    });
    Response::new(Body::from_stream(stream))
}

async fn start_upstream(steps: Steps) -> String {
    let app = Router::new()
        .route("/teapot", get(teapot))
        .route("/slow", get(slow))
        .route("/prefix/stream-in", post(stream_in))
        .route("/stream-in", post(stream_in))
        .route("/stream-out", get(stream_out))
        .fallback(any(echo))
        .with_state(steps);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    common::base(addr)
}

fn header<'a>(report: &'a Value, name: &str) -> Vec<&'a str> {
    report["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str().expect("string"))
        .collect()
}

/// Guards against a hang (a buffering proxy would deadlock these tests); not a timing assertion.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen: the body was buffered"))
}

#[tokio::test]
async fn method_path_query_headers_and_body_reach_upstream() {
    let upstream = start_upstream(Steps::default()).await;
    let env = common::start_gateway(&upstream, Config::default()).await;
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let response = env
            .client
            .request(
                method.parse().expect("method"),
                env.url("/v1/objects/Thing/abc?consistency_level=ONE&tenant=t%201&x=a+b"),
            )
            .header("authorization", "Bearer secret-key")
            .header("x-api-key", "key-2")
            .header("x-weaviate-cluster-url", "https://cluster")
            .header("x-openai-api-key", "sk-1")
            .header("connection", "x-hop-header")
            .header("x-hop-header", "drop me")
            .header("te", "trailers")
            .header("x-request-id", "req-123")
            .body(if method == "GET" { "" } else { "{\"a\":1}" })
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{method}");
        assert_eq!(
            response.headers().get("x-request-id").map(|v| v.as_bytes()),
            Some(&b"req-123"[..])
        );
        let report: Value = response.json().await.expect("json");
        assert_eq!(report["method"], method);
        assert_eq!(
            report["uri"],
            "/v1/objects/Thing/abc?consistency_level=ONE&tenant=t%201&x=a+b"
        );
        assert_eq!(header(&report, "authorization"), ["Bearer secret-key"]);
        assert_eq!(header(&report, "x-api-key"), ["key-2"]);
        assert_eq!(
            header(&report, "x-weaviate-cluster-url"),
            ["https://cluster"]
        );
        assert_eq!(header(&report, "x-openai-api-key"), ["sk-1"]);
        assert_eq!(header(&report, "x-request-id"), ["req-123"]);
        assert!(header(&report, "x-hop-header").is_empty(), "{report}");
        assert!(header(&report, "te").is_empty(), "{report}");
        assert_eq!(
            header(&report, "host"),
            [upstream.trim_start_matches("http://")]
        );
        if method != "GET" {
            assert_eq!(report["body"], "{\"a\":1}");
        }
    }
}

#[tokio::test]
async fn request_id_is_generated_when_absent() {
    let upstream = start_upstream(Steps::default()).await;
    let env = common::start_gateway(&upstream, Config::default()).await;
    let response = env
        .client
        .get(env.url("/v1/x"))
        .send()
        .await
        .expect("request");
    let id = response
        .headers()
        .get("x-request-id")
        .expect("request id returned")
        .to_str()
        .expect("ascii")
        .to_string();
    let report: Value = response.json().await.expect("json");
    assert_eq!(header(&report, "x-request-id"), [id.as_str()]);
}

#[tokio::test]
async fn status_headers_and_body_come_back_unchanged() {
    let upstream = start_upstream(Steps::default()).await;
    let env = common::start_gateway(&upstream, Config::default()).await;
    let response = env
        .client
        .get(env.url("/teapot"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(response.headers()["x-upstream"], "yes");
    assert!(response.headers().get("x-resp-hop").is_none());
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(
        response.bytes().await.expect("body").as_ref(),
        &[0u8, 159, 146, 150, 255]
    );
    let head = env
        .client
        .head(env.url("/teapot"))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), StatusCode::IM_A_TEAPOT);
}

#[tokio::test]
async fn base_url_path_prefix_is_kept() {
    let upstream = start_upstream(Steps::default()).await;
    let env = common::start_gateway(&format!("{upstream}/prefix/"), Config::default()).await;
    let report: Value = env
        .client
        .get(env.url("/v1/schema?a=1"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(report["uri"], "/prefix/v1/schema?a=1");
}

#[tokio::test]
async fn request_body_is_streamed_not_buffered() {
    let steps = Steps::default();
    let (seen_tx, mut seen_rx) = mpsc::channel(1);
    *steps.first_chunk_seen.lock().await = Some(seen_tx);
    let upstream = start_upstream(steps).await;
    let env = common::start_gateway(&upstream, Config::default()).await;
    let (body_tx, body_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = futures::stream::unfold(body_rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let request = env
        .client
        .post(env.url("/stream-in"))
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let sender = async move {
        body_tx
            .send(Ok(Bytes::from(vec![b'a'; 1000])))
            .await
            .expect("send chunk");
        // The rest is sent only once the upstream has seen the first chunk: a proxy that waits
        // for the whole body would never forward it.
        within("the first chunk reaching the upstream", seen_rx.recv()).await;
        for _ in 0..100 {
            body_tx
                .send(Ok(Bytes::from(vec![b'b'; 10_000])))
                .await
                .expect("send chunk");
        }
    };
    let (response, ()) = tokio::join!(request, sender);
    let response = response.expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "1001000");
}

#[tokio::test]
async fn response_body_is_streamed_not_buffered() {
    let steps = Steps::default();
    let (chunk_tx, chunk_rx) = mpsc::channel(4);
    *steps.response_chunks.lock().await = Some(chunk_rx);
    let upstream = start_upstream(steps).await;
    let env = common::start_gateway(&upstream, Config::default()).await;
    chunk_tx
        .send(Bytes::from_static(b"first"))
        .await
        .expect("send");
    let mut response = within(
        "response headers",
        env.client.get(env.url("/stream-out")).send(),
    )
    .await
    .expect("response");
    // The upstream has not finished its body: the client gets the first chunk anyway.
    let first = within("the first response chunk", response.chunk())
        .await
        .expect("chunk")
        .expect("some");
    assert_eq!(first.as_ref(), b"first");
    chunk_tx
        .send(Bytes::from_static(b"-second"))
        .await
        .expect("send");
    drop(chunk_tx);
    let mut rest = Vec::new();
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, b"-second");
}

#[tokio::test]
async fn upstream_down_is_502_in_weaviate_shape() {
    let dead = common::unreachable_base();
    let env = common::start_gateway(&dead, Config::default()).await;
    let response = env
        .client
        .get(env.url("/v1/schema"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body: Value = response.json().await.expect("json");
    let message = body["error"][0]["message"].as_str().expect("message");
    assert!(
        message.starts_with(&format!("upstream Weaviate at {dead} is unreachable")),
        "{message}"
    );
    assert_eq!(body.as_object().expect("object").len(), 1);
}

#[tokio::test]
async fn slow_upstream_is_504_after_the_timeout() {
    let upstream = start_upstream(Steps::default()).await;
    let config = Config {
        upstream_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let env = common::start_gateway(&upstream, config).await;
    let response = env
        .client
        .get(env.url("/slow"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["error"][0]["message"],
        format!("upstream Weaviate at {upstream} did not answer within 300ms")
    );
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let upstream = start_upstream(Steps::default()).await;
    let config = Config {
        max_body_bytes: 1024,
        ..Config::default()
    };
    let env = common::start_gateway(&upstream, config).await;
    let expected = json!({"error":[{"message":"request body too large: the limit is 1024 bytes"}]});

    // Declared length over the limit: refused before reading.
    let response = env
        .client
        .post(env.url("/v1/objects"))
        .body(vec![b'x'; 2048])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.json::<Value>().await.expect("json"), expected);

    // No declared length (chunked): counted while streaming.
    let chunks = futures::stream::iter(
        (0..4).map(|_| Ok::<Bytes, std::io::Error>(Bytes::from(vec![b'y'; 512]))),
    );
    let response = env
        .client
        .post(env.url("/stream-in"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.json::<Value>().await.expect("json"), expected);

    // At the limit: passes.
    let response = env
        .client
        .post(env.url("/v1/objects"))
        .body(vec![b'x'; 1024])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.expect("json");
    assert_eq!(report["length"], 1024);
}
