//! The HTTP/1.1 front (`gateway/src/front/`): requests on the wire as clients send them, the
//! hand-off to hyper for everything it does not parse itself, and the rewrite-cache hit served
//! over a prepared upstream request (`front/memo_hit.rs`, `upstream/raw.rs`), checked against a
//! recording upstream and against the routed path's own answer to the same request.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gateway::config::Config;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GUARD: Duration = Duration::from_secs(20);

/// One request as the upstream received it.
#[derive(Clone, Debug)]
struct Seen {
    head: String,
    body: Vec<u8>,
}

impl Seen {
    /// Header lines after the request line, as sent.
    fn header_lines(&self) -> Vec<String> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn header(&self, name: &str) -> Vec<String> {
        self.header_lines()
            .iter()
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .collect()
    }
}

/// How the recording upstream answers a GraphQL request.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    /// `Content-Length`, connection kept.
    Plain,
    /// The same body chunked in two pieces.
    Chunked,
    /// `Content-Length`, then the upstream closes the connection (no `Connection: close`).
    ThenClose,
    /// A GraphQL error located in the (rewritten) document.
    Error,
}

struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Arc<Mutex<Answer>>,
    base: String,
    accept: tokio::task::JoinHandle<()>,
}

fn schema() -> String {
    json!({"classes": [{"class": "Photo", "vectorizer": "none",
        "moduleConfig": {"multi2vec-clip": {"textFields": ["caption"]}},
        "properties": [{"name": "caption", "dataType": ["text"]}]}]})
    .to_string()
}

const DATA: &str = r#"{"data":{"Get":{"Photo":[{"caption":"a red circle"}]}}}"#;

/// An upstream that records every GraphQL request and answers as `answer` says.
async fn recorder() -> Recorder {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let base = common::base(listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answer = Arc::new(Mutex::new(Answer::Plain));
    let (s, a) = (seen.clone(), answer.clone());
    let accept = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(record(stream, s.clone(), a.clone()));
        }
    });
    Recorder {
        seen,
        answer,
        base,
        accept,
    }
}

async fn record(mut stream: TcpStream, seen: Arc<Mutex<Vec<Seen>>>, answer: Arc<Mutex<Answer>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length = head
            .to_ascii_lowercase()
            .lines()
            .find_map(|l| {
                l.strip_prefix("content-length:")
                    .map(|v| v.trim().to_string())
            })
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_end..head_end + length].to_vec();
        buf.drain(..head_end + length);
        let path = head.split(' ').nth(1).unwrap_or("").to_string();
        if path == "/v1/schema" {
            let s = schema();
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{s}",
                s.len()
            );
            if stream.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        seen.lock().unwrap().push(Seen { head, body });
        if let Some(reply) = get_answer(&path) {
            if stream.write_all(&reply).await.is_err() || path == "/broken" {
                return;
            }
            continue;
        }
        let mode = *answer.lock().unwrap();
        let reply = match mode {
            Answer::Plain | Answer::ThenClose => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Upstream: yes\r\nKeep-Alive: timeout=5\r\nContent-Length: {}\r\n\r\n{DATA}",
                DATA.len()
            ),
            Answer::Chunked => {
                let (a, b) = DATA.split_at(10);
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Upstream: yes\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                    a.len(),
                    b.len()
                )
            }
            Answer::Error => {
                let e = json!({"data": {"Get": {"Photo": null}}, "errors": [{
                    "message": "boom", "locations": [{"line": 1, "column": 3}], "path": ["Get", "Photo"]}]})
                .to_string();
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{e}",
                    e.len()
                )
            }
        };
        if stream.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
        if mode == Answer::ThenClose {
            return;
        }
    }
}

