//! Observability (issue 7) over real loopback HTTP with the real fixture model: request ids reach
//! every upstream request, are sane and are in the request's tracing span; credentials are not
//! logged; the README's metrics table and `/metrics` agree; `/dashboard` is served from memory.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use common::TestEnv;
use gateway::config::Config;
use http::header;
use serde_json::{json, Value};
use vectorizer::{CacheOptions, Cached, Embedder, RemoteClip, RemoteOptions};

// ---- a recording upstream in front of the double ---------------------------------------------

/// One request the upstream received: method, path and query, its `x-request-id` values.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    ids: Vec<String>,
}

/// Records every request, then forwards it to the double and passes the answer back.
#[derive(Clone)]
struct Recorder {
    double: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    client: reqwest::Client,
}

impl Recorder {
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().expect("lock"))
    }
}

async fn record(State(recorder): State<Recorder>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let uri = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_default();
    recorder.seen.lock().expect("lock").push(Seen {
        method: parts.method.to_string(),
        uri: uri.clone(),
        ids: parts
            .headers
            .get_all("x-request-id")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect(),
    });
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("request body");
    let mut headers = parts.headers;
    headers.remove(header::HOST);
    headers.remove(header::CONTENT_LENGTH);
    let answer = recorder
        .client
        .request(parts.method, format!("{}{uri}", recorder.double))
        .headers(headers)
        .body(body)
        .send()
        .await
        .expect("the double answers");
    let status = answer.status();
    let mut headers = answer.headers().clone();
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::TRANSFER_ENCODING);
    let bytes = answer.bytes().await.expect("double body");
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The double, a recorder in front of it and a gateway in front of the recorder, with the
/// clip-managed class `Shape` (stored upstream as `none` + moduleConfig, as the gateway stores
/// clip classes).
async fn recorded() -> (TestEnv, Recorder) {
    logs();
    let (double, _task) = conformance::double::spawn()
        .await
        .expect("the double starts");
    let recorder = Recorder {
        double: common::base(double),
        seen: Arc::default(),
        client: common::client(),
    };
    let app = Router::new().fallback(record).with_state(recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let env = common::start_gateway(&common::base(addr), Config::default()).await;
    let class = json!({
        "class": "Shape", "vectorizer": "none",
        "moduleConfig": {"multi2vec-clip": {"textFields": ["name"]}},
        "properties": [{"name": "name", "dataType": ["text"]}]
    });
    let response = env
        .client
        .post(format!("{}/v1/schema", recorder.double))
        .json(&class)
        .send()
        .await
        .expect("schema create");
    assert_eq!(response.status(), 200);
    (env, recorder)
}

/// Sends `method path` with `x-request-id: id` (and credentials), checks the id came back, and
/// returns the status, the body and what the upstream received meanwhile.
async fn send(
    env: &TestEnv,
    recorder: &Recorder,
    method: &str,
    path: &str,
    body: Option<Value>,
    id: &str,
) -> (u16, Value, Vec<Seen>) {
    recorder.take();
    let mut request = env
        .client
        .request(method.parse().expect("method"), env.url(path))
        .header("x-request-id", id)
        .header("authorization", "Bearer secret-token-xyz");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("answer");
    let status = response.status().as_u16();
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(id),
        "{method} {path}"
    );
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value, recorder.take())
}

fn assert_all_carry(seen: &[Seen], id: &str, what: &str) {
    assert!(!seen.is_empty(), "{what}: nothing reached the upstream");
    for s in seen {
        assert_eq!(s.ids, [id], "{what}: {} {}", s.method, s.uri);
    }
}

