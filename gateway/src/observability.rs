//! Metrics (Prometheus text at `GET /metrics`), request ids and tracing.
//!
//! Metrics go through the `metrics` facade; the Prometheus recorder is the process-wide registry
//! (the one global ARCHITECTURE.md allows). It is installed once per process, however many
//! gateways a test process starts.
//!
//! Credentials are never logged: spans carry the method, the path (without the query) and the
//! request id, never headers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use http::HeaderName;
use http::{header, HeaderValue, StatusCode};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower::layer::util::{Identity, Stack};
use tower::util::MapRequestLayer;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// Requests answered, by route (the matched route template, `proxy` for pass-through) and status.
pub const HTTP_REQUESTS_TOTAL: &str = "clipgate_http_requests_total";
/// Time from request to response headers, by route.
pub const HTTP_REQUEST_DURATION: &str = "clipgate_http_request_duration_seconds";
/// Time the upstream Weaviate took to answer with headers.
pub const UPSTREAM_REQUEST_DURATION: &str = "clipgate_upstream_request_duration_seconds";
/// Failed upstream requests, by kind (`upstream_unreachable`, `upstream_timeout`, …).
pub const UPSTREAM_ERRORS_TOTAL: &str = "clipgate_upstream_errors_total";
/// gRPC calls answered by clipgate, by method and outcome (`forwarded` or `refused`).
pub const GRPC_REQUESTS_TOTAL: &str = "clipgate_grpc_requests_total";
/// Latency of gRPC calls until the response headers, by method.
pub const GRPC_REQUEST_DURATION: &str = "clipgate_grpc_request_duration_seconds";

/// The header carrying the request id, generated when the client sent none, forwarded upstream
/// and returned to the client.
pub const REQUEST_ID: &str = "x-request-id";

/// Latency buckets (seconds) of every `*_duration_seconds` histogram: 50 µs to 60 s.
const DURATION_BUCKETS: [f64; 18] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 60.0,
];

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder once per process and describes the gateway's metrics.
/// Returns `None` when another recorder was installed first (then `/metrics` says so).
pub fn install_metrics() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".to_string()),
                    &DURATION_BUCKETS,
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full(vectorizer::metrics::INFERENCE_SECONDS.to_string()),
                    vectorizer::metrics::INFERENCE_SECONDS_BUCKETS,
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full(vectorizer::metrics::INFERENCE_BATCH_SIZE.to_string()),
                    vectorizer::metrics::INFERENCE_BATCH_SIZE_BUCKETS,
                )
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            vectorizer::metrics::describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    metrics::describe_counter!(
        GRPC_REQUESTS_TOTAL,
        "gRPC calls answered by clipgate, by method and outcome (forwarded upstream or refused by clipgate)"
    );
    metrics::describe_histogram!(
        GRPC_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Latency of gRPC calls until the response headers, by method"
    );
    metrics::describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests answered by clipgate, by route and status"
    );
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Time from request to response headers, by route"
    );
    metrics::describe_histogram!(
        UPSTREAM_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Time the upstream Weaviate took to answer with headers"
    );
    metrics::describe_counter!(
        UPSTREAM_ERRORS_TOTAL,
        "Upstream requests that failed, by kind"
    );
}

/// `GET /metrics`: the Prometheus text exposition format.
pub async fn metrics_handler() -> Response {
    match install_metrics() {
        Some(handle) => {
            handle.run_upkeep();
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                )],
                handle.render(),
            )
                .into_response()
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed (another recorder owns this process)\n",
        )
            .into_response(),
    }
}

pub(crate) fn record_upstream_duration(elapsed: Duration) {
    // One handle for the process (a registry lookup per request showed in the proxy benchmark).
    static HANDLE: OnceLock<Histogram> = OnceLock::new();
    HANDLE
        .get_or_init(|| metrics::histogram!(UPSTREAM_REQUEST_DURATION))
        .record(elapsed.as_secs_f64());
}

pub(crate) fn record_upstream_error(kind: &'static str) {
    metrics::counter!(UPSTREAM_ERRORS_TOTAL, "kind" => kind).increment(1);
}

/// Counts one gRPC call and records its latency (`method`: the last path segment).
pub(crate) fn record_grpc(method: &str, refused: bool, elapsed: Duration) {
    let method = method.to_owned();
    metrics::histogram!(GRPC_REQUEST_DURATION, "method" => method.clone())
        .record(elapsed.as_secs_f64());
    let outcome = if refused { "refused" } else { "forwarded" };
    metrics::counter!(GRPC_REQUESTS_TOTAL, "method" => method, "outcome" => outcome).increment(1);
}

