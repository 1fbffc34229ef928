//! The gateway's one error type, and its mapping to Weaviate's REST error envelope
//! `{"error":[{"message":"…"}]}` (spec §2.1), done once here at the HTTP edge.

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use vectorizer::EmbedError;

/// Why the gateway could not answer a request itself.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The upstream Weaviate could not be reached (connection refused, reset, DNS, TLS) or broke
    /// off its answer. 502.
    #[error("{0}")]
    UpstreamUnreachable(String),
    /// The upstream Weaviate did not answer within `--upstream-timeout`. 504.
    #[error("upstream Weaviate at {url} did not answer within {timeout:?}")]
    UpstreamTimeout {
        url: String,
        timeout: std::time::Duration,
    },
    /// The upstream answered something the gateway needed to read and could not (e.g. a schema
    /// that is not JSON). 502.
    #[error("upstream Weaviate answered an unexpected response: {0}")]
    UpstreamBadResponse(String),
    /// An upstream answer that is passed to the client as it is (status and body), e.g. a 401 or
    /// 403 on the schema fetch made with the caller's credentials.
    #[error("upstream Weaviate answered status {status}")]
    Upstream { status: StatusCode, body: Bytes },
    /// The request body is over `--max-body-bytes`. 413.
    #[error("request body too large: the limit is {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The request is invalid. 422, Weaviate's status for invalid input.
    #[error("{0}")]
    Validation(String),
    /// Back-pressure: too much work queued. 429.
    #[error("{0}")]
    Overloaded(String),
    /// A vector could not be computed.
    #[error("{0}")]
    Embed(#[from] EmbedError),
    /// A Weaviate-shaped error with an exact status (see [`GatewayError::rest`]).
    #[error("{message}")]
    Rest { status: StatusCode, message: String },
    /// A bug or an unexpected state of the gateway. 500.
    #[error("{0}")]
    Internal(String),
}

impl GatewayError {
    /// A Weaviate REST error: `{"error":[{"message": message}]}` with exactly this status.
    pub fn rest(status: StatusCode, message: impl Into<String>) -> Self {
        Self::Rest {
            status,
            message: message.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UpstreamUnreachable(_) | Self::UpstreamBadResponse(_) => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream { status, .. } | Self::Rest { status, .. } => *status,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Overloaded(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Embed(EmbedError::Overloaded) => StatusCode::TOO_MANY_REQUESTS,
            // Weaviate answers vectorization failures on import with 500 (spec §9).
            Self::Embed(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short, stable label for the `kind` label of error metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UpstreamUnreachable(_) => "upstream_unreachable",
            Self::UpstreamTimeout { .. } => "upstream_timeout",
            Self::UpstreamBadResponse(_) => "upstream_bad_response",
            Self::Upstream { .. } => "upstream_status",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::Validation(_) => "validation",
            Self::Overloaded(_) | Self::Embed(EmbedError::Overloaded) => "overloaded",
            Self::Embed(_) => "embed",
            Self::Rest { .. } => "rest",
            Self::Internal(_) => "internal",
        }
    }
}

/// The body of Weaviate's REST error envelope (spec §2.1).
pub fn rest_error_body(message: &str) -> serde_json::Value {
    serde_json::json!({ "error": [ { "message": message } ] })
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Upstream { body, .. } = self {
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            return response;
        }
        (status, axum::Json(rest_error_body(&self.to_string()))).into_response()
    }
}
