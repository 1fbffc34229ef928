//! `POST /v1/graphql` with a document the gateway has rewritten before (`crate::memo`), served
//! without the router: the caller's headers are copied from the request head into a prepared
//! upstream request (`upstream/raw.rs`), Weaviate's answer goes back with its headers, restored
//! as `graphql::handler` restores it.
//!
//! It does what the routed path does for the same request, and nothing less: the body limit, the
//! request id (the caller's when there is one sane id, else a fresh one, forwarded and returned),
//! the caller's own credentials and no others, the upstream slots, timeouts and errors, the HTTP,
//! GraphQL and rewrite-cache metrics. Whenever one of its conditions does not hold (no plain-HTTP
//! upstream, not in the cache, a stale schema view, no free upstream slot, per-request tracing
//! on), the request takes the routed path.

use std::io;
use std::time::Instant;

use axum::response::IntoResponse;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::wire::{self, Head};
use crate::graphql::handler::{count_memo_hit, restored};
use crate::observability::{self, is_sane_request_id, REQUEST_ID};
use crate::server::AppState;
use crate::upstream::{connection_listed, is_forwarded_request_header, is_hop_by_hop};

/// The route label of the HTTP metrics (the router's matched path for the same request).
const ROUTE: &str = "/v1/graphql";

/// Answers the request if it is a rewrite-cache hit; `Ok(None)` when it must take the routed
/// path, `Ok(Some(keep_alive))` when answered.
pub(super) async fn serve(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    state: &AppState,
    head: &Head,
    raw: &Bytes,
    body: &Bytes,
) -> io::Result<Option<bool>> {
    let started = Instant::now();
    if !state.upstream.has_raw_client()
        || body.len() > state.config.max_body_bytes
        || tracing::enabled!(target: "tower_http::trace::on_request", tracing::Level::DEBUG)
    {
        return Ok(None);
    }
    let Some(entry) = state.memo.get(body).await else {
        return Ok(None);
    };
    let Some(view) = state.schema.fresh() else {
        return Ok(None);
    };
    if !entry.planned_against(&view) {
        return Ok(None);
    }
    let Some(_slot) = state.upstream.try_slot() else {
        return Ok(None);
    };
    count_memo_hit();

    let headers = || {
        head.headers
            .iter()
            .map(|(n, v)| (&raw[n.clone()], &raw[v.clone()]))
    };
    let listed = connection_listed(
        headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
            .map(|(_, v)| v),
    );
    let mut ids = headers().filter(|(n, _)| n.eq_ignore_ascii_case(REQUEST_ID.as_bytes()));
    let (client_id, generated) = match (ids.next(), ids.next()) {
        (Some((_, id)), None) if std::str::from_utf8(id).is_ok_and(is_sane_request_id) => {
            (Some(id), None)
        }
        _ => (None, Some(uuid::Uuid::new_v4().to_string())),
    };

    // The upstream request: as `Upstream::request_bytes` sends it.
    let upstream_body = &entry.upstream_body;
    let mut request = Vec::with_capacity(head.len + upstream_body.len() + 128);
    let target = std::str::from_utf8(&raw[head.target.clone()]).unwrap_or(ROUTE);
    state
        .upstream
        .write_request_line("POST", target, &mut request);
    for (name, value) in headers() {
        let is_id = name.eq_ignore_ascii_case(REQUEST_ID.as_bytes());
        if is_forwarded_request_header(name, &listed) && (!is_id || generated.is_none()) {
            push_header(&mut request, name, value);
        }
    }
    if let Some(id) = &generated {
        push_header(&mut request, REQUEST_ID.as_bytes(), id.as_bytes());
    }
    request.extend_from_slice(b"content-type: application/json\r\n");
    wire::write_content_length(upstream_body.len(), &mut request);
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(upstream_body);
    let request_id: &[u8] = match (&generated, client_id) {
        (Some(id), _) => id.as_bytes(),
        (None, Some(id)) => id,
        (None, None) => b"",
    };

    let answer = match state.upstream.exchange_prepared(&request).await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::warn!(
                error = %error,
                request_id = %String::from_utf8_lossy(request_id),
                "upstream request failed"
            );
            let mut response = error.into_response();
            if let Ok(id) = HeaderValue::from_bytes(request_id) {
                response.headers_mut().insert(REQUEST_ID, id);
            }
            let status = response.status();
            let keep = wire::write_response(stream, out, response, false, head.keep_alive).await;
            observability::record_http(ROUTE, status, started);
            return keep.map(Some);
        }
    };

    let restored = restored(&answer.body, &entry.extra).map(|value| value.to_string());
    let body: &[u8] = restored.as_deref().map_or(&answer.body, str::as_bytes);
    out.clear();
    wire::write_status_line(answer.status, out);
    let listed = connection_listed(
        answer
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
            .map(|(_, v)| v),
    );
    let (mut has_id, mut has_date) = (false, false);
    for (name, value) in answer.headers() {
        let replaced = name.eq_ignore_ascii_case(b"content-length")
            || (restored.is_some() && name.eq_ignore_ascii_case(b"content-type"));
        if replaced || is_hop_by_hop(name, &listed) {
            continue;
        }
        has_id |= name.eq_ignore_ascii_case(REQUEST_ID.as_bytes());
        has_date |= name.eq_ignore_ascii_case(b"date");
        // Lower-case names, as hyper writes them on the routed path.
        let start = out.len();
        push_header(out, name, value);
        out[start..start + name.len()].make_ascii_lowercase();
    }
    if restored.is_some() {
        out.extend_from_slice(b"content-type: application/json\r\n");
    }
    if !has_id && !request_id.is_empty() {
        push_header(out, REQUEST_ID.as_bytes(), request_id);
    }
    if !has_date {
        wire::write_date(out);
    }
    if !head.keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    let status = answer.status;
    let no_body = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if !no_body {
        wire::write_content_length(body.len(), out);
    }
    out.extend_from_slice(b"\r\n");
    if !no_body {
        out.extend_from_slice(body);
    }
    stream.write_all(out).await?;
    observability::record_http(ROUTE, status, started);
    Ok(Some(head.keep_alive))
}

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}
