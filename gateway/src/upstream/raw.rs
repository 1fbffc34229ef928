//! A minimal HTTP/1.1 client to a plain-`http://` upstream, for the one request clipgate sends
//! most: a rewritten GraphQL document it has sent before (`front/memo_hit.rs`).
//!
//! Why not hyper's client: `bench/proxy.sh` measured clipgate's user CPU per cached `nearText`
//! at about 30 µs against nginx's 6 µs, and hyper's server and pooled client alone (the bare
//! proxy) at 11 µs. Most of that is per-request machinery a fixed POST does not need (a request
//! and a response `HeaderMap`, a pool checkout keyed by scheme and authority, a channel to the
//! connection task, a streaming body). Here a request is one prepared byte string written on a
//! pooled connection of the calling thread, and the answer is read whole into one buffer.
//!
//! Scope: requests whose whole body is in memory, answers read whole (bounded by
//! `--max-upstream-body-bytes`), `Content-Length`, chunked or close-delimited answers. Everything
//! else (streaming, TLS) stays on hyper's client in `upstream/mod.rs`.

use std::cell::RefCell;
use std::io;
use std::ops::Range;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::StatusCode;
use thread_local::ThreadLocal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most response headers parsed; an answer with more is refused (Weaviate sends about ten).
const MAX_HEADERS: usize = 64;
/// Idle connections kept per thread.
const MAX_IDLE: usize = 64;
/// An idle connection older than this is closed instead of reused (hyper's pool default too).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The connection pools (one per thread: a connection is driven by the runtime that opened it).
pub(crate) struct RawClient {
    /// `host:port` to connect to.
    address: String,
    /// The `Host` header value.
    host: String,
    pools: ThreadLocal<RefCell<Vec<Idle>>>,
}

struct Idle {
    stream: TcpStream,
    since: Instant,
}

/// An answer read whole.
pub(crate) struct RawResponse {
    pub head: RawHead,
    /// The body, de-chunked.
    pub body: Bytes,
}

/// Why an exchange failed.
#[derive(Debug)]
pub(crate) enum RawError {
    /// Connecting, writing or reading failed.
    Io(io::Error),
    /// No answer within the timeout.
    Timeout,
    /// The answer is not HTTP/1.x as expected.
    Malformed(String),
    /// The connection failed after part of the answer had arrived.
    BrokeOff(io::Error),
    /// The body is over the limit.
    TooLarge,
}

impl std::fmt::Display for RawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RawError::Io(e) | RawError::BrokeOff(e) => write!(f, "{e}"),
            RawError::Timeout => write!(f, "timed out"),
            RawError::Malformed(m) => write!(f, "malformed HTTP response: {m}"),
            RawError::TooLarge => write!(f, "response body over the limit"),
        }
    }
}

impl RawClient {
    /// A client for `authority` (`host[:port]` of an `http://` URL; port 80 when absent).
    pub(crate) fn new(authority: &str) -> Self {
        let has_port = match authority.rfind(']') {
            Some(bracket) => authority[bracket..].contains(':'),
            None => authority.contains(':'),
        };
        let address = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Self {
            address,
            host: authority.to_string(),
            pools: ThreadLocal::new(),
        }
    }

    /// The `Host` header value for requests to this upstream.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Sends `request` (head and body, already serialized) and reads the whole answer, at most
    /// `max_body` bytes of body.
    pub(crate) async fn exchange(
        &self,
        request: &[u8],
        timeout: Duration,
        max_body: usize,
    ) -> Result<RawResponse, RawError> {
        let (head, mut body) = self.send(request, false, true, timeout).await?;
        if body.declared_length().is_some_and(|n| n > max_body) {
            return Err(RawError::TooLarge);
        }
        let mut first: Option<Bytes> = None;
        let mut rest = BytesMut::new();
        while let Some(piece) = body.next().await? {
            let held = first.as_ref().map_or(0, Bytes::len) + rest.len();
            if held + piece.len() > max_body {
                return Err(RawError::TooLarge);
            }
            match first.take() {
                None if rest.is_empty() => first = Some(piece),
                earlier => {
                    if let Some(earlier) = earlier {
                        rest.extend_from_slice(&earlier);
                    }
                    rest.extend_from_slice(&piece);
                }
            }
        }
        Ok(RawResponse {
            head,
            body: first.unwrap_or_else(|| rest.freeze()),
        })
    }

