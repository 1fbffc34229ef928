//! Graceful shutdown of the real `clipgate` binary over real sockets (issue 7, "Faults": clipgate
//! receives SIGTERM during a batch import → in-flight requests finish, new ones are refused, exit
//! status 0).
//!
//! The Weaviate behind clipgate runs in this test process (the double behind a small gated
//! forwarder), so the objects the batch stored can be read back after clipgate has exited, and
//! the test decides exactly when the batch is in flight: the forwarder holds the batch until the
//! test has sent SIGTERM and seen new connections refused.

mod common;
mod import_support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use import_support::{image_b64, SHAPES};
use serde_json::{json, Value};
use tokio::sync::{oneshot, Mutex};

/// Hang guard for every wait in this file (not a timing assertion).
const GUARD: Duration = Duration::from_secs(120);

/// A `clipgate serve` child process; killed if the test fails before it exits.
struct Clipgate {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Clipgate {
    fn start(extra: &[&str]) -> Self {
        let addr = free_addr();
        let grpc = free_addr();
        let log = std::env::temp_dir().join(format!(
            "clipgate-shutdown-test-{}-{}.log",
            std::process::id(),
            addr.port()
        ));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_clipgate"))
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--grpc-listen")
            .arg(grpc.to_string())
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("clipgate starts");
        Clipgate { child, addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `GET /v1/meta` until clipgate answers (model loading takes a moment).
    async fn wait_ready(&mut self) {
        let client = common::client();
        let deadline = tokio::time::Instant::now() + GUARD;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("clipgate exited early with {status}:\n{}", self.log());
            }
            if let Ok(r) = client.get(self.url("/v1/meta")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "clipgate not ready:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit (off the async runtime).
    async fn wait_exit(mut self) -> (ExitStatus, String) {
        let log = self.log.clone();
        let status = tokio::time::timeout(GUARD, async {
            loop {
                if let Some(status) = self.child.try_wait().expect("try_wait") {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("clipgate did not exit:\n{}", self.log()));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        std::mem::forget(self);
        (status, text)
    }
}

impl Drop for Clipgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A loopback address nothing listens on (bound, then released).
fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// Waits until connecting to `addr` is refused (clipgate handles the signal asynchronously).
async fn wait_refused(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "clipgate still accepts connections after the signal"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The forwarder's gate for `POST /v1/batch/objects`.
#[derive(Clone)]
struct Gate {
    double: String,
    client: reqwest::Client,
    arrived: Arc<Mutex<Option<oneshot::Sender<()>>>>,
    release: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
}

/// Forwards every request to the double; the first batch import waits for the test's release.
async fn forward(State(gate): State<Gate>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("request body");
    if parts.uri.path() == "/v1/batch/objects" {
        if let Some(arrived) = gate.arrived.lock().await.take() {
            let _ = arrived.send(());
            if let Some(release) = gate.release.lock().await.take() {
                let _ = release.await;
            }
        }
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut upstream = gate
        .client
        .request(parts.method, format!("{}{path}", gate.double))
        .body(body);
    if let Some(content_type) = parts.headers.get(http::header::CONTENT_TYPE) {
        upstream = upstream.header(http::header::CONTENT_TYPE, content_type);
    }
    let answer = upstream.send().await.expect("double answers");
    let status = answer.status();
    let content_type = answer.headers().get(http::header::CONTENT_TYPE).cloned();
    let bytes = answer.bytes().await.expect("double body");
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, content_type);
    }
    response
}

#[tokio::test]
async fn sigterm_during_a_batch_import_finishes_it_refuses_new_connections_and_exits_0() {
    let (double_addr, _double) = conformance::double::spawn().await.expect("double");
    let double = common::base(double_addr);
    let (arrived_tx, arrived_rx) = oneshot::channel();
    let (release_tx, release_rx) = oneshot::channel();
    let gate = Gate {
        double: double.clone(),
        client: common::client(),
        arrived: Arc::new(Mutex::new(Some(arrived_tx))),
        release: Arc::new(Mutex::new(Some(release_rx))),
    };
    let app = Router::new().fallback(forward).with_state(gate);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let upstream = common::base(listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut clipgate = Clipgate::start(&["--weaviate-url", &upstream]);
    clipgate.wait_ready().await;
    let client = common::client();
    let created = client
        .post(clipgate.url("/v1/schema"))
        .json(&json!({"class": "Photo", "vectorizer": "multi2vec-clip",
            "moduleConfig": {"multi2vec-clip": {"textFields": ["caption"], "imageFields": ["image"]}},
            "properties": [{"name": "caption", "dataType": ["text"]},
                           {"name": "image", "dataType": ["blob"]}]}))
        .send()
        .await
        .expect("schema");
    assert_eq!(created.status(), 200);

    // 200 objects; three carry an invalid blob and must be reported as not stored.
    let bad = [5usize, 100, 199];
    let objects: Vec<Value> = (0..200)
        .map(|i| {
            let image = if bad.contains(&i) {
                "%%%%".to_string()
            } else {
                image_b64(SHAPES[i % SHAPES.len()])
            };
            json!({"class": "Photo", "id": import_support::id(i),
                   "properties": {"caption": format!("object {i}"), "image": image}})
        })
        .collect();
    let batch_url = clipgate.url("/v1/batch/objects");
    let batch = tokio::spawn(async move {
        let response = common::client()
            .post(batch_url)
            .json(&json!({"objects": objects}))
            .send()
            .await
            .expect("the in-flight batch gets its answer");
        let status = response.status();
        let body: Value = response.json().await.expect("a complete JSON answer");
        (status, body)
    });

    // The batch is vectorized and now upstream: signal clipgate while it is in flight.
    tokio::time::timeout(GUARD, arrived_rx)
        .await
        .expect("the batch reaches the upstream")
        .expect("gate");
    clipgate.signal("TERM");
    wait_refused(clipgate.addr).await;
    assert!(!batch.is_finished(), "the batch is still held upstream");
    release_tx.send(()).expect("release");

    let (status, results) = tokio::time::timeout(GUARD, batch)
        .await
        .expect("the batch answer arrives")
        .expect("batch task");
    assert_eq!(status, 200, "{results}");
    let results = results.as_array().expect("one entry per object");
    assert_eq!(results.len(), 200);
    for (i, entry) in results.iter().enumerate() {
        assert_eq!(entry["id"], json!(import_support::id(i)), "position {i}");
        let expected = if bad.contains(&i) {
            "FAILED"
        } else {
            "SUCCESS"
        };
        assert_eq!(entry["result"]["status"], expected, "position {i}: {entry}");
    }

    let (exit, log) = clipgate.wait_exit().await;
    assert!(exit.success(), "exit status {exit}:\n{log}");
    assert!(log.contains("clipgate stopped"), "{log}");

    // What the answer says was stored is what the upstream holds, with vectors.
    let listed: Value = client
        .get(format!(
            "{double}/v1/objects?class=Photo&limit=1000&include=vector"
        ))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let stored = listed["objects"].as_array().expect("objects");
    assert_eq!(stored.len(), 197);
    for object in stored {
        let id = object["id"].as_str().expect("id");
        assert!(
            !bad.iter().any(|&b| import_support::id(b) == id),
            "{id} was reported failed but stored"
        );
        assert_eq!(object["vector"].as_array().map(Vec::len), Some(64), "{id}");
    }
}

#[tokio::test]
async fn ctrl_c_stops_clipgate_with_its_embedded_double_and_exit_0() {
    // Embedded defaults: no --weaviate-url, the in-process double; the bundled fixture model.
    let mut clipgate = Clipgate::start(&[]);
    clipgate.wait_ready().await;
    let meta: Value = common::client()
        .get(clipgate.url("/v1/meta"))
        .send()
        .await
        .expect("meta")
        .json()
        .await
        .expect("json");
    assert!(meta["modules"]["multi2vec-clip"].is_object(), "{meta}");
    let addr = clipgate.addr;
    clipgate.signal("INT");
    let (exit, log) = clipgate.wait_exit().await;
    assert!(exit.success(), "exit status {exit}:\n{log}");
    assert!(log.contains("shutdown signal received"), "{log}");
    wait_refused(addr).await;
}
