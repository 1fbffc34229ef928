//! Client of a multi2vec-clip inference container (`CLIP_INFERENCE_API`), behaving as Weaviate's
//! Go client does (spec §7.3): same requests, same order of response checks, same error texts,
//! resends only after connection resets.
//!
//! One deliberate difference: the container fails a whole `/vectorize` request when one image is
//! bad (spec §7.1), while the [`Embedder`] contract is one result per input. Weaviate never sees
//! this because it sends one object per request (spec §5.6); clipgate batches, so when a batch is
//! answered with an error status the inputs are resent one by one to find out which of them fail.

use std::io;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::metrics::REMOTE_RETRIES;
use crate::{EmbedError, Embedder, Vector};

/// Delays before the first and second resend after a connection reset (Weaviate's retry
/// transport: ~50 ms, ~250 ms, jittered; spec §7.3).
const RETRY_BACKOFF: [Duration; 2] = [Duration::from_millis(50), Duration::from_millis(250)];

/// How many single-input requests run at once while attributing a batch failure. The container
/// serializes requests per model anyway (spec §7.1); a little overlap hides the round trips.
const ISOLATION_CONCURRENCY: usize = 4;

/// Settings of [`RemoteClip`].
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Limit for one `/vectorize` or `/meta` exchange: connecting, sending, the response and its
    /// body, and every resend. Weaviate's `MODULES_CLIENT_TIMEOUT` defaults to 50 s.
    pub timeout: Duration,
    /// Limit for establishing one TCP connection.
    pub connect_timeout: Duration,
    /// Limit for one `GET /.well-known/ready` (Weaviate's startup poll uses 500 ms).
    pub ready_timeout: Duration,
    /// Largest response body accepted; a larger one is an error instead of an allocation the
    /// container controls. A 768-dimensional vector is about 15 kB of JSON.
    pub max_response_bytes: usize,
    /// Resend the inputs of a batch one by one when the batch is answered with an error status,
    /// so that only the failing inputs fail (see the module documentation).
    pub isolate_failures: bool,
    /// Cache fingerprint; `None` derives `remote:<base url>`. See also
    /// [`RemoteClip::with_meta_fingerprint`].
    pub fingerprint: Option<String>,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(50),
            connect_timeout: Duration::from_secs(10),
            ready_timeout: Duration::from_millis(500),
            max_response_bytes: 64 * 1024 * 1024,
            isolate_failures: true,
            fingerprint: None,
        }
    }
}

/// The remote multi2vec-clip inference container as an [`Embedder`].
#[derive(Debug, Clone)]
pub struct RemoteClip {
    client: reqwest::Client,
    base: String,
    vectorize_url: Url,
    meta_url: Url,
    ready_url: Url,
    options: RemoteOptions,
    fingerprint: String,
}

/// Body of `POST /vectorize`. Empty lists are left out, as the Go client's `omitempty` does.
#[derive(Serialize)]
struct VectorizeRequest<'a> {
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    texts: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    images: &'a [String],
}

