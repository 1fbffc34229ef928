//! The HTTP server: shared state, the router with its layers, start-up and graceful shutdown.
//!
//! Layers, outermost first: request id (set, traced, returned) → tracing span → HTTP metrics →
//! request body limit → routes. Routes the gateway handles itself are listed in [`router`];
//! everything else, including a handled path with another method, goes to the transparent proxy.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::memo::RewriteMemo;
use anyhow::Context;
use axum::body::{Body, HttpBody};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::{ListenerExt, TapIo};
use axum::Router;
use bytes::Bytes;
use futures::StreamExt;
use http::header;
use http_body_util::BodyExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;
use vectorizer::{
    CacheOptions, Cached, Embedder, ModelOptions, RemoteClip, RemoteOptions, TractClip,
};

use crate::config::Config;
use crate::error::GatewayError;
use crate::front::Front;
use crate::schema::SchemaCache;
use crate::upstream::Upstream;
use crate::{meta, observability, proxy};

/// Everything a handler needs; one `Arc`, so cloning it (the router's state extractor does for
/// every request and layer) costs one atomic increment.
#[derive(Clone)]
pub struct AppState {
    shared: Arc<Shared>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    pub config: Arc<Config>,
    pub upstream: Upstream,
    pub embedder: Arc<dyn Embedder>,
    pub schema: SchemaCache,
    /// Rewritten GraphQL documents by request body (`memo.rs`).
    pub memo: RewriteMemo<crate::graphql::rewrite::Rewritten>,
    /// Rewritten gRPC Search/Aggregate messages by request message (`memo.rs`).
    pub grpc_memo: RewriteMemo<()>,
}

impl AppState {
    /// State for `config`, whose `weaviate_url` must be set (by the operator, or by [`run`] after
    /// starting the in-process double), with an embedder built by the caller (tests share one
    /// loaded model across gateways).
    pub fn new(config: Config, embedder: Arc<dyn Embedder>) -> Result<Self, GatewayError> {
        let url = config.weaviate_url.as_deref().ok_or_else(|| {
            GatewayError::Internal("no upstream Weaviate URL configured".to_string())
        })?;
        let upstream = Upstream::new(
            url,
            config.upstream_timeout,
            config.max_upstream_body_bytes(),
        )?
        .with_max_in_flight(config.max_upstream_requests);
        let schema = SchemaCache::new(config.schema_ttl);
        Ok(Self {
            shared: Arc::new(Shared {
                memo: RewriteMemo::for_cache_mb(config.cache_mb),
                grpc_memo: RewriteMemo::for_cache_mb(config.cache_mb),
                config: Arc::new(config),
                upstream,
                embedder,
                schema,
            }),
        })
    }
}

/// The gateway's router. Handlers that read a body must use [`read_body`] (axum's own body
/// extractor limit is off; the limit is enforced here, answered in Weaviate's shape).
pub fn router(state: AppState) -> Router {
    observability::install_metrics();
    let limit = state.config.max_body_bytes;
    let handled: Router<AppState> = Router::new()
        .route("/v1/meta", get(meta::get_meta))
        .route("/metrics", get(observability::metrics_handler))
        .merge(crate::dashboard::routes());
    // ---- GraphQL (gateway/src/graphql/): add `/v1/graphql` and `/v1/graphql/batch` here, e.g.
    //      `.merge(crate::graphql::routes())` with `routes() -> Router<AppState>`.
    // ---- Schema and import (gateway/src/schema/, gateway/src/import/): add `/v1/schema*`,
    //      `/v1/objects*` and `/v1/batch/objects` here the same way.
    let handled = handled
        .merge(crate::graphql::routes())
        .merge(crate::schema::rest::routes())
        .merge(crate::import::routes());
    // Methods a route does not handle reach the proxy (method_not_allowed_fallback below).
    handled
        .fallback(proxy::fallback)
        .method_not_allowed_fallback(proxy::fallback)
        .layer(middleware::from_fn_with_state(limit, measure_and_limit))
        .layer(DefaultBodyLimit::disable())
        .layer(
            ServiceBuilder::new()
                .layer(observability::request_id_layers())
                .layer(TraceLayer::new_for_http().make_span_with(observability::request_span)),
        )
        .with_state(state)
}

