//! `RemoteClip` against the container API served by `server::router` and against faulty
//! servers, all on loopback: vectors, per-input failures and the exact error texts (spec §7.3).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use common::{serve, strings, TestEmbedder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vectorizer::server::router;
use vectorizer::{EmbedError, Embedder, RemoteClip, RemoteOptions};

fn client(base: &str) -> RemoteClip {
    RemoteClip::new(base, RemoteOptions::default()).unwrap()
}

/// A container that answers every `/vectorize` with `status` and `body`, counting requests.
async fn canned(status: u16, body: &'static str) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let app = Router::new().route(
        "/vectorize",
        post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                (
                    StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/json")],
                    body,
                )
            }
        }),
    );
    (serve(app).await, count)
}

#[tokio::test]
async fn vectors_over_the_container_api_are_bit_identical() {
    let embedder = Arc::new(TestEmbedder::new());
    let base = serve(router(embedder.clone())).await;
    let remote = client(&base);
    let texts = strings(&["a red circle", "", "ünïcödé ✓"]);
    let images = strings(&["iVBORw0KGgo=", "R0lGODlh"]);
    let text_vectors = remote.embed_texts(&texts).await;
    let image_vectors = remote.embed_images(&images).await;
    for (text, v) in texts.iter().zip(&text_vectors) {
        let v = v.as_ref().unwrap();
        let expected = embedder.vector(text, false);
        assert_eq!(
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            expected.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
    for (image, v) in images.iter().zip(&image_vectors) {
        assert_eq!(v.as_ref().unwrap(), &embedder.vector(image, true));
    }
    // Texts and images went in one request each, separately.
    assert_eq!(embedder.batches(), vec![texts, images]);
    assert!(remote.embed_texts(&[]).await.is_empty());
    assert_eq!(embedder.calls(), 2);
}

#[tokio::test]
async fn meta_and_ready_come_from_the_container() {
    let embedder = Arc::new(TestEmbedder::new());
    let base = serve(router(embedder.clone())).await;
    // Weaviate's 500 ms per readiness probe is tight on a loaded CI machine.
    let options = RemoteOptions {
        ready_timeout: Duration::from_secs(10),
        ..RemoteOptions::default()
    };
    let remote = RemoteClip::new(&format!("{base}/"), options).unwrap();
    assert_eq!(remote.base_url(), base);
    assert_eq!(remote.meta().await.unwrap(), embedder.meta().await.unwrap());
    assert_eq!(remote.ready().await, Ok(()));
    remote
        .wait_until_ready(Duration::from_secs(5))
        .await
        .unwrap();
    embedder.set_ready(false);
    assert_eq!(
        remote.ready().await,
        Err(EmbedError::RemoteProbe("not ready: status 503".to_string()))
    );
    assert_eq!(remote.fingerprint(), format!("remote:{base}"));
    let remote = remote.with_meta_fingerprint().await.unwrap();
    assert!(remote.fingerprint().starts_with(&format!("remote:{base}:")));
    assert_eq!(
        remote.fingerprint().len(),
        format!("remote:{base}:").len() + 64
    );
}

#[tokio::test]
async fn a_failing_input_fails_alone() {
    let embedder = Arc::new(TestEmbedder::new());
    let base = serve(router(embedder.clone())).await;
    let remote = client(&base);
    let images = strings(&["good one", "fail-here", "good two"]);
    let results = remote.embed_images(&images).await;
    assert_eq!(
        results[0].as_ref().unwrap(),
        &embedder.vector("good one", true)
    );
    assert_eq!(
        results[1],
        Err(EmbedError::RemoteStatus {
            status: 500,
            message: "cannot decode image: not an image: fail-here".to_string()
        })
    );
    assert_eq!(
        results[1].as_ref().unwrap_err().to_string(),
        "fail with status 500: cannot decode image: not an image: fail-here"
    );
    assert_eq!(
        results[2].as_ref().unwrap(),
        &embedder.vector("good two", true)
    );
    // The batch, then each input on its own.
    assert_eq!(embedder.calls(), 4);
}

#[tokio::test]
async fn per_input_isolation_can_be_turned_off() {
    let embedder = Arc::new(TestEmbedder::new());
    let base = serve(router(embedder.clone())).await;
    let options = RemoteOptions {
        isolate_failures: false,
        ..RemoteOptions::default()
    };
    let remote = RemoteClip::new(&base, options).unwrap();
    let results = remote.embed_texts(&strings(&["fine", "fail"])).await;
    let expected = "fail with status 500: invalid text: rejected: fail";
    for result in &results {
        assert_eq!(result.as_ref().unwrap_err().to_string(), expected);
    }
    assert_eq!(embedder.calls(), 1);
}

#[tokio::test]
async fn container_down_is_connection_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let remote = client(&format!("http://{addr}"));
    let results = remote.embed_texts(&strings(&["a", "b"])).await;
    let expected = format!(
        "send POST request: Post \"http://{addr}/vectorize\": dial tcp {addr}: connect: connection refused"
    );
    assert_eq!(results.len(), 2);
    for result in &results {
        assert_eq!(result.as_ref().unwrap_err().to_string(), expected);
    }
    let ready = remote.wait_until_ready(Duration::ZERO).await.unwrap_err();
    assert_eq!(
        ready.to_string(),
        format!("init context expired before remote was ready: send check ready request: Get \"http://{addr}/.well-known/ready\": dial tcp {addr}: connect: connection refused")
    );
    let meta = remote.meta().await.unwrap_err().to_string();
    assert_eq!(
        meta,
        format!("send GET meta request: Get \"http://{addr}/meta\": dial tcp {addr}: connect: connection refused")
    );
}

#[tokio::test]
async fn a_slow_container_times_out_with_the_configured_limit() {
    // Accepts connections and reads, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    let options = RemoteOptions {
        timeout: Duration::from_millis(300),
        ..RemoteOptions::default()
    };
    let remote = RemoteClip::new(&format!("http://{addr}"), options).unwrap();
    let results = remote.embed_images(&strings(&["a", "b", "c"])).await;
    let expected = format!(
        "send POST request: Post \"http://{addr}/vectorize\": timeout: no response within 300ms"
    );
    for result in &results {
        assert_eq!(result.as_ref().unwrap_err().to_string(), expected);
    }
    // Not resent, not split into single inputs.
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn status_500_with_an_error_field() {
    let (base, count) = canned(500, r#"{"error":"CUDA out of memory"}"#).await;
    let results = client(&base).embed_texts(&strings(&["a"])).await;
    assert_eq!(
        results[0].as_ref().unwrap_err().to_string(),
        "fail with status 500: CUDA out of memory"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn status_422_without_an_error_field() {
    let (base, _) = canned(422, r#"{"detail":[{"type":"missing","loc":["body"]}]}"#).await;
    let results = client(&base).embed_texts(&strings(&["a"])).await;
    assert_eq!(
        results[0],
        Err(EmbedError::RemoteStatus {
            status: 422,
            message: String::new()
        })
    );
    assert_eq!(
        results[0].as_ref().unwrap_err().to_string(),
        "fail with status 422: "
    );
}

#[tokio::test]
async fn overload_statuses_are_not_split_into_single_inputs() {
    let (base, count) = canned(503, r#"{"error":"busy"}"#).await;
    let results = client(&base).embed_texts(&strings(&["a", "b", "c"])).await;
    for result in &results {
        assert_eq!(
            result.as_ref().unwrap_err().to_string(),
            "fail with status 503: busy"
        );
    }
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_non_json_body_is_a_parse_error_even_with_an_error_status() {
    let (base, _) = canned(502, "<html>Bad Gateway</html>").await;
    let results = client(&base).embed_texts(&strings(&["a"])).await;
    assert_eq!(
        results[0].as_ref().unwrap_err().to_string(),
        "failed to parse vectorization response (status 502): expected value at line 1 column 1"
    );
    let (base, _) = canned(200, "").await;
    let results = client(&base).embed_images(&strings(&["a"])).await;
    assert_eq!(
        results[0].as_ref().unwrap_err().to_string(),
        "failed to parse vectorization response (status 200): EOF while parsing a value at line 1 column 0"
    );
}

#[tokio::test]
async fn the_wrong_number_of_vectors_is_an_error() {
    let (base, _) = canned(200, r#"{"textVectors":[[0.5,0.25]],"imageVectors":[]}"#).await;
    let remote = client(&base);
    let results = remote.embed_texts(&strings(&["a", "b"])).await;
    for result in &results {
        assert_eq!(
            result.as_ref().unwrap_err().to_string(),
            "inputs are not equal to vectors returned: sent 2, got 1"
        );
    }
    let results = remote.embed_images(&strings(&["a"])).await;
    assert_eq!(results[0], Err(EmbedError::RemoteCount { sent: 1, got: 0 }));
}

#[tokio::test]
async fn an_oversized_response_is_refused() {
    let (base, _) = canned(200, r#"{"textVectors":[[0.5,0.25,0.125,1.0,2.0,3.0]]}"#).await;
    let options = RemoteOptions {
        max_response_bytes: 16,
        ..RemoteOptions::default()
    };
    let remote = RemoteClip::new(&base, options).unwrap();
    let results = remote.embed_texts(&strings(&["a"])).await;
    assert_eq!(
        results[0].as_ref().unwrap_err().to_string(),
        "failed to parse vectorization response (status 200): response body larger than 16 bytes"
    );
}

/// A raw HTTP server: the first `resets` connections are closed after the request arrives,
/// later ones get a valid answer. Returns the base URL and the connection count.
async fn resetting_server(resets: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let n = counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the whole request (headers + the small JSON body).
                while !request.ends_with(b"]}") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => request.extend_from_slice(&buf[..k]),
                    }
                }
                if n < resets {
                    return; // dropped: the client sees the connection close without a response
                }
                let body = r#"{"textVectors":[[1.5]],"imageVectors":[]}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}"), connections)
}

#[tokio::test]
async fn a_closed_connection_is_resent() {
    let (base, connections) = resetting_server(2).await;
    let results = client(&base).embed_texts(&strings(&["a"])).await;
    assert_eq!(&*results[0].clone().unwrap(), &[1.5f32][..]);
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn resends_stop_after_two() {
    let (base, connections) = resetting_server(usize::MAX).await;
    let results = client(&base).embed_texts(&strings(&["a"])).await;
    assert_eq!(
        results[0].as_ref().unwrap_err().to_string(),
        format!("send POST request: Post \"{base}/vectorize\": EOF (connection closed before the response)")
    );
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}

#[test]
fn bad_base_urls_are_refused() {
    for url in ["not a url", "ftp://host", "http://"] {
        let err = RemoteClip::new(url, RemoteOptions::default()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("model: inference URL {url:?}")),
            "{err}"
        );
    }
}
