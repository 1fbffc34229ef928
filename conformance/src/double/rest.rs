//! REST handlers of an unmodified Weaviate without vectorizer modules (spec §2.1, §6, §9).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::auth::Principal;
use super::graphql::{self, GraphqlRequest};
use super::json::{go_f32_vec, go_type, sorted};
use super::schema::{class_name, property_name, SchemaError};
use super::store::{ObjectError, ObjectInput, StoredObject, WriteMode};
use super::Double;

/// `{"error":[{"message":…}]}` with a status (§2.1).
pub fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": [{"message": message.into()}]})),
    )
        .into_response()
}

/// 422 `RestrictionViolationResponse` of the schema endpoints (§2.1).
fn restriction(e: SchemaError) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"allowed": null, "error": [{"message": e.0}]})),
    )
        .into_response()
}

fn object_error(e: ObjectError) -> Response {
    match e {
        ObjectError::Invalid(m) => error_response(StatusCode::UNPROCESSABLE_ENTITY, m),
        ObjectError::NotFound => StatusCode::NOT_FOUND.into_response(),
        ObjectError::Internal(m) => error_response(StatusCode::INTERNAL_SERVER_ERROR, m),
    }
}

fn forbidden(principal: &Principal, class: &str) -> Response {
    error_response(StatusCode::FORBIDDEN, principal.forbidden_message(class))
}

/// A request refused before the handler runs (malformed body, path or query), rendered in
/// the shapes go-swagger / Weaviate use.
#[derive(Debug, thiserror::Error)]
enum Reject {
    /// 422 `{"code":602,…}`: the body is not JSON.
    #[error("parsing body body from \"\" failed, because {0}")]
    BodyNotJson(String),
    /// 422 `{"code":606,…}`: a path id is not a uuid.
    #[error("id in path must be of type uuid: \"{0}\"")]
    PathIdNotUuid(String),
    /// 400 `{"error":[…]}`: an unknown `?include=` value.
    #[error("unrecognized property '{0}' in ?include list")]
    UnknownInclude(String),
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            Self::BodyNotJson(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"code": 602, "message": message})),
            )
                .into_response(),
            Self::PathIdNotUuid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"code": 606, "message": message})),
            )
                .into_response(),
            Self::UnknownInclude(_) => error_response(StatusCode::BAD_REQUEST, message),
        }
    }
}

fn parse_body(body: &Bytes) -> Result<Value, Reject> {
    serde_json::from_slice(body).map_err(|e| Reject::BodyNotJson(e.to_string()))
}

// ---------------------------------------------------------------- misc

pub async fn meta() -> Json<Value> {
    Json(json!({
        "grpcMaxMessageSize": 104_858_000,
        "hostname": "http://[::]:8080",
        "modules": {},
        "version": "1.39.0"
    }))
}

/// `GET /v1/nodes`: one healthy node. The Python v3 client's dynamic batching polls it for the
/// batch queue statistics.
pub async fn nodes() -> Json<Value> {
    Json(json!({
        "nodes": [{
            "batchStats": {"queueLength": 0, "ratePerSecond": 0},
            "gitHash": "",
            "name": "weaviate-double",
            "shards": null,
            "stats": {"objectCount": 0, "shardCount": 0},
            "status": "HEALTHY",
            "version": "1.39.0"
        }]
    }))
}

pub async fn ok() -> StatusCode {
    StatusCode::OK
}

pub async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}

// ---------------------------------------------------------------- schema

pub async fn get_schema(State(d): State<Double>) -> Json<Value> {
    let classes: Vec<Value> = d.store.schema().into_iter().map(Value::Object).collect();
    Json(json!({"classes": classes}))
}

pub async fn create_class(State(d): State<Double>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    match d.store.create_class(body) {
        Ok(def) => Json(Value::Object(def)).into_response(),
        Err(e) => restriction(e),
    }
}

