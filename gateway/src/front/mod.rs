//! The HTTP/1.1 front: what reads requests off clipgate's client connections.
//!
//! Each connection is served by a loop that parses request heads itself (`wire.rs`) and, for a
//! plain HTTP/1.1 request with its body in a `Content-Length` (every request the Weaviate clients
//! send, up to [`BUFFERED_BODY`]):
//! - answers a GraphQL document it has rewritten before straight from the rewrite cache over a
//!   prepared upstream request (`memo_hit.rs`), or
//! - hands the request to the router (every route, layer and handler as before) and writes the
//!   router's response (`wire::write_response`).
//!
//! Any other request (HTTP/1.0 or HTTP/2, chunked or larger bodies, `Expect`, `Upgrade`, a head
//! it cannot parse) makes the loop hand the connection, with the bytes already read, to hyper's
//! server for the rest of its life: hyper streams and answers those exactly as before.
//!
//! Why: `bench/proxy.sh` (issue 4) measured a cached `nearText` at 0.54–0.59× nginx's requests/s
//! with hyper's server and client: per request, hyper's connection machinery and the router's
//! layers cost more user CPU than the whole nginx proxy.

mod memo_hit;
mod pass_through;
mod prepared;
pub mod wire;

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::Router;
use bytes::{Buf, Bytes, BytesMut};
use http::Method;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::server::AppState;
use wire::{Head, Parsed};

/// Request bodies up to this size are read whole by the front loop; larger ones are streamed by
/// hyper (a batch import must not sit in memory twice).
const BUFFERED_BODY: usize = 1024 * 1024;
/// A request head longer than this goes to hyper (which answers 431).
const MAX_HEAD: usize = 64 * 1024;

/// One worker's front: the state and the router every connection of the worker shares.
pub struct Front {
    state: AppState,
    router: Router,
    /// Paths (without the query) of `GET` and `HEAD` requests the router has sent to the
    /// transparent proxy, with the route label its metrics gave them: routing depends on nothing
    /// else, so the next such request can take the pass-through path.
    proxied: Mutex<Proxied>,
}

/// Learned proxied paths and their metrics route labels, by method (the pass-through path takes
/// `GET` and `HEAD` only).
#[derive(Default)]
struct Proxied {
    get: HashMap<Box<[u8]>, Arc<str>>,
    head: HashMap<Box<[u8]>, Arc<str>>,
}

impl Proxied {
    fn of(&mut self, method: &Method) -> &mut HashMap<Box<[u8]>, Arc<str>> {
        if method == Method::HEAD {
            &mut self.head
        } else {
            &mut self.get
        }
    }
}

/// Most learned proxied paths kept per method (paths with ids vary; the map starts over when
/// full).
const MAX_PROXIED: usize = 1024;

impl Front {
    pub fn new(state: AppState, router: Router) -> Arc<Self> {
        Arc::new(Self {
            state,
            router,
            proxied: Mutex::new(Proxied::default()),
        })
    }

    fn proxied(&self) -> std::sync::MutexGuard<'_, Proxied> {
        // Plain maps; a panic elsewhere cannot leave them half-written.
        self.proxied
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The route label of a learned proxied path.
    fn proxied_route(&self, method: &Method, path: &[u8]) -> Option<Arc<str>> {
        self.proxied().of(method).get(path).cloned()
    }

    fn learn_proxied(&self, method: &Method, path: &[u8], route: Arc<str>) {
        let mut proxied = self.proxied();
        let paths = proxied.of(method);
        if paths.len() >= MAX_PROXIED {
            paths.clear();
        }
        paths.insert(path.into(), route);
    }
}

