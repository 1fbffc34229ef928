//! HTTP/1.1 on the wire for the front loop: parsing a request head into what the router needs,
//! and writing a response (`Content-Length` or chunked, `Date`, `Connection: close`) the way
//! hyper's server writes it.

use std::cell::RefCell;
use std::io;
use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, HttpBody};
use bytes::Bytes;
use futures::FutureExt;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::upstream::raw::{has_token, is_bodiless};

/// Most request headers the front loop parses; a request with more goes to hyper (which takes
/// up to 100).
const MAX_HEADERS: usize = 64;

/// A request head the front loop serves itself.
pub struct Head {
    pub method: Method,
    /// Position of the request target in the buffer.
    pub target: Range<usize>,
    /// Positions of header names and values in the buffer.
    pub headers: Vec<(Range<usize>, Range<usize>)>,
    /// Length of the head, up to and including the blank line.
    pub len: usize,
    /// Length of the body (`Content-Length`, 0 when absent).
    pub body_len: usize,
    /// Whether the client keeps the connection open after this request.
    pub keep_alive: bool,
}

/// What the bytes at the start of a connection buffer are.
pub enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A request the front loop serves.
    Simple(Head),
    /// Anything else: HTTP/1.0 or HTTP/2, `Transfer-Encoding`, `Expect`, `Upgrade`, `CONNECT`,
    /// a target that is not a path, too many headers, or not HTTP at all. hyper takes the
    /// connection from here on and answers as it always did.
    HandOff,
}

/// Parses the request head at the start of `buf`.
pub fn parse_head(buf: &[u8]) -> Parsed {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::HandOff,
    };
    if request.version != Some(1) {
        return Parsed::HandOff;
    }
    let Some(method) = request
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
    else {
        return Parsed::HandOff;
    };
    let Some(path) = request.path.filter(|p| p.starts_with('/')) else {
        return Parsed::HandOff;
    };
    if method == Method::CONNECT {
        return Parsed::HandOff;
    }
    let base = buf.as_ptr() as usize;
    let at = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let mut headers = Vec::with_capacity(request.headers.len());
    let mut body_len: Option<usize> = None;
    let mut keep_alive = true;
    for h in request.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let Some(n) = std::str::from_utf8(h.value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok())
            else {
                return Parsed::HandOff;
            };
            if body_len.is_some_and(|l| l != n) {
                return Parsed::HandOff;
            }
            body_len = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"expect")
            || name.eq_ignore_ascii_case(b"upgrade")
        {
            return Parsed::HandOff;
        } else if name.eq_ignore_ascii_case(b"connection") {
            if has_token(h.value, "upgrade") {
                return Parsed::HandOff;
            }
            if has_token(h.value, "close") {
                keep_alive = false;
            }
        }
        headers.push((at(name), at(h.value)));
    }
    Parsed::Simple(Head {
        method,
        target: at(path.as_bytes()),
        headers,
        len,
        body_len: body_len.unwrap_or(0),
        keep_alive,
    })
}

/// The `http::Request` of a head and its body; `raw` holds the head (and may hold the body).
/// `None` when a name, value or target is not valid for the `http` crate (hyper answers those).
pub fn build_request(head: &Head, raw: &Bytes, body: Bytes) -> Option<Request<Body>> {
    let uri = Uri::from_maybe_shared(raw.slice(head.target.clone())).ok()?;
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    for (name, value) in &head.headers {
        let name = HeaderName::from_bytes(&raw[name.clone()]).ok()?;
        let value = HeaderValue::from_maybe_shared(raw.slice(value.clone())).ok()?;
        headers.append(name, value);
    }
    let mut request = Request::new(if body.is_empty() {
        Body::empty()
    } else {
        Body::from(body)
    });
    *request.method_mut() = head.method.clone();
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some(request)
}

thread_local! {
    /// This thread's `Date` header value and the second it was made for.
    static DATE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

/// Appends `date: <IMF-fixdate of now>\r\n` (formatted once per second per thread).
pub fn write_date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != second {
            *at = second;
            text.clear();
            text.extend_from_slice(httpdate::fmt_http_date(now).as_bytes());
        }
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    });
}