pub async fn get_class(
    State(d): State<Double>,
    Extension(p): Extension<Principal>,
    Path(class): Path<String>,
) -> Response {
    let class = class_name(&class);
    if !p.can_access(&class) {
        return forbidden(&p, &class);
    }
    match d.store.class_def(&class) {
        Some(def) => Json(Value::Object(def)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub async fn update_class(
    State(d): State<Double>,
    Path(class): Path<String>,
    body: Bytes,
) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    match d.store.update_class(&class, body) {
        Ok(Some(def)) => Json(Value::Object(def)).into_response(),
        Ok(None) => error_response(
            StatusCode::NOT_FOUND,
            format!("class '{}' not found", class_name(&class)),
        ),
        Err(e) => restriction(e),
    }
}

pub async fn delete_class(State(d): State<Double>, Path(class): Path<String>) -> StatusCode {
    d.store.delete_class(&class);
    StatusCode::OK
}

pub async fn add_property(
    State(d): State<Double>,
    Path(class): Path<String>,
    body: Bytes,
) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    match d.store.add_property(&class, body) {
        Ok(Some(p)) => Json(Value::Object(p)).into_response(),
        Ok(None) => error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("class \"{}\" not found in schema", class_name(&class)),
        ),
        Err(e) => restriction(e),
    }
}

pub async fn add_tenants(
    State(d): State<Double>,
    Path(class): Path<String>,
    body: Bytes,
) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let names: Vec<String> = body
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|t| t.get("name")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    match d.store.add_tenants(&class, names.clone()) {
        Ok(Some(())) => Json(Value::Array(
            names
                .into_iter()
                .map(|n| json!({"activityStatus": "HOT", "name": n}))
                .collect(),
        ))
        .into_response(),
        Ok(None) => error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("class \"{}\" not found in schema", class_name(&class)),
        ),
        Err(e) => error_response(StatusCode::UNPROCESSABLE_ENTITY, e.0),
    }
}

pub async fn get_tenants(State(d): State<Double>, Path(class): Path<String>) -> Response {
    match d.store.tenants(&class) {
        Some(names) => Json(Value::Array(
            names
                .into_iter()
                .map(|n| json!({"activityStatus": "HOT", "name": n}))
                .collect(),
        ))
        .into_response(),
        None => error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("class \"{}\" not found in schema", class_name(&class)),
        ),
    }
}

// ---------------------------------------------------------------- objects

/// Renders an object as Weaviate's `Object` model (fields alphabetical, properties sorted).
pub fn object_json(o: &StoredObject, include_vector: bool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("class".into(), json!(o.class));
    m.insert("creationTimeUnix".into(), json!(o.creation_time_unix));
    m.insert("id".into(), json!(o.id));
    m.insert("lastUpdateTimeUnix".into(), json!(o.last_update_time_unix));
    m.insert(
        "properties".into(),
        sorted(Value::Object(o.properties.clone())),
    );
    if let Some(t) = &o.tenant {
        m.insert("tenant".into(), json!(t));
    }
    if include_vector {
        if let Some(v) = &o.vector {
            m.insert("vector".into(), go_f32_vec(v));
        }
        if !o.vectors.is_empty() {
            let named: Map<String, Value> = o
                .vectors
                .iter()
                .map(|(k, v)| (k.clone(), go_f32_vec(v)))
                .collect();
            m.insert("vectors".into(), Value::Object(named));
        }
    }
    m
}

fn parse_vector(v: &Value, what: &str) -> Result<Vec<f32>, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("{what} must be an array of numbers"))?;
    items
        .iter()
        .map(|x| {
            x.as_f64().map(|f| f as f32).ok_or_else(|| {
                if x.is_array() {
                    format!("{what}: multi-vectors are not supported by the Weaviate double")
                } else {
                    format!("{what} must be an array of numbers")
                }
            })
        })
        .collect()
}

