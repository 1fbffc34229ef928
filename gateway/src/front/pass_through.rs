//! A `GET` or `HEAD` the router would hand to the transparent proxy (`proxy.rs`), sent over a
//! prepared upstream request (`upstream/raw.rs`) and streamed back, without the router.
//!
//! Which requests: those whose method and path the router has already sent to the proxy on this
//! gateway ([`super::Front`] learns them from the `Proxied` mark `proxy::fallback` puts on its
//! responses), so the routing table stays in one place. The rules are the proxy's: method,
//! target and end-to-end headers as received, `Host` rewritten, hop-by-hop headers dropped both
//! ways, status and body streamed back (nothing buffered), a stalled read ends the body, an
//! unreachable or slow upstream gets 502/504 in Weaviate's envelope; and the layers': the request
//! id, the HTTP metrics under the route label the router gave the path, the upstream slots. When a condition does not
//! hold (an `https://` upstream, a body, per-request tracing on, no free slot), the request takes
//! the routed path.

use std::io;
use std::time::Instant;

use bytes::Bytes;
use futures::FutureExt;
use http::Method;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::prepared::{self, write_answer_head, write_caller_headers, write_error, RequestId};
use super::wire::{self, Head};
use crate::observability;
use crate::server::AppState;
use crate::upstream::is_hop_by_hop;
use crate::upstream::raw::is_bodiless;

/// Body bytes ready with the answer's head go out in the same write, up to this size.
const COALESCE: usize = 64 * 1024;

/// Whether the request may take this path (the caller has checked the route).
pub(super) fn applies(state: &AppState, head: &Head) -> bool {
    (head.method == Method::GET || head.method == Method::HEAD)
        && head.body_len == 0
        && prepared::available(state)
}

/// Forwards the request and streams the answer; `Ok(None)` when it must take the routed path,
/// `Ok(Some(keep_alive))` when answered. An error once the answer's head is out ends the
/// connection (the client sees a broken body, never a short one that looks complete).
pub(super) async fn serve(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    state: &AppState,
    head: &Head,
    raw: &Bytes,
    route: &str,
) -> io::Result<Option<bool>> {
    let started = Instant::now();
    let Some(_slot) = state.upstream.try_slot() else {
        return Ok(None);
    };
    let id = RequestId::of(head, raw);
    let mut request = Vec::with_capacity(head.len + 64);
    let target = std::str::from_utf8(&raw[head.target.clone()]).unwrap_or("/");
    state
        .upstream
        .write_request_line(head.method.as_str(), target, &mut request);
    let forwarded = |name: &[u8], listed: &[&[u8]]| {
        !is_hop_by_hop(name, listed) && !name.eq_ignore_ascii_case(b"host")
    };
    write_caller_headers(&mut request, head, raw, &id, forwarded);
    request.extend_from_slice(b"\r\n");

    let head_request = head.method == Method::HEAD;
    let (answer, mut body) = match state.upstream.send_prepared(&request, head_request).await {
        Ok(answer) => answer,
        Err(error) => {
            let (status, keep) = write_error(stream, out, error, &id, head.keep_alive).await?;
            observability::record_http(route, status, started);
            return Ok(Some(keep));
        }
    };
    let status = answer.status;
    // Framing: the answer's own headers pass for a HEAD, 204 or 304 (no body follows); a body
    // of declared length keeps it; any other body is sent chunked.
    let no_body = head_request || is_bodiless(status);
    let length = body.declared_length();
    out.clear();
    let skip = |name: &[u8]| {
        !no_body
            && (name.eq_ignore_ascii_case(b"content-length")
                || name.eq_ignore_ascii_case(b"transfer-encoding"))
    };
    write_answer_head(out, &answer, skip, &id, head.keep_alive);
    if !no_body {
        match length {
            Some(n) => wire::write_content_length(n, out),
            None => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        }
    }
    out.extend_from_slice(b"\r\n");
    observability::record_http(route, status, started);
    if no_body {
        stream.write_all(out).await?;
        return Ok(Some(head.keep_alive));
    }
    let chunked = length.is_none();
    let broken = |error| io::Error::other(state.upstream.raw_error(error));
    // What has arrived with the head goes out with it.
    let mut ended = false;
    while out.len() < COALESCE {
        match body.next().now_or_never() {
            Some(Ok(Some(piece))) => append(out, &piece, chunked),
            Some(Ok(None)) => {
                ended = true;
                break;
            }
            Some(Err(error)) => {
                stream.write_all(out).await?;
                return Err(broken(error));
            }
            None => break,
        }
    }
    if ended && chunked {
        out.extend_from_slice(wire::LAST_CHUNK);
    }
    stream.write_all(out).await?;
    if !ended {
        loop {
            match body.next().await {
                Ok(Some(piece)) if chunked => {
                    out.clear();
                    append(out, &piece, chunked);
                    stream.write_all(out).await?;
                }
                Ok(Some(piece)) => stream.write_all(&piece).await?,
                Ok(None) => break,
                Err(error) => return Err(broken(error)),
            }
        }
        if chunked {
            stream.write_all(wire::LAST_CHUNK).await?;
        }
    }
    Ok(Some(head.keep_alive))
}

/// Appends a piece of body, as a chunk when `chunked`.
fn append(out: &mut Vec<u8>, piece: &[u8], chunked: bool) {
    if chunked {
        wire::write_chunk(piece, out);
    } else {
        out.extend_from_slice(piece);
    }
}
