//! The schema REST endpoints the gateway handles itself (issue 5, "Schema"): a multi2vec-clip
//! class is validated as the module would (spec §5.2), stored upstream in the form an unmodified
//! Weaviate accepts (spec §6, `translate.rs`), and shown back as the user created it. Every
//! change made through the gateway refreshes the schema cache at once. Classes the gateway does
//! not manage pass through untouched.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use serde_json::Value;

use super::translate;
use super::validate::{self, ClassConfigError};
use crate::server::{read_body, AppState};

/// `/v1/schema`, `/v1/schema/{class}` and `/v1/schema/{class}/properties`; other methods and
/// sub-paths (tenants, shards) reach the proxy.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/schema", get(get_schema).post(create_class))
        .route(
            "/v1/schema/{class}",
            get(get_class).put(update_class).delete(delete_class),
        )
        .route("/v1/schema/{class}/properties", post(add_property))
}

/// `GET /v1/schema`: managed classes shown in the user's form.
async fn get_schema(State(state): State<AppState>, request: Request) -> Response {
    read_translated(&state, request, translate::schema_from_upstream).await
}

/// `GET /v1/schema/{class}`.
async fn get_class(State(state): State<AppState>, request: Request) -> Response {
    read_translated(&state, request, translate::from_upstream).await
}

/// `POST /v1/schema`: validate clip configs (spec §5.2) and the inference URL allow-list, store
/// the translated class, answer with the class in the user's form.
async fn create_class(State(state): State<AppState>, request: Request) -> Response {
    write_translated(&state, request, true).await
}

/// `PUT /v1/schema/{class}`: Weaviate runs no module validation on update; the class is stored
/// translated (so an unchanged clip config stays equal to the stored one), the allow-list still
/// applies.
async fn update_class(State(state): State<AppState>, request: Request) -> Response {
    write_translated(&state, request, false).await
}

/// `DELETE /v1/schema/{class}`: forwarded; the cache must not keep a deleted clip class.
async fn delete_class(State(state): State<AppState>, request: Request) -> Response {
    let response = crate::proxy::forward(&state, request).await;
    state.schema.invalidate();
    response
}

/// `POST /v1/schema/{class}/properties`: forwarded (the module adds no property defaults, spec
/// §5.1); the cache learns the new property's type.
async fn add_property(State(state): State<AppState>, request: Request) -> Response {
    let response = crate::proxy::forward(&state, request).await;
    state.schema.invalidate();
    response
}

async fn read_translated(
    state: &AppState,
    request: Request,
    translate: fn(&mut Value) -> bool,
) -> Response {
    let (parts, _) = request.into_parts();
    let path = path_and_query(&parts.uri);
    match state
        .upstream
        .request_json(Method::GET, &path, &parts.headers, None)
        .await
    {
        Ok((status, body)) => {
            let empty = body.is_empty();
            let mut answer = http::Response::new(body);
            *answer.status_mut() = status;
            if !empty {
                answer.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            translated_response(answer, translate)
        }
        Err(error) => error.into_response(),
    }
}

async fn write_translated(state: &AppState, request: Request, create: bool) -> Response {
    let (parts, body) = request.into_parts();
    let path = path_and_query(&parts.uri);
    let bytes = match read_body(body).await {
        Ok(bytes) => bytes,
        Err(error) => return error.into_response(),
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = bytes.clone();
    if let Ok(mut class) = serde_json::from_slice::<Value>(&bytes) {
        let checked = if create {
            validate::validate_class(&class, &state.config.allowed_inference_urls)
        } else {
            allow_list_only(&class, &state.config.allowed_inference_urls)
        };
        if let Err(error) = checked {
            return restriction_violation(&error);
        }
        if translate::to_upstream(&mut class) {
            match serde_json::to_vec(&class) {
                Ok(translated) => body = Bytes::from(translated),
                Err(error) => {
                    return crate::error::GatewayError::Internal(format!(
                        "cannot serialize the class: {error}"
                    ))
                    .into_response()
                }
            }
        }
    }
    let method = if create { Method::POST } else { Method::PUT };
    let answer = state
        .upstream
        .request_bytes(method, &path, &parts.headers, content_type.as_deref(), body)
        .await;
    // Invalidate even on failure: an unknown outcome must not leave a stale view.
    state.schema.invalidate();
    match answer {
        Ok(answer) => translated_response(answer, translate::from_upstream),
        Err(error) => error.into_response(),
    }
}

/// On update only the SSRF rule applies (Weaviate validates no module config on update).
fn allow_list_only(class: &Value, allowed: &[String]) -> Result<(), ClassConfigError> {
    for (_, cfg) in validate::clip_configs(class) {
        if let Some(url) = cfg
            .and_then(|c| c.get("inferenceUrl"))
            .and_then(Value::as_str)
        {
            if !url.is_empty() && !allowed.iter().any(|a| a == url) {
                return Err(ClassConfigError::InferenceUrlNotAllowed {
                    url: url.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Weaviate's schema 422 (`RestrictionViolationResponse`, spec §2.1):
/// `{"allowed":null,"error":[{"message":…}]}`.
fn restriction_violation(error: &ClassConfigError) -> Response {
    let body = serde_json::json!({
        "allowed": null,
        "error": [{ "message": error.to_string() }],
    });
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}

/// The upstream's answer with managed classes translated back; bytes untouched when nothing
/// needed translating or the body is not JSON.
fn translated_response(
    answer: http::Response<Bytes>,
    translate: fn(&mut Value) -> bool,
) -> Response {
    let (mut parts, body) = answer.into_parts();
    let mut out = body.clone();
    if parts.status.is_success() {
        if let Ok(mut value) = serde_json::from_slice::<Value>(&body) {
            if translate(&mut value) {
                if let Ok(bytes) = serde_json::to_vec(&value) {
                    out = Bytes::from(bytes);
                    parts.headers.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                }
            }
        }
    }
    Response::from_parts(parts, Body::from(out))
}

fn path_and_query(uri: &http::Uri) -> String {
    uri.path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string())
}
