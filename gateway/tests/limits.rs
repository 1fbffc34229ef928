//! Hostile input on the real server path (issue 7, "Hostile input"): GraphQL document limits
//! (size, depth, tokens), per-search limits (concepts, text size, move objects), and the
//! credential rules of move objects — all over real loopback HTTP against the Weaviate double,
//! with the real fixture model.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use common::TestEnv;
use conformance::double::{ApiKey, Double};
use gateway::config::Config;
use serde_json::{json, Value};

const ADMIN_KEY: &str = "admin-key-7f3c9e";
const READER_KEY: &str = "reader-key-51ab20";
const PUBLIC_ID: &str = "00000000-0000-0000-0000-000000000001";
const SECRET_ID: &str = "00000000-0000-0000-0000-000000000099";

async fn post(env: &TestEnv, path: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = env.client.post(env.url(path)).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("answer");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, json)
}

async fn graphql(env: &TestEnv, query: &str) -> Value {
    let (status, body) = post(env, "/v1/graphql", None, &json!({ "query": query })).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The single error message of a refused document (no `data`).
fn refusal_message(body: &Value) -> String {
    assert!(body.get("data").is_none(), "{body}");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{body}");
    errors[0]["message"].as_str().expect("message").to_string()
}

/// The error of a class field that failed (its value `null`), by response path.
fn field_error(body: &Value, root: &str, key: &str) -> String {
    assert_eq!(body["data"][root][key], Value::Null, "{body}");
    body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .find(|e| e["path"] == json!([root, key]))
        .and_then(|e| e["message"].as_str())
        .unwrap_or_else(|| panic!("no error for {root}.{key}: {body}"))
        .to_string()
}

/// A clip-managed class `Item` with one object whose vector is the fixture model's "a red
/// circle" vector.
async fn item_env(config: Config) -> TestEnv {
    let env = common::start_with(config).await;
    let class = json!({"class": "Item", "vectorizer": "none",
        "moduleConfig": {"multi2vec-clip": {"textFields": ["name"]}},
        "properties": [{"name": "name", "dataType": ["text"]}]});
    let r = env
        .client
        .post(env.weaviate_url("/v1/schema"))
        .json(&class)
        .send()
        .await
        .expect("schema");
    assert_eq!(r.status(), 200);
    let vector = text_vector(&env, "a red circle").await;
    let object = json!({"class": "Item", "id": PUBLIC_ID, "properties": {"name": "red circle"},
        "vector": vector});
    let r = env
        .client
        .post(env.weaviate_url("/v1/objects"))
        .json(&object)
        .send()
        .await
        .expect("object");
    assert_eq!(r.status(), 200);
    env
}

async fn text_vector(env: &TestEnv, text: &str) -> Vec<f32> {
    let mut out = env.embedder().embed_texts(&[text.to_string()]).await;
    out.remove(0).expect("fixture text vector").to_vec()
}

fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

#[tokio::test]
async fn ten_thousand_deep_documents_get_a_clear_error() {
    let env = item_env(Config::default()).await;
    let expected = "nested more than 128 levels deep";
    // Deep selections, with and without a module argument (both would reach the parser).
    let selections = nested("{ a ", "", "}", 10_000);
    for query in [
        format!("{{ Get {{ Item(nearText: {{concepts: [\"x\"]}}) {selections} }} }}"),
        format!("{{ Get {{ Item {selections} }} }}"),
        selections.clone(),
    ] {
        let message = refusal_message(&graphql(&env, &query).await);
        assert!(message.contains(expected), "{message}");
        assert!(message.contains("--max-graphql-depth"), "{message}");
    }
    // Deep argument values: objects and lists, inside and outside the module argument.
    for value in [
        nested("{a: ", "1", "}", 10_000),
        nested("[", "1", "]", 10_000),
    ] {
        for query in [
            format!(
                "{{ Get {{ Item(nearText: {{concepts: [\"x\"]}}, where: {value}) {{ name }} }} }}"
            ),
            format!(
                "{{ Get {{ Item(nearText: {{concepts: [\"x\"], moveTo: {value}}}) {{ name }} }} }}"
            ),
            format!("{{ Get {{ Item(nearText: {{concepts: {value}}}) {{ name }} }} }}"),
        ] {
            let message = refusal_message(&graphql(&env, &query).await);
            assert!(message.contains(expected), "{message}");
        }
    }
    // The same in a batch: only that element is refused, the other one runs.
    let (status, body) = post(
        &env,
        "/v1/graphql/batch",
        None,
        &json!([
            {"query": selections},
            {"query": "{ Get { Item(nearText: {concepts: [\"red circle\"]}) { name } } }"},
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(refusal_message(&body[0]).contains(expected), "{body}");
    assert_eq!(
        body[1]["data"]["Get"]["Item"][0]["name"], "red circle",
        "{body}"
    );
    // The server is still there and answers normally.
    let body = graphql(
        &env,
        "{ Get { Item(nearText: {concepts: [\"red circle\"]}) { name } } }",
    )
    .await;
    assert_eq!(
        body["data"]["Get"]["Item"][0]["name"], "red circle",
        "{body}"
    );
}

#[tokio::test]
async fn documents_at_the_highest_depth_are_planned_without_overflow() {
    // The ceiling (256) on a tokio worker thread of a debug build: the check passes, the plan
    // parses and reads the nested value (`Value::from_cst`, printing), Weaviate's literal error
    // comes back.
    let config = Config {
        max_graphql_depth: gateway::graphql::limits::MAX_DEPTH_CEILING,
        ..Config::default()
    };
    let env = item_env(config).await;
    let value = nested("[", "\"x\"", "]", 240);
    let query = format!("{{ Get {{ Item(nearText: {{concepts: {value}}}) {{ name }} }} }}");
    let body = graphql(&env, &query).await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Argument \"nearText\" has invalid value"),
        "{body}"
    );
    let value = nested("{moveTo: ", "{force: 0.5}", "}", 240);
    let query = format!(
        "{{ Get {{ Item(nearText: {{concepts: [\"a\"], moveTo: {value}}}) {{ name }} }} }}"
    );
    let body = graphql(&env, &query).await;
    assert!(body["errors"].is_array(), "{body}");
    let deeper = nested("[", "\"x\"", "]", 300);
    let query = format!("{{ Get {{ Item(nearText: {{concepts: {deeper}}}) {{ name }} }} }}");
    let message = refusal_message(&graphql(&env, &query).await);
    assert!(message.contains("nested more than 256 levels"), "{message}");
}

#[tokio::test]
async fn document_size_and_token_limits() {
    let config = Config {
        max_graphql_bytes: 2_000,
        max_graphql_tokens: 1_000,
        ..Config::default()
    };
    let env = item_env(config).await;
    let padding = " ".repeat(2_000);
    let query = format!(
        "{{ Get {{ Item(nearText: {{concepts: [\"red circle\"]}}) {{ name }} }} }}{padding}"
    );
    let message = refusal_message(&graphql(&env, &query).await);
    assert!(
        message.contains(&format!("is {} bytes", query.len()))
            && message.contains("limit of 2000 bytes (--max-graphql-bytes)"),
        "{message}"
    );
    // 1,001 tokens in under 2,000 bytes: `a,` is two tokens.
    let many = "a,".repeat(600);
    let query = format!("{{ Get {{ Item {{ {many} }} }} }}");
    assert!(query.len() < 2_000);
    let message = refusal_message(&graphql(&env, &query).await);
    assert!(
        message.contains("more than 1000 tokens") && message.contains("--max-graphql-tokens"),
        "{message}"
    );
    // Under both limits: answered normally.
    let body = graphql(
        &env,
        "{ Get { Item(nearText: {concepts: [\"red circle\"]}) { name } } }",
    )
    .await;
    assert_eq!(
        body["data"]["Get"]["Item"][0]["name"], "red circle",
        "{body}"
    );
}

#[tokio::test]
async fn search_limits_fail_only_their_field() {
    let config = Config {
        max_concepts: 3,
        max_concept_bytes: 100,
        max_move_objects: 2,
        ..Config::default()
    };
    let env = item_env(config).await;
    // Every query asks for `ok`, a search under the limits, next to the one over them.
    let ok = "ok: Item(nearText: {concepts: [\"red circle\"]}) { name }";
    let cases = [
        (
            "Item(nearText: {concepts: [\"a\", \"b\", \"c\", \"d\"]}) { name }",
            "nearText asks to vectorize 4 texts (concepts and move concepts), over clipgate's limit of 3 (--max-concepts)",
        ),
        (
            "Item(nearText: {concepts: [\"a\", \"b\"], moveTo: {force: 0.5, concepts: [\"c\", \"d\"]}}) { name }",
            "nearText asks to vectorize 4 texts",
        ),
        (
            &format!("Item(nearText: {{concepts: [\"{}\"]}}) {{ name }}", "é".repeat(51)),
            "a search text is 102 bytes, over clipgate's limit of 100 bytes (--max-concept-bytes)",
        ),
        (
            &format!(
                "Item(hybrid: {{query: \"{}\"}}) {{ name }}",
                "x".repeat(101)
            ),
            "a search text is 101 bytes",
        ),
        (
            &format!(
                "Item(nearText: {{concepts: [\"a\"], moveTo: {{force: 0.5, objects: [{{id: \"{PUBLIC_ID}\"}}, {{id: \"{PUBLIC_ID}\"}}]}}, moveAwayFrom: {{force: 0.5, objects: [{{id: \"{PUBLIC_ID}\"}}]}}}}) {{ name }}"
            ),
            "nearText moves name 3 objects, over clipgate's limit of 2 (--max-move-objects)",
        ),
    ];
    for (field, expected) in cases {
        let query = format!("{{ Get {{ {field} {ok} }} }}");
        let body = graphql(&env, &query).await;
        let message = field_error(&body, "Get", "Item");
        assert!(message.contains(expected), "{message}\n{body}");
        assert_eq!(body["data"]["Get"]["ok"][0]["name"], "red circle", "{body}");
    }
    // At the limits exactly: computed.
    let query = format!(
        "{{ Get {{ Item(nearText: {{concepts: [\"red\", \"circle\"], moveTo: {{force: 0.2, concepts: [\"{}\"], objects: [{{id: \"{PUBLIC_ID}\"}}, {{id: \"{PUBLIC_ID}\"}}]}}}}) {{ name }} }} }}",
        "r".repeat(100)
    );
    let body = graphql(&env, &query).await;
    assert_eq!(
        body["data"]["Get"]["Item"][0]["name"], "red circle",
        "{body}"
    );
    assert!(body.get("errors").is_none(), "{body}");
}

// ---------------------------------------------------------------------------------------------
// Credentials: move objects are looked up with the caller's credentials, and never logged.

/// Every log line of this test binary, at TRACE for clipgate and tower_http, DEBUG for the rest.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = SharedWriter(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,gateway=trace,vectorizer=trace,tower_http=trace,conformance=trace",
            ))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        buffer
    })
    .clone()
}

