//! The one HTTP client to the upstream (unmodified) Weaviate.
//!
//! Two ways to use it:
//! - [`Upstream::forward`]: the transparent proxy path. Method, path, query, end-to-end headers,
//!   status and bodies pass unchanged and streamed both ways (nothing is buffered); only the
//!   hop-by-hop headers of RFC 9110 §7.6.1 are dropped and `Host` is rewritten.
//! - [`Upstream::request_json`] / [`Upstream::request_bytes`]: requests the gateway makes itself
//!   (schema fetch, move-object lookups, rewritten GraphQL or import bodies). They carry the
//!   *caller's* end-to-end headers (credentials, tenant and consistency headers, request id) and
//!   never any credential of the gateway's own, so Weaviate authorizes every request as the caller
//!   (issue 7: a caller cannot obtain what it could not read itself).
//!
//! Back-pressure (issue 7): at most `--max-upstream-requests` requests are in flight upstream at
//! once, counted from sending until the response body is read or dropped (for the streaming proxy,
//! until the client has the whole body). A request over the limit waits up to the upstream timeout
//! for a slot and is then answered 429 in Weaviate's REST envelope (spec §2.1) instead of queueing
//! without bound.
//!
//! Known difference from a byte-for-byte proxy: the HTTP client (reqwest) adds `Accept: */*`
//! when the caller sent no `Accept` header, and normalizes dot segments (`/a/../b`) in the path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, HttpBody};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::GatewayError;
use crate::observability;

/// A cloneable handle on the upstream client (one connection pool).
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    /// Base URL without a trailing slash; may carry a path prefix.
    base: String,
    /// The base URL without credentials, for error messages and logs.
    display: String,
    timeout: Duration,
    max_response_bytes: usize,
    /// Slots for concurrent upstream requests; `None` = no limit.
    slots: Option<Arc<Semaphore>>,
    /// The configured limit, for the error message.
    max_in_flight: usize,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("base", &self.inner.display)
            .finish()
    }
}

impl Upstream {
    /// A client for the Weaviate at `base_url` (`http://` or `https://`, optionally with a path
    /// prefix). `timeout` bounds the wait for response headers and each body read;
    /// `max_response_bytes` bounds the bodies that `request_json` / `request_bytes` buffer.
    pub fn new(
        base_url: &str,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> Result<Self, GatewayError> {
        let parsed = reqwest::Url::parse(base_url).map_err(|e| {
            GatewayError::Internal(format!("invalid upstream Weaviate URL {base_url:?}: {e}"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(GatewayError::Internal(format!(
                "invalid upstream Weaviate URL {base_url:?}: expected http://host[:port][/prefix] or https://…"
            )));
        }
        let mut display = parsed.clone();
        // Credentials in the URL must not reach error messages or logs.
        let _ = display.set_username("");
        let _ = display.set_password(None);
        let display = display.as_str().trim_end_matches('/').to_string();
        let base = parsed.as_str().trim_end_matches('/').to_string();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .tcp_nodelay(true)
            .read_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| GatewayError::Internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                base,
                display,
                timeout,
                max_response_bytes,
                slots: None,
                max_in_flight: 0,
            }),
        })
    }