/// A megabyte of body, not all one byte.
fn big_body() -> Vec<u8> {
    (0..1_000_000u32).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The upstream's answers to pass-through paths.
fn get_answer(path: &str) -> Option<Vec<u8>> {
    let plain = |extra: &str, body: &[u8]| {
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n{extra}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    };
    Some(match path.split('?').next().unwrap_or(path) {
        "/v1/nodes" => plain("", br#"{"nodes":[]}"#),
        "/big" => plain("", &big_body()),
        "/chunked" => {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n".to_vec()
        }
        "/empty" => b"HTTP/1.1 204 No Content\r\nX-Empty: yes\r\n\r\n".to_vec(),
        "/broken" => b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"partial\":".to_vec(),
        _ => return None,
    })
}

fn near_text() -> Value {
    json!({"query": "{ Get { Photo(nearText: {concepts: [\"a red circle\"]}) { caption } } }"})
}

/// Sends the query with `headers`; returns status, the response headers and the body.
async fn post(
    env: &common::TestEnv,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = env.client.post(env.url("/v1/graphql")).json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = tokio::time::timeout(GUARD, request.send())
        .await
        .expect("in time")
        .expect("answer");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.expect("JSON");
    (status, headers, body)
}

/// The prepared-request client writes `Host` first; hyper's client (the routed path) appends it
/// after the caller's headers. This tells which path sent a request.
fn sent_prepared(seen: &Seen) -> bool {
    seen.header_lines()
        .first()
        .is_some_and(|l| l.to_ascii_lowercase().starts_with("host:"))
}

#[tokio::test]
async fn a_cache_hit_sends_what_the_routed_path_sends_and_answers_the_same() {
    let upstream = recorder().await;
    let env = common::start_gateway(&upstream.base, Config::default()).await;
    let headers = [
        ("authorization", "Bearer caller-key"),
        ("x-tenant-hint", "t1"),
        ("x-request-id", "caller-id-1"),
        ("connection", "keep-alive, x-hop"),
        ("x-hop", "must not pass"),
        ("accept-encoding", "identity"),
    ];
    let first = post(&env, &headers, &near_text()).await;
    let second = post(&env, &headers, &near_text()).await;
    let seen = upstream.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(
        !sent_prepared(&seen[0]),
        "the first request is planned and routed"
    );
    assert!(sent_prepared(&seen[1]), "the second is a rewrite-cache hit");
    assert_eq!(seen[0].body, seen[1].body, "the same rewritten document");
    assert!(String::from_utf8_lossy(&seen[1].body).contains("nearVector"));
    for s in &seen {
        assert!(
            s.head.starts_with("POST /v1/graphql HTTP/1.1\r\n"),
            "{}",
            s.head
        );
        assert_eq!(s.header("authorization"), ["Bearer caller-key"]);
        assert_eq!(s.header("x-tenant-hint"), ["t1"]);
        assert_eq!(s.header("x-request-id"), ["caller-id-1"]);
        assert_eq!(s.header("content-type"), ["application/json"]);
        assert_eq!(s.header("content-length"), [s.body.len().to_string()]);
        assert_eq!(s.header("host").len(), 1);
        for dropped in ["connection", "x-hop", "accept-encoding", "keep-alive"] {
            assert!(s.header(dropped).is_empty(), "{dropped} passed: {}", s.head);
        }
    }
    // The client cannot tell the two answers apart.
    assert_eq!(first.0, 200);
    assert_eq!(first.0, second.0);
    assert_eq!(first.2, second.2);
    assert_eq!(first.2, serde_json::from_str::<Value>(DATA).unwrap());
    for (_, headers, _) in [&first, &second] {
        assert_eq!(headers["x-request-id"], "caller-id-1");
        assert_eq!(headers["x-upstream"], "yes");
        assert_eq!(headers["content-type"], "application/json");
        assert!(
            headers.get("keep-alive").is_none(),
            "hop-by-hop header passed"
        );
        assert!(headers.get("date").is_some());
    }
    upstream.accept.abort();
}

#[tokio::test]
async fn a_cache_hit_without_a_usable_request_id_gets_a_fresh_one_upstream_and_back() {
    let upstream = recorder().await;
    let env = common::start_gateway(&upstream.base, Config::default()).await;
    post(&env, &[], &near_text()).await;
    for headers in [&[][..], &[("x-request-id", "two words")][..]] {
        let (status, response, _) = post(&env, headers, &near_text()).await;
        assert_eq!(status, 200);
        let seen = upstream.seen.lock().unwrap().last().cloned().expect("sent");
        assert!(sent_prepared(&seen));
        let id = response["x-request-id"]
            .to_str()
            .expect("ASCII")
            .to_string();
        assert_eq!(id.len(), 36, "a UUID: {id}");
        assert_eq!(seen.header("x-request-id"), [id]);
    }
    upstream.accept.abort();
}

#[tokio::test]
async fn a_cache_hit_reads_chunked_answers_restores_errors_and_survives_closed_connections() {
    let upstream = recorder().await;
    let env = common::start_gateway(&upstream.base, Config::default()).await;

    // Error locations in the rewritten document are mapped back to the client's, on both paths.
    *upstream.answer.lock().unwrap() = Answer::Error;
    let routed = post(&env, &[], &near_text()).await;
    let hit = post(&env, &[], &near_text()).await;
    assert!(sent_prepared(upstream.seen.lock().unwrap().last().unwrap()));
    assert_eq!(routed.2, hit.2);
    assert_eq!(routed.2["errors"][0]["message"], "boom");

    *upstream.answer.lock().unwrap() = Answer::Chunked;
    let (status, headers, body) = post(&env, &[], &near_text()).await;
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::from_str::<Value>(DATA).unwrap());
    assert_eq!(headers["content-length"], DATA.len().to_string());
    assert!(headers.get("transfer-encoding").is_none());

    // The upstream closes each connection after answering: the next hit finds its pooled
    // connection closed and sends again on a new one.
    *upstream.answer.lock().unwrap() = Answer::ThenClose;
    for _ in 0..3 {
        let (status, _, body) = post(&env, &[], &near_text()).await;
        assert_eq!(status, 200);
        assert_eq!(body, serde_json::from_str::<Value>(DATA).unwrap());
    }
    assert!(sent_prepared(upstream.seen.lock().unwrap().last().unwrap()));

    // Upstream gone: Weaviate's REST envelope with the gateway's 502, as on the routed path.
    upstream.accept.abort();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _, body) = post(&env, &[], &near_text()).await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"][0]["message"].as_str().expect("message");
    assert!(
        message.starts_with(&format!(
            "upstream Weaviate at {} is unreachable",
            upstream.base
        )),
        "{message}"
    );
}

