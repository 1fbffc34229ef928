//! Faults over real sockets (issue 7, "Faults"): a misbehaving upstream Weaviate (refuses
//! connections, resets mid-response, answers 5xx, stalls past the timeout, keeps every slot busy)
//! and a misbehaving multi2vec-clip inference container (down, slow, the wrong number of vectors,
//! not JSON, failing some inputs), plus back-pressure from a full inference queue. Each gives a
//! clear error in Weaviate's shape, no panic, no hang past the configured timeout, and for
//! imports per-object results that say exactly which objects were stored.
//!
//! Already covered elsewhere (not repeated here): proxy pass-through to a refused upstream (502)
//! and a stalled upstream (504) in `tests/proxy.rs`; the container client's own fault handling
//! (refused, slow, 4xx/5xx, non-JSON, wrong count, oversized, resends after resets) in
//! `vectorizer/tests/remote.rs`; an unreachable container on `/v1/meta` in `tests/server.rs`.

mod common;
mod import_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::TestEnv;
use conformance::double::Double;
use gateway::config::Config;
use gateway::server::{self, AppState};
use http::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vectorizer::{EmbedError, Embedder, RemoteClip, RemoteOptions, TractClip, Vector};

/// Hang guard for requests that must end by themselves (not a timing assertion).
const GUARD: Duration = Duration::from_secs(60);
/// The upstream / inference timeout of the tests that stall.
const SHORT: Duration = Duration::from_millis(300);

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within the hang guard"))
}

/// The message of a Weaviate REST error envelope; insists on the exact shape.
fn rest_message(body: &Value) -> String {
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "envelope: {body}"
    );
    body["error"][0]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {body}"))
        .to_string()
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = within("request", request.send())
        .await
        .expect("the gateway answers");
    let status = response.status();
    let bytes = within("body", response.bytes()).await.expect("body");
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, json)
}

const NEAR_TEXT: &str = r#"{ Get { Photo(nearText: {concepts: ["red"]}) { caption } } }"#;

fn near_text(env: &TestEnv) -> reqwest::RequestBuilder {
    env.client
        .post(env.url("/v1/graphql"))
        .json(&json!({ "query": NEAR_TEXT }))
}

fn batch_of(env: &TestEnv, captions: &[String]) -> reqwest::RequestBuilder {
    let objects: Vec<Value> = captions
        .iter()
        .enumerate()
        .map(|(i, caption)| {
            json!({"class": "Photo", "id": import_support::id(i),
                   "properties": {"caption": caption}})
        })
        .collect();
    env.client
        .post(env.url("/v1/batch/objects"))
        .json(&json!({ "objects": objects }))
}

fn captions(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("caption number {i}")).collect()
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 upstream that misbehaves on purpose.

/// What the raw upstream does with one request.
#[derive(Clone)]
enum Act {
    /// Writes this complete response; the connection stays open for the next request.
    Respond(Vec<u8>),
    /// Writes these bytes, then resets the connection (RST).
    ResetAfter(Vec<u8>),
    /// Writes these bytes (possibly nothing), then never writes again.
    StallAfter(Vec<u8>),
    /// 200 with a chunked body, one chunk every 50 ms until the flag is set.
    Trickle(Arc<AtomicBool>),
}

type Behave = Arc<dyn Fn(&str, &str) -> Act + Send + Sync>;

fn http(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// The upstream's schema: one clip-managed class `Photo` in its stored form.
fn schema_response() -> Vec<u8> {
    let schema = json!({"classes": [{"class": "Photo", "vectorizer": "none",
        "moduleConfig": {"multi2vec-clip": {"textFields": ["caption"]}},
        "properties": [{"name": "caption", "dataType": ["text"]}]}]});
    http(
        "200 OK",
        &[("content-type", "application/json")],
        &schema.to_string(),
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn raw_upstream(behave: impl Fn(&str, &str) -> Act + Send + Sync + 'static) -> String {
    let behave: Behave = Arc::new(behave);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_raw(stream, behave.clone()));
        }
    });
    common::base(addr)
}

