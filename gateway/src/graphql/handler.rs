//! `POST /v1/graphql` and `POST /v1/graphql/batch`: plan → embed → rewrite → forward.
//!
//! A request the gateway cannot or need not interpret (not JSON, no `query` string, a syntax
//! error, no module argument) is forwarded with its original bytes, so Weaviate answers it
//! exactly as it would without the gateway.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, Method, StatusCode};
use serde_json::Value;

use super::embed::{compute, Needs, UpstreamObjects};
use super::errors::{merge_field_errors, validation_response, GqlError};
use super::limits::{self, LimitError, Limits};
use super::plan::{self, Plan, Planned};
use super::rewrite::{rewrite, Rewritten};
use crate::error::GatewayError;
use crate::memo::Entry;
use crate::server::{read_body, AppState};

/// Requests by outcome: `forwarded` (untouched), `rewritten`, `invalid` (answered locally).
const REQUESTS_TOTAL: &str = "clipgate_graphql_requests_total";
/// Class fields answered with a resolver error by the gateway (validation, embedding, lookups).
const FIELD_ERRORS_TOTAL: &str = "clipgate_graphql_field_errors_total";
/// Rewritten requests answered from the rewritten-document cache (`memo.rs`).
const MEMO_HITS_TOTAL: &str = "clipgate_graphql_rewrite_cache_hits_total";

/// The GraphQL routes, merged into the gateway's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/graphql", post(graphql))
        .route("/v1/graphql/batch", post(graphql_batch))
}