/// Accepts connections from `listener` until `stop` turns true, then waits for the open ones to
/// finish their requests (graceful shutdown, as `axum::serve` did).
pub async fn serve(listener: TcpListener, front: Arc<Front>, mut stop: watch::Receiver<bool>) {
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: wait a little, as axum::serve does.
                tracing::debug!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let front = front.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            if let Err(error) = connection(stream, front, stop).await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    // New connections are refused from now on; open ones finish their requests.
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Serves one connection.
async fn connection(
    mut stream: TcpStream,
    front: Arc<Front>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut out = Vec::with_capacity(1024);
    loop {
        // One head, read while idle only until shutdown starts.
        let head = loop {
            if !buf.is_empty() {
                match wire::parse_head(&buf) {
                    Parsed::Simple(head) => break head,
                    Parsed::HandOff => return hand_off(stream, buf, front, stop).await,
                    Parsed::Partial if buf.len() > MAX_HEAD => {
                        return hand_off(stream, buf, front, stop).await
                    }
                    Parsed::Partial => {}
                }
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(8 * 1024);
            }
            let read = if buf.is_empty() {
                tokio::select! {
                    read = stream.read_buf(&mut buf) => read?,
                    _ = stopped(&mut stop) => return Ok(()),
                }
            } else {
                stream.read_buf(&mut buf).await?
            };
            if read == 0 {
                return Ok(());
            }
        };
        if head.body_len > BUFFERED_BODY {
            return hand_off(stream, buf, front, stop).await;
        }
        let total = head.len + head.body_len;
        if buf.len() < total {
            buf.reserve(total - buf.len());
        }
        while buf.len() < total {
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        let raw = buf.split_to(total).freeze();
        let keep_alive = serve_one(&mut stream, &mut out, &front, &head, raw).await?;
        if !keep_alive || *stop.borrow() {
            // A FIN after the answer, as hyper closes (a plain drop could reset the connection
            // while the client still reads the answer).
            let _ = stream.shutdown().await;
            return Ok(());
        }
        // Buffers grown for a large request or answer are not kept by an idle connection.
        if buf.is_empty() && !(1024..=64 * 1024).contains(&buf.capacity()) {
            buf = BytesMut::with_capacity(8 * 1024);
        }
        if out.capacity() > 64 * 1024 {
            out = Vec::with_capacity(1024);
        }
    }
}

/// Answers one buffered request; returns whether the connection stays open.
async fn serve_one(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    front: &Front,
    head: &Head,
    raw: Bytes,
) -> io::Result<bool> {
    let body = raw.slice(head.len..);
    if head.method == Method::POST && &raw[head.target.clone()] == b"/v1/graphql" {
        if let Some(keep) = memo_hit::serve(stream, out, &front.state, head, &raw, &body).await? {
            return Ok(keep);
        }
    }
    let target = &raw[head.target.clone()];
    let path = target.split(|b| *b == b'?').next().unwrap_or(target);
    let may_pass = pass_through::applies(&front.state, head);
    if let Some(route) = may_pass
        .then(|| front.proxied_route(&head.method, path))
        .flatten()
    {
        if let Some(keep) =
            pass_through::serve(stream, out, &front.state, head, &raw, &route).await?
        {
            return Ok(keep);
        }
    }
    let Some(request) = wire::build_request(head, &raw, body.clone()) else {
        // A name or value the `http` crate refuses: answer as hyper does for a bad head.
        out.clear();
        out.extend_from_slice(
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n",
        );
        wire::write_date(out);
        out.extend_from_slice(b"\r\n");
        stream.write_all(out).await?;
        return Ok(false);
    };
    let head_request = head.method == Method::HEAD;
    let response = match front.router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    };
    if let Some(proxied) = response.extensions().get::<crate::proxy::Proxied>() {
        if may_pass {
            front.learn_proxied(&head.method, path, proxied.route.clone());
        }
    }
    wire::write_response(stream, out, response, head_request, head.keep_alive).await
}

/// Gives the connection to hyper's server (HTTP/1.1 and HTTP/2, upgrades) with the bytes read so
/// far, and serves it with the router until it closes; graceful shutdown as in `axum::serve`.
async fn hand_off(
    stream: TcpStream,
    read: BytesMut,
    front: Arc<Front>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let io = TokioIo::new(Rewind {
        prefix: read.freeze(),
        stream,
    });
    let router = front.router.clone();
    let service = TowerToHyperService::new(
        router.map_request(|request: http::Request<hyper::body::Incoming>| request.map(Body::new)),
    );
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection_with_upgrades(io, service);
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.as_mut().await
        }
    };
    result.map_err(io::Error::other)
}

/// Resolves once `stop` is (or turns) true.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// A stream that first yields bytes already read from it.
struct Rewind {
    prefix: Bytes,
    stream: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
