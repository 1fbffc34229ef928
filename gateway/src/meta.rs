//! `GET /v1/meta`: the upstream's answer with `modules["multi2vec-clip"]` set to the model's meta,
//! as a Weaviate with the module enabled answers (spec §9): the container's `/meta` JSON, or
//! `{"error":"send GET meta request: …"}` when it cannot be obtained. Every other field is the
//! upstream's, untouched.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, Method, StatusCode};
use serde_json::{Map, Value};
use vectorizer::EmbedError;

use crate::schema::MODULE;
use crate::server::AppState;

pub async fn get_meta(State(state): State<AppState>, request: Request) -> Response {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/v1/meta");
    let (upstream, module_meta) = tokio::join!(
        state
            .upstream
            .request_json(Method::GET, path_and_query, request.headers(), None),
        state.embedder.meta()
    );
    let (status, body) = match upstream {
        Ok(answer) => answer,
        Err(error) => return error.into_response(),
    };
    let module_meta =
        module_meta.unwrap_or_else(|e| serde_json::json!({ "error": meta_error(&e) }));
    match merge(status, &body, module_meta) {
        Some(merged) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            merged,
        )
            .into_response(),
        // An error or a body that is not a JSON object: passed on as the upstream gave it.
        None => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
    }
}

/// Weaviate's text for a failed meta lookup (spec §7.3): the remote client already words it as
/// the Go client does; any other failure gets the Go client's prefix.
fn meta_error(error: &EmbedError) -> String {
    match error {
        EmbedError::RemoteProbe(message) => message.clone(),
        other => format!("send GET meta request: {other}"),
    }
}

/// The merged meta document, or `None` when the upstream's answer is not a successful JSON object.
fn merge(status: StatusCode, body: &[u8], module_meta: Value) -> Option<Vec<u8>> {
    if !status.is_success() {
        return None;
    }
    let mut meta: Map<String, Value> = serde_json::from_slice(body).ok()?;
    let modules = meta
        .entry("modules")
        .or_insert_with(|| Value::Object(Map::new()));
    if !modules.is_object() {
        *modules = Value::Object(Map::new());
    }
    if let Value::Object(modules) = modules {
        modules.insert(MODULE.to_string(), module_meta);
    }
    serde_json::to_vec(&meta).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_is_added_and_the_rest_kept() {
        let body = br#"{"hostname":"http://[::]:8080","modules":{"other":{"a":1}},"version":"1.39.0","grpcMaxMessageSize":104858000}"#;
        let merged = merge(StatusCode::OK, body, serde_json::json!({"m": 2})).expect("merged");
        let v: Value = serde_json::from_slice(&merged).expect("json");
        assert_eq!(v["modules"]["other"]["a"], 1);
        assert_eq!(v["modules"][MODULE]["m"], 2);
        assert_eq!(v["version"], "1.39.0");
        let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
        assert_eq!(
            keys,
            ["hostname", "modules", "version", "grpcMaxMessageSize"]
        );
    }

    #[test]
    fn null_modules_become_an_object_and_errors_pass() {
        let merged = merge(StatusCode::OK, br#"{"modules":null}"#, Value::Null).expect("merged");
        assert_eq!(merged, br#"{"modules":{"multi2vec-clip":null}}"#);
        assert!(merge(StatusCode::UNAUTHORIZED, br#"{"code":401}"#, Value::Null).is_none());
        assert!(merge(StatusCode::OK, b"not json", Value::Null).is_none());
    }
}