/// Parses a REST `Object` body into a store write.
pub fn parse_object(body: &Value) -> Result<ObjectInput, String> {
    let obj = body.as_object().ok_or("object must be a JSON object")?;
    let mut input = ObjectInput {
        class: obj
            .get("class")
            .and_then(Value::as_str)
            .map(class_name)
            .unwrap_or_default(),
        tenant: obj.get("tenant").and_then(Value::as_str).map(str::to_owned),
        ..ObjectInput::default()
    };
    if let Some(id) = obj.get("id").filter(|v| !v.is_null()) {
        let text = id.as_str().unwrap_or_default();
        input.id = Some(
            Uuid::parse_str(text)
                .map_err(|_| format!("id in body must be of type uuid: \"{text}\""))?,
        );
    }
    match obj.get("properties") {
        None | Some(Value::Null) => {}
        Some(Value::Object(props)) => {
            input.properties = props
                .iter()
                .map(|(k, v)| (property_name(k), v.clone()))
                .collect();
        }
        Some(_) => return Err("invalid object: properties must be an object".into()),
    }
    if let Some(v) = obj.get("vector").filter(|v| !v.is_null()) {
        input.vector = Some(parse_vector(v, "vector")?);
    }
    if let Some(vs) = obj.get("vectors").filter(|v| !v.is_null()) {
        let vs = vs.as_object().ok_or("vectors must be an object")?;
        let mut named = BTreeMap::new();
        for (name, v) in vs {
            named.insert(name.clone(), parse_vector(v, &format!("vectors.{name}"))?);
        }
        input.vectors = named;
    }
    Ok(input)
}

#[derive(Debug, Deserialize, Default)]
pub struct ObjectQuery {
    include: Option<String>,
    tenant: Option<String>,
    class: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// `?include=` values known to a Weaviate without modules.
fn include_vector(q: &ObjectQuery) -> Result<bool, Reject> {
    let mut vector = false;
    for item in q
        .include
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
    {
        match item {
            "" | "classification" => {}
            "vector" => vector = true,
            other => return Err(Reject::UnknownInclude(other.to_owned())),
        }
    }
    Ok(vector)
}

fn parse_id(raw: &str) -> Result<Uuid, Reject> {
    Uuid::parse_str(raw).map_err(|_| Reject::PathIdNotUuid(raw.to_owned()))
}

pub async fn create_object(
    State(d): State<Double>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let input = match parse_object(&body) {
        Ok(i) => i,
        Err(m) => return error_response(StatusCode::UNPROCESSABLE_ENTITY, m),
    };
    if !p.can_access(&input.class) {
        return forbidden(&p, &input.class);
    }
    match d.store.put_object(input, WriteMode::Create) {
        Ok(o) => Json(Value::Object(object_json(&o, true))).into_response(),
        Err(e) => object_error(e),
    }
}

pub async fn validate_object(
    State(d): State<Double>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let input = match parse_object(&body) {
        Ok(i) => i,
        Err(m) => return error_response(StatusCode::UNPROCESSABLE_ENTITY, m),
    };
    if !p.can_access(&input.class) {
        return forbidden(&p, &input.class);
    }
    match d.store.validate_object(&input) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => object_error(e),
    }
}

pub async fn list_objects(
    State(d): State<Double>,
    Extension(p): Extension<Principal>,
    Query(q): Query<ObjectQuery>,
) -> Response {
    let with_vector = match include_vector(&q) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let class = q.class.as_deref().map(class_name);
    if let Some(c) = &class {
        if !p.can_access(c) {
            return forbidden(&p, c);
        }
    }
    let limit = q.limit.unwrap_or(25);
    match d.store.list_objects(
        class.as_deref(),
        q.tenant.as_deref(),
        q.offset.unwrap_or(0),
        limit,
    ) {
        Ok(objects) => {
            let objects: Vec<Value> = objects
                .iter()
                .filter(|o| p.can_access(&o.class))
                .map(|o| Value::Object(object_json(o, with_vector)))
                .collect();
            let total = objects.len();
            Json(json!({"deprecations": null, "objects": objects, "totalResults": total}))
                .into_response()
        }
        Err(ObjectError::NotFound) => error_response(
            StatusCode::NOT_FOUND,
            format!(
                "class \"{}\" not found in schema",
                class.unwrap_or_default()
            ),
        ),
        Err(e) => object_error(e),
    }
}

