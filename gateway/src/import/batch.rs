//! `POST /v1/batch/objects` (spec §5.6, §5.7, §9): every clip-managed object of the batch is
//! planned, all their inputs are embedded together (one call per modality for the whole batch,
//! each distinct input once), and the batch goes upstream in one request with the vectors
//! attached. An object that cannot be vectorized is not sent; its entry in the answer is
//! Weaviate's per-object failure, at its input position, merged into the upstream's answer for
//! the others. Nothing is dropped silently.
//!
//! Objects of other classes, and the batch's other top-level fields, are forwarded byte for byte.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::embed::{self, TargetError};
use super::plan::{self, TargetPlan};
use super::{attach, content_type, managed_class, path_and_query, send};
use crate::error::GatewayError;
use crate::server::{read_body, AppState};

/// One object of the batch after planning.
enum Entry<'a> {
    /// Forwarded exactly as received.
    Raw(&'a RawValue),
    /// A clip-managed object to vectorize.
    Planned {
        object: Value,
        plans: Vec<TargetPlan>,
    },
    /// Refused before inference (e.g. an invalid blob).
    Failed { object: Value, message: String },
}

#[derive(Deserialize)]
struct ClassOnly<'a> {
    #[serde(borrow, default)]
    class: Option<std::borrow::Cow<'a, str>>,
}

