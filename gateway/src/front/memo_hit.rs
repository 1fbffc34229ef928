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

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::prepared::{self, write_answer_head, write_caller_headers, write_error, RequestId};
use super::wire::{self, Head};
use crate::graphql::handler::{count_memo_hit, restored};
use crate::observability;
use crate::server::AppState;
use crate::upstream::is_forwarded_request_header;
use crate::upstream::raw::is_bodiless;

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
    if !prepared::available(state) || body.len() > state.config.max_body_bytes {
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
    let id = RequestId::of(head, raw);

    // The upstream request: as `Upstream::request_bytes` sends it.
    let upstream_body = &entry.upstream_body;
    let mut request = Vec::with_capacity(head.len + upstream_body.len() + 128);
    let target = std::str::from_utf8(&raw[head.target.clone()]).unwrap_or(ROUTE);
    state
        .upstream
        .write_request_line("POST", target, &mut request);
    write_caller_headers(&mut request, head, raw, &id, is_forwarded_request_header);
    request.extend_from_slice(b"content-type: application/json\r\n");
    wire::write_content_length(upstream_body.len(), &mut request);
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(upstream_body);

    let answer = match state.upstream.exchange_prepared(&request).await {
        Ok(answer) => answer,
        Err(error) => {
            let (status, keep) = write_error(stream, out, error, &id, head.keep_alive).await?;
            observability::record_http(ROUTE, status, started);
            return Ok(Some(keep));
        }
    };

    let restored = restored(&answer.body, &entry.extra).map(|value| value.to_string());
    let body: &[u8] = restored.as_deref().map_or(&answer.body, str::as_bytes);
    out.clear();
    let skip = |name: &[u8]| {
        name.eq_ignore_ascii_case(b"content-length")
            || (restored.is_some() && name.eq_ignore_ascii_case(b"content-type"))
    };
    write_answer_head(out, &answer.head, skip, &id, head.keep_alive);
    if restored.is_some() {
        out.extend_from_slice(b"content-type: application/json\r\n");
    }
    let status = answer.head.status;
    let no_body = is_bodiless(status);
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
