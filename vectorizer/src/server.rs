//! The multi2vec-clip inference container's HTTP API (spec §7.1) around any [`Embedder`]:
//! `clipgate inference` serves it, so an unmodified Weaviate can use clipgate as its
//! `CLIP_INFERENCE_API`, and the remote client is tested against a real server.
//!
//! Status codes and JSON shapes are the container's (FastAPI): 200 with both vector lists,
//! 500 `{"error": …}` for any failure (the container fails the whole request when one input
//! fails), 422 `{"detail": […]}` in pydantic v2's shape for a malformed body, 204 for the
//! health endpoints, FastAPI's `{"detail": "Not Found"}` for other paths.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::{json, Value};

use crate::{EmbedError, Embedder, Vector};

/// Settings of the container API server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Largest `/vectorize` body accepted (413 above). The container itself has no limit; base64
    /// images make bodies large, so the default is generous but finite.
    pub max_body_bytes: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The container API with default [`ServerOptions`].
pub fn router(embedder: Arc<dyn Embedder>) -> Router {
    router_with_options(embedder, ServerOptions::default())
}

/// The container API: `POST /vectorize`, `GET /meta`, `GET /.well-known/live`,
/// `GET /.well-known/ready`.
pub fn router_with_options(embedder: Arc<dyn Embedder>, options: ServerOptions) -> Router {
    Router::new()
        .route("/vectorize", post(vectorize))
        .route("/meta", get(meta))
        .route("/.well-known/live", get(live))
        .route("/.well-known/ready", get(ready))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .with_state(embedder)
}

/// Serves the container API on `listener` until `shutdown` completes, then lets in-flight
/// requests finish (`clipgate inference --listen ADDR`).
pub async fn serve_inference<F>(
    listener: tokio::net::TcpListener,
    embedder: Arc<dyn Embedder>,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, router(embedder))
        .with_graceful_shutdown(shutdown)
        .await
}

type AppState = State<Arc<dyn Embedder>>;

async fn vectorize(State(embedder): AppState, body: Bytes) -> Response {
    let (texts, images) = match parse_body(&body) {
        Ok(inputs) => inputs,
        Err(Rejection::Unprocessable(detail)) => return unprocessable(detail),
        Err(Rejection::BadInput(message)) => return server_error(message),
    };
    let (text_results, image_results) = tokio::join!(
        embed_all(&*embedder, &texts, false),
        embed_all(&*embedder, &images, true)
    );
    let collected = text_results.and_then(|t| image_results.map(|i| (t, i)));
    match collected {
        Ok((text_vectors, image_vectors)) => Json(VectorizeResponse {
            text_vectors: Vectors(&text_vectors),
            image_vectors: Vectors(&image_vectors),
        })
        .into_response(),
        Err(message) => {
            tracing::warn!(error = %message, "vectorize failed");
            server_error(message)
        }
    }
}

/// One batched call; the first failure fails the request, as one exception does in the container.
async fn embed_all(
    embedder: &dyn Embedder,
    inputs: &[String],
    images: bool,
) -> Result<Vec<Vector>, String> {
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    let results = if images {
        embedder.embed_images(inputs).await
    } else {
        embedder.embed_texts(inputs).await
    };
    results
        .into_iter()
        .collect::<Result<Vec<_>, EmbedError>>()
        .map_err(|e| e.to_string())
}

async fn meta(State(embedder): AppState) -> Response {
    match embedder.meta().await {
        Ok(meta) => Json(meta).into_response(),
        Err(e) => server_error(e.to_string()),
    }
}

async fn live() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// 204 when the embedder can serve. The container has no "not ready" answer (its port is not
/// open until the model is loaded); 503 is what any status check above 299 reads as not ready.
async fn ready(State(embedder): AppState) -> StatusCode {
    match embedder.ready().await {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"detail": "Not Found"}))).into_response()
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({"detail": "Method Not Allowed"})),
    )
        .into_response()
}

fn server_error(message: String) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": message })),
    )
        .into_response()
}

fn unprocessable(detail: Vec<Value>) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "detail": detail })),
    )
        .into_response()
}

/// Validates the body as FastAPI validates `ClipInput` (`texts: list = []`, `images: list = []`):
/// shape errors are 422 in pydantic v2's format; elements that are not strings pass pydantic
/// (the lists are untyped) and fail during inference in the container, hence 500 here.
fn parse_body(body: &[u8]) -> Result<(Vec<String>, Vec<String>), Rejection> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Rejection::Unprocessable(vec![missing_body()]));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let position = byte_offset(body, e.line(), e.column());
        let message = e.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_string();
        Rejection::Unprocessable(vec![json!({
            "type": "json_invalid",
            "loc": ["body", position],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": message},
        })])
    })?;
    let mut object = match value {
        Value::Null => return Err(Rejection::Unprocessable(vec![missing_body()])),
        Value::Object(object) => object,
        other => {
            return Err(Rejection::Unprocessable(vec![json!({
                "type": "model_attributes_type",
                "loc": ["body"],
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "input": other,
            })]))
        }
    };
    let mut errors = Vec::new();
    let mut lists = [Vec::new(), Vec::new()];
    for (field, list) in ["texts", "images"].into_iter().zip(lists.iter_mut()) {
        match object.remove(field) {
            None => {}
            Some(Value::Array(items)) => *list = items,
            Some(other) => errors.push(json!({
                "type": "list_type",
                "loc": ["body", field],
                "msg": "Input should be a valid list",
                "input": other,
            })),
        }
    }
    if !errors.is_empty() {
        return Err(Rejection::Unprocessable(errors));
    }
    let [texts, images] = lists;
    Ok((strings("texts", texts)?, strings("images", images)?))
}

fn strings(field: &str, items: Vec<Value>) -> Result<Vec<String>, Rejection> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s),
            other => Err(Rejection::BadInput(format!(
                "{field}[{i}]: expected a string, got {other}"
            ))),
        })
        .collect()
}

/// Why a `/vectorize` body is refused before any inference.
enum Rejection {
    /// pydantic validation errors: 422 `{"detail": […]}`.
    Unprocessable(Vec<Value>),
    /// Valid for pydantic, unusable for the model: 500 `{"error": …}`.
    BadInput(String),
}

fn missing_body() -> Value {
    json!({"type": "missing", "loc": ["body"], "msg": "Field required", "input": null})
}

/// serde_json reports 1-based line and column; FastAPI reports the offset into the document.
fn byte_offset(body: &[u8], line: usize, column: usize) -> usize {
    let line_start: usize = body
        .split(|&b| b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    (line_start + column.saturating_sub(1)).min(body.len())
}

#[derive(Serialize)]
struct VectorizeResponse<'a> {
    #[serde(rename = "textVectors")]
    text_vectors: Vectors<'a>,
    #[serde(rename = "imageVectors")]
    image_vectors: Vectors<'a>,
}

/// Vectors written as the container writes them: each f32 widened to f64 and printed in the
/// shortest form that reads back as that f64 (Python `repr` of `tensor.tolist()`, spec §7.2),
/// so any JSON reader gets the exact f32 back without double rounding.
struct Vectors<'a>(&'a [Vector]);

struct Row<'a>(&'a [f32]);

impl Serialize for Vectors<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for vector in self.0 {
            seq.serialize_element(&Row(vector))?;
        }
        seq.end()
    }
}

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for &x in self.0 {
            seq.serialize_element(&f64::from(x))?;
        }
        seq.end()
    }
}
