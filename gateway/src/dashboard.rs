//! `GET /dashboard`: a live operator page for people without Grafana (issue 7, "Observability").
//!
//! Static HTML, CSS and JavaScript compiled into the binary (`include_str!`): no build step, no
//! external CDN, nothing fetched but `/metrics`. The script polls `metrics` (relative, so a path
//! prefix in front of clipgate keeps working) once a second, parses the Prometheus text itself and
//! draws its own `<canvas>` charts: cache hit ratio, cache entries and bytes, inference p50/p99
//! (from the `clipgate_inference_duration_seconds` buckets, as PromQL's `histogram_quantile`
//! does), requests/s and errors. The current numbers are also shown as text, each in an element
//! with a stable `id` and its unrounded value in `data-value`, so tests (tests/dashboard/) can read
//! them.
//!
//! A strict Content-Security-Policy (`'self'` only) makes "no external CDN" enforced by the
//! browser, not just a convention.

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::{header, HeaderValue, StatusCode};

use crate::server::AppState;

const PAGE: &str = include_str!("../assets/dashboard/index.html");
const SCRIPT: &str = include_str!("../assets/dashboard/dashboard.js");
const STYLE: &str = include_str!("../assets/dashboard/dashboard.css");

/// Only same-origin scripts, styles and fetches (and the empty `data:` favicon, which keeps the
/// browser from asking for `/favicon.ico`); no frames, forms or plugins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard's routes (GET only; other methods go to the proxy like any unhandled request).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard/", get(trailing_slash))
        .route("/dashboard/dashboard.js", get(script))
        .route("/dashboard/dashboard.css", get(style))
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// `/dashboard/` would resolve the page's relative links one level too deep: send the browser
/// to `/dashboard` (relative `Location`, RFC 9110 §10.2.2, so a path prefix is kept).
async fn trailing_slash() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, HeaderValue::from_static("../dashboard"))],
    )
        .into_response()
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}