async fn serve_raw(mut stream: TcpStream, behave: Behave) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let head_end = loop {
            if let Some(p) = find(&buf, b"\r\n\r\n") {
                break p + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let mut request_line = head.lines().next().unwrap_or("").split(' ');
        let method = request_line.next().unwrap_or("").to_string();
        let path = request_line.next().unwrap_or("").to_string();
        let lower = head.to_ascii_lowercase();
        let length = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if lower.contains("transfer-encoding: chunked") {
            let end = loop {
                if buf.starts_with(b"0\r\n\r\n") {
                    break 5;
                }
                if let Some(p) = find(&buf, b"\r\n0\r\n\r\n") {
                    break p + 7;
                }
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            buf.drain(..end);
        } else {
            while buf.len() < length {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            buf.drain(..length);
        }
        match behave(&method, &path) {
            Act::Respond(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Act::ResetAfter(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.flush().await;
                let _ = stream.set_zero_linger();
                return;
            }
            Act::StallAfter(bytes) => {
                let _ = stream.write_all(&bytes).await;
                // Holds the connection open without answering until the test ends.
                let _ = stream.read(&mut chunk).await;
                std::future::pending::<()>().await;
            }
            Act::Trickle(stop) => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                while !stop.load(Ordering::SeqCst) {
                    if stream.write_all(b"1\r\n.\r\n").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if stream.write_all(b"4\r\ndone\r\n0\r\n\r\n").await.is_err() {
                    return;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Upstream Weaviate faults.

#[tokio::test]
async fn refused_connections_on_graphql_and_import_are_502() {
    let dead = common::unreachable_base();
    let env = common::start_gateway(&dead, Config::default()).await;
    let prefix = format!("upstream Weaviate at {dead} is unreachable");
    for (what, request) in [
        ("graphql", near_text(&env)),
        ("batch", batch_of(&env, &captions(3))),
        (
            "object",
            env.client
                .post(env.url("/v1/objects"))
                .json(&json!({"class": "Photo", "properties": {"caption": "x"}})),
        ),
    ] {
        let (status, body) = send(request).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{what}: {body}");
        let message = rest_message(&body);
        assert!(message.starts_with(&prefix), "{what}: {message}");
    }
}

#[tokio::test]
async fn reset_mid_response_aborts_a_pass_through_and_is_502_where_clipgate_reads_the_answer() {
    let partial = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"data\":".to_vec();
    let upstream = raw_upstream(move |method, path| match (method, path) {
        ("GET", "/v1/schema") => Act::Respond(schema_response()),
        ("GET", "/v1/nodes") => Act::Respond(http("200 OK", &[], "{\"nodes\":[]}")),
        _ => Act::ResetAfter(partial.clone()),
    })
    .await;
    let env = common::start_gateway(&upstream, Config::default()).await;

    // Pass-through: the status is already on its way; the client must see a broken body, not a
    // short one that looks complete.
    let response = within(
        "pass-through",
        env.client.get(env.url("/v1/objects")).send(),
    )
    .await
    .expect("headers arrive");
    assert_eq!(response.status(), 200);
    let body = within("pass-through body", response.bytes()).await;
    assert!(body.is_err(), "a truncated body was delivered as complete");

    // GraphQL rewrite path and batch import: clipgate reads the answer itself → 502.
    for (what, request) in [
        ("graphql", near_text(&env)),
        ("batch", batch_of(&env, &captions(3))),
    ] {
        let (status, body) = send(request).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{what}: {body}");
        let message = rest_message(&body);
        assert!(
            message.starts_with(&format!(
                "upstream Weaviate at {upstream} broke off its response"
            )) || message.starts_with(&format!("upstream Weaviate at {upstream} is unreachable")),
            "{what}: {message}"
        );
    }

    // The gateway is unharmed.
    let (status, body) = send(env.client.get(env.url("/v1/nodes"))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"nodes": []})));
}

#[tokio::test]
async fn upstream_5xx_answers_pass_through_unchanged() {
    let answer = "{\"error\":[{\"message\":\"the upstream is sad\"}]}";
    let upstream = raw_upstream(move |method, path| match (method, path) {
        ("GET", "/v1/schema") => Act::Respond(schema_response()),
        _ => Act::Respond(http(
            "503 Service Unavailable",
            &[("content-type", "application/json"), ("x-upstream", "yes")],
            answer,
        )),
    })
    .await;
    let env = common::start_gateway(&upstream, Config::default()).await;
    for (what, request) in [
        ("pass-through", env.client.get(env.url("/v1/objects"))),
        ("graphql", near_text(&env)),
        ("batch", batch_of(&env, &captions(3))),
        (
            "object",
            env.client
                .post(env.url("/v1/objects"))
                .json(&json!({"class": "Photo", "properties": {"caption": "x"}})),
        ),
    ] {
        let response = within(what, request.send()).await.expect("answer");
        assert_eq!(response.status(), 503, "{what}");
        assert_eq!(response.headers()["x-upstream"], "yes", "{what}");
        let body = within(what, response.text()).await.expect("body");
        assert_eq!(body, answer, "{what}");
    }
}

#[tokio::test]
async fn stalls_past_the_timeout_are_504_in_weaviates_shape() {
    let headers_then_stall =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"
            .to_vec();
    let schema_stalls = Arc::new(AtomicBool::new(false));
    let flag = schema_stalls.clone();
    let upstream = raw_upstream(move |method, path| match (method, path) {
        ("GET", "/v1/schema") if flag.load(Ordering::SeqCst) => Act::StallAfter(Vec::new()),
        ("GET", "/v1/schema") => Act::Respond(schema_response()),
        ("POST", "/v1/graphql") => Act::StallAfter(headers_then_stall.clone()),
        _ => Act::StallAfter(Vec::new()),
    })
    .await;
    let config = Config {
        upstream_timeout: SHORT,
        // Every request below fetches the schema again.
        schema_ttl: Duration::ZERO,
        ..Config::default()
    };
    let env = common::start_gateway(&upstream, config).await;
    let expected = format!("upstream Weaviate at {upstream} did not answer within 300ms");

    // Headers, then a body that stops: the GraphQL path reads it and times out.
    // No headers at all: the batch import and the single-object import.
    for (what, request) in [
        ("graphql (body stalls)", near_text(&env)),
        ("batch", batch_of(&env, &captions(3))),
        (
            "object",
            env.client
                .post(env.url("/v1/objects"))
                .json(&json!({"class": "Photo", "properties": {"caption": "x"}})),
        ),
    ] {
        let (status, body) = send(request).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{what}: {body}");
        assert_eq!(rest_message(&body), expected, "{what}");
    }

    // The schema fetch itself stalls.
    schema_stalls.store(true, Ordering::SeqCst);
    let (status, body) = send(near_text(&env)).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(rest_message(&body), expected);
}

#[tokio::test]
async fn busy_upstream_slots_answer_429_after_the_upstream_timeout() {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let upstream = raw_upstream(move |_, path| match path {
        "/trickle" => Act::Trickle(flag.clone()),
        _ => Act::Respond(http("200 OK", &[], "ok")),
    })
    .await;
    let config = Config {
        upstream_timeout: SHORT,
        max_upstream_requests: 1,
        ..Config::default()
    };
    let env = common::start_gateway(&upstream, config).await;

    // A streaming answer holds the only slot until its body is complete.
    let mut long = within("trickle", env.client.get(env.url("/trickle")).send())
        .await
        .expect("headers");
    assert_eq!(long.status(), 200);
    assert_eq!(env.state.upstream.free_slots(), Some(0));

    let (status, body) = send(env.client.get(env.url("/v1/nodes"))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(
        rest_message(&body),
        "too many concurrent requests to the upstream Weaviate: all 1 slots stayed busy for 300ms, try again later"
    );

    stop.store(true, Ordering::SeqCst);
    let mut received = Vec::new();
    while let Some(chunk) = within("trickle body", long.chunk()).await.expect("chunk") {
        received.extend_from_slice(&chunk);
    }
    assert!(received.ends_with(b"done"), "{received:?}");
    // The slot is free again once that answer is complete (waited for, up to the timeout).
    let (status, body) = send(env.client.get(env.url("/ok"))).await;
    assert_eq!((status, body), (StatusCode::OK, json!("ok")));
}

// ---------------------------------------------------------------------------------------------
// Inference container faults (clipgate --inference-url), with the double as the upstream.

#[derive(Clone, Copy)]
enum Container {
    Slow,
    WrongCount,
    NotJson,
    /// Fails (500) any request with a text containing "poison"; otherwise 4-dimensional vectors.
    Poison,
}

fn fake_vector(text: &str) -> Vec<f32> {
    vec![text.len() as f32, 1.0, 0.5, 0.25]
}

async fn vectorize(
    State(mode): State<Container>,
    Json(body): Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let texts: Vec<String> = body["texts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    match mode {
        Container::Slow => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Json(json!({})).into_response()
        }
        Container::WrongCount => {
            let mut vectors: Vec<Vec<f32>> = texts.iter().map(|t| fake_vector(t)).collect();
            vectors.push(fake_vector("extra"));
            Json(json!({"textVectors": vectors})).into_response()
        }
        Container::NotJson => "<html>oops</html>".into_response(),
        Container::Poison if texts.iter().any(|t| t.contains("poison")) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "poisoned input"})),
        )
            .into_response(),
        Container::Poison => {
            let vectors: Vec<Vec<f32>> = texts.iter().map(|t| fake_vector(t)).collect();
            Json(json!({"textVectors": vectors})).into_response()
        }
    }
}

async fn container(mode: Container) -> String {
    let app = Router::new()
        .route("/vectorize", post(vectorize))
        .route("/meta", get(|| async { Json(json!({"model": "fake"})) }))
        .route(
            "/.well-known/ready",
            get(|| async { StatusCode::NO_CONTENT }),
        )
        .with_state(mode);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    common::base(addr)
}

fn remote(base: &str) -> RemoteClip {
    RemoteClip::new(
        base,
        RemoteOptions {
            timeout: SHORT,
            connect_timeout: SHORT,
            ..RemoteOptions::default()
        },
    )
    .expect("valid container URL")
}

/// The double, a gateway in front of it with `embedder`, and the clip class `Photo`.
async fn gateway_with(embedder: Arc<dyn Embedder>, class: Value) -> TestEnv {
    let double = Double::new();
    let (addr, _task) = conformance::double::spawn_double(double.clone())
        .await
        .expect("double");
    let config = Config {
        weaviate_url: Some(common::base(addr)),
        inference_timeout: SHORT,
        ..Config::default()
    };
    let state = AppState::new(config, embedder).expect("state");
    let (gateway, _task) = server::spawn_with(state.clone()).await.expect("gateway");
    let env = TestEnv {
        gateway: common::base(gateway),
        weaviate: common::base(addr),
        double: Some(double),
        state,
        client: common::client(),
    };
    import_support::create_class(&env, &class).await;
    env
}

fn text_class() -> Value {
    json!({"class": "Photo", "vectorizer": "multi2vec-clip",
        "moduleConfig": {"multi2vec-clip": {"textFields": ["caption"]}},
        "properties": [{"name": "caption", "dataType": ["text"]}]})
}

/// Ids of the `Photo` objects the double holds.
async fn stored_ids(env: &TestEnv) -> Vec<String> {
    let (status, listed) = send(
        env.client
            .get(env.weaviate_url("/v1/objects?class=Photo&limit=1000")),
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    let mut ids: Vec<String> = listed["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| o["id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    ids
}

/// What the container client itself answers for `texts` (one request, as the gateway sends it).
async fn client_errors(base: &str, texts: &[String]) -> Vec<String> {
    remote(base)
        .embed_texts(texts)
        .await
        .into_iter()
        .map(|r| r.expect_err("the container fails").to_string())
        .collect()
}

/// nearText, a single import and a batch import against a container that fails every text.
async fn every_path_reports(base: &str) {
    let client = remote(base);
    let error = client
        .embed_texts(&["red".to_string()])
        .await
        .remove(0)
        .expect_err("the container fails")
        .to_string();
    let env = gateway_with(Arc::new(client), text_class()).await;

    let (status, body) = send(near_text(&env)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["Get"]["Photo"], Value::Null, "{body}");
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.ends_with(&format!(
            "vectorize keywords: remote client vectorize: {error}"
        )),
        "{message}\nexpected to end with: {error}"
    );

    let (status, body) = send(
        env.client
            .post(env.url("/v1/objects"))
            .json(&json!({"class": "Photo", "properties": {"caption": "red"}})),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(
        rest_message(&body),
        format!("vectorize target vector : update vector: {error}")
    );

    let batch = captions(5);
    let batch_errors: Vec<String> = client_errors(base, &batch).await;
    let (status, body) = send(batch_of(&env, &batch)).await;
    assert_eq!(status, 200, "{body}");
    let entries = body.as_array().expect("entries");
    assert_eq!(entries.len(), 5);
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry["id"], json!(import_support::id(i)));
        assert_eq!(entry["result"]["status"], "FAILED", "{entry}");
        let message = entry["result"]["errors"]["error"][0]["message"]
            .as_str()
            .expect("message");
        assert_eq!(message, batch_errors[i], "position {i}");
    }
    assert!(stored_ids(&env).await.is_empty(), "nothing is stored");
}

#[tokio::test]
async fn container_down_is_a_clear_error_on_near_text_and_import() {
    every_path_reports(&common::unreachable_base()).await;
}

#[tokio::test]
async fn slow_container_times_out_with_a_clear_error() {
    every_path_reports(&container(Container::Slow).await).await;
}

#[tokio::test]
async fn wrong_number_of_vectors_is_a_clear_error() {
    every_path_reports(&container(Container::WrongCount).await).await;
}

#[tokio::test]
async fn non_json_from_the_container_is_a_clear_error() {
    every_path_reports(&container(Container::NotJson).await).await;
}

#[tokio::test]
async fn batch_with_some_failing_inputs_says_exactly_which_objects_were_stored() {
    let env = gateway_with(
        Arc::new(remote(&container(Container::Poison).await)),
        text_class(),
    )
    .await;
    let mut batch = captions(20);
    let poisoned = [3usize, 11, 19];
    for &i in &poisoned {
        batch[i] = format!("poison {i}");
    }
    let (status, body) = send(batch_of(&env, &batch)).await;
    assert_eq!(status, 200, "{body}");
    let entries = body.as_array().expect("entries");
    assert_eq!(entries.len(), 20);
    let mut reported_stored = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry["id"], json!(import_support::id(i)), "position {i}");
        if poisoned.contains(&i) {
            assert_eq!(entry["result"]["status"], "FAILED", "{entry}");
            assert_eq!(
                entry["result"]["errors"]["error"][0]["message"],
                "fail with status 500: poisoned input"
            );
        } else {
            assert_eq!(entry["result"], json!({"status": "SUCCESS"}), "{entry}");
            reported_stored.push(import_support::id(i));
        }
    }
    reported_stored.sort();
    assert_eq!(stored_ids(&env).await, reported_stored);
    let object = import_support::stored(&env, "Photo", &import_support::id(0)).await;
    assert_eq!(
        import_support::legacy_vector(&object),
        Some(fake_vector(&batch[0]))
    );
}