#[tokio::test]
async fn the_request_id_reaches_every_upstream_request() {
    let (env, recorder) = recorded().await;

    let (status, _, seen) = send(&env, &recorder, "GET", "/v1/meta", None, "meta-1").await;
    assert_eq!(status, 200);
    assert_all_carry(&seen, "meta-1", "meta");

    // Single-object import: schema lookup (maybe cached) + the create with the vector attached.
    let object = json!({"class": "Shape", "id": "00000000-0000-0000-0000-000000000001",
                        "properties": {"name": "red circle"}});
    let (status, body, seen) = send(
        &env,
        &recorder,
        "POST",
        "/v1/objects",
        Some(object),
        "import-1",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_all_carry(&seen, "import-1", "object import");
    assert!(
        seen.iter()
            .any(|s| s.method == "POST" && s.uri == "/v1/objects"),
        "{seen:?}"
    );

    // Batch import.
    let batch = json!({"objects": [
        {"class": "Shape", "id": "00000000-0000-0000-0000-000000000002", "properties": {"name": "blue square"}}
    ]});
    let (status, body, seen) = send(
        &env,
        &recorder,
        "POST",
        "/v1/batch/objects",
        Some(batch),
        "batch-1",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_all_carry(&seen, "batch-1", "batch import");

    // Rewritten GraphQL with a move: the object lookup and the rewritten query both carry it.
    let query = r#"{ Get { Shape(nearText: {concepts: ["red"], moveTo: {force: 0.5, objects: [{id: "00000000-0000-0000-0000-000000000002"}]}}) { name } } }"#;
    let (status, body, seen) = send(
        &env,
        &recorder,
        "POST",
        "/v1/graphql",
        Some(json!({ "query": query })),
        "graphql-1",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["errors"].is_null(), "{body}");
    assert_all_carry(&seen, "graphql-1", "graphql");
    assert!(
        seen.iter().any(|s| s.method == "GET"
            && s.uri
                .starts_with("/v1/objects/Shape/00000000-0000-0000-0000-000000000002")),
        "move lookup missing: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.method == "POST" && s.uri == "/v1/graphql"),
        "{seen:?}"
    );

    // The transparent proxy.
    let (status, _, seen) = send(&env, &recorder, "GET", "/v1/objects", None, "proxy-1").await;
    assert_eq!(status, 200);
    assert_all_carry(&seen, "proxy-1", "proxy");
}

#[tokio::test]
async fn insane_request_ids_are_replaced_and_sane_ones_kept() {
    let (env, recorder) = recorded().await;
    for kept in [
        "a",
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "trace:abc/def+ghi=@x_y.z",
        &"x".repeat(128),
    ] {
        let (_, _, seen) = send(&env, &recorder, "GET", "/v1/objects", None, kept).await;
        assert_all_carry(&seen, kept, kept);
    }
    let long = "y".repeat(129);
    for insane in [
        "two words",
        "quote\"d",
        "new\tline",
        "ünïcode",
        long.as_str(),
        "",
    ] {
        recorder.take();
        let response = env
            .client
            .get(env.url("/v1/objects"))
            .header("x-request-id", insane.as_bytes())
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 200, "{insane:?}");
        let id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("an id comes back")
            .to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{insane:?} -> {id}");
        assert_all_carry(&recorder.take(), &id, insane);
    }
    // Two ids at once: neither is chosen.
    let response = env
        .client
        .get(env.url("/v1/objects"))
        .header("x-request-id", "first")
        .header("x-request-id", "second")
        .send()
        .await
        .expect("answer");
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("an id comes back")
        .to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    assert_all_carry(&recorder.take(), &id, "two ids");
    // Without one, the generated id is what the upstream saw.
    let response = env
        .client
        .get(env.url("/v1/objects"))
        .send()
        .await
        .expect("answer");
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("an id comes back")
        .to_string();
    assert_all_carry(&recorder.take(), &id, "generated");
}

#[test]
fn request_id_sanity_rules() {
    use gateway::observability::is_sane_request_id;
    assert!(is_sane_request_id("abc-DEF_1.2:3/4+5=6@7"));
    assert!(is_sane_request_id(&"a".repeat(128)));
    assert!(!is_sane_request_id(&"a".repeat(129)));
    assert!(!is_sane_request_id(""));
    assert!(!is_sane_request_id("a b"));
    assert!(!is_sane_request_id("a\nb"));
    assert!(!is_sane_request_id("a,b"));
}

// ---- logs ------------------------------------------------------------------------------------

/// A log writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOGS: OnceLock<Captured> = OnceLock::new();

/// This test binary's logs at DEBUG, captured by a process-wide subscriber installed before any
/// test does anything (a thread-local one misses events when another test thread registered the
/// callsite first). Every test of this file calls it first.
fn logs() -> &'static Captured {
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        captured
    })
}

