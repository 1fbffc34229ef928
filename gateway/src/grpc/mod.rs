//! The gRPC endpoint (`weaviate.v1.Weaviate`, `grpc.health.v1.Health`) for the current Weaviate
//! clients (Python v4, TypeScript v3), which search and import over gRPC (issue 6).
//!
//! An HTTP/2 reverse proxy that works on bytes, not on generated services: every method is
//! forwarded to the upstream's gRPC address with the caller's metadata, streamed both ways
//! (BatchStream included), except three unary methods it rewrites first:
//! - `Search` and `Aggregate` with `near_text` / `near_image` / a hybrid needing a vector on a
//!   clip-managed collection (`search.rs`),
//! - `BatchObjects` with objects of clip-managed collections (`batch.rs`).
//!
//! Rewrites splice the message at the wire level (`wire.rs`), so fields the gateway does not
//! model arrive upstream unchanged. Errors are gRPC statuses with Weaviate's texts (code
//! Unknown, as Weaviate returns its traverser errors, spec §8).

pub mod batch;
pub mod frame;
pub mod search;
pub mod wire;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Uri};
use http_body_util::{BodyExt, Limited, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::{Code, Status};
use weaviate_proto::paths;

use crate::graphql::embed::{compute, UpstreamObjects};
use crate::graphql::limits::Limits;
use crate::observability;
use crate::server::AppState;
use search::{Kind, Planned, SearchError};

/// Why the gRPC endpoint cannot start.
#[derive(Debug, thiserror::Error)]
pub enum GrpcSetupError {
    #[error(
        "no upstream gRPC address: give --weaviate-grpc / WEAVIATE_GRPC_URL or --weaviate-url"
    )]
    NoUpstream,
    #[error("invalid upstream gRPC URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
}

/// The gRPC endpoint's state: the gateway's (schema, embedder, REST upstream for move objects)
/// and an HTTP/2 client for the upstream's gRPC address.
#[derive(Clone)]
pub struct GrpcState {
    app: AppState,
    client: Client<HttpConnector, Body>,
    base: Arc<Uri>,
}

impl GrpcState {
    pub fn new(app: AppState) -> Result<Self, GrpcSetupError> {
        let url = app
            .config
            .upstream_grpc_url()
            .ok_or(GrpcSetupError::NoUpstream)?;
        let base: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| GrpcSetupError::BadUrl {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        if base.scheme_str() != Some("http") || base.authority().is_none() {
            return Err(GrpcSetupError::BadUrl {
                url,
                reason: "expected http://host:port (plaintext HTTP/2)".into(),
            });
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(app.config.upstream_timeout));
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build(connector);
        Ok(Self {
            app,
            client,
            base: Arc::new(base),
        })
    }
}

/// The gRPC router: one handler for every path, with the same request id as HTTP (the id is
/// metadata on every upstream call made for the request, and in the response headers).
pub fn router(state: GrpcState) -> Router {
    Router::new()
        .fallback(handle)
        .layer(observability::request_id_layers())
        .with_state(state)
}

/// Serves the gRPC endpoint on an ephemeral loopback port (tests). Runs until aborted.
pub async fn spawn_with(state: GrpcState) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let app = router(state);
    let handle = tokio::spawn(async move {
        if let Err(error) = axum::serve(crate::server::no_delay(listener), app).await {
            tracing::error!(%error, "gRPC server stopped");
        }
    });
    Ok((addr, handle))
}

async fn handle(State(state): State<GrpcState>, request: Request) -> Response {
    let started = std::time::Instant::now();
    let path = request.uri().path().to_string();
    let result = match path.as_str() {
        paths::SEARCH => rewrite_search(&state, request, Kind::Search).await,
        paths::AGGREGATE => rewrite_search(&state, request, Kind::Aggregate).await,
        paths::BATCH_OBJECTS => batch_objects(&state, request).await,
        _ => Ok(forward(&state, request).await),
    };
    let method = path.rsplit('/').next().unwrap_or_default();
    observability::record_grpc(method, result.is_err(), started.elapsed());
    result.unwrap_or_else(|status| {
        tracing::debug!(%path, code = ?status.code(), message = status.message(), "gRPC request refused");
        status.into_http()
    })
}

/// Sends `request` to the upstream gRPC address, bodies streamed both ways.
async fn forward(state: &GrpcState, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut uri = state.base.as_ref().clone().into_parts();
    uri.path_and_query = path.parse().ok();
    parts.uri = match Uri::from_parts(uri) {
        Ok(uri) => uri,
        Err(e) => {
            return Status::internal(format!("cannot build the upstream URI: {e}")).into_http()
        }
    };
    parts.headers.remove(http::header::HOST);
    match state.client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response.map(Body::new),
        Err(error) => Status::unavailable(format!(
            "upstream Weaviate gRPC at {} is unreachable: {}",
            state.base,
            error_chain(&error)
        ))
        .into_http(),
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The whole body of a unary request, bounded by `--max-body-bytes`.
async fn read_unary(state: &GrpcState, body: Body) -> Result<Bytes, Status> {
    let limit = state.app.config.max_body_bytes;
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error)
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Status::resource_exhausted(format!(
                "request message larger than {limit} bytes (--max-body-bytes)"
            )))
        }
        Err(error) => Err(Status::cancelled(format!(
            "cannot read the request: {error}"
        ))),
    }
}