    /// Sends `request` and reads the head of the answer; the body follows from [`RawBody::next`].
    /// `head_request`: the answer has no body whatever its headers say. `retry`: the request may
    /// be sent twice (a safe method, or a read-only GraphQL query), so a pooled connection that
    /// turns out closed before any byte of the answer arrived is replaced by a fresh one once.
    pub(crate) async fn send(
        &self,
        request: &[u8],
        head_request: bool,
        retry: bool,
        timeout: Duration,
    ) -> Result<(RawHead, RawBody<'_>), RawError> {
        let pooled = self.checkout();
        let reused = pooled.is_some();
        let stream = match pooled {
            Some(stream) => stream,
            None => self.connect(timeout).await?,
        };
        match self.send_on(stream, request, head_request, timeout).await {
            Ok(answer) => Ok(answer),
            Err(Failure { error, answered }) if retry && reused && !answered => {
                tracing::debug!(%error, "pooled upstream connection was closed: sending again on a new one");
                let stream = self.connect(timeout).await?;
                self.send_on(stream, request, head_request, timeout)
                    .await
                    .map_err(Failure::into_error)
            }
            Err(failure) => Err(failure.into_error()),
        }
    }

    async fn send_on(
        &self,
        mut stream: TcpStream,
        request: &[u8],
        head_request: bool,
        timeout: Duration,
    ) -> Result<(RawHead, RawBody<'_>), Failure> {
        let silent = |error| Failure {
            error,
            answered: false,
        };
        match tokio::time::timeout(timeout, stream.write_all(request)).await {
            Err(_) => return Err(silent(RawError::Timeout)),
            Ok(Err(e)) => return Err(silent(RawError::Io(e))),
            Ok(Ok(())) => {}
        }
        let mut buf = BytesMut::with_capacity(8 * 1024);
        match read_head(&mut stream, &mut buf, head_request, timeout).await {
            Ok((head, framing, keep)) => Ok((
                head,
                RawBody {
                    client: self,
                    stream: Some(stream),
                    buf,
                    framing,
                    chunked: Chunked::default(),
                    keep,
                    timeout,
                    done: false,
                },
            )),
            Err(error) => Err(Failure {
                error,
                answered: !buf.is_empty(),
            }),
        }
    }

    fn pool(&self) -> &RefCell<Vec<Idle>> {
        self.pools.get_or(|| RefCell::new(Vec::new()))
    }

    fn checkout(&self) -> Option<TcpStream> {
        let mut pool = self.pool().borrow_mut();
        while let Some(idle) = pool.pop() {
            if idle.since.elapsed() < IDLE_TIMEOUT {
                return Some(idle.stream);
            }
        }
        None
    }

    fn checkin(&self, stream: Option<TcpStream>) {
        if let Some(stream) = stream {
            let mut pool = self.pool().borrow_mut();
            if pool.len() < MAX_IDLE {
                pool.push(Idle {
                    stream,
                    since: Instant::now(),
                });
            }
        }
    }

    async fn connect(&self, timeout: Duration) -> Result<TcpStream, RawError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(self.address.as_str()))
            .await
            .map_err(|_| RawError::Timeout)?
            .map_err(RawError::Io)?;
        // Small writes must not wait for Nagle's algorithm (see `server::no_delay`).
        stream.set_nodelay(true).map_err(RawError::Io)?;
        Ok(stream)
    }
}

/// A failed exchange, and whether any byte of an answer had arrived.
struct Failure {
    error: RawError,
    answered: bool,
}

impl Failure {
    fn into_error(self) -> RawError {
        match self.error {
            RawError::Io(e) if self.answered => RawError::BrokeOff(e),
            error => error,
        }
    }
}

/// Reads more into `buf`; returns the bytes read (0 at the end of the stream).
async fn fill(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    timeout: Duration,
) -> Result<usize, RawError> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 * 1024);
    }
    match tokio::time::timeout(timeout, stream.read_buf(buf)).await {
        Err(_) => Err(RawError::Timeout),
        Ok(Err(e)) => Err(RawError::Io(e)),
        Ok(Ok(n)) => Ok(n),
    }
}

fn closed_early() -> RawError {
    RawError::Io(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed before the whole response arrived",
    ))
}

/// How the body of an answer ends.
#[derive(Clone, Copy)]
enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

/// The status line and headers of an answer.
pub(crate) struct RawHead {
    pub status: StatusCode,
    /// The status line and headers as received.
    pub head: Bytes,
    /// Name and value positions in `head`.
    pub headers: Vec<(Range<usize>, Range<usize>)>,
}

impl RawHead {
    /// The headers as (name, value) byte slices.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (&self.head[n.clone()], &self.head[v.clone()]))
    }
}

