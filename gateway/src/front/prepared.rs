//! What the two prepared-request paths (`memo_hit.rs`, `pass_through.rs`) share: the request id
//! the router's layers would give the request, the caller's headers copied into the upstream
//! request, and the upstream answer's head rewritten for the client as the routed path writes it.

use std::io;

use axum::response::IntoResponse;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use tokio::net::TcpStream;

use super::wire::{self, Head};
use crate::error::GatewayError;
use crate::observability::{is_sane_request_id, REQUEST_ID};
use crate::server::AppState;
use crate::upstream::{connection_listed, is_hop_by_hop, RawHead};

/// Whether the prepared paths can be taken at all: a plain-`http://` upstream (the raw client),
/// and no per-request tracing (tower-http's trace layer logs each request only on the routed
/// path).
pub(super) fn available(state: &AppState) -> bool {
    state.upstream.has_raw_client()
        && !tracing::enabled!(target: "tower_http::trace::on_request", tracing::Level::DEBUG)
}

/// The request id of a request, by the rule of `observability::request_id_layers`: the client's
/// when it sent exactly one sane id, else a fresh UUID v4 (and the client's are not forwarded).
pub(super) struct RequestId {
    fresh: Option<String>,
    client: Option<Bytes>,
}

impl RequestId {
    pub(super) fn of(head: &Head, raw: &Bytes) -> Self {
        let mut ids = head
            .headers
            .iter()
            .filter(|(n, _)| raw[n.clone()].eq_ignore_ascii_case(REQUEST_ID.as_bytes()));
        match (ids.next(), ids.next()) {
            (Some((_, v)), None)
                if std::str::from_utf8(&raw[v.clone()]).is_ok_and(is_sane_request_id) =>
            {
                Self {
                    fresh: None,
                    client: Some(raw.slice(v.clone())),
                }
            }
            _ => Self {
                fresh: Some(uuid::Uuid::new_v4().to_string()),
                client: None,
            },
        }
    }

    pub(super) fn value(&self) -> &[u8] {
        match (&self.fresh, &self.client) {
            (Some(id), _) => id.as_bytes(),
            (None, Some(id)) => id,
            (None, None) => b"",
        }
    }
}

/// The headers of the request as (name, value) byte slices.
pub(super) fn headers<'a>(
    head: &'a Head,
    raw: &'a [u8],
) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    head.headers
        .iter()
        .map(move |(n, v)| (&raw[n.clone()], &raw[v.clone()]))
}

/// Appends the caller's headers that `forwarded` accepts (given the names listed in the
/// request's `Connection` header), with the request id: the client's passes as it came, a fresh
/// one replaces the client's.
pub(super) fn write_caller_headers(
    out: &mut Vec<u8>,
    head: &Head,
    raw: &[u8],
    id: &RequestId,
    forwarded: impl Fn(&[u8], &[&[u8]]) -> bool,
) {
    let listed = connection_listed(
        headers(head, raw)
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
            .map(|(_, v)| v),
    );
    for (name, value) in headers(head, raw) {
        let is_id = name.eq_ignore_ascii_case(REQUEST_ID.as_bytes());
        if forwarded(name, &listed) && !(is_id && id.fresh.is_some()) {
            push_header(out, name, value);
        }
    }
    if let Some(fresh) = &id.fresh {
        push_header(out, REQUEST_ID.as_bytes(), fresh.as_bytes());
    }
}

/// Appends the status line and the end-to-end headers of `answer` for the client, except those
/// `skip` names (the caller writes the framing headers), with names in lower case as hyper
/// writes them, then `x-request-id` and `date` when the answer has none, and `connection: close`
/// when the client asked for it (`keep_alive` false). The blank line is the caller's.
pub(super) fn write_answer_head(
    out: &mut Vec<u8>,
    answer: &RawHead,
    skip: impl Fn(&[u8]) -> bool,
    id: &RequestId,
    keep_alive: bool,
) {
    wire::write_status_line(answer.status, out);
    let listed = connection_listed(
        answer
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
            .map(|(_, v)| v),
    );
    let (mut has_id, mut has_date) = (false, false);
    for (name, value) in answer.headers() {
        if skip(name) || is_hop_by_hop(name, &listed) {
            continue;
        }
        has_id |= name.eq_ignore_ascii_case(REQUEST_ID.as_bytes());
        has_date |= name.eq_ignore_ascii_case(b"date");
        let start = out.len();
        push_header(out, name, value);
        out[start..start + name.len()].make_ascii_lowercase();
    }
    if !has_id {
        push_header(out, REQUEST_ID.as_bytes(), id.value());
    }
    if !has_date {
        wire::write_date(out);
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
}

pub(super) fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Answers a failed upstream exchange in Weaviate's REST envelope (as `proxy::forward` does),
/// with the request id; returns the status and whether the connection stays open.
pub(super) async fn write_error(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    error: GatewayError,
    id: &RequestId,
    keep_alive: bool,
) -> io::Result<(StatusCode, bool)> {
    let request_id = String::from_utf8_lossy(id.value());
    tracing::warn!(error = %error, %request_id, "upstream request failed");
    let mut response = error.into_response();
    if let Ok(value) = HeaderValue::from_bytes(id.value()) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let status = response.status();
    let keep = wire::write_response(stream, out, response, false, keep_alive).await?;
    Ok((status, keep))
}