/// `POST /v1/graphql`.
pub async fn graphql(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let result = match read_body(body).await {
        Ok(bytes) => single(&state, &parts, bytes).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /v1/graphql/batch`: an array of requests, answered by an array in the same order. All
/// texts and images of the whole batch are embedded in one call each.
pub async fn graphql_batch(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let result = match read_body(body).await {
        Ok(bytes) => batch(&state, &parts, bytes).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// A request body as JSON and as a plan input; `None` when the gateway should not interpret it.
fn parse_request(item: &Value) -> Option<plan::Request> {
    let object = item.as_object()?;
    let query = object.get("query")?.as_str()?.to_string();
    let operation_name = match object.get("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return None,
    };
    let variables = match object.get("variables") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(m)) => m.clone(),
        // Weaviate answers `variables must be a JSON object, got …` itself.
        Some(_) => return None,
    };
    Some(plan::Request {
        query,
        operation_name,
        variables,
    })
}

/// Counts a request answered from the rewrite cache (`memo.rs`).
pub(crate) fn count_memo_hit() {
    static COUNTERS: std::sync::OnceLock<(metrics::Counter, metrics::Counter)> =
        std::sync::OnceLock::new();
    let (rewritten, hits) = COUNTERS.get_or_init(|| {
        (
            metrics::counter!(REQUESTS_TOTAL, "outcome" => "rewritten"),
            metrics::counter!(MEMO_HITS_TOTAL),
        )
    });
    rewritten.increment(1);
    hits.increment(1);
}

fn count(outcome: &'static str) {
    metrics::counter!(REQUESTS_TOTAL, "outcome" => outcome).increment(1);
}

async fn forward(state: &AppState, parts: &Parts, bytes: Bytes) -> Result<Response, GatewayError> {
    count("forwarded");
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let response = state
        .upstream
        .request_bytes(Method::POST, path, &parts.headers, content_type, bytes)
        .await?;
    Ok(response.map(Body::from))
}

/// Sends a rewritten body; returns the upstream's response, its body parsed when it is JSON.
async fn send_json(
    state: &AppState,
    parts: &Parts,
    body: &Value,
) -> Result<(http::response::Parts, Bytes, Option<Value>), GatewayError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| GatewayError::Internal(format!("cannot serialize the GraphQL body: {e}")))?;
    let (head, body) = send_bytes(state, parts, Bytes::from(bytes)).await?;
    let json = serde_json::from_slice(&body).ok();
    Ok((head, body, json))
}

/// Sends a rewritten body as it is.
async fn send_bytes(
    state: &AppState,
    parts: &Parts,
    bytes: Bytes,
) -> Result<(http::response::Parts, Bytes), GatewayError> {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let response = state
        .upstream
        .request_bytes(
            Method::POST,
            path,
            &parts.headers,
            Some("application/json"),
            bytes,
        )
        .await?;
    Ok(response.into_parts())
}

/// Sends the upstream body of a rewrite and answers with Weaviate's response restored for the
/// client. An answer without `errors` needs no restoring when no field failed, and is passed on
/// without being parsed.
async fn send_rewritten(
    state: &AppState,
    parts: &Parts,
    upstream_body: Bytes,
    rewritten: &Rewritten,
) -> Result<Response, GatewayError> {
    let (head, raw) = send_bytes(state, parts, upstream_body).await?;
    if let Some(answer) = restored(&raw, rewritten) {
        return Ok(with_body(head, &answer));
    }
    Ok(Response::from_parts(head, Body::from(raw)))
}

/// Weaviate's answer `raw` to a rewritten document as the client must see it ([`restore`]);
/// `None` when it passes unchanged. An answer without `errors` needs no restoring when no field
/// failed, and is not parsed.
pub(crate) fn restored(raw: &[u8], rewritten: &Rewritten) -> Option<Value> {
    let may_need_restoring =
        !rewritten.errors.is_empty() || memchr::memmem::find(raw, b"\"errors\"").is_some();
    if !may_need_restoring {
        return None;
    }
    let mut answer = serde_json::from_slice::<Value>(raw).ok()?;
    restore(&mut answer, rewritten).then_some(answer)
}

/// A body rewritten before against the current schema view goes upstream as it was rewritten
/// (`crate::memo`); `None` when it is not kept.
async fn memoized(
    state: &AppState,
    parts: &Parts,
    bytes: &Bytes,
) -> Result<Option<Response>, GatewayError> {
    let Some(entry) = state.memo.get(bytes).await else {
        return Ok(None);
    };
    let view = state.schema.view(&state.upstream, &parts.headers).await?;
    if !entry.planned_against(&view) {
        return Ok(None);
    }
    count_memo_hit();
    send_rewritten(state, parts, entry.upstream_body.clone(), &entry.extra)
        .await
        .map(Some)
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    let mut response = (status, Body::from(value.to_string())).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn with_body(mut head: http::response::Parts, value: &Value) -> Response {
    head.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(head, Body::from(value.to_string()))
}

/// Embeds and rewrites several planned requests together.
async fn rewrite_all(state: &AppState, parts: &Parts, plans: &[&Plan]) -> Vec<Rewritten> {
    let mut needs = Needs::default();
    for plan in plans {
        needs.add(plan);
    }
    let objects = UpstreamObjects {
        upstream: &state.upstream,
        caller: &parts.headers,
    };
    let inputs = compute(
        &needs,
        state.embedder.as_ref(),
        &objects,
        state.config.inference_timeout,
    )
    .await;
    plans
        .iter()
        .map(|plan| {
            let rewritten = rewrite(plan, &inputs);
            metrics::counter!(FIELD_ERRORS_TOTAL).increment(rewritten.errors.len() as u64);
            rewritten
        })
        .collect()
}

/// Weaviate's answer to a rewritten document, as the client must see it: errors located in the
/// client's own document, and the fields the gateway could not compute `null` with their errors.
fn restore(answer: &mut Value, rewritten: &Rewritten) -> bool {
    let moved = rewritten.map.remap_errors(answer);
    merge_field_errors(answer, &rewritten.errors);
    moved || !rewritten.errors.is_empty()
}

async fn single(state: &AppState, parts: &Parts, bytes: Bytes) -> Result<Response, GatewayError> {
    if let Some(response) = memoized(state, parts, &bytes).await? {
        return Ok(response);
    }
    let Ok(mut body) = serde_json::from_slice::<Value>(&bytes) else {
        return forward(state, parts, bytes).await;
    };
    let Some(request) = parse_request(&body) else {
        return forward(state, parts, bytes).await;
    };
    let limits = Limits::from_config(&state.config);
    if let Err(error) = limits::check_document(&request.query, &limits) {
        count("invalid");
        return Ok(json_response(StatusCode::OK, &limits::refusal(&error)));
    }
    if !plan::mentions_module_arguments(&request.query) {
        return forward(state, parts, bytes).await;
    }
    let view = state.schema.view(&state.upstream, &parts.headers).await?;
    let plan = match plan::plan(&request, &view) {
        Planned::Forward => return forward(state, parts, bytes).await,
        Planned::Invalid(errors) => {
            count("invalid");
            return Ok(json_response(StatusCode::OK, &validation_response(&errors)));
        }
        Planned::Rewrite(mut plan) => {
            limits::check_plan(&mut plan, &limits);
            plan
        }
    };
    count("rewritten");
    let rewritten = rewrite_all(state, parts, &[&plan])
        .await
        .pop()
        .unwrap_or_default();
    body["query"] = Value::String(rewritten.query.clone());
    let upstream_body =
        Bytes::from(serde_json::to_vec(&body).map_err(|e| {
            GatewayError::Internal(format!("cannot serialize the GraphQL body: {e}"))
        })?);
    let mut needs = Needs::default();
    needs.add(&plan);
    if rewritten.errors.is_empty() && needs.objects.is_empty() {
        let entry = Entry {
            view: view.clone(),
            upstream_body: upstream_body.clone(),
            extra: rewritten.clone(),
        };
        state.memo.insert(bytes, entry).await;
    }
    send_rewritten(state, parts, upstream_body, &rewritten).await
}

/// One element of a GraphQL batch.
enum Item {
    Forward(Value),
    Invalid(Vec<GqlError>),
    /// Over a document limit (answered locally, like `Invalid`).
    Refused(LimitError),
    Rewrite(Value, Plan),
}

async fn batch(state: &AppState, parts: &Parts, bytes: Bytes) -> Result<Response, GatewayError> {
    let Ok(Value::Array(elements)) = serde_json::from_slice::<Value>(&bytes) else {
        return forward(state, parts, bytes).await;
    };
    let requests: Vec<Option<plan::Request>> = elements.iter().map(parse_request).collect();
    let limits = Limits::from_config(&state.config);
    let refusals: Vec<Option<LimitError>> = requests
        .iter()
        .map(|r| {
            r.as_ref()
                .and_then(|r| limits::check_document(&r.query, &limits).err())
        })
        .collect();
    if refusals.iter().all(Option::is_none)
        && !requests
            .iter()
            .flatten()
            .any(|r| plan::mentions_module_arguments(&r.query))
    {
        return forward(state, parts, bytes).await;
    }
    let view = state.schema.view(&state.upstream, &parts.headers).await?;
    let items: Vec<Item> = elements
        .into_iter()
        .zip(&requests)
        .zip(refusals)
        .map(|((element, request), refusal)| {
            if let Some(error) = refusal {
                return Item::Refused(error);
            }
            match request.as_ref().map(|r| plan::plan(r, &view)) {
                Some(Planned::Invalid(errors)) => Item::Invalid(errors),
                Some(Planned::Rewrite(mut plan)) => {
                    limits::check_plan(&mut plan, &limits);
                    Item::Rewrite(element, plan)
                }
                Some(Planned::Forward) | None => Item::Forward(element),
            }
        })
        .collect();
    if items.iter().all(|i| matches!(i, Item::Forward(_))) {
        return forward(state, parts, bytes).await;
    }
    count("rewritten");
    let plans: Vec<&Plan> = items
        .iter()
        .filter_map(|i| match i {
            Item::Rewrite(_, plan) => Some(plan),
            _ => None,
        })
        .collect();
    let mut rewritten = rewrite_all(state, parts, &plans).await.into_iter();
    let mut upstream_items = Vec::new();
    // Per upstream item: how to restore its answer (`None` for an item forwarded as it was).
    let mut restorers: Vec<Option<Rewritten>> = Vec::new();
    for item in &items {
        match item {
            Item::Forward(element) => {
                upstream_items.push(element.clone());
                restorers.push(None);
            }
            Item::Rewrite(element, _) => {
                let rewritten = rewritten.next().unwrap_or_default();
                let mut element = element.clone();
                element["query"] = Value::String(rewritten.query.clone());
                upstream_items.push(element);
                restorers.push(Some(rewritten));
            }
            Item::Invalid(_) | Item::Refused(_) => {}
        }
    }
    let mut answers = if upstream_items.is_empty() {
        Vec::new()
    } else {
        let (head, raw, json) =
            send_json(state, parts, &Value::Array(upstream_items.clone())).await?;
        match json {
            Some(Value::Array(answers)) if answers.len() == upstream_items.len() => answers,
            // Not a batch answer (e.g. an error status): pass it on as it is.
            _ => return Ok(Response::from_parts(head, Body::from(raw))),
        }
    }
    .into_iter()
    .zip(restorers);
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        match item {
            Item::Invalid(errors) => out.push(validation_response(errors)),
            Item::Refused(error) => out.push(limits::refusal(error)),
            _ => {
                if let Some((mut answer, rewritten)) = answers.next() {
                    if let Some(rewritten) = &rewritten {
                        restore(&mut answer, rewritten);
                    }
                    out.push(answer);
                }
            }
        }
    }
    Ok(json_response(StatusCode::OK, &Value::Array(out)))
}