fn get_impl(d: &Double, p: &Principal, class: Option<&str>, id: &str, q: &ObjectQuery) -> Response {
    let with_vector = match include_vector(q) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let id = match parse_id(id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let class = class.map(class_name);
    if let Some(c) = &class {
        if !p.can_access(c) {
            return forbidden(p, c);
        }
    }
    match d
        .store
        .get_object(class.as_deref(), id, q.tenant.as_deref())
    {
        Ok(o) if !p.can_access(&o.class) => forbidden(p, &o.class),
        Ok(o) => Json(Value::Object(object_json(&o, with_vector))).into_response(),
        Err(e) => object_error(e),
    }
}

pub async fn get_object(
    State(d): State<Double>,
    Extension(p): Extension<Principal>,
    Path((class, id)): Path<(String, String)>,
    Query(q): Query<ObjectQuery>,
) -> Response {
    get_impl(&d, &p, Some(&class), &id, &q)
}

pub async fn get_object_by_id(
    State(d): State<Double>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<ObjectQuery>,
) -> Response {
    get_impl(&d, &p, None, &id, &q)
}

fn head_impl(
    d: &Double,
    p: &Principal,
    class: Option<&str>,
    id: &str,
    q: &ObjectQuery,
) -> Response {
    let response = get_impl(d, p, class, id, q);
    match response.status() {
        StatusCode::OK => StatusCode::NO_CONTENT.into_response(),
        _ => response.status().into_response(),
    }
}

pub async fn head_object(
    State(d): State<Double>,
    Extension(p): Extension<Principal>,
    Path((class, id)): Path<(String, String)>,
    Query(q): Query<ObjectQuery>,
) -> Response {
    head_impl(&d, &p, Some(&class), &id, &q)
}

pub async fn head_object_by_id(
    State(d): State<Double>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<ObjectQuery>,
) -> Response {
    head_impl(&d, &p, None, &id, &q)
}

pub async fn put_object(
    State(d): State<Double>,
    Extension(p): Extension<Principal>,
    Path((class, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let mut input = match parse_object(&body) {
        Ok(i) => i,
        Err(m) => return error_response(StatusCode::UNPROCESSABLE_ENTITY, m),
    };
    if input.id.is_some_and(|body_id| body_id != id) {
        return error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid update: field 'id' is immutable",
        );
    }
    input.id = Some(id);
    input.class = class_name(&class);
    if !p.can_access(&input.class) {
        return forbidden(&p, &input.class);
    }
    match d.store.put_object(input, WriteMode::Upsert) {
        Ok(o) => Json(Value::Object(object_json(&o, true))).into_response(),
        Err(e) => object_error(e),
    }
}

pub async fn patch_object(
    State(d): State<Double>,
    Extension(p): Extension<Principal>,
    Path((class, id)): Path<(String, String)>,
    Query(q): Query<ObjectQuery>,
    body: Bytes,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let mut input = match parse_object(&body) {
        Ok(i) => i,
        Err(m) => return error_response(StatusCode::UNPROCESSABLE_ENTITY, m),
    };
    input.id = Some(id);
    input.class = class_name(&class);
    if input.tenant.is_none() {
        input.tenant = q.tenant.clone();
    }
    if !p.can_access(&input.class) {
        return forbidden(&p, &input.class);
    }
    match d.store.merge_object(input) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => object_error(e),
    }
}

pub async fn delete_object(
    State(d): State<Double>,
    Extension(p): Extension<Principal>,
    Path((class, id)): Path<(String, String)>,
    Query(q): Query<ObjectQuery>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let class = class_name(&class);
    if !p.can_access(&class) {
        return forbidden(&p, &class);
    }
    match d.store.delete_object(Some(&class), id, q.tenant.as_deref()) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => object_error(e),
    }
}