pub async fn create(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match read_body(body).await {
        Ok(bytes) => bytes,
        Err(error) => return error.into_response(),
    };
    let target = path_and_query(&parts.uri).to_string();
    let forward_unchanged = |bytes: Bytes| {
        let content_type = content_type(&parts.headers).map(str::to_string);
        let target = target.clone();
        let state = state.clone();
        let headers = parts.headers.clone();
        async move {
            send(
                &state,
                Method::POST,
                &target,
                &headers,
                content_type.as_deref(),
                bytes,
            )
            .await
        }
    };

    // Anything that is not a well-formed batch goes upstream as it is: Weaviate words the errors.
    let Ok(top) = serde_json::from_slice::<BTreeMap<String, &RawValue>>(&bytes) else {
        return forward_unchanged(bytes.clone()).await;
    };
    let Some(objects) = top
        .get("objects")
        .and_then(|raw| serde_json::from_str::<Vec<&RawValue>>(raw.get()).ok())
    else {
        return forward_unchanged(bytes.clone()).await;
    };
    let classes: Vec<Option<String>> = objects
        .iter()
        .map(|raw| {
            serde_json::from_str::<ClassOnly>(raw.get())
                .ok()
                .and_then(|c| c.class.map(|c| c.into_owned()))
        })
        .collect();
    if classes.iter().all(Option::is_none) {
        return forward_unchanged(bytes.clone()).await;
    }
    let view = match state.schema.view(&state.upstream, &parts.headers).await {
        Ok(view) => view,
        Err(error) => return error.into_response(),
    };
    if !classes
        .iter()
        .flatten()
        .any(|c| managed_class(&view, c).is_some())
    {
        return forward_unchanged(bytes.clone()).await;
    }

    // 1. Plan every clip-managed object.
    let mut entries: Vec<Entry> = Vec::with_capacity(objects.len());
    for (raw, class_name) in objects.iter().zip(&classes) {
        let class = class_name.as_deref().and_then(|c| managed_class(&view, c));
        let parsed = class.and_then(|_| serde_json::from_str::<Value>(raw.get()).ok());
        let (Some(class), Some(object)) = (class, parsed) else {
            entries.push(Entry::Raw(raw));
            continue;
        };
        entries.push(match plan::plan_object(class, &view, &object) {
            Ok(plans) if plans.is_empty() => Entry::Raw(raw),
            Ok(plans) => Entry::Planned { object, plans },
            Err(error) => Entry::Failed {
                object,
                message: error.to_string(),
            },
        });
    }

    // 2. Embed all inputs of the batch together.
    let all_plans = entries.iter().flat_map(|e| match e {
        Entry::Planned { plans, .. } => plans.as_slice(),
        Entry::Raw(_) | Entry::Failed { .. } => <&[TargetPlan]>::default(),
    });
    let embedded = embed::embed(state.embedder.as_ref(), all_plans).await;

    // 3. Attach, or fail the object with Weaviate's per-object message (raw client error).
    for entry in &mut entries {
        let Entry::Planned { object, plans } = entry else {
            continue;
        };
        let mut failure: Option<TargetError> = None;
        for plan in plans.iter() {
            match embedded.vector(plan) {
                Ok(vector) => attach::attach(object, plan.target.as_deref(), &vector),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        if let Some(error) = failure {
            *entry = Entry::Failed {
                object: std::mem::take(object),
                message: error.to_string(),
            };
        }
    }

    // 4. One upstream request with the objects that can be stored.
    let mut sent = 0usize;
    let mut body = String::with_capacity(bytes.len() + 64);
    body.push_str("{\"objects\":[");
    for entry in &entries {
        let json = match entry {
            Entry::Raw(raw) => raw.get().to_string(),
            Entry::Planned { object, .. } => match serde_json::to_string(object) {
                Ok(json) => json,
                Err(e) => {
                    return GatewayError::Internal(format!("cannot serialize an object: {e}"))
                        .into_response()
                }
            },
            Entry::Failed { .. } => continue,
        };
        if sent > 0 {
            body.push(',');
        }
        body.push_str(&json);
        sent += 1;
    }
    body.push(']');
    for (key, raw) in &top {
        if key != "objects" {
            body.push(',');
            body.push_str(&Value::String(key.clone()).to_string());
            body.push(':');
            body.push_str(raw.get());
        }
    }
    body.push('}');

    let now = now_millis();
    if sent == 0 {
        // Weaviate answers 200 with every object's failure; an empty upstream batch would be a
        // 422 instead.
        let answer: Vec<Value> = entries
            .into_iter()
            .filter_map(|e| match e {
                Entry::Failed { object, message } => Some(failed_entry(object, &message, now)),
                _ => None,
            })
            .collect();
        return json_response(StatusCode::OK, &Value::Array(answer).to_string());
    }
    let answer = match state
        .upstream
        .request_bytes(
            Method::POST,
            &target,
            &parts.headers,
            Some("application/json"),
            Bytes::from(body),
        )
        .await
    {
        Ok(answer) => answer,
        Err(error) => return error.into_response(),
    };
    let failed = entries
        .iter()
        .filter(|e| matches!(e, Entry::Failed { .. }))
        .count();
    if failed == 0 || answer.status() != StatusCode::OK {
        // No local failures to merge, or a whole-request failure: nothing was stored.
        return answer.map(Body::from);
    }
    let Ok(results) = serde_json::from_slice::<Vec<&RawValue>>(answer.body()) else {
        return answer.map(Body::from);
    };
    // 5. The upstream's entries in order, the local failures at their input positions.
    let mut upstream_results = results.into_iter();
    let mut out = String::with_capacity(answer.body().len() + failed * 256);
    out.push('[');
    for (i, entry) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match entry {
            Entry::Failed { object, message } => {
                out.push_str(&failed_entry(object, &message, now).to_string())
            }
            _ => match upstream_results.next() {
                Some(raw) => out.push_str(raw.get()),
                None => out.push_str("null"),
            },
        }
    }
    // Should the upstream answer more entries than it was sent, none is hidden.
    for raw in upstream_results {
        out.push(',');
        out.push_str(raw.get());
    }
    out.push(']');
    json_response(StatusCode::OK, &out)
}

/// Weaviate's per-object failure entry (spec §9): the object as Weaviate holds it after its
/// pre-processing (an id assigned when missing, creation and update times set, properties an
/// object) with `"deprecations": null` and the failed result.
fn failed_entry(object: Value, message: &str, now: i64) -> Value {
    let mut source = match object {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let has_id = source
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|id| !id.is_empty());
    if !has_id {
        source.insert("id".into(), Value::String(uuid::Uuid::new_v4().to_string()));
    }
    source.insert("creationTimeUnix".into(), Value::from(now));
    source.insert("lastUpdateTimeUnix".into(), Value::from(now));
    if !source.get("properties").is_some_and(Value::is_object) {
        source.insert("properties".into(), Value::Object(Map::new()));
    }
    // The order Weaviate's models.Object marshals its fields in.
    let mut out = Map::new();
    for key in [
        "additional",
        "class",
        "creationTimeUnix",
        "id",
        "lastUpdateTimeUnix",
        "properties",
        "tenant",
        "vector",
        "vectorWeights",
        "vectors",
    ] {
        if let Some(value) = source.shift_remove(key) {
            out.insert(key.into(), value);
        }
    }
    out.extend(source);
    out.insert("deprecations".into(), Value::Null);
    out.insert(
        "result".into(),
        serde_json::json!({"errors": {"error": [{"message": message}]}, "status": "FAILED"}),
    );
    Value::Object(out)
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn json_response(status: StatusCode, body: &str) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn failed_entry_shape() {
        let entry = failed_entry(
            json!({"properties": {"a": 1}, "class": "C", "id": "00000000-0000-0000-0000-000000000001"}),
            "boom",
            7,
        );
        assert_eq!(
            serde_json::to_string(&entry).unwrap(),
            r#"{"class":"C","creationTimeUnix":7,"id":"00000000-0000-0000-0000-000000000001","lastUpdateTimeUnix":7,"properties":{"a":1},"deprecations":null,"result":{"errors":{"error":[{"message":"boom"}]},"status":"FAILED"}}"#
        );
        let generated = failed_entry(json!({"class": "C"}), "x", 1);
        assert_eq!(generated["id"].as_str().map(str::len), Some(36));
        assert_eq!(generated["properties"], json!({}));
    }
}