/// Reads the head of one answer (skipping `1xx` interim answers); returns it, how its body is
/// framed and whether the connection may be reused after it.
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    head_request: bool,
    timeout: Duration,
) -> Result<(RawHead, Framing, bool), RawError> {
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut slots);
        let len = match parsed.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                if buf.len() > 64 * 1024 {
                    return Err(RawError::Malformed("response head over 64 KiB".into()));
                }
                if fill(stream, buf, timeout).await? == 0 {
                    return Err(closed_early());
                }
                continue;
            }
            Err(e) => return Err(RawError::Malformed(e.to_string())),
        };
        let code = parsed.code.unwrap_or(0);
        let status = StatusCode::from_u16(code)
            .map_err(|_| RawError::Malformed(format!("status {code}")))?;
        if status.is_informational() {
            buf.advance(len);
            continue;
        }
        let base = buf.as_ptr() as usize;
        let mut positions = Vec::with_capacity(parsed.headers.len());
        let mut length: Option<usize> = None;
        let mut chunked = false;
        let mut keep = parsed.version == Some(1);
        for h in parsed.headers.iter() {
            let name_at = h.name.as_ptr() as usize - base;
            let value_at = h.value.as_ptr() as usize - base;
            positions.push((
                name_at..name_at + h.name.len(),
                value_at..value_at + h.value.len(),
            ));
            if h.name.eq_ignore_ascii_case("content-length") {
                let n = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or_else(|| RawError::Malformed("invalid Content-Length".into()))?;
                if length.is_some_and(|l| l != n) {
                    return Err(RawError::Malformed("conflicting Content-Length".into()));
                }
                length = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = has_token(h.value, "chunked");
            } else if h.name.eq_ignore_ascii_case("connection") {
                if has_token(h.value, "close") {
                    keep = false;
                } else if has_token(h.value, "keep-alive") {
                    keep = true;
                }
            }
        }
        let framing = if head_request || is_bodiless(status) {
            Framing::None
        } else if chunked {
            Framing::Chunked
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            keep = false;
            Framing::UntilClose
        };
        let head = buf.split_to(len).freeze();
        return Ok((
            RawHead {
                status,
                head,
                headers: positions,
            },
            framing,
            keep,
        ));
    }
}

/// The body of an answer, read as it arrives; the connection goes back to its pool once the
/// body has been read to its end (and is closed if the body is dropped before).
pub(crate) struct RawBody<'c> {
    client: &'c RawClient,
    stream: Option<TcpStream>,
    buf: BytesMut,
    framing: Framing,
    chunked: Chunked,
    keep: bool,
    timeout: Duration,
    done: bool,
}

impl RawBody<'_> {
    /// The length the answer declared (`Content-Length`; 0 for no body), `None` when chunked
    /// or delimited by the end of the connection.
    pub(crate) fn declared_length(&self) -> Option<usize> {
        match self.framing {
            Framing::None => Some(0),
            Framing::Length(n) => Some(n),
            Framing::Chunked | Framing::UntilClose => None,
        }
    }

    /// The next piece of the body (de-chunked); `None` at its end. Each read waits at most the
    /// timeout.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, RawError> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.stream.is_none() {
                return Ok(None);
            }
            match self.framing {
                Framing::None | Framing::Length(0) => {
                    self.finish();
                    return Ok(None);
                }
                Framing::Length(left) => {
                    if self.buf.is_empty() {
                        if self.buf.capacity() < left.min(64 * 1024) {
                            self.buf.reserve(left.min(64 * 1024));
                        }
                        if self.fill().await.map_err(broke_off)? == 0 {
                            return Err(broke_off(closed_early()));
                        }
                    }
                    let take = left.min(self.buf.len());
                    self.framing = Framing::Length(left - take);
                    return Ok(Some(self.buf.split_to(take).freeze()));
                }
                Framing::Chunked => {
                    let mut out = BytesMut::new();
                    let ended = self.chunked.decode(&mut self.buf, &mut out, usize::MAX)?;
                    if ended {
                        self.finish();
                    }
                    if !out.is_empty() {
                        return Ok(Some(out.freeze()));
                    }
                    if ended {
                        return Ok(None);
                    }
                    if self.fill().await.map_err(broke_off)? == 0 {
                        return Err(broke_off(closed_early()));
                    }
                }
                Framing::UntilClose => {
                    if !self.buf.is_empty() {
                        return Ok(Some(self.buf.split().freeze()));
                    }
                    if self.fill().await.map_err(broke_off)? == 0 {
                        self.done = true;
                        return Ok(None);
                    }
                }
            }
        }
    }

    async fn fill(&mut self) -> Result<usize, RawError> {
        match self.stream.as_mut() {
            Some(stream) => fill(stream, &mut self.buf, self.timeout).await,
            None => Ok(0),
        }
    }

    /// The body has ended: the connection goes back to the pool if it can be reused (no bytes
    /// after the answer: those would be an answer to nothing).
    fn finish(&mut self) {
        self.done = true;
        if self.keep && self.buf.is_empty() {
            self.client.checkin(self.stream.take());
        }
    }
}

