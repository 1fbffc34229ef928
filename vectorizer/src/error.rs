//! The one error type of the vectorizer. The gateway maps it to Weaviate's envelopes at its edge.

/// Why a vector could not be computed.
///
/// `Clone` because one failure of a batched or single-flight computation is handed to every
/// waiting request. The remote variants are worded as Weaviate's own Go client words them
/// (spec §7.3), so that the gateway's error texts read like Weaviate's with a real container.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmbedError {
    /// The image string is not base64 that the container (Python `base64.b64decode`) accepts.
    #[error("invalid base64 image: {0}")]
    InvalidBase64(String),
    /// The bytes are not an image in a supported format (PNG, JPEG, GIF, WebP, BMP).
    #[error("cannot decode image: {0}")]
    ImageDecode(String),
    /// The image (or its decoded size) is over the configured limit.
    #[error("image too large: {0}")]
    ImageTooLarge(String),
    /// The text could not be tokenized or is over the configured length limit.
    #[error("invalid text: {0}")]
    InvalidText(String),
    /// The model failed while running (should not happen with a loaded model).
    #[error("inference failed: {0}")]
    Inference(String),
    /// The model files are missing or inconsistent.
    #[error("model: {0}")]
    Model(String),
    /// Too many inferences are queued: back-pressure instead of unbounded queueing.
    #[error("inference queue is full, try again later")]
    Overloaded,
    /// The remote container could not be reached (connection refused, reset, timeout).
    #[error("send POST request: {0}")]
    RemoteUnreachable(String),
    /// The remote container answered an error status (`{"error": …}` body).
    #[error("fail with status {status}: {message}")]
    RemoteStatus { status: u16, message: String },
    /// The remote container answered something that is not the expected JSON.
    #[error("failed to parse vectorization response (status {status}): {message}")]
    RemoteBadResponse { status: u16, message: String },
    /// The remote container answered a different number of vectors than inputs.
    #[error("inputs are not equal to vectors returned: sent {sent}, got {got}")]
    RemoteCount { sent: usize, got: usize },
    /// `GET /meta` or `GET /.well-known/ready` of the remote container failed; the text is the
    /// Go client's (`send GET meta request: …`, `not ready: status 503`, spec §7.3).
    #[error("{0}")]
    RemoteProbe(String),
}