/// Starts clipgate with `config` and serves until SIGTERM or Ctrl-C; in-flight requests finish.
pub async fn run(mut config: Config) -> anyhow::Result<()> {
    observability::install_metrics();
    if config.weaviate_url.is_none() {
        let (url, grpc_url) = start_double().await?;
        tracing::info!(
            upstream = %url,
            upstream_grpc = %grpc_url,
            "no --weaviate-url / WEAVIATE_URL given: started the in-memory Weaviate double in-process (data is not persisted)"
        );
        config.weaviate_url = Some(url);
        config.weaviate_grpc_url = Some(grpc_url);
    }
    let embedder = build_embedder(&config).await?;
    let listen = config.listen;
    let state = AppState::new(config, embedder)?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        upstream = %state.upstream.base_url(),
        "clipgate is serving"
    );
    let grpc_state = crate::grpc::GrpcState::new(state.clone())?;
    let grpc_listen = state.config.grpc_listen;
    let grpc_listener = TcpListener::bind(grpc_listen)
        .await
        .with_context(|| format!("cannot listen for gRPC on {grpc_listen}"))?;
    tracing::info!(
        grpc_listen = %grpc_listener.local_addr()?,
        upstream_grpc = ?state.config.upstream_grpc_url(),
        "clipgate gRPC is serving"
    );
    // One shutdown signal for both servers: each stops accepting, finishes in-flight requests.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let workers = state
        .config
        .http_workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let http = serve_http_workers(listener, state, workers, stop_rx.clone())?;
    let grpc = axum::serve(no_delay(grpc_listener), crate::grpc::router(grpc_state))
        .with_graceful_shutdown(stopped(stop_rx));
    let (http, grpc) = tokio::join!(http, grpc);
    http.context("server error")?;
    grpc.context("gRPC server error")?;
    tracing::info!("clipgate stopped");
    Ok(())
}

/// Serves the HTTP API on `workers` threads, each running its own single-threaded runtime that
/// accepts from the shared `listener`, as nginx's worker processes do. A request then stays on
/// one thread from accept to answer (its upstream connection too: see `upstream.rs`), instead of
/// hopping between the worker threads of a work-stealing runtime: on the 2-core machine of the
/// proxy benchmark that hopping (futex wake-ups, context switches) cost more than the proxying.
/// The returned future ends when every worker has stopped after `stop` (in-flight requests done).
fn serve_http_workers(
    listener: TcpListener,
    state: AppState,
    workers: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>>> {
    let listener = listener
        .into_std()
        .context("cannot share the HTTP listener")?;
    let mut done = Vec::with_capacity(workers);
    for index in 0..workers {
        let listener = listener
            .try_clone()
            .context("cannot share the HTTP listener")?;
        let state = state.clone();
        let stop = stop.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<anyhow::Result<()>>();
        std::thread::Builder::new()
            .name(format!("clipgate-http-{index}"))
            .spawn(move || {
                let result = (|| -> anyhow::Result<()> {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .context("cannot start an HTTP worker runtime")?;
                    runtime.block_on(async move {
                        let listener = TcpListener::from_std(listener)
                            .context("cannot register the HTTP listener")?;
                        let app = router(state.clone());
                        crate::front::serve(listener, Front::new(state, app), stop).await;
                        Ok(())
                    })
                })();
                let _ = tx.send(result);
            })
            .context("cannot start an HTTP worker thread")?;
        done.push(rx);
    }
    Ok(async move {
        for rx in done {
            match rx.await {
                Ok(result) => result?,
                Err(_) => anyhow::bail!("an HTTP worker thread stopped unexpectedly"),
            }
        }
        Ok(())
    })
}

/// A listener whose accepted connections have `TCP_NODELAY` set: small writes (HTTP/2 frames of
/// gRPC calls, short JSON answers) must not wait for Nagle's algorithm and the peer's delayed ACK,
/// which adds 40 ms to a request.
pub fn no_delay(listener: TcpListener) -> TapIo<TcpListener, fn(&mut tokio::net::TcpStream)> {
    fn set(tcp: &mut tokio::net::TcpStream) {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    }
    listener.tap_io(set as fn(&mut tokio::net::TcpStream))
}

/// Serves `state` on an ephemeral loopback port (tests, embedding). The task runs until aborted.
pub async fn spawn_with(state: AppState) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let app = router(state.clone());
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(async move {
        // Never stopped: the task runs until aborted (the sender lives in the task).
        let _keep = _stop_tx;
        crate::front::serve(listener, Front::new(state, app), stop).await;
    });
    Ok((addr, handle))
}

/// Reads a whole request body (already bounded by the body-limit layer); an over-long body is
/// answered with 413 in Weaviate's shape.
pub async fn read_body(body: Body) -> Result<Bytes, GatewayError> {
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => Err(body_error(&error)),
    }
}

/// The error a request body stream fails with once it passes `--max-body-bytes`.
#[derive(Debug, thiserror::Error)]
#[error("request body larger than {limit} bytes")]
pub struct BodyLimitExceeded {
    pub limit: usize,
}