/// Counts every request by route and status and records its latency; `run` serves it (the
/// rest of the middleware stack).
pub async fn track_http<F>(request: Request, run: impl FnOnce(Request) -> F) -> Response
where
    F: std::future::Future<Output = Response>,
{
    let route = request.extensions().get::<MatchedPath>().cloned();
    let started = Instant::now();
    let response = run(request).await;
    record_http(route_label(route.as_ref()), response.status(), started);
    response
}

/// The route label of a request's HTTP metrics: the matched route template, `proxy` for a path
/// no route matches.
pub(crate) fn route_label(matched: Option<&MatchedPath>) -> &str {
    matched.map_or("proxy", MatchedPath::as_str)
}

/// Counts one request of `route` answered with `status` and records its latency since `started`.
pub(crate) fn record_http(route: &str, status: StatusCode, started: Instant) {
    let (duration, total) = http_handles(route, status);
    duration.record(started.elapsed().as_secs_f64());
    total.increment(1);
}

thread_local! {
    /// This thread's handles on the HTTP metrics, by route and status. Looking a labelled metric
    /// up in the registry hashes its labels and takes a lock, and the labels are two new strings:
    /// per request, that showed in the proxy benchmark. Routes and statuses are few, so this
    /// stays small.
    static HTTP_HANDLES: RefCell<HashMap<String, HashMap<u16, HttpHandles>>> =
        RefCell::new(HashMap::new());
}

/// The latency histogram and request counter of one route and status.
type HttpHandles = (Histogram, Counter);

fn http_handles(route: &str, status: StatusCode) -> HttpHandles {
    let code = status.as_u16();
    HTTP_HANDLES.with_borrow_mut(|by_route| {
        if let Some(handles) = by_route
            .get(route)
            .and_then(|by_status| by_status.get(&code))
        {
            return handles.clone();
        }
        by_route
            .entry(route.to_owned())
            .or_default()
            .entry(code)
            .or_insert_with(|| {
                let duration =
                    metrics::histogram!(HTTP_REQUEST_DURATION, "route" => route.to_owned());
                let total = metrics::counter!(
                    HTTP_REQUESTS_TOTAL,
                    "route" => route.to_owned(),
                    "status" => code.to_string()
                );
                (duration, total)
            })
            .clone()
    })
}

/// Longest client-supplied request id kept; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether a client-supplied `x-request-id` is kept as is: 1 to 128 characters from
/// `A-Z a-z 0-9 - _ . : / + = @` (UUIDs, ULIDs, trace ids, base64). Anything else (spaces,
/// control characters, quotes, non-ASCII, several values joined) could forge log lines or
/// confuse log parsers, so it is replaced by a fresh id.
pub fn is_sane_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
}

/// The request-id layers (outermost, before the tracing span): every request gets an id — the
/// client's `x-request-id` when there is exactly one and it is sane ([`is_sane_request_id`]),
/// else a fresh UUID v4 — written into the request headers, so the tracing span
/// ([`request_span`]) and every upstream request made for this request (the proxy and the
/// gateway's own calls both forward the caller's end-to-end headers, `upstream.rs`) carry it; it
/// is returned in the response's `x-request-id`. Plain tower layers (tower-http's request-id
/// pair behind a sanitizing step), so no boxing per request.
pub fn request_id_layers() -> ServiceBuilder<RequestIdLayers> {
    let name = HeaderName::from_static(REQUEST_ID);
    ServiceBuilder::new()
        .map_request(drop_unusable_request_id as fn(Request) -> Request)
        .layer(SetRequestIdLayer::new(name.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(name))
}

/// The layer stack of [`request_id_layers`].
pub type RequestIdLayers = Stack<
    PropagateRequestIdLayer,
    Stack<
        SetRequestIdLayer<MakeRequestUuid>,
        Stack<MapRequestLayer<fn(Request) -> Request>, Identity>,
    >,
>;

/// Removes the client's `x-request-id` unless there is exactly one and it is sane, so that the
/// next layer sets a fresh one.
fn drop_unusable_request_id(mut request: Request) -> Request {
    let mut incoming = request.headers().get_all(REQUEST_ID).iter();
    let usable = match (incoming.next(), incoming.next()) {
        (Some(value), None) => value.to_str().is_ok_and(is_sane_request_id),
        (None, _) => true,
        _ => false,
    };
    if !usable {
        request.headers_mut().remove(REQUEST_ID);
    }
    request
}

/// The tracing span of one request: method, path and request id; never headers or the query
/// (both may carry credentials).
pub fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    )
}

/// Installs the log subscriber on stderr: level and targets from `RUST_LOG` (default `info`;
/// e.g. `RUST_LOG=info,tower_http=debug` logs every request and response with its span), one
/// JSON object per line when `CLIPGATE_LOG_FORMAT=json`, else human-readable `key=value` lines.
/// Safe to call twice.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = std::env::var("CLIPGATE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}