/// Writes `request` on a new connection and reads until the server closes it or `until` bytes
/// of answer have arrived.
async fn exchange(env: &common::TestEnv, request: &[u8], until: usize) -> String {
    let addr = env.gateway.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while answer.len() < until {
        match tokio::time::timeout(GUARD, stream.read(&mut chunk))
            .await
            .expect("in time")
        {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn the_front_answers_pipelined_head_and_closing_requests_as_hyper_did() {
    let env = common::start().await;
    // Two requests in one write: two answers, in order, on the same connection.
    let two = b"GET /v1/meta HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/.well-known/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let answer = exchange(&env, two, usize::MAX).await;
    let first = answer.find("HTTP/1.1 200 OK").expect("first answer");
    let second = answer[first + 1..]
        .find("HTTP/1.1 200 OK")
        .expect("second answer");
    assert!(answer.contains("multi2vec-clip"), "{answer}");
    let last = &answer[first + 1 + second..].to_ascii_lowercase();
    assert!(last.contains("connection: close"), "{last}");

    // HEAD: the length of what GET would send, no body.
    let answer = exchange(
        &env,
        b"HEAD /v1/meta HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        usize::MAX,
    )
    .await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(body.is_empty(), "HEAD answered with a body: {body}");
}

#[tokio::test]
async fn requests_the_front_does_not_parse_are_served_by_hyper() {
    let env = common::start().await;
    let query = near_text().to_string();
    // A chunked request body, an `Expect: 100-continue`, and HTTP/1.0: all answered in full.
    let chunked = format!(
        "POST /v1/graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{query}\r\n0\r\n\r\n",
        query.len()
    );
    let expect = format!(
        "POST /v1/graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{query}",
        query.len()
    );
    let old = "GET /v1/meta HTTP/1.0\r\n\r\n".to_string();
    // What the same requests get when sent plainly (through the front loop).
    let graphql = env
        .client
        .post(env.url("/v1/graphql"))
        .header("content-type", "application/json")
        .body(query.clone())
        .send()
        .await
        .expect("answer")
        .text()
        .await
        .expect("body");
    let meta = env
        .client
        .get(env.url("/v1/meta"))
        .send()
        .await
        .expect("answer")
        .text()
        .await
        .expect("body");
    for (what, request, wanted) in [
        ("chunked", chunked, &graphql),
        ("expect", expect, &graphql),
        ("HTTP/1.0", old, &meta),
    ] {
        let answer = exchange(&env, request.as_bytes(), usize::MAX).await;
        assert!(answer.contains(" 200 OK\r\n"), "{what}: {answer}");
        assert!(answer.ends_with(wanted.as_str()), "{what}: {answer}");
    }
}

/// Sends GET `path` twice (the first teaches the front that the router proxies it); returns the
/// second answer and the request the upstream received for it.
async fn get_twice(
    env: &common::TestEnv,
    upstream: &Recorder,
    path: &str,
    headers: &[(&str, &str)],
) -> (reqwest::Response, Seen) {
    get(env, path, headers).await;
    let second = get(env, path, headers).await;
    let seen = upstream.seen.lock().unwrap().last().cloned().expect("sent");
    (second, seen)
}

/// GET `path` with `headers`.
async fn get(env: &common::TestEnv, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = env.client.get(env.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    tokio::time::timeout(GUARD, request.send())
        .await
        .expect("in time")
        .expect("answer")
}

#[tokio::test]
async fn a_proxied_get_the_front_has_seen_takes_the_prepared_path_with_the_proxy_rules() {
    let upstream = recorder().await;
    let env = common::start_gateway(&upstream.base, Config::default()).await;
    let headers = [
        ("authorization", "Bearer caller-key"),
        ("accept-encoding", "gzip"),
        ("connection", "keep-alive, x-hop"),
        ("x-hop", "must not pass"),
        ("x-request-id", "caller-id-2"),
    ];
    let first = get(&env, "/v1/nodes?output=verbose", &headers).await;
    let routed = upstream.seen.lock().unwrap().last().cloned().expect("sent");
    assert!(!sent_prepared(&routed), "the first is routed");
    let first_headers = first.headers().clone();
    let first_body = first.bytes().await.expect("body");
    let (second, seen) = get_twice(&env, &upstream, "/v1/nodes?output=verbose", &headers).await;
    assert!(sent_prepared(&seen), "learned: {}", seen.head);
    assert!(seen
        .head
        .starts_with("GET /v1/nodes?output=verbose HTTP/1.1\r\n"));
    let authority = upstream.base.trim_start_matches("http://");
    for s in [&routed, &seen] {
        assert_eq!(s.header("host"), [authority]);
        assert_eq!(s.header("authorization"), ["Bearer caller-key"]);
        assert_eq!(s.header("accept-encoding"), ["gzip"]);
        assert_eq!(s.header("x-request-id"), ["caller-id-2"]);
        assert!(s.header("x-hop").is_empty() && s.header("connection").is_empty());
    }
    // The same answer as the routed path gave.
    assert_eq!(second.status(), 200);
    for name in ["content-type", "content-length", "x-request-id"] {
        assert_eq!(second.headers()[name], first_headers[name], "{name}");
    }
    for hop in ["x-hop", "connection"] {
        assert!(second.headers().get(hop).is_none(), "{hop} passed");
        assert!(first_headers.get(hop).is_none(), "{hop} passed");
    }
    assert_eq!(second.bytes().await.expect("body"), first_body);
    upstream.accept.abort();
}

/// The value of the `clipgate_http_requests_total` series of `route` and status 200.
async fn requests_total(env: &common::TestEnv, route: &str) -> f64 {
    let text = get(env, "/metrics", &[])
        .await
        .text()
        .await
        .expect("metrics");
    let series = format!("clipgate_http_requests_total{{route=\"{route}\",status=\"200\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

#[tokio::test]
async fn a_pass_through_is_counted_under_the_route_label_the_router_gives_it() {
    let upstream = recorder().await;
    let env = common::start_gateway(&upstream.base, Config::default()).await;
    // `GET /v1/objects` matches the gateway's own route (for POST) and is proxied: its metrics
    // say `/v1/objects` whichever path serves it, as before the front existed. (No other test
    // of this binary requests it: the registry is the process's.)
    let before = requests_total(&env, "/v1/objects").await;
    let (answer, seen) = get_twice(&env, &upstream, "/v1/objects", &[]).await;
    assert_eq!(answer.status(), 200);
    assert!(sent_prepared(&seen), "learned");
    assert_eq!(requests_total(&env, "/v1/objects").await - before, 2.0);
    upstream.accept.abort();
}

#[tokio::test]
async fn the_pass_through_path_streams_every_kind_of_answer() {
    let upstream = recorder().await;
    let env = common::start_gateway(&upstream.base, Config::default()).await;

    let (big, seen) = get_twice(&env, &upstream, "/big", &[]).await;
    assert!(sent_prepared(&seen));
    assert_eq!(big.headers()["content-length"], "1000000");
    assert_eq!(big.bytes().await.expect("body").to_vec(), big_body());

    let (chunked, seen) = get_twice(&env, &upstream, "/chunked", &[]).await;
    assert!(sent_prepared(&seen));
    assert_eq!(chunked.headers()["transfer-encoding"], "chunked");
    assert_eq!(chunked.text().await.expect("body"), "hello, world");

    let (empty, seen) = get_twice(&env, &upstream, "/empty", &[]).await;
    assert!(sent_prepared(&seen));
    assert_eq!(empty.status(), 204);
    assert_eq!(empty.headers()["x-empty"], "yes");
    assert!(empty.bytes().await.expect("body").is_empty());

    // HEAD: the answer's own length, no body (on the wire).
    let head = "HEAD /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    exchange(&env, head.as_bytes(), usize::MAX).await;
    let answer = exchange(&env, head.as_bytes(), usize::MAX).await;
    assert!(sent_prepared(upstream.seen.lock().unwrap().last().unwrap()));
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-length: 1000000"),
        "{head}"
    );
    assert!(body.is_empty());

    // An answer that breaks off: the client sees a broken body, not a short complete one.
    let (broken, seen) = get_twice(&env, &upstream, "/broken", &[]).await;
    assert!(sent_prepared(&seen));
    assert_eq!(broken.status(), 200);
    assert!(
        broken.bytes().await.is_err(),
        "a truncated body was delivered as complete"
    );

    // The upstream gone: 502 in Weaviate's envelope.
    upstream.accept.abort();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let down = env
        .client
        .get(env.url("/v1/nodes"))
        .send()
        .await
        .expect("answer");
    assert_eq!(down.status(), 502);
    let body: Value = down.json().await.expect("JSON");
    let message = body["error"][0]["message"].as_str().expect("message");
    assert!(message.contains("is unreachable"), "{message}");
}
