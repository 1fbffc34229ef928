//! A bare hyper reverse proxy, for `bench/proxy.sh` only: hyper's server and pooled client on one
//! single-threaded runtime per core, with nothing else — no routing, layers, metrics, parsing or
//! rewriting. It was the ceiling of clipgate's HTTP stack before clipgate's own HTTP/1.1 front
//! (`gateway/src/front/`), and is still what a connection the front hands to hyper runs on; the
//! benchmark prints it beside clipgate and nginx.
//!
//! Usage: `bare_proxy LISTEN_ADDR UPSTREAM_BASE_URL [WORKERS]` (upstream `http://` only).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bare_proxy LISTEN_ADDR UPSTREAM_BASE_URL [WORKERS]";
    let listen: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let upstream = args.next().ok_or(usage)?;
    let workers: usize = args.next().map_or(Ok(2), |w| w.parse())?;
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let mut threads = Vec::new();
    for _ in 0..workers {
        let listener = listener.try_clone()?;
        let upstream = upstream.clone();
        threads.push(std::thread::spawn(move || worker(listener, upstream)));
    }
    for thread in threads {
        thread.join().map_err(|_| "worker panicked")??;
    }
    Ok(())
}

fn worker(listener: std::net::TcpListener, upstream: String) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        let client: HttpClient = Client::builder(TokioExecutor::new()).build(tcp);
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let client = client.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let service =
                    service_fn(move |request| proxy(client.clone(), upstream.clone(), request));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// Forwards one request (body read whole, headers but `Host` copied) and the answer back.
async fn proxy(
    client: HttpClient,
    upstream: String,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let failed = |e: &dyn std::fmt::Display| {
        let mut response = Response::new(Full::new(Bytes::from(e.to_string())));
        *response.status_mut() = StatusCode::BAD_GATEWAY;
        response
    };
    let (mut parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return Ok(failed(&e)),
    };
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match format!("{upstream}{target}").parse() {
        Ok(uri) => uri,
        Err(e) => return Ok(failed(&e)),
    };
    parts.headers.remove(hyper::header::HOST);
    let response = match client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
    {
        Ok(response) => response,
        Err(e) => return Ok(failed(&e)),
    };
    let (parts, body) = response.into_parts();
    match body.collect().await {
        Ok(body) => Ok(Response::from_parts(parts, Full::new(body.to_bytes()))),
        Err(e) => Ok(failed(&e)),
    }
}