/// The request span carries the id (so every log line of the request does); headers, the query
/// and credentials are never logged, even at DEBUG (the capture holds every test's logs, and
/// every test here sends credentials).
#[tokio::test]
async fn logs_carry_the_request_id_and_never_credentials() {
    let captured = logs();
    let (env, recorder) = recorded().await;
    let (status, _, _) = send(
        &env,
        &recorder,
        "GET",
        "/v1/objects?api_key=secret-query-abc",
        None,
        "log-id-1",
    )
    .await;
    assert_eq!(status, 200);
    // An upstream failure is logged (WARN) inside the request's span.
    let down = common::start_gateway(&common::unreachable_base(), Config::default()).await;
    let response = down
        .client
        .get(down.url("/v1/things"))
        .header("x-request-id", "log-id-2")
        .header("x-api-key", "secret-key-uvw")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 502);

    let logs = String::from_utf8_lossy(&captured.0.lock().expect("lock")).into_owned();
    assert!(
        logs.lines()
            .any(|l| l.contains("request_id=log-id-1") && l.contains("path=/v1/objects")),
        "{logs}"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("request_id=log-id-2") && l.contains("upstream request failed")),
        "{logs}"
    );
    for secret in ["secret-token-xyz", "secret-query-abc", "secret-key-uvw"] {
        assert!(!logs.contains(secret), "{secret} was logged:\n{logs}");
    }
}

// ---- metrics ---------------------------------------------------------------------------------

/// `(name, type)` of every row of the README's metrics table.
fn readme_metrics() -> BTreeMap<String, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let mut table = BTreeMap::new();
    for line in readme.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with("`clipgate_") {
            continue;
        }
        let name = cells[1].trim_matches('`').to_string();
        assert!(
            table.insert(name.clone(), cells[2].to_string()).is_none(),
            "{name} is in the README table twice"
        );
    }
    table
}

/// `(name, type)` from the `# TYPE` lines of `/metrics`, and the names of the metrics that have
/// samples (histogram and summary series folded into their metric).
fn exported(text: &str) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let mut types = BTreeMap::new();
    let mut sampled = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                types.insert(name.to_string(), kind.to_string());
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name = line
            .split(|c: char| c == '{' || c.is_whitespace())
            .next()
            .unwrap_or_default();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix).filter(|b| types.contains_key(*b)))
            .unwrap_or(name);
        sampled.insert(base.to_string());
    }
    (types, sampled)
}

/// A "container" that takes each request and hangs up before answering: a connection reset
/// as the remote client sees it (resent, then an inference error).
async fn hanging_up_container() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
            });
        }
    });
    common::base(addr)
}