pub async fn delete_object_by_id(
    State(d): State<Double>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<ObjectQuery>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    match d.store.get_object(None, id, q.tenant.as_deref()) {
        Ok(o) if !p.can_access(&o.class) => return forbidden(&p, &o.class),
        Ok(_) => {}
        Err(e) => return object_error(e),
    }
    match d.store.delete_object(None, id, q.tenant.as_deref()) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => object_error(e),
    }
}

// ---------------------------------------------------------------- batch

/// `POST /v1/batch/objects` (§9): one result per input object, in input order.
pub async fn batch_objects(
    State(d): State<Double>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let items = body
        .get("objects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.is_empty() {
        return error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid param 'objects': cannot be empty, need at least one object for batching",
        );
    }
    let mut inputs = Vec::with_capacity(items.len());
    for item in &items {
        match parse_object(item) {
            Ok(i) => inputs.push(i),
            Err(m) => return error_response(StatusCode::UNPROCESSABLE_ENTITY, m),
        }
    }
    if let Some(denied) = inputs.iter().find(|i| !p.can_access(&i.class)) {
        return forbidden(&p, &denied.class);
    }
    let results: Vec<Value> = inputs
        .into_iter()
        .zip(items)
        .map(|(input, raw)| {
            let mut entry = match d.store.put_object(input, WriteMode::Upsert) {
                Ok(o) => {
                    let mut m = object_json(&o, true);
                    m.insert("deprecations".into(), Value::Null);
                    m.insert("result".into(), json!({"status": "SUCCESS"}));
                    m
                }
                Err(e) => {
                    let mut m = raw.as_object().cloned().unwrap_or_default();
                    m.insert("deprecations".into(), Value::Null);
                    m.insert(
                        "result".into(),
                        json!({"errors": {"error": [{"message": e.to_string()}]}, "status": "FAILED"}),
                    );
                    m
                }
            };
            entry.shift_remove("additional");
            Value::Object(entry)
        })
        .collect();
    Json(Value::Array(results)).into_response()
}

// ---------------------------------------------------------------- graphql

fn graphql_request(body: &Value) -> Result<GraphqlRequest, String> {
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if query.is_empty() {
        return Err("query cannot be empty".into());
    }
    let variables = match body.get("variables") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(v)) => v.clone(),
        Some(other) => {
            return Err(format!(
                "variables must be a JSON object, got {}",
                go_type(other)
            ))
        }
    };
    Ok(GraphqlRequest {
        query: query.to_owned(),
        operation_name: body
            .get("operationName")
            .and_then(Value::as_str)
            .map(str::to_owned),
        variables,
    })
}

/// `POST /v1/graphql` (§2.1): HTTP 200 for executed queries, 422 for endpoint-level failures.
pub async fn graphql_single(
    State(d): State<Double>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    match graphql_request(&body) {
        Ok(req) => Json(graphql::execute(&d.store, &p, &req)).into_response(),
        Err(m) => error_response(StatusCode::UNPROCESSABLE_ENTITY, m),
    }
}

/// `POST /v1/graphql/batch`: an array of requests in, an array of responses out.
pub async fn graphql_batch(
    State(d): State<Double>,
    Extension(p): Extension<Principal>,
    body: Bytes,
) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let Some(items) = body.as_array() else {
        return error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            "batch body must be an array",
        );
    };
    let out: Vec<Value> = items
        .iter()
        .map(|item| match graphql_request(item) {
            Ok(req) => graphql::execute(&d.store, &p, &req),
            Err(m) => json!({"errors": [{"message": m}]}),
        })
        .collect();
    Json(Value::Array(out)).into_response()
}