fn body_error(error: &(dyn std::error::Error + 'static)) -> GatewayError {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(e) = e.downcast_ref::<BodyLimitExceeded>() {
            return GatewayError::BodyTooLarge { limit: e.limit };
        }
        source = e.source();
    }
    GatewayError::rest(
        http::StatusCode::BAD_REQUEST,
        format!("cannot read the request body: {error}"),
    )
}

/// The innermost layer: HTTP metrics around the body limit, as one middleware (each `from_fn`
/// layer clones and boxes the rest of the stack for every request).
async fn measure_and_limit(State(limit): State<usize>, request: Request, next: Next) -> Response {
    observability::track_http(request, |request| limit_body(limit, request, next)).await
}

/// Enforces `--max-body-bytes`: a declared `Content-Length` over it is refused at once (413,
/// Weaviate's envelope); a body without a declared length is counted while it streams and fails
/// with [`BodyLimitExceeded`] once over it. Bodies are never buffered here.
async fn limit_body(limit: usize, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(length) = declared {
        if length > limit as u64 {
            return GatewayError::BodyTooLarge { limit }.into_response();
        }
        // hyper stops the body at the declared length.
        return next.run(request).await;
    }
    if request.body().size_hint().exact() == Some(0) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let mut seen = 0usize;
    let counted = body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(axum::BoxError::from)?;
        seen = seen.saturating_add(chunk.len());
        if seen > limit {
            return Err(axum::BoxError::from(BodyLimitExceeded { limit }));
        }
        Ok(chunk)
    });
    next.run(Request::from_parts(parts, Body::from_stream(counted)))
        .await
}

/// Resolves on SIGTERM or Ctrl-C; axum then stops accepting and lets in-flight requests finish.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received: finishing in-flight requests");
}

/// Starts the in-memory Weaviate double (REST/GraphQL and gRPC, one shared store) on ephemeral
/// loopback ports; returns their base URLs. The double serves until the process ends.
async fn start_double() -> anyhow::Result<(String, String)> {
    let double = conformance::double::Double::new();
    let (addr, _task) = conformance::double::spawn_double(double.clone())
        .await
        .context("cannot start the in-memory Weaviate double")?;
    let (grpc_addr, _grpc_task) = conformance::double::grpc::spawn(double)
        .await
        .context("cannot start the in-memory Weaviate double's gRPC API")?;
    Ok((format!("http://{addr}"), format!("http://{grpc_addr}")))
}

/// How long clipgate waits at start-up for a remote inference container to be ready: Weaviate's
/// module-init context (spec §7.3).
const REMOTE_READY_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// The embedder `config` asks for: a remote container (`--inference-url`) or the local model,
/// behind the embedding cache (`--cache-mb`).
pub async fn build_embedder(config: &Config) -> anyhow::Result<Arc<dyn Embedder>> {
    let cache = |backend: &str| CacheOptions::from_mb(config.cache_mb, backend);
    if let Some(url) = &config.inference_url {
        let options = RemoteOptions {
            timeout: config.inference_timeout,
            ..RemoteOptions::default()
        };
        let remote = RemoteClip::new(url, options)?;
        tracing::info!(inference_url = %remote.base_url(), "waiting for the inference container");
        remote.wait_until_ready(REMOTE_READY_WAIT).await?;
        let remote = remote.with_meta_fingerprint().await?;
        return Ok(Arc::new(Cached::new(remote, cache("remote"))));
    }
    let model = load_model(model_options(config)).await?;
    Ok(Arc::new(Cached::new(model, cache("tract"))))
}

/// The local model settings of `config`.
pub fn model_options(config: &Config) -> ModelOptions {
    ModelOptions {
        model_dir: config.model_dir.clone(),
        text_model_dir: config.text_model_dir.clone(),
        normalize: config.normalize,
        max_image_pixels: config.max_image_pixels,
        threads: config.threads.unwrap_or(0),
        idle_spin: std::time::Duration::from_millis(config.idle_spin_ms),
        ..ModelOptions::default()
    }
}

/// Loads the local model off the async runtime (seconds for a full-size model).
pub async fn load_model(options: ModelOptions) -> anyhow::Result<TractClip> {
    let dir = options.model_dir.clone();
    let model = tokio::task::spawn_blocking(move || TractClip::load(&options))
        .await
        .context("model loading task failed")?
        .with_context(|| format!("cannot load the CLIP model from {}", dir.display()))?;
    tracing::info!(model_dir = %dir.display(), fingerprint = %model.fingerprint(), "model loaded");
    Ok(model)
}
