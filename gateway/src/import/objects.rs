//! Single-object writes: `POST /v1/objects`, `PUT` (replace) and `PATCH` (merge) of
//! `/v1/objects/{class}/{id}` and of the deprecated `/v1/objects/{id}` (class in the body).
//!
//! Error texts and statuses are Weaviate's (spec §5.3, §5.7): invalid blob → 422
//! `invalid object: …` (PATCH: the bare message); vectorizer failure → 500
//! `vectorize target vector <name>: update vector: <err>` (legacy target: empty name, hence the
//! double space), prefixed `update object: ` for PUT and rendered
//! `msg:merge and vectorize code:500 err:…` for PATCH; the weights panic → its bare text.

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Map, Value};
use vectorizer::EmbedError;

use super::embed::{self, TargetError};
use super::plan::{self, PlanError};
use super::{attach, content_type, managed_class, path_and_query, send};
use crate::error::GatewayError;
use crate::server::{read_body, AppState};
use crate::upstream::percent_encode;

/// Which write it is: the error wording differs (spec §5.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    Create,
    Replace,
    Merge,
}

impl Write {
    fn invalid(self, error: &PlanError) -> Response {
        let message = match self {
            Self::Create | Self::Replace => format!("invalid object: {error}"),
            Self::Merge => error.to_string(),
        };
        GatewayError::rest(StatusCode::UNPROCESSABLE_ENTITY, message).into_response()
    }