#[derive(Clone)]
struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `Public` and `Secret`, both clip-managed; the reader key may read only `Public`.
async fn secured_env() -> TestEnv {
    let double = Double::new().with_api_keys([
        ApiKey::new(ADMIN_KEY, "admin"),
        ApiKey::new(READER_KEY, "reader").only_classes(["Public"]),
    ]);
    let env = common::start_double_with(double, Config::default()).await;
    let vector = text_vector(&env, "a red circle").await;
    for (class, id) in [("Public", PUBLIC_ID), ("Secret", SECRET_ID)] {
        let schema = json!({"class": class, "vectorizer": "none",
            "moduleConfig": {"multi2vec-clip": {"textFields": ["name"]}},
            "properties": [{"name": "name", "dataType": ["text"]}]});
        let object = json!({"class": class, "id": id, "properties": {"name": format!("{class} circle")},
            "vector": vector});
        for (path, body) in [("/v1/schema", schema), ("/v1/objects", object)] {
            let r = env
                .client
                .post(env.weaviate_url(path))
                .bearer_auth(ADMIN_KEY)
                .json(&body)
                .send()
                .await
                .expect("setup");
            assert_eq!(r.status(), 200, "{path}");
        }
    }
    env
}

fn near_text_moving_to(field: &str, id: &str) -> String {
    format!(
        "{{ {field}(nearText: {{concepts: [\"blue square\"], moveTo: {{force: 0.9, objects: [{{id: \"{id}\"}}]}}}}) {{ name }} }}"
    )
}

