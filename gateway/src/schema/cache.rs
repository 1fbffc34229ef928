//! The cached upstream schema: which classes are clip-managed (issue 4, "A class is clip-managed
//! when its schema (from upstream `GET /v1/schema`, cached, refreshed when the gateway changes the
//! schema and on a short TTL)").
//!
//! The schema is fetched with the caller's own credentials, so a caller that may not read the
//! schema gets Weaviate's 401/403 instead of a view fetched by someone else. Concurrent callers
//! that find the view stale share one fetch.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, StatusCode};

use super::SchemaView;
use crate::error::GatewayError;
use crate::upstream::Upstream;

/// A cloneable handle on the cached schema view.
#[derive(Clone)]
pub struct SchemaCache {
    inner: Arc<Inner>,
}

struct Inner {
    ttl: Duration,
    state: Mutex<State>,
    /// Held by the one caller that fetches; the others wait on it and then find a fresh view.
    fetch: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    /// Bumped by `invalidate`: a view fetched before the bump is never fresh again.
    generation: u64,
    cached: Option<Cached>,
}

struct Cached {
    view: Arc<SchemaView>,
    fetched_at: Instant,
    generation: u64,
}

impl std::fmt::Debug for SchemaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaCache")
            .field("ttl", &self.inner.ttl)
            .finish()
    }
}

impl SchemaCache {
    /// An empty cache whose views stay fresh for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                ttl,
                state: Mutex::new(State::default()),
                fetch: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The current view, fetched from the upstream (`GET /v1/schema` with the caller's headers)
    /// when stale or invalidated. An upstream error status (e.g. 401/403) is returned as
    /// [`GatewayError::Upstream`], which answers the client with the upstream's status and body.
    pub async fn view(
        &self,
        upstream: &Upstream,
        caller: &HeaderMap,
    ) -> Result<Arc<SchemaView>, GatewayError> {
        if let Some(view) = self.fresh() {
            return Ok(view);
        }
        let _fetching = self.inner.fetch.lock().await;
        if let Some(view) = self.fresh() {
            return Ok(view);
        }
        let generation = self.lock().generation;
        let (status, body) = upstream
            .request_json(Method::GET, "/v1/schema", caller, None)
            .await?;
        if status != StatusCode::OK {
            return Err(GatewayError::Upstream { status, body });
        }
        let schema: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            GatewayError::UpstreamBadResponse(format!("GET /v1/schema is not JSON: {e}"))
        })?;
        let view = Arc::new(SchemaView::from_upstream(&schema));
        let mut state = self.lock();
        // A schema change made while this fetch ran keeps the new generation stale.
        state.cached = Some(Cached {
            view: view.clone(),
            fetched_at: Instant::now(),
            generation,
        });
        Ok(view)
    }

    /// Marks the cached view stale: the next `view` fetches. Called after every schema change
    /// made through the gateway.
    pub fn invalidate(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.cached = None;
    }

    /// The cached view if it is fresh; never fetches.
    pub(crate) fn fresh(&self) -> Option<Arc<SchemaView>> {
        let state = self.lock();
        let cached = state.cached.as_ref()?;
        (cached.generation == state.generation && cached.fetched_at.elapsed() < self.inner.ttl)
            .then(|| cached.view.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value; a panic elsewhere cannot leave it half-written.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
