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
//! The client is hyper's own (with rustls for `https://` upstreams), one connection pool per
//! thread: no header is added but `Host`, the path is sent as received (no dot-segment
//! normalization), and credentials in `--weaviate-url` are never sent (they would be the
//! gateway's own). It replaced reqwest, which parsed and re-serialized a URL for every request;
//! `bench/proxy.sh` measured the change (README, Benchmarks).

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody};
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::body::{Frame, SizeHint};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use thread_local::ThreadLocal;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::GatewayError;
use crate::observability;

pub(crate) mod raw;

pub(crate) use raw::{RawBody, RawHead, RawResponse};

/// A cloneable handle on the upstream client (one connection pool per thread).
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    /// One connection pool per thread: clipgate serves HTTP on one single-threaded runtime per
    /// core (`server.rs`), and a pooled connection is driven by the runtime that opened it, so a
    /// shared pool would hand a request on one core a connection driven by the other (a
    /// cross-thread wake-up per request and response).
    clients: ThreadLocal<HttpClient>,
    /// Base URL without credentials and without a trailing slash; may carry a path prefix.
    base: String,
    /// The base URL without credentials, for error messages and logs.
    display: String,
    timeout: Duration,
    max_response_bytes: usize,
    /// Slots for concurrent upstream requests; `None` = no limit.
    slots: Option<Arc<Semaphore>>,
    /// The configured limit, for the error message.
    max_in_flight: usize,
    /// The client for prepared requests to a plain-`http://` upstream (`raw.rs`); `None` for
    /// `https://`.
    raw: Option<raw::RawClient>,
    /// The base URL's path prefix (no trailing slash; empty when none).
    prefix: String,
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
        let base = display.clone();
        let raw = (parsed.scheme() == "http")
            .then(|| {
                parsed.host_str().map(|host| {
                    let host = match parsed.port() {
                        Some(port) => format!("{host}:{port}"),
                        None => host.to_string(),
                    };
                    raw::RawClient::new(&host)
                })
            })
            .flatten();
        let prefix = parsed.path().trim_end_matches('/').to_string();
        if let Err(e) = Uri::try_from(format!("{base}/v1/meta")) {
            return Err(GatewayError::Internal(format!(
                "invalid upstream Weaviate URL {base_url:?}: {e}"
            )));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                clients: ThreadLocal::new(),
                base,
                display,
                timeout,
                max_response_bytes,
                slots: None,
                max_in_flight: 0,
                raw,
                prefix,
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

    /// A slot if one is free now: `Some(None)` without a limit, `None` when all are taken.
    pub(crate) fn try_slot(&self) -> Option<Option<OwnedSemaphorePermit>> {
        match &self.inner.slots {
            None => Some(None),
            Some(slots) => slots.clone().try_acquire_owned().ok().map(Some),
        }
    }

    /// Whether [`Upstream::exchange_prepared`] can be used (a plain-`http://` upstream).
    pub(crate) fn has_raw_client(&self) -> bool {
        self.inner.raw.is_some()
    }

    /// The start of a prepared request (`raw.rs`): `METHOD /prefix{path_and_query} HTTP/1.1`
    /// and the `Host` header, written into `out`.
    pub(crate) fn write_request_line(&self, method: &str, path_and_query: &str, out: &mut Vec<u8>) {
        let host = self.inner.raw.as_ref().map_or("", |raw| raw.host());
        out.extend_from_slice(method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.inner.prefix.as_bytes());
        if !path_and_query.starts_with('/') {
            out.push(b'/');
        }
        out.extend_from_slice(path_and_query.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    /// Sends a prepared request (whole: head and body, see [`Upstream::write_request_line`]) on
    /// the raw client and reads the whole answer, bounded and timed as [`Upstream::request_bytes`]
    /// is, with the same metrics and errors. The caller holds the slot; the request must be safe
    /// to send twice (see [`raw::RawClient::send`]).
    pub(crate) async fn exchange_prepared(
        &self,
        request: &[u8],
    ) -> Result<RawResponse, GatewayError> {
        let client = self.raw_client()?;
        let started = Instant::now();
        let result = client
            .exchange(request, self.inner.timeout, self.inner.max_response_bytes)
            .await;
        observability::record_upstream_duration(started.elapsed());
        result.map_err(|e| self.raw_error(e))
    }

    /// Sends a prepared request of a safe method (`GET`, `HEAD`) on the raw client and returns
    /// the head of the answer and its body, to be streamed on ([`Upstream::forward`]'s rules:
    /// timed per read, errors and metrics as there). The caller holds the slot.
    pub(crate) async fn send_prepared(
        &self,
        request: &[u8],
        head_request: bool,
    ) -> Result<(RawHead, RawBody<'_>), GatewayError> {
        let client = self.raw_client()?;
        let started = Instant::now();
        let result = client
            .send(request, head_request, true, self.inner.timeout)
            .await;
        observability::record_upstream_duration(started.elapsed());
        result.map_err(|e| self.raw_error(e))
    }

    fn raw_client(&self) -> Result<&raw::RawClient, GatewayError> {
        self.inner.raw.as_ref().ok_or_else(|| {
            GatewayError::Internal("no plain-HTTP client for this upstream".to_string())
        })
    }

    /// The gateway's error for a failed raw exchange (the same as hyper's client path gives),
    /// counted in the upstream error metric.
    pub(crate) fn raw_error(&self, error: raw::RawError) -> GatewayError {
        let error = match error {
            raw::RawError::Timeout => self.timeout_error(),
            raw::RawError::TooLarge => GatewayError::UpstreamBadResponse(format!(
                "response body larger than {} bytes",
                self.inner.max_response_bytes
            )),
            raw::RawError::Io(e) => GatewayError::UpstreamUnreachable(format!(
                "upstream Weaviate at {} is unreachable: {}",
                self.inner.display,
                error_chain(&e)
            )),
            raw::RawError::BrokeOff(e) => GatewayError::UpstreamUnreachable(format!(
                "upstream Weaviate at {} broke off its response: {}",
                self.inner.display,
                error_chain(&e)
            )),
            raw::RawError::Malformed(m) => GatewayError::UpstreamBadResponse(format!(
                "upstream Weaviate at {} answered {m}",
                self.inner.display
            )),
        };
        observability::record_upstream_error(error.kind());
        error
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

    /// This thread's client (see [`Inner::clients`]).
    fn client(&self) -> &HttpClient {
        self.inner
            .clients
            .get_or(|| build_client(self.inner.timeout))
    }

    /// The upstream base URL, without credentials.
    pub fn base_url(&self) -> &str {
        &self.inner.display
    }

    /// Forwards a client request unchanged and streams the answer back unchanged (the
    /// transparent proxy, issue 4). Only hop-by-hop headers are dropped, both ways.
    pub async fn forward(&self, req: Request<Body>) -> Result<Response<Body>, GatewayError> {
        let (mut parts, body) = req.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/");
        parts.uri = self.uri(path_and_query)?;
        // The upstream hop is HTTP/1.1 whatever the client spoke (HTTP/1.0 keeps its own
        // connection semantics on the client side, which hyper's server handles).
        parts.version = Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::HOST);
        let permit = self.slot().await?;
        let response = self.send(Request::from_parts(parts, body)).await?;
        let (mut head, body) = response.into_parts();
        strip_hop_by_hop(&mut head.headers);
        // The slot is held until the client has the whole body (or the stream is dropped).
        let body = TimedBody::new(body, self.clone(), permit);
        Ok(Response::from_parts(head, Body::new(body)))
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
        let body = match body {
            Some(body) => {
                let bytes = serde_json::to_vec(body)
                    .map_err(|e| GatewayError::Internal(format!("cannot serialize JSON: {e}")))?;
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        let request = self.request(method, path_and_query, headers, body)?;
        let _slot = self.slot().await?;
        let response = self.send(request).await?;
        let status = response.status();
        let body = self.read_bounded(response.into_body()).await?;
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
        let request = self.request(method, path_and_query, headers, Body::from(body))?;
        let _slot = self.slot().await?;
        let response = self.send(request).await?;
        let (mut head, body) = response.into_parts();
        strip_hop_by_hop(&mut head.headers);
        head.headers.remove(header::CONTENT_LENGTH);
        let body = self.read_bounded(body).await?;
        Ok(Response::from_parts(head, body))
    }

    fn url(&self, path_and_query: &str) -> String {
        if path_and_query.starts_with('/') {
            format!("{}{}", self.inner.base, path_and_query)
        } else {
            format!("{}/{}", self.inner.base, path_and_query)
        }
    }

    /// The upstream URI of `path_and_query` (already a valid request target: it comes from a
    /// parsed request, or is built by the gateway with [`percent_encode`]d parts).
    fn uri(&self, path_and_query: &str) -> Result<Uri, GatewayError> {
        Uri::try_from(self.url(path_and_query)).map_err(|e| {
            GatewayError::Internal(format!(
                "cannot build the upstream URL for {path_and_query:?}: {e}"
            ))
        })
    }

    fn request(
        &self,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Request<Body>, GatewayError> {
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = self.uri(path_and_query)?;
        *request.headers_mut() = headers;
        Ok(request)
    }

    /// Sends and waits for the response headers within the timeout; records latency and errors.
    async fn send(&self, request: Request<Body>) -> Result<Response<Incoming>, GatewayError> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.inner.timeout, self.client().request(request)).await;
        observability::record_upstream_duration(started.elapsed());
        let error = match result {
            Ok(Ok(response)) => return Ok(response),
            Ok(Err(e)) => self.classify(&e),
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

    fn classify(&self, error: &(dyn std::error::Error + 'static)) -> GatewayError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
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
            error_chain(error)
        ))
    }

    /// The error for a response body that broke off (or stalled past the timeout).
    fn body_error(&self, error: Option<&hyper::Error>) -> GatewayError {
        let error = match error {
            None => self.timeout_error(),
            Some(e) => GatewayError::UpstreamUnreachable(format!(
                "upstream Weaviate at {} broke off its response: {}",
                self.inner.display,
                error_chain(e)
            )),
        };
        observability::record_upstream_error(error.kind());
        error
    }

    /// Reads a whole response body, bounded by `max_response_bytes`; each read waits at most the
    /// upstream timeout.
    async fn read_bounded(&self, body: Incoming) -> Result<Bytes, GatewayError> {
        let limit = self.inner.max_response_bytes;
        let too_large = || {
            GatewayError::UpstreamBadResponse(format!("response body larger than {limit} bytes"))
        };
        if body.size_hint().lower() > limit as u64 {
            return Err(too_large());
        }
        let mut body = std::pin::pin!(body);
        // Most answers come in one frame: kept as it is, copied only when a second one comes.
        let mut first: Option<Bytes> = None;
        let mut buffer = BytesMut::new();
        loop {
            let frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx));
            let frame = match tokio::time::timeout(self.inner.timeout, frame).await {
                Err(_) => return Err(self.body_error(None)),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(self.body_error(Some(&e))),
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(chunk) = frame.into_data() {
                let held = first.as_ref().map_or(0, Bytes::len) + buffer.len();
                if held + chunk.len() > limit {
                    return Err(too_large());
                }
                if let Some(earlier) = first.take() {
                    buffer.extend_from_slice(&earlier);
                }
                if buffer.is_empty() {
                    first = Some(chunk);
                } else {
                    buffer.extend_from_slice(&chunk);
                }
            }
        }
        Ok(first.unwrap_or_else(|| buffer.freeze()))
    }
}

/// hyper's client over plain TCP or rustls.
type HttpClient = Client<HttpsConnector<HttpConnector>, Body>;

/// A client (with its own connection pool) with clipgate's settings: `http://` and `https://`
/// (Mozilla's root certificates), `TCP_NODELAY`, connect timeout `timeout`, idle connections
/// closed after 60 s. It follows no redirects and uses no proxy from the environment.
fn build_client(timeout: Duration) -> HttpClient {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// A proxied response body: frames pass unchanged; a read that waits longer than the upstream
/// timeout ends the body with an error; the upstream slot is released when the body is done or
/// dropped.
struct TimedBody {
    inner: Incoming,
    upstream: Upstream,
    deadline: Pin<Box<tokio::time::Sleep>>,
    _slot: Option<OwnedSemaphorePermit>,
}

impl TimedBody {
    fn new(inner: Incoming, upstream: Upstream, slot: Option<OwnedSemaphorePermit>) -> Self {
        let deadline = Box::pin(tokio::time::sleep(upstream.inner.timeout));
        Self {
            inner,
            upstream,
            deadline,
            _slot: slot,
        }
    }
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = GatewayError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, GatewayError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + this.upstream.inner.timeout;
                this.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(this.upstream.body_error(Some(&e))))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(this.upstream.body_error(None)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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
/// `Proxy-Connection`), which apply to one connection and must not be forwarded. Parsed names, so
/// that checking them costs no parsing per request.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The body headers of a request the gateway makes with its own body (length, type, encoding,
/// `Expect`), `Host`, and `Accept-Encoding` (the gateway reads the answer itself and must get
/// it uncompressed): the gateway's business, not the caller's.
const OWN_REQUEST_HEADERS: [HeaderName; 6] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::ACCEPT_ENCODING,
    header::EXPECT,
];

/// Removes the hop-by-hop headers, including every header named in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = connection_listed(
        headers
            .get_all(header::CONNECTION)
            .iter()
            .map(|v| v.as_bytes()),
    )
    .into_iter()
    .filter_map(|name| HeaderName::from_bytes(name).ok())
    .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The caller's end-to-end headers for a request the gateway makes with its own body: all but
/// the hop-by-hop ones and [`OWN_REQUEST_HEADERS`], in one pass over the caller's map.
fn caller_headers(caller: &HeaderMap) -> HeaderMap {
    let listed = connection_listed(
        caller
            .get_all(header::CONNECTION)
            .iter()
            .map(|v| v.as_bytes()),
    );
    let mut headers = HeaderMap::with_capacity(caller.len());
    for (name, value) in caller {
        if is_forwarded_request_header(name.as_str().as_bytes(), &listed) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

/// The header names listed in `Connection` header values (hop-by-hop too); usually none.
pub(crate) fn connection_listed<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<&'a [u8]> {
    values
        .flat_map(|v| v.split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|name| !name.is_empty())
        .collect()
}

/// Whether a header is hop-by-hop (RFC 9110 §7.6.1): one of [`HOP_BY_HOP`] or a name `listed` in
/// the message's `Connection` header. Such headers are never passed on.
pub(crate) fn is_hop_by_hop(name: &[u8], listed: &[&[u8]]) -> bool {
    HOP_BY_HOP
        .iter()
        .any(|hop| name.eq_ignore_ascii_case(hop.as_str().as_bytes()))
        || listed.iter().any(|l| l.eq_ignore_ascii_case(name))
}

/// Whether a caller's request header goes on a request the gateway makes with its own body:
/// end-to-end and not one of [`OWN_REQUEST_HEADERS`].
pub(crate) fn is_forwarded_request_header(name: &[u8], listed: &[&[u8]]) -> bool {
    !is_hop_by_hop(name, listed)
        && !OWN_REQUEST_HEADERS
            .iter()
            .any(|own| name.eq_ignore_ascii_case(own.as_str().as_bytes()))
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
    fn urls_keep_the_base_prefix_and_drop_credentials() {
        let u = Upstream::new(
            "http://user:pw@localhost:8081/prefix/",
            Duration::from_secs(1),
            10,
        )
        .expect("valid");
        // Credentials in --weaviate-url would be the gateway's own: never sent.
        assert_eq!(
            u.url("/v1/meta?x=1"),
            "http://localhost:8081/prefix/v1/meta?x=1"
        );
        assert_eq!(
            u.uri("/v1/meta?x=1").expect("valid").to_string(),
            "http://localhost:8081/prefix/v1/meta?x=1"
        );
        assert_eq!(u.base_url(), "http://localhost:8081/prefix");
        assert!(Upstream::new("ftp://x", Duration::from_secs(1), 10).is_err());
        assert!(Upstream::new("not a url", Duration::from_secs(1), 10).is_err());
    }
}