#[tokio::test]
async fn a_move_cannot_reveal_an_object_the_caller_may_not_read() {
    let logs = captured_logs();
    let env = secured_env().await;
    let request = |query: String| json!({ "query": query });

    // The admin may move to the secret object (and so the gateway knows `Secret` is
    // clip-managed: the schema view is cached from this call).
    let get_secret = format!("{{ Get {} }}", near_text_moving_to("Secret", SECRET_ID));
    let (status, body) = post(
        &env,
        "/v1/graphql",
        Some(ADMIN_KEY),
        &request(get_secret.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["Get"]["Secret"][0]["name"], "Secret circle",
        "{body}"
    );

    // The reader: the move object's lookup is made with the reader's key and refused by
    // Weaviate; the field fails with Weaviate's own authorization error and nothing is computed.
    let (status, body) = post(&env, "/v1/graphql", Some(READER_KEY), &request(get_secret)).await;
    assert_eq!(status, 200, "{body}");
    let message = field_error(&body, "Get", "Secret");
    assert!(
        message.contains("403")
            && message.contains(
                "forbidden: user 'reader' has insufficient permissions to access class Secret"
            ),
        "{message}"
    );

    // Explore looks objects up by id alone (`/v1/objects/{id}`): still the reader's key, still
    // refused, and no search of the readable classes runs with the secret vector.
    let explore = format!(
        "{{ Explore(nearText: {{concepts: [\"blue square\"], moveTo: {{force: 0.9, objects: [{{id: \"{SECRET_ID}\"}}]}}}}) {{ className beacon }} }}"
    );
    let (status, body) = post(&env, "/v1/graphql", Some(READER_KEY), &request(explore)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["Explore"], Value::Null, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "forbidden: user 'reader' has insufficient permissions to access class Secret"
        ),
        "{body}"
    );

    // A readable class with the secret object's id: looked up in `Public` only, not found.
    let get_public = format!("{{ Get {} }}", near_text_moving_to("Public", SECRET_ID));
    let (status, body) = post(&env, "/v1/graphql", Some(READER_KEY), &request(get_public)).await;
    assert_eq!(status, 200, "{body}");
    let message = field_error(&body, "Get", "Public");
    assert!(message.contains("vector not found"), "{message}");

    // Without credentials at all: the schema fetch is refused with Weaviate's 401 once the
    // cached view is stale; with a fresh view, the lookup itself is refused. Either way no data.
    let (status, body) = post(
        &env,
        "/v1/graphql",
        None,
        &request(format!(
            "{{ Get {} }}",
            near_text_moving_to("Public", PUBLIC_ID)
        )),
    )
    .await;
    assert!(
        status == 401 || body["data"]["Get"]["Public"].is_null(),
        "{status} {body}"
    );

    // The reader's own objects still work, with the same kind of request.
    let get_own = format!("{{ Get {} }}", near_text_moving_to("Public", PUBLIC_ID));
    let (status, body) = post(&env, "/v1/graphql", Some(READER_KEY), &request(get_own)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["Get"]["Public"][0]["name"], "Public circle",
        "{body}"
    );

    // Nothing logged the keys or the Authorization header, while the requests were logged.
    let logs = String::from_utf8_lossy(&logs.lock().expect("logs")).to_string();
    assert!(
        logs.contains("/v1/graphql"),
        "no request was logged:\n{logs}"
    );
    for secret in [ADMIN_KEY, READER_KEY, "Bearer", "authorization: "] {
        assert!(
            !logs
                .to_ascii_lowercase()
                .contains(&secret.to_ascii_lowercase()),
            "the logs contain {secret:?}"
        );
    }
}