/// An I/O error once part of the answer arrived.
fn broke_off(error: RawError) -> RawError {
    match error {
        RawError::Io(e) => RawError::BrokeOff(e),
        other => other,
    }
}

/// Whether an answer with `status` has no body, whatever its headers say (RFC 9110: `1xx`,
/// 204, 304).
pub(crate) fn is_bodiless(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
pub(crate) fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|b| *b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// A chunked-body decoder that consumes its input as it arrives.
#[derive(Default)]
struct Chunked {
    /// Data bytes left in the current chunk (then its CRLF).
    left: usize,
    in_chunk: bool,
    /// After the last chunk: reading trailer lines until the empty one.
    trailers: bool,
}

impl Chunked {
    /// Decodes what `input` holds into `out`; `true` once the body is complete.
    fn decode(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
        max: usize,
    ) -> Result<bool, RawError> {
        let bad = |m: &str| RawError::Malformed(format!("chunked body: {m}"));
        loop {
            if self.trailers {
                let Some(end) = find_crlf(input) else {
                    return Ok(false);
                };
                input.advance(end + 2);
                if end == 0 {
                    return Ok(true);
                }
                continue;
            }
            if self.in_chunk {
                if self.left > 0 {
                    if input.is_empty() {
                        return Ok(false);
                    }
                    let take = self.left.min(input.len());
                    out.extend_from_slice(&input[..take]);
                    input.advance(take);
                    self.left -= take;
                    continue;
                }
                if input.len() < 2 {
                    return Ok(false);
                }
                if &input[..2] != b"\r\n" {
                    return Err(bad("missing CRLF after chunk data"));
                }
                input.advance(2);
                self.in_chunk = false;
                continue;
            }
            let Some(end) = find_crlf(input) else {
                if input.len() > 1024 {
                    return Err(bad("chunk size line too long"));
                }
                return Ok(false);
            };
            let line = &input[..end];
            let digits = line
                .split(|b| *b == b';')
                .next()
                .unwrap_or(&[])
                .trim_ascii();
            let size = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| usize::from_str_radix(d, 16).ok())
                .ok_or_else(|| bad("invalid chunk size"))?;
            input.advance(end + 2);
            if size == 0 {
                self.trailers = true;
                continue;
            }
            if out.len().saturating_add(size) > max {
                return Err(RawError::TooLarge);
            }
            out.reserve(size);
            self.left = size;
            self.in_chunk = true;
        }
    }
}

fn find_crlf(input: &[u8]) -> Option<usize> {
    input.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(
        wire: &[u8],
        piece: usize,
        max: usize,
    ) -> Result<(Vec<u8>, usize), RawError> {
        let mut decoder = Chunked::default();
        let mut input = BytesMut::new();
        let mut out = BytesMut::new();
        for part in wire.chunks(piece) {
            input.extend_from_slice(part);
            if decoder.decode(&mut input, &mut out, max)? {
                return Ok((out.to_vec(), input.len()));
            }
        }
        Err(RawError::Malformed("incomplete".into()))
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_pieces() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        for piece in 1..wire.len() {
            let (body, rest) = decode_in_pieces(wire, piece, 1 << 20).expect("decodes");
            assert_eq!(body, b"hello world!");
            // Bytes after the body stay in the input (here only those that arrived with it).
            assert!(rest <= 4);
        }
    }

    #[test]
    fn chunked_bodies_are_bounded_and_checked() {
        assert!(matches!(
            decode_in_pieces(b"10\r\n0123456789abcdef\r\n0\r\n\r\n", 64, 8),
            Err(RawError::TooLarge)
        ));
        assert!(matches!(
            decode_in_pieces(b"zz\r\n", 64, 8),
            Err(RawError::Malformed(_))
        ));
        assert!(matches!(
            decode_in_pieces(b"2\r\nabXX0\r\n\r\n", 64, 8),
            Err(RawError::Malformed(_))
        ));
    }

    #[test]
    fn tokens_are_matched_in_lists() {
        assert!(has_token(b"keep-alive, Close", "close"));
        assert!(!has_token(b"closed", "close"));
        assert!(has_token(b"gzip, chunked", "chunked"));
    }

    #[test]
    fn authorities_get_a_port() {
        assert_eq!(RawClient::new("localhost").address, "localhost:80");
        assert_eq!(RawClient::new("localhost:8080").address, "localhost:8080");
        assert_eq!(RawClient::new("[::1]").address, "[::1]:80");
        assert_eq!(RawClient::new("[::1]:81").address, "[::1]:81");
    }
}