    /// Limits the requests in flight upstream to `limit` (0: no limit). Call before cloning.
    pub fn with_max_in_flight(mut self, limit: usize) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.slots = (limit > 0).then(|| Arc::new(Semaphore::new(limit)));
            inner.max_in_flight = limit;
        }
        self
    }

    /// Slots free for upstream requests now (`None` without a limit); for metrics and tests.
    pub fn free_slots(&self) -> Option<usize> {
        self.inner.slots.as_ref().map(|s| s.available_permits())
    }

    /// Waits up to the upstream timeout for a slot (immediately `None` without a limit).
    async fn slot(&self) -> Result<Option<OwnedSemaphorePermit>, GatewayError> {
        let Some(slots) = &self.inner.slots else {
            return Ok(None);
        };
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            return Ok(Some(permit));
        }
        match tokio::time::timeout(self.inner.timeout, slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            // Timed out, or the semaphore was closed (never done): refuse rather than pass.
            Ok(Err(_)) | Err(_) => {
                let error = GatewayError::Overloaded(format!(
                    "too many concurrent requests to the upstream Weaviate: all {} slots stayed busy for {:?}, try again later",
                    self.inner.max_in_flight, self.inner.timeout
                ));
                observability::record_upstream_error(error.kind());
                Err(error)
            }
        }
    }

    /// The upstream base URL, without credentials.
    pub fn base_url(&self) -> &str {
        &self.inner.display
    }

    /// Forwards a client request unchanged and streams the answer back unchanged (the
    /// transparent proxy, issue 4). Only hop-by-hop headers are dropped, both ways.
    pub async fn forward(&self, req: Request<Body>) -> Result<Response<Body>, GatewayError> {
        let (parts, body) = req.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/");
        let url = self.url(path_and_query);
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        headers.remove(header::HOST);
        let mut builder = self
            .inner
            .client
            .request(parts.method, url)
            .headers(headers);
        // A body that is known to be empty is not sent at all: streaming it would turn a plain
        // GET into a chunked request.
        if body.size_hint().exact() != Some(0) {
            builder = builder.body(reqwest::Body::wrap_stream(body.into_data_stream()));
        }
        let permit = self.slot().await?;
        let response = self.send(builder).await?;
        let status = response.status();
        let mut headers = response.headers().clone();
        strip_hop_by_hop(&mut headers);
        // The slot is held until the client has the whole body (or the stream is dropped).
        let stream = response.bytes_stream().map(move |chunk| {
            let _held = &permit;
            chunk
        });
        let mut out = Response::new(Body::from_stream(stream));
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }

    /// A JSON request made by the gateway on behalf of `caller` (e.g. `GET /v1/schema`,
    /// `GET /v1/objects/{class}/{id}?include=vector`). Returns the status and the whole body,
    /// whatever the status: the caller decides what an error status means.
    pub async fn request_json(
        &self,
        method: Method,
        path_and_query: &str,
        caller: &HeaderMap,
        body: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, Bytes), GatewayError> {
        let mut headers = caller_headers(caller);
        let mut builder = self.inner.client.request(method, self.url(path_and_query));
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body)
                .map_err(|e| GatewayError::Internal(format!("cannot serialize JSON: {e}")))?;
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            builder = builder.body(bytes);
        }
        let _slot = self.slot().await?;
        let response = self.send(builder.headers(headers)).await?;
        let status = response.status();
        let body = self.read_bounded(response).await?;
        Ok((status, body))
    }

    /// Sends a (rewritten) body with the caller's headers, e.g. a rewritten GraphQL query or an
    /// import batch with vectors attached. Returns the upstream's status, headers (hop-by-hop and
    /// `Content-Length` removed, as the body may be changed again) and the whole body.
    pub async fn request_bytes(
        &self,
        method: Method,
        path_and_query: &str,
        caller: &HeaderMap,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Response<Bytes>, GatewayError> {
        let mut headers = caller_headers(caller);
        if let Some(content_type) = content_type {
            let value = HeaderValue::from_str(content_type).map_err(|_| {
                GatewayError::Internal(format!("invalid content type {content_type:?}"))
            })?;
            headers.insert(header::CONTENT_TYPE, value);
        }
        let builder = self
            .inner
            .client
            .request(method, self.url(path_and_query))
            .headers(headers)
            .body(body);
        let _slot = self.slot().await?;
        let response = self.send(builder).await?;
        let status = response.status();
        let mut headers = response.headers().clone();
        strip_hop_by_hop(&mut headers);
        headers.remove(header::CONTENT_LENGTH);
        let body = self.read_bounded(response).await?;
        let mut out = Response::new(body);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }

    fn url(&self, path_and_query: &str) -> String {
        if path_and_query.starts_with('/') {
            format!("{}{}", self.inner.base, path_and_query)
        } else {
            format!("{}/{}", self.inner.base, path_and_query)
        }
    }

    /// Sends and waits for the response headers within the timeout; records latency and errors.
    async fn send(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, GatewayError> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.inner.timeout, builder.send()).await;
        observability::record_upstream_duration(started.elapsed());
        let error = match result {
            Ok(Ok(response)) => return Ok(response),
            Ok(Err(e)) => self.classify(e),
            Err(_) => self.timeout_error(),
        };
        observability::record_upstream_error(error.kind());
        Err(error)
    }

    fn timeout_error(&self) -> GatewayError {
        GatewayError::UpstreamTimeout {
            url: self.inner.display.clone(),
            timeout: self.inner.timeout,
        }
    }

    fn classify(&self, error: reqwest::Error) -> GatewayError {
        if error.is_timeout() {
            return self.timeout_error();
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(e) = source {
            if let Some(too_large) = e.downcast_ref::<crate::server::BodyLimitExceeded>() {
                return GatewayError::BodyTooLarge {
                    limit: too_large.limit,
                };
            }
            source = e.source();
        }
        GatewayError::UpstreamUnreachable(format!(
            "upstream Weaviate at {} is unreachable: {}",
            self.inner.display,
            error_chain(&error.without_url())
        ))
    }

    /// Reads a whole response body, bounded by `max_response_bytes`.
    async fn read_bounded(&self, response: reqwest::Response) -> Result<Bytes, GatewayError> {
        let limit = self.inner.max_response_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(GatewayError::UpstreamBadResponse(format!(
                "response body larger than {limit} bytes"
            )));
        }
        let mut stream = response.bytes_stream();
        let mut buffer = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                let error = if e.is_timeout() {
                    self.timeout_error()
                } else {
                    GatewayError::UpstreamUnreachable(format!(
                        "upstream Weaviate at {} broke off its response: {}",
                        self.inner.display,
                        error_chain(&e.without_url())
                    ))
                };
                observability::record_upstream_error(error.kind());
                error
            })?;
            if buffer.len() + chunk.len() > limit {
                return Err(GatewayError::UpstreamBadResponse(format!(
                    "response body larger than {limit} bytes"
                )));
            }
            buffer.extend_from_slice(&chunk);
        }
        Ok(buffer.freeze())
    }
}

