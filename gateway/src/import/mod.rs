//! Import-time vectorization of clip-managed classes (issue 5, spec §5.3–§5.7): objects are
//! vectorized by the gateway and sent to the unmodified Weaviate with `vector` / `vectors.<name>`
//! set, exactly as the multi2vec-clip module would have computed them.
//!
//! plan (pure, `plan.rs`) → embed (one batched call per modality, `embed.rs`) → attach (pure,
//! `attach.rs`) → forward. Objects of classes the gateway does not manage pass through untouched.

pub mod attach;
mod batch;
pub mod embed;
mod objects;
pub mod plan;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Method};

use crate::schema::{ClassView, SchemaView};
use crate::server::AppState;

/// `POST /v1/objects`, `PUT|PATCH /v1/objects/{class}/{id}`, the deprecated
/// `PUT|PATCH /v1/objects/{id}`, and `POST /v1/batch/objects`. Other methods reach the proxy.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/objects", post(objects::create))
        .route(
            "/v1/objects/{class}/{id}",
            axum::routing::put(objects::replace).patch(objects::merge),
        )
        .route(
            "/v1/objects/{id}",
            axum::routing::put(objects::replace_legacy).patch(objects::merge_legacy),
        )
        .route("/v1/batch/objects", post(batch::create))
}

/// The clip-managed class an object names. Weaviate upper-cases the first letter of class names.
pub(crate) fn managed_class<'a>(view: &'a SchemaView, name: &str) -> Option<&'a ClassView> {
    let class = view.class(name).or_else(|| {
        let mut chars = name.chars();
        let first = chars.next()?;
        let upper: String = first.to_uppercase().chain(chars).collect();
        view.class(&upper)
    })?;
    class.is_clip_managed().then_some(class)
}

/// Sends `body` upstream with the caller's headers and passes the answer on as it is.
async fn send(
    state: &AppState,
    method: Method,
    path_and_query: &str,
    caller: &HeaderMap,
    content_type: Option<&str>,
    body: Bytes,
) -> Response {
    match state
        .upstream
        .request_bytes(method, path_and_query, caller, content_type, body)
        .await
    {
        Ok(answer) => answer.map(Body::from),
        Err(error) => error.into_response(),
    }
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

fn path_and_query(uri: &http::Uri) -> &str {
    uri.path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or_else(|| uri.path())
}