/// What the Go client decodes every `/vectorize` answer into, whatever its status.
#[derive(Deserialize)]
struct VectorizeResponse {
    #[serde(rename = "textVectors", default)]
    text_vectors: Option<Vec<Vec<f32>>>,
    #[serde(rename = "imageVectors", default)]
    image_vectors: Option<Vec<Vec<f32>>>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Modality {
    Text,
    Image,
}

/// Why one HTTP exchange produced no complete response.
enum Failure {
    /// The overall timeout ran out before the response headers arrived.
    TimeoutAwaitingResponse(Duration),
    /// The overall timeout ran out while the body was being read.
    TimeoutReadingBody(Duration),
    /// Connecting or sending failed (already described, Go style).
    Transport(String),
    /// Reading the body failed.
    Body(String),
    /// The body is over [`RemoteOptions::max_response_bytes`].
    TooLarge { status: u16, limit: usize },
}

impl Failure {
    /// The text after `Post "<url>": ` (or `Get "<url>": `).
    fn cause(&self) -> String {
        match self {
            Failure::TimeoutAwaitingResponse(t) => format!("timeout: no response within {t:?}"),
            Failure::TimeoutReadingBody(t) => {
                format!("timeout: response body not complete within {t:?}")
            }
            Failure::Transport(cause) => cause.clone(),
            Failure::Body(cause) => format!("read response body: {cause}"),
            Failure::TooLarge { limit, .. } => {
                format!("response body larger than {limit} bytes")
            }
        }
    }
}

impl RemoteClip {
    /// A client for the container at `base_url` (e.g. `http://clip:8080`, the value of
    /// `CLIP_INFERENCE_API`). Does not contact the container.
    pub fn new(base_url: &str, options: RemoteOptions) -> Result<Self, EmbedError> {
        let base = base_url.trim_end_matches('/').to_string();
        let parsed = Url::parse(&base)
            .map_err(|e| EmbedError::Model(format!("inference URL {base_url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(EmbedError::Model(format!(
                "inference URL {base_url:?}: expected http://host[:port] or https://host[:port]"
            )));
        }
        let url = |path: &str| {
            Url::parse(&format!("{base}{path}"))
                .map_err(|e| EmbedError::Model(format!("inference URL {base_url:?}: {e}")))
        };
        // Weaviate's client does not follow redirects (spec §7.3): a 3xx is an answer.
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| EmbedError::Model(format!("HTTP client for {base}: {e}")))?;
        let fingerprint = options
            .fingerprint
            .clone()
            .unwrap_or_else(|| format!("remote:{base}"));
        Ok(Self {
            client,
            vectorize_url: url("/vectorize")?,
            meta_url: url("/meta")?,
            ready_url: url("/.well-known/ready")?,
            base,
            options,
            fingerprint,
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Replaces the fingerprint by one that also covers the container's `/meta`, so that cached
    /// vectors are not reused after the container behind the same URL switches models.
    pub async fn with_meta_fingerprint(mut self) -> Result<Self, EmbedError> {
        let meta = self.meta().await?;
        let digest = Sha256::digest(meta.to_string().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.fingerprint = format!("remote:{}:{hex}", self.base);
        Ok(self)
    }

    /// Waits until `GET /.well-known/ready` answers a 2xx, polling every second, as Weaviate does
    /// at startup with `CLIP_WAIT_FOR_STARTUP` (spec §7.3).
    pub async fn wait_until_ready(&self, within: Duration) -> Result<(), EmbedError> {
        let deadline = Instant::now() + within;
        loop {
            let last = match self.ready().await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() + Duration::from_secs(1) > deadline {
                return Err(EmbedError::RemoteProbe(format!(
                    "init context expired before remote was ready: {last}"
                )));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// All inputs of one modality: one request, and on an error status one request per input.
    async fn embed(
        &self,
        modality: Modality,
        inputs: &[String],
    ) -> Vec<Result<Vector, EmbedError>> {
        if inputs.is_empty() {
            return Vec::new();
        }
        match self.vectorize(modality, inputs).await {
            Ok(vectors) => vectors.into_iter().map(Ok).collect(),
            Err(EmbedError::RemoteStatus { status, .. })
                if inputs.len() > 1 && self.options.isolate_failures && is_per_input(status) =>
            {
                // Collected first: a stream over a borrowing closure trips the compiler's
                // `Send` check inside `async_trait` methods (rust-lang/rust#102211).
                let singles: Vec<_> = inputs
                    .iter()
                    .map(|input| self.vectorize_one(modality, input))
                    .collect();
                futures::stream::iter(singles)
                    .buffered(ISOLATION_CONCURRENCY)
                    .collect()
                    .await
            }
            Err(e) => vec![Err(e); inputs.len()],
        }
    }

    async fn vectorize_one(
        &self,
        modality: Modality,
        input: &String,
    ) -> Result<Vector, EmbedError> {
        let one = self
            .vectorize(modality, std::slice::from_ref(input))
            .await?;
        one.into_iter()
            .next()
            .ok_or(EmbedError::RemoteCount { sent: 1, got: 0 })
    }

    /// One `POST /vectorize`, its answer checked in the Go client's order (spec §7.3): decode
    /// the JSON first, then the status, then (ours) the number of vectors.
    async fn vectorize(
        &self,
        modality: Modality,
        inputs: &[String],
    ) -> Result<Vec<Vector>, EmbedError> {
        let request = match modality {
            Modality::Text => VectorizeRequest {
                texts: inputs,
                images: &[],
            },
            Modality::Image => VectorizeRequest {
                texts: &[],
                images: inputs,
            },
        };
        let body = serde_json::to_vec(&request)
            .map_err(|e| EmbedError::RemoteUnreachable(format!("marshal body: {e}")))?;
        let url = &self.vectorize_url;
        let (status, bytes) = self
            .exchange(
                Method::POST,
                url,
                Some(Bytes::from(body)),
                self.options.timeout,
            )
            .await
            .map_err(|failure| match failure {
                Failure::TooLarge { status, .. } => EmbedError::RemoteBadResponse {
                    status,
                    message: failure.cause(),
                },
                other => {
                    EmbedError::RemoteUnreachable(format!("Post \"{url}\": {}", other.cause()))
                }
            })?;
        // `null` decodes into Go's zero value without error; so it does here.
        let response: Option<VectorizeResponse> =
            serde_json::from_slice(&bytes).map_err(|e| EmbedError::RemoteBadResponse {
                status,
                message: e.to_string(),
            })?;
        let response = response.unwrap_or(VectorizeResponse {
            text_vectors: None,
            image_vectors: None,
            error: None,
        });
        if status > 399 {
            return Err(EmbedError::RemoteStatus {
                status,
                message: response.error.unwrap_or_default(),
            });
        }
        let vectors = match modality {
            Modality::Text => response.text_vectors,
            Modality::Image => response.image_vectors,
        }
        .unwrap_or_default();
        if vectors.len() != inputs.len() {
            return Err(EmbedError::RemoteCount {
                sent: inputs.len(),
                got: vectors.len(),
            });
        }
        Ok(vectors.into_iter().map(Vector::from).collect())
    }

    /// One request with its resends, bounded by `timeout` overall; returns status and body.
    async fn exchange(
        &self,
        method: Method,
        url: &Url,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<(u16, Bytes), Failure> {
        let deadline = Instant::now() + timeout;
        let response =
            tokio::time::timeout_at(deadline, self.send_with_retries(&method, url, body))
                .await
                .map_err(|_| Failure::TimeoutAwaitingResponse(timeout))??;
        let status = response.status().as_u16();
        tokio::time::timeout_at(
            deadline,
            read_limited(response, status, self.options.max_response_bytes),
        )
        .await
        .map_err(|_| Failure::TimeoutReadingBody(timeout))?
        .map(|bytes| (status, bytes))
    }

    /// Sends, resending up to twice when the connection was reset or closed under the request
    /// (what a stale pooled keep-alive connection produces); nothing else is resent (spec §7.3).
    async fn send_with_retries(
        &self,
        method: &Method,
        url: &Url,
        body: Option<Bytes>,
    ) -> Result<reqwest::Response, Failure> {
        let mut attempt = 0;
        loop {
            let mut request = self.client.request(method.clone(), url.clone());
            if let Some(body) = &body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            match request.send().await {
                Ok(response) => return Ok(response),
                Err(err) => {
                    let (cause, resendable) = describe_transport_error(&err, url, &self.options);
                    let Some(backoff) = RETRY_BACKOFF.get(attempt).filter(|_| resendable) else {
                        return Err(Failure::Transport(cause));
                    };
                    tracing::debug!(%url, attempt, %cause, "resending after connection reset");
                    metrics::counter!(REMOTE_RETRIES).increment(1);
                    tokio::time::sleep(jittered(*backoff)).await;
                    attempt += 1;
                }
            }
        }
    }
}

#[async_trait]
impl Embedder for RemoteClip {
    async fn embed_texts(&self, texts: &[String]) -> Vec<Result<Vector, EmbedError>> {
        self.embed(Modality::Text, texts).await
    }

    async fn embed_images(&self, images: &[String]) -> Vec<Result<Vector, EmbedError>> {
        self.embed(Modality::Image, images).await
    }

    /// `GET <base>/meta`. As in Weaviate's client the status is not checked: whatever JSON
    /// object the container answers is its meta (spec §7.3).
    async fn meta(&self) -> Result<serde_json::Value, EmbedError> {
        let url = &self.meta_url;
        let (_, body) = self
            .exchange(Method::GET, url, None, self.options.timeout)
            .await
            .map_err(|failure| {
                let stage = match failure {
                    Failure::Body(_)
                    | Failure::TimeoutReadingBody(_)
                    | Failure::TooLarge { .. } => "read meta response body",
                    _ => "send GET meta request",
                };
                EmbedError::RemoteProbe(format!("{stage}: Get \"{url}\": {}", failure.cause()))
            })?;
        let meta: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body)
            .map_err(|e| EmbedError::RemoteProbe(format!("unmarshal meta response body: {e}")))?;
        Ok(serde_json::Value::Object(meta))
    }

    /// `GET <base>/.well-known/ready`; a status above 299 is `not ready: status N` (spec §7.3).
    async fn ready(&self) -> Result<(), EmbedError> {
        let url = &self.ready_url;
        let (status, _) = self
            .exchange(Method::GET, url, None, self.options.ready_timeout)
            .await
            .map_err(|failure| {
                EmbedError::RemoteProbe(format!(
                    "send check ready request: Get \"{url}\": {}",
                    failure.cause()
                ))
            })?;
        if status > 299 {
            return Err(EmbedError::RemoteProbe(format!(
                "not ready: status {status}"
            )));
        }
        Ok(())
    }

    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// Error statuses worth resending input by input: the container answers 500 for a bad input
/// (and a proxy 413 for a batch too large); overload and gateway statuses concern the whole
/// backend, and resending each input would only add load.
fn is_per_input(status: u16) -> bool {
    (400..=599).contains(&status) && !matches!(status, 408 | 429 | 502 | 503 | 504)
}

/// Reads the body, refusing more than `limit` bytes before allocating them.
async fn read_limited(
    mut response: reqwest::Response,
    status: u16,
    limit: usize,
) -> Result<Bytes, Failure> {
    let too_large = Failure::TooLarge { status, limit };
    let expected = match response.content_length() {
        Some(len) if len > limit as u64 => return Err(too_large),
        Some(len) => len as usize,
        None => 0,
    };
    let mut buf = BytesMut::with_capacity(expected);
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Failure::Body(innermost_cause(&e)))?
    {
        if buf.len() + chunk.len() > limit {
            return Err(too_large);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Describes a failed send the way Go's net/http words it (`dial tcp HOST:PORT: connect:
/// connection refused`, `EOF`, …) and says whether it may be resent: only a reset or a close of
/// an established connection, never a failed connect or anything after a response began.
fn describe_transport_error(
    err: &reqwest::Error,
    url: &Url,
    options: &RemoteOptions,
) -> (String, bool) {
    let io = find_io_error(err);
    if err.is_connect() {
        let authority = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        );
        let cause = if err.is_timeout() {
            format!(
                "i/o timeout (connect timeout {:?})",
                options.connect_timeout
            )
        } else {
            io.map(io_text).unwrap_or_else(|| innermost_cause(err))
        };
        return (format!("dial tcp {authority}: connect: {cause}"), false);
    }
    if has_incomplete_message(err) {
        return (
            "EOF (connection closed before the response)".to_string(),
            true,
        );
    }
    if let Some(io) = io {
        let resendable = matches!(
            io.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        );
        return (io_text(io), resendable);
    }
    (innermost_cause(err), false)
}

fn find_io_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut found = None;
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            found = Some(io);
        }
        current = e.source();
    }
    found
}

fn has_incomplete_message(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_incomplete_message())
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// The most specific message in an error chain (reqwest's own top-level text is generic).
fn innermost_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// Go's wording for the common socket errors.
fn io_text(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::ConnectionReset => "connection reset by peer".to_string(),
        io::ErrorKind::BrokenPipe => "broken pipe".to_string(),
        io::ErrorKind::UnexpectedEof => "EOF".to_string(),
        io::ErrorKind::TimedOut => "i/o timeout".to_string(),
        _ => err.to_string(),
    }
}

/// `base` ± 20 %, so that clients reset together do not resend together.
fn jittered(base: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let factor = 0.8 + 0.4 * f64::from(nanos % 1000) / 1000.0;
    base.mul_f64(factor)
}