/// After traffic that exercises every part (GraphQL rewrite, its document cache and field
/// errors, imports, the proxy, a gRPC call, an unreachable upstream, cache hits, misses and evictions, the local model, a remote
/// container that hangs up), `/metrics` exports exactly the metrics of the README table, with the
/// table's types.
#[tokio::test]
async fn the_readme_metrics_table_matches_metrics() {
    let (env, recorder) = recorded().await;
    let query = r#"{ Get { Shape(nearText: {concepts: ["a red circle"]}) { name } } }"#;
    for id in ["m-1", "m-2"] {
        let (status, body, _) = send(
            &env,
            &recorder,
            "POST",
            "/v1/graphql",
            Some(json!({ "query": query })),
            id,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let bad = r#"{ Get { Shape(nearImage: {image: "not an image"}) { name } } }"#;
    let (status, body, _) = send(
        &env,
        &recorder,
        "POST",
        "/v1/graphql",
        Some(json!({ "query": bad })),
        "m-3",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let down = common::start_gateway(&common::unreachable_base(), Config::default()).await;
    let response = down
        .client
        .get(down.url("/v1/things"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 502);

    // One gRPC call through clipgate's gRPC endpoint (to the double's gRPC API).
    let double = conformance::double::Double::new();
    let (grpc_double, _task) = conformance::double::grpc::spawn(double.clone())
        .await
        .expect("double gRPC starts");
    let config = Config {
        weaviate_grpc_url: Some(format!("http://{grpc_double}")),
        ..Config::default()
    };
    let grpc_env = common::start_double_with(double, config).await;
    let state = gateway::grpc::GrpcState::new(grpc_env.state.clone()).expect("gRPC state");
    let (grpc_addr, _task) = gateway::grpc::spawn_with(state)
        .await
        .expect("gRPC listener");
    let channel = tonic::transport::Channel::from_shared(common::base(grpc_addr))
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let search = weaviate_proto::v1::SearchRequest {
        collection: "Nothing".to_string(),
        limit: 1,
        uses_127_api: true,
        ..Default::default()
    };
    // Whatever the double answers (no such class), the call went through clipgate.
    let _ = weaviate_proto::v1::weaviate_client::WeaviateClient::new(channel)
        .search(search)
        .await;

    // Evictions: a cache with room for two vectors.
    let dimensions = env.embedder().embed_texts(&["probe".to_string()]).await[0]
        .as_ref()
        .expect("fixture vector")
        .len();
    let small = Cached::from_arc(
        env.embedder().clone(),
        CacheOptions {
            max_bytes: vectorizer::entry_weight(dimensions) * 2,
            backend: "tract".to_string(),
        },
    );
    for i in 0..16 {
        let _ = small.embed_texts(&[format!("eviction {i}")]).await;
    }
    small.run_pending_tasks().await;
    let _ = small.embed_texts(&["one more".to_string()]).await;
    assert!(small.stats().evictions > 0, "{:?}", small.stats());

    // Remote retries and inference errors: a container that hangs up.
    let remote = RemoteClip::new(
        &hanging_up_container().await,
        RemoteOptions {
            timeout: Duration::from_secs(10),
            ..RemoteOptions::default()
        },
    )
    .expect("remote client");
    let remote = Cached::new(remote, CacheOptions::from_mb(1, "remote"));
    let out = remote.embed_texts(&["x".to_string()]).await;
    assert!(out[0].is_err());

    let text = env
        .client
        .get(env.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let (types, sampled) = exported(&text);
    let table = readme_metrics();
    let exported_names: BTreeSet<&String> = types
        .keys()
        .filter(|n| n.starts_with("clipgate_"))
        .collect();
    let documented: BTreeSet<&String> = table.keys().collect();
    let undocumented: Vec<_> = exported_names.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&exported_names).collect();
    assert!(
        undocumented.is_empty(),
        "exported but not in the README table: {undocumented:?}"
    );
    assert!(
        missing.is_empty(),
        "in the README table but not exported after the traffic: {missing:?}\n{text}"
    );
    for (name, kind) in &table {
        assert_eq!(types.get(name), Some(kind), "type of {name}");
        assert!(sampled.contains(name), "{name} has no samples:\n{text}");
    }
    for name in &sampled {
        if name.starts_with("clipgate_") {
            assert!(table.contains_key(name), "{name} is undocumented");
        }
    }
}

// ---- dashboard -------------------------------------------------------------------------------

#[tokio::test]
async fn the_dashboard_is_served_from_memory_without_external_resources() {
    logs();
    let env = common::start().await;
    let page = env
        .client
        .get(env.url("/dashboard"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    assert!(page.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .starts_with("text/html"));
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    let html = page.text().await.expect("html");
    for id in [
        "hit-ratio",
        "cache-entries",
        "cache-bytes",
        "inference-p50",
        "inference-p99",
        "requests-rate",
        "requests-total",
        "errors-5xx",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    for (path, kind) in [
        ("/dashboard/dashboard.js", "text/javascript"),
        ("/dashboard/dashboard.css", "text/css"),
    ] {
        let response = env.client.get(env.url(path)).send().await.expect(path);
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with(kind));
        let body = response.text().await.expect("body");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path}"
        );
    }
    assert!(!html.contains("http://") && !html.contains("https://"));
    // `/dashboard/` sends the browser to `/dashboard`, whose relative links then resolve.
    let response = env
        .client
        .get(env.url("/dashboard/"))
        .send()
        .await
        .expect("redirect");
    assert_eq!(response.status(), 308);
    assert_eq!(response.headers()[header::LOCATION], "../dashboard");
}