/// Appends `HTTP/1.1 <code> <reason>\r\n`.
pub fn write_status_line(status: StatusCode, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `content-length: <n>\r\n`.
pub fn write_content_length(n: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The end of a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Appends `data` as one chunk of a chunked body (nothing for empty data, which would end it).
pub fn write_chunk(data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Body bytes ready with the head are written with it, up to this size.
const COALESCE: usize = 64 * 1024;

/// Writes `response` to `stream` as hyper's HTTP/1.1 server would: the status line, the headers,
/// `date` when absent, `content-length` for a body of known size (chunked otherwise), no body for
/// `HEAD`, `1xx`, 204 and 304, and `connection: close` when the client asked for it. Returns
/// whether the connection stays open. A body that fails or ends short of its length makes this
/// fail: the connection must then be closed.
pub async fn write_response(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    response: Response<Body>,
    head_request: bool,
    keep_alive: bool,
) -> io::Result<bool> {
    let (parts, body) = response.into_parts();
    let status = parts.status;
    let no_body = head_request || is_bodiless(status);
    let mut keep = keep_alive;
    out.clear();
    write_status_line(status, out);
    let mut has_date = false;
    let mut declared: Option<&HeaderValue> = None;
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH {
            declared = Some(value);
            continue;
        }
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        if name == header::CONNECTION && has_token(value.as_bytes(), "close") {
            keep = false;
        }
        has_date |= name == header::DATE;
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_date {
        write_date(out);
    }
    if !keep && !parts.headers.contains_key(header::CONNECTION) {
        out.extend_from_slice(b"connection: close\r\n");
    }
    let exact = body.size_hint().exact();
    if no_body {
        if head_request {
            if let Some(value) = declared {
                out.extend_from_slice(b"content-length: ");
                out.extend_from_slice(value.as_bytes());
                out.extend_from_slice(b"\r\n");
            } else if let Some(n) = exact {
                write_content_length(n as usize, out);
            }
        }
        out.extend_from_slice(b"\r\n");
        stream.write_all(out).await?;
        return Ok(keep);
    }
    let mut body = std::pin::pin!(body);
    match exact {
        Some(n) => {
            let n = usize::try_from(n).map_err(|_| io::Error::other("body too long"))?;
            write_content_length(n, out);
            out.extend_from_slice(b"\r\n");
            // What the body has ready now goes out with the head (one write for a buffered
            // answer); the head never waits for the rest.
            let mut sent = 0usize;
            let mut ended = false;
            while out.len() < COALESCE {
                match next_data(&mut body).now_or_never() {
                    Some(Ok(Some(data))) => {
                        sent += data.len();
                        out.extend_from_slice(&data);
                    }
                    Some(Ok(None)) => {
                        ended = true;
                        break;
                    }
                    Some(Err(e)) => return Err(e),
                    None => break,
                }
            }
            stream.write_all(out).await?;
            if !ended {
                while let Some(data) = next_data(&mut body).await? {
                    sent += data.len();
                    stream.write_all(&data).await?;
                }
            }
            if sent != n {
                return Err(io::Error::other(
                    "response body length differs from its size",
                ));
            }
        }
        None => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
            stream.write_all(out).await?;
            while let Some(data) = next_data(&mut body).await? {
                out.clear();
                write_chunk(&data, out);
                stream.write_all(out).await?;
            }
            stream.write_all(LAST_CHUNK).await?;
        }
    }
    Ok(keep)
}

/// The next data frame of `body` (trailers are skipped, as hyper's HTTP/1 server does unless the
/// client asked for them).
async fn next_data(body: &mut std::pin::Pin<&mut Body>) -> io::Result<Option<Bytes>> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(io::Error::other(e)),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple(raw: &[u8]) -> Head {
        match parse_head(raw) {
            Parsed::Simple(head) => head,
            Parsed::Partial => panic!("partial"),
            Parsed::HandOff => panic!("hand-off"),
        }
    }

    #[test]
    fn simple_requests_are_parsed() {
        let raw = b"POST /v1/graphql?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        let head = simple(raw);
        assert_eq!(head.method, Method::POST);
        assert_eq!(&raw[head.target.clone()], b"/v1/graphql?x=1");
        assert_eq!(head.body_len, 5);
        assert_eq!(head.len, raw.len() - 5);
        assert!(!head.keep_alive);
        let bytes = Bytes::copy_from_slice(raw);
        let request = build_request(&head, &bytes, bytes.slice(head.len..)).expect("valid");
        assert_eq!(request.uri().path(), "/v1/graphql");
        assert_eq!(request.headers()["host"], "a");
        assert_eq!(request.headers()["content-length"], "5");
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        for raw in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            b"CONNECT a:1 HTTP/1.1\r\n\r\n",
            b"GET http://a/ HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"\x16\x03\x01garbage\r\n\r\n",
        ] {
            assert!(
                matches!(parse_head(raw), Parsed::HandOff),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nHost"),
            Parsed::Partial
        ));
    }
}