fn with_body(parts: &http::request::Parts, body: Bytes) -> Request {
    let mut parts = parts.clone();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Request::from_parts(parts, Body::from(body))
}

fn refused(error: SearchError) -> Status {
    match error {
        SearchError::Malformed(e) => Status::invalid_argument(e.to_string()),
        SearchError::Refused(message) => Status::new(Code::Unknown, message),
    }
}

async fn rewrite_search(
    state: &GrpcState,
    request: Request,
    kind: Kind,
) -> Result<Response, Status> {
    let (parts, body) = request.into_parts();
    let bytes = read_unary(state, body).await?;
    let message = frame::single(&bytes).map_err(frame_status)?;
    if !search::mentions_module_search(kind, message)
        .map_err(|e| Status::invalid_argument(e.to_string()))?
    {
        return Ok(forward(state, with_body(&parts, bytes.clone())).await);
    }
    let app = &state.app;
    let view = app
        .schema
        .view(&app.upstream, &parts.headers)
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    // A message rewritten before against this schema view (`crate::memo`). Search and Aggregate
    // share the cache: the path is part of the key.
    let key = memo_key(parts.uri.path(), message);
    if let Some(entry) = app.grpc_memo.get(&key).await {
        if entry.planned_against(&view) {
            let body = frame::encode(&entry.upstream_body);
            return Ok(forward(state, with_body(&parts, body)).await);
        }
    }
    let limits = Limits::from_config(&app.config);
    let plan = match search::plan(kind, message, &view, &limits).map_err(refused)? {
        Planned::Forward => return Ok(forward(state, with_body(&parts, bytes.clone())).await),
        Planned::Rewrite(plan) => plan,
    };
    let objects = UpstreamObjects {
        upstream: &app.upstream,
        caller: &parts.headers,
    };
    let needs = plan.needs();
    let inputs = compute(
        &needs,
        app.embedder.as_ref(),
        &objects,
        app.config.inference_timeout,
    )
    .await;
    let rewritten = plan.render(&inputs).map_err(refused)?;
    if needs.objects.is_empty() {
        let entry = crate::memo::Entry {
            view: view.clone(),
            upstream_body: Bytes::from(rewritten.clone()),
            extra: (),
        };
        app.grpc_memo.insert(key, entry).await;
    }
    Ok(forward(state, with_body(&parts, frame::encode(&rewritten))).await)
}

/// The rewrite cache key of a unary message: its method path, then the message.
pub fn memo_key(path: &str, message: &[u8]) -> Bytes {
    let path = path.as_bytes();
    let mut key = Vec::with_capacity(path.len() + 1 + message.len());
    key.extend_from_slice(path);
    key.push(0);
    key.extend_from_slice(message);
    Bytes::from(key)
}

fn frame_status(error: frame::FrameError) -> Status {
    match error {
        frame::FrameError::Compressed => Status::unimplemented(error.to_string()),
        frame::FrameError::Malformed(_) => Status::invalid_argument(error.to_string()),
    }
}

async fn batch_objects(state: &GrpcState, request: Request) -> Result<Response, Status> {
    let (parts, body) = request.into_parts();
    let bytes = read_unary(state, body).await?;
    let message = frame::single(&bytes).map_err(frame_status)?;
    let app = &state.app;
    let view = app
        .schema
        .view(&app.upstream, &parts.headers)
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let malformed = |e: wire::WireError| Status::invalid_argument(e.to_string());
    let Some(plan) = batch::plan(message, &view).map_err(malformed)? else {
        return Ok(forward(state, with_body(&parts, bytes.clone())).await);
    };
    let prepared = batch::prepare(plan, message, app.embedder.as_ref()).await;
    let Some(request) = &prepared.request else {
        // Nothing can be stored: Weaviate's reply shape with every object's error.
        let reply = batch::merge_reply(None, &prepared).map_err(malformed)?;
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let mut response = Response::new(body_with_trailers(frame::encode(&reply), Some(trailers)));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        return Ok(response);
    };
    let response = forward(state, with_body(&parts, frame::encode(request))).await;
    let (head, body) = response.into_parts();
    let collected = body
        .collect()
        .await
        .map_err(|e| Status::unavailable(format!("upstream reply interrupted: {e}")))?;
    let trailers = collected.trailers().cloned();
    let data = collected.to_bytes();
    let ok = trailers
        .as_ref()
        .or(Some(&head.headers))
        .and_then(|h| h.get("grpc-status"))
        .is_some_and(|s| s == "0");
    let data = if ok {
        let upstream_reply =
            frame::single(&data).map_err(|e| Status::internal(format!("upstream reply: {e}")))?;
        frame::encode(&batch::merge_reply(Some(upstream_reply), &prepared).map_err(malformed)?)
    } else {
        data
    };
    let mut head = head;
    head.headers.remove(http::header::CONTENT_LENGTH);
    Ok(Response::from_parts(
        head,
        body_with_trailers(data, trailers),
    ))
}

fn body_with_trailers(data: Bytes, trailers: Option<HeaderMap>) -> Body {
    let mut frames: Vec<Result<Frame<Bytes>, Infallible>> = Vec::new();
    if !data.is_empty() {
        frames.push(Ok(Frame::data(data)));
    }
    if let Some(t) = trailers {
        frames.push(Ok(Frame::trailers(t)));
    }
    Body::new(StreamBody::new(futures::stream::iter(frames)))
}