    fn vectorize_failed(self, target: Option<&str>, error: &TargetError) -> Response {
        let inner = match error {
            TargetError::Embed(e) => format!(
                "vectorize target vector {}: update vector: {e}",
                target.unwrap_or("")
            ),
            TargetError::Arithmetic(e) => e.to_string(),
        };
        let message = match self {
            Self::Create => inner,
            Self::Replace => format!("update object: {inner}"),
            Self::Merge => format!("msg:merge and vectorize code:500 err:{inner}"),
        };
        // Back-pressure is answered 429 (issue 7); everything else is Weaviate's 500.
        let status = match error {
            TargetError::Embed(EmbedError::Overloaded) => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        GatewayError::rest(status, message).into_response()
    }
}

/// `POST /v1/objects`.
pub async fn create(State(state): State<AppState>, request: Request) -> Response {
    write(&state, request, None, Write::Create, Method::POST).await
}

/// `PUT /v1/objects/{class}/{id}`.
pub async fn replace(
    State(state): State<AppState>,
    Path((class, _id)): Path<(String, String)>,
    request: Request,
) -> Response {
    write(&state, request, Some(class), Write::Replace, Method::PUT).await
}

/// `PUT /v1/objects/{id}` (deprecated form; the class is in the body).
pub async fn replace_legacy(State(state): State<AppState>, request: Request) -> Response {
    write(&state, request, None, Write::Replace, Method::PUT).await
}

/// `PATCH /v1/objects/{class}/{id}`.
pub async fn merge(
    State(state): State<AppState>,
    Path((class, _id)): Path<(String, String)>,
    request: Request,
) -> Response {
    write(&state, request, Some(class), Write::Merge, Method::PATCH).await
}

/// `PATCH /v1/objects/{id}` (deprecated form; the class is in the body).
pub async fn merge_legacy(State(state): State<AppState>, request: Request) -> Response {
    write(&state, request, None, Write::Merge, Method::PATCH).await
}

async fn write(
    state: &AppState,
    request: Request,
    path_class: Option<String>,
    kind: Write,
    method: Method,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match read_body(body).await {
        Ok(bytes) => bytes,
        Err(error) => return error.into_response(),
    };
    let target = path_and_query(&parts.uri).to_string();
    let vectorized = vectorize(state, &parts, &bytes, path_class.as_deref(), kind).await;
    match vectorized {
        Ok(Some(body)) => {
            send(
                state,
                method,
                &target,
                &parts.headers,
                Some("application/json"),
                body,
            )
            .await
        }
        Ok(None) => {
            let content_type = content_type(&parts.headers).map(str::to_string);
            send(
                state,
                method,
                &target,
                &parts.headers,
                content_type.as_deref(),
                bytes,
            )
            .await
        }
        Err(response) => response,
    }
}

/// The body to send with the vectors attached, `None` to send the client's body unchanged
/// (not JSON, not a clip-managed class, nothing to vectorize), or the error answer.
async fn vectorize(
    state: &AppState,
    parts: &http::request::Parts,
    bytes: &Bytes,
    path_class: Option<&str>,
    kind: Write,
) -> Result<Option<Bytes>, Response> {
    let Ok(mut object) = serde_json::from_slice::<Value>(bytes) else {
        return Ok(None);
    };
    if !object.is_object() {
        return Ok(None);
    }
    let class_name = match path_class {
        Some(name) => name.to_string(),
        None => match object.get("class").and_then(Value::as_str) {
            Some(name) => name.to_string(),
            None => return Ok(None),
        },
    };
    let view = state
        .schema
        .view(&state.upstream, &parts.headers)
        .await
        .map_err(IntoResponse::into_response)?;
    let Some(class) = managed_class(&view, &class_name) else {
        return Ok(None);
    };
    // PATCH vectorizes the MERGED properties (spec §5.5): the stored object is read with the
    // caller's own credentials and tenant.
    let planned = if kind == Write::Merge {
        match stored_properties(state, parts, &object).await {
            Some(stored) => merged_object(stored, &object),
            None => return Ok(None),
        }
    } else {
        object.clone()
    };
    let plans = plan::plan_object(class, &view, &planned).map_err(|e| kind.invalid(&e))?;
    if plans.is_empty() {
        return Ok(None);
    }
    let embedded = embed::embed(state.embedder.as_ref(), &plans).await;
    for plan in &plans {
        let vector = embedded
            .vector(plan)
            .map_err(|e| kind.vectorize_failed(plan.target.as_deref(), &e))?;
        attach::attach(&mut object, plan.target.as_deref(), &vector);
    }
    serde_json::to_vec(&object)
        .map(|v| Some(Bytes::from(v)))
        .map_err(|e| {
            GatewayError::Internal(format!("cannot serialize the object: {e}")).into_response()
        })
}

/// The stored object's properties (`GET` on the same path, with the body's tenant), or `None`
/// when it cannot be read: the PATCH then goes upstream as it is and Weaviate answers it
/// (404, 403, …) itself.
async fn stored_properties(
    state: &AppState,
    parts: &http::request::Parts,
    patch: &Value,
) -> Option<Map<String, Value>> {
    let mut query: Vec<String> = parts
        .uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if let Some(tenant) = patch.get("tenant").and_then(Value::as_str) {
        query.retain(|p| !p.starts_with("tenant="));
        query.push(format!("tenant={}", percent_encode(tenant)));
    }
    let mut url = parts.uri.path().to_string();
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    let (status, body) = state
        .upstream
        .request_json(Method::GET, &url, &parts.headers, None)
        .await
        .ok()?;
    if status != StatusCode::OK {
        return None;
    }
    let stored: Value = serde_json::from_slice(&body).ok()?;
    Some(
        stored
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    )
}

/// What Weaviate vectorizes on PATCH: the stored properties overlaid with the patch's (keys
/// first-letter-lower-cased as validation leaves them; a `null` deletes), and the patch's own
/// `vector` / `vectors` (a supplied vector still skips vectorization).
fn merged_object(mut stored: Map<String, Value>, patch: &Value) -> Value {
    if let Some(props) = patch.get("properties").and_then(Value::as_object) {
        for (key, value) in props {
            let mut chars = key.chars();
            let key: String = match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => String::new(),
            };
            stored.insert(key, value.clone());
        }
    }
    let mut merged = Map::new();
    merged.insert("properties".into(), Value::Object(stored));
    for key in ["vector", "vectors"] {
        if let Some(v) = patch.get(key) {
            merged.insert(key.into(), v.clone());
        }
    }
    Value::Object(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_overlays_and_normalizes_keys() {
        let stored = json!({"title": "old", "image": "AAAA"});
        let patch = json!({"properties": {"Title": "new", "image": null}, "vector": [1.0]});
        let merged = merged_object(stored.as_object().cloned().unwrap(), &patch);
        assert_eq!(
            merged,
            json!({"properties": {"title": "new", "image": null}, "vector": [1.0]})
        );
    }
}