// ---------------------------------------------------------------------------------------------
// Back-pressure from the inference queue.

/// An embedder whose queue is always full.
struct Full;

#[async_trait]
impl Embedder for Full {
    async fn embed_texts(&self, texts: &[String]) -> Vec<Result<Vector, EmbedError>> {
        vec![Err(EmbedError::Overloaded); texts.len()]
    }
    async fn embed_images(&self, images: &[String]) -> Vec<Result<Vector, EmbedError>> {
        vec![Err(EmbedError::Overloaded); images.len()]
    }
    async fn meta(&self) -> Result<Value, EmbedError> {
        Ok(json!({}))
    }
    async fn ready(&self) -> Result<(), EmbedError> {
        Ok(())
    }
    fn fingerprint(&self) -> &str {
        "full"
    }
}

#[tokio::test]
async fn a_full_inference_queue_is_429_on_rest_and_an_error_on_graphql() {
    let env = gateway_with(Arc::new(Full), text_class()).await;
    let full = EmbedError::Overloaded.to_string();

    let (status, body) = send(
        env.client
            .post(env.url("/v1/objects"))
            .json(&json!({"class": "Photo", "properties": {"caption": "red"}})),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(
        rest_message(&body),
        format!("vectorize target vector : update vector: {full}")
    );

    let (status, body) = send(near_text(&env)).await;
    assert_eq!(status, 200, "{body}");
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(message.ends_with(&full), "{message}");

    let (status, body) = send(batch_of(&env, &captions(4))).await;
    assert_eq!(status, 200, "{body}");
    for entry in body.as_array().expect("entries") {
        assert_eq!(entry["result"]["status"], "FAILED");
        assert_eq!(entry["result"]["errors"]["error"][0]["message"], full);
    }
    assert!(stored_ids(&env).await.is_empty());
}

/// The real model with a one-slot queue, flooded with concurrent imports: every request is
/// either stored (200) or refused at once with 429, and exactly the 200s are stored.
#[tokio::test]
async fn the_real_model_with_a_tiny_queue_sheds_load_with_429() {
    let mut options = server::model_options(&Config::default());
    options.queue_capacity = 1;
    let model = tokio::task::spawn_blocking(move || TractClip::load(&options))
        .await
        .expect("task")
        .expect("fixture model");
    let env = gateway_with(
        Arc::new(model),
        json!({"class": "Photo", "vectorizer": "multi2vec-clip",
            "moduleConfig": {"multi2vec-clip": {"imageFields": ["image"]}},
            "properties": [{"name": "image", "dataType": ["blob"]}]}),
    )
    .await;
    let images: Vec<String> = import_support::SHAPES
        .iter()
        .map(|s| import_support::image_b64(s))
        .collect();
    let full = format!(
        "vectorize target vector : update vector: {}",
        EmbedError::Overloaded
    );
    let mut stored = Vec::new();
    let mut refused = 0usize;
    let mut next = 0usize;
    // Rounds of 64 concurrent imports until the queue has overflowed at least once.
    for _round in 0..20 {
        let requests: Vec<_> = (0..64)
            .map(|k| {
                let id = import_support::id(next + k);
                let request = env.client.post(env.url("/v1/objects")).json(&json!({
                    "class": "Photo", "id": id,
                    "properties": {"image": images[(next + k) % images.len()]}}));
                async move { (id, send(request).await) }
            })
            .collect();
        next += 64;
        for (id, (status, body)) in futures::future::join_all(requests).await {
            match status {
                StatusCode::OK => stored.push(id),
                StatusCode::TOO_MANY_REQUESTS => {
                    assert_eq!(rest_message(&body), full);
                    refused += 1;
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
        if refused > 0 {
            break;
        }
    }
    assert!(refused > 0, "the one-slot queue never overflowed");
    stored.sort();
    assert_eq!(stored_ids(&env).await, stored);
}
