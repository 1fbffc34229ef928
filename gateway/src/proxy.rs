//! The transparent proxy: every route the gateway does not handle itself goes to the upstream
//! Weaviate unchanged (issue 4, "Transparent proxy"): method, path, query, end-to-end headers,
//! status and streamed bodies. An unreachable upstream is answered with 502 in Weaviate's REST
//! envelope (spec §2.1), a slow one with 504.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use crate::observability;
use crate::server::AppState;

/// The router's fallback (unknown paths, and known paths with a method the gateway does not
/// handle itself).
pub async fn fallback(State(state): State<AppState>, request: Request) -> Response {
    let route = Arc::from(observability::route_label(request.extensions().get()));
    let mut response = forward(&state, request).await;
    response.extensions_mut().insert(Proxied { route });
    response
}

/// Marks a response of the transparent proxy, so that the HTTP front learns which method and
/// path the router sends to the proxy, and under which route label its metrics count them
/// (`front/pass_through.rs`).
#[derive(Clone, Debug)]
pub struct Proxied {
    pub route: Arc<str>,
}

/// Forwards one request and streams the answer back; errors become Weaviate-shaped responses.
pub async fn forward(state: &AppState, request: Request) -> Response {
    match state.upstream.forward(request).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(error = %error, "upstream request failed");
            error.into_response()
        }
    }
}