/// `error: cause: cause…`, the way Go wraps errors, without repeating identical texts.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

/// The hop-by-hop headers of RFC 9110 §7.6.1 (plus the legacy `Keep-Alive` and
/// `Proxy-Connection`), which apply to one connection and must not be forwarded.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes the hop-by-hop headers, including every header named in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The caller's end-to-end headers for a request the gateway makes with its own body: the body
/// headers (length, type, encoding) and `Accept-Encoding` (the gateway reads the answer itself
/// and must get it uncompressed) are the gateway's business.
fn caller_headers(caller: &HeaderMap) -> HeaderMap {
    let mut headers = caller.clone();
    strip_hop_by_hop(&mut headers);
    for name in [
        header::HOST,
        header::CONTENT_LENGTH,
        header::CONTENT_TYPE,
        header::CONTENT_ENCODING,
        header::ACCEPT_ENCODING,
        header::EXPECT,
    ] {
        headers.remove(name);
    }
    headers
}

/// Percent-encodes a path segment or query value for an upstream URL: everything but RFC 3986
/// unreserved characters, so class names and tenants from callers cannot change the path.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("a b/ü"), "a%20b%2F%C3%BC");
        assert_eq!(percent_encode("tenant A/1"), "tenant%20A%2F1");
        assert_eq!(percent_encode("t-1_x.y~"), "t-1_x.y~");
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, X-Secret-Hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("upgrade", HeaderValue::from_static("h2c"));
        h.insert("authorization", HeaderValue::from_static("Bearer x"));
        h.insert("x-weaviate-cluster-url", HeaderValue::from_static("u"));
        strip_hop_by_hop(&mut h);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, vec!["authorization", "x-weaviate-cluster-url"]);
    }

    #[test]
    fn urls_keep_the_base_prefix() {
        let u = Upstream::new(
            "http://user:pw@localhost:8081/prefix/",
            Duration::from_secs(1),
            10,
        )
        .expect("valid");
        assert_eq!(
            u.url("/v1/meta?x=1"),
            "http://user:pw@localhost:8081/prefix/v1/meta?x=1"
        );
        assert_eq!(u.base_url(), "http://localhost:8081/prefix");
        assert!(Upstream::new("ftp://x", Duration::from_secs(1), 10).is_err());
        assert!(Upstream::new("not a url", Duration::from_secs(1), 10).is_err());
    }
}
