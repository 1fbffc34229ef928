//! Optional API-key authentication and per-class authorization.
//!
//! Why: the gateway's security tests need a Weaviate that refuses anonymous callers and a key
//! that may read only some classes, to show that clipgate uses the caller's own credentials
//! (e.g. for move objects) and cannot leak vectors of objects the caller may not read.
//! Keys are compared, never logged.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// One accepted API key.
#[derive(Clone)]
pub struct ApiKey {
    key: String,
    user: String,
    classes: Option<BTreeSet<String>>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("user", &self.user)
            .field("classes", &self.classes)
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    /// A key with access to every class.
    pub fn new(key: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            user: user.into(),
            classes: None,
        }
    }

    /// Limits the key to the given classes.
    pub fn only_classes<I, S>(mut self, classes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.classes = Some(classes.into_iter().map(Into::into).collect());
        self
    }
}

/// Who is calling, attached to each request by [`authenticate`].
#[derive(Debug, Clone)]
pub enum Principal {
    /// No keys configured: everything is allowed.
    Anonymous,
    User {
        user: String,
        classes: Option<BTreeSet<String>>,
    },
}

impl Principal {
    pub fn can_access(&self, class: &str) -> bool {
        match self {
            Self::Anonymous | Self::User { classes: None, .. } => true,
            Self::User {
                classes: Some(allowed),
                ..
            } => allowed.contains(class),
        }
    }

    /// Weaviate-like forbidden message.
    pub fn forbidden_message(&self, class: &str) -> String {
        let user = match self {
            Self::Anonymous => "anonymous",
            Self::User { user, .. } => user,
        };
        format!("forbidden: user '{user}' has insufficient permissions to access class {class}")
    }
}

/// The configured keys (empty = anonymous access).
#[derive(Debug, Clone, Default)]
pub struct Keys(pub Arc<Vec<ApiKey>>);

fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"code": 401, "message": message})),
    )
        .into_response()
}

/// Why a presented `Authorization` header was refused (Weaviate's texts; REST answers 401,
/// gRPC `Unauthenticated`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("anonymous access not enabled, please provide an auth scheme such as OIDC")]
    Anonymous,
    #[error("unauthorized: invalid api key")]
    InvalidKey,
}

impl Keys {
    /// Resolves an `Authorization` header value (`Bearer <key>`) to a [`Principal`]; shared by the
    /// REST middleware and the gRPC edge (which reads the same value from the call metadata).
    pub fn principal(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        if self.0.is_empty() {
            return Ok(Principal::Anonymous);
        }
        let presented = authorization
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(AuthError::Anonymous)?;
        let key = self
            .0
            .iter()
            .find(|k| k.key == presented)
            .ok_or(AuthError::InvalidKey)?;
        Ok(Principal::User {
            user: key.user.clone(),
            classes: key.classes.clone(),
        })
    }
}

/// Middleware: resolves the `Authorization: Bearer <key>` header to a [`Principal`].
/// `/v1/.well-known/*` stays anonymous, as in Weaviate.
pub async fn authenticate(State(keys): State<Keys>, mut req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/v1/.well-known/") {
        req.extensions_mut().insert(Principal::Anonymous);
        return next.run(req).await;
    }
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match keys.principal(header) {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(e) => unauthorized(&e.to_string()),
    }
}
