//! The rewrite cache: a request body (a GraphQL document, a gRPC Search/Aggregate message) seen
//! before, against the same schema view, goes upstream as it was rewritten last time, without
//! parsing, planning, embedding or rewriting it again — the query-plan cache of Apollo Router, one
//! step further, since clipgate's "plan" ends in a message with the vectors written in.
//!
//! Only rewrites that depend on nothing but the body and the schema are kept: no move objects
//! (their vectors are read from Weaviate and may change) and no field errors (a failed embedding
//! is retried). Vectors come from the embedding cache, which already keeps the first vector
//! computed for an input, so a kept document carries the same vectors a fresh rewrite would.
//! Entries belong to one schema view: a refreshed or invalidated schema misses. The cache is off
//! when the embedding cache is (`--cache-mb 0`).

use std::sync::Arc;

use bytes::Bytes;
use moka::future::Cache;

use crate::schema::SchemaView;

/// One kept rewrite; `T` is what the caller needs besides the body (GraphQL: the source map).
#[derive(Debug)]
pub struct Entry<T> {
    /// The schema view it was planned against (kept alive, so the pointer stays unique).
    pub view: Arc<SchemaView>,
    /// The body sent upstream.
    pub upstream_body: Bytes,
    /// What restoring the answer needs (GraphQL: the source map, and no errors).
    pub extra: T,
}

impl<T> Entry<T> {
    /// Whether the entry was planned against `view` (the same `Arc`, not an equal schema).
    pub fn planned_against(&self, view: &Arc<SchemaView>) -> bool {
        Arc::ptr_eq(&self.view, view)
    }
}

/// Request body → rewrite, bounded by bytes.
#[derive(Clone)]
pub struct RewriteMemo<T> {
    cache: Option<Cache<Bytes, Arc<Entry<T>>>>,
}

impl<T: Send + Sync + 'static> RewriteMemo<T> {
    /// A cache of at most `max_bytes` (bodies, documents and maps counted); `0` turns it off.
    pub fn new(max_bytes: u64) -> Self {
        let cache = (max_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|body: &Bytes, entry: &Arc<Entry<T>>| {
                    // The extra part is at most about the size of the upstream body.
                    let size = body.len() + 2 * entry.upstream_body.len() + 256;
                    u32::try_from(size).unwrap_or(u32::MAX)
                })
                .build()
        });
        Self { cache }
    }

    /// The size the gateway uses for an embedding cache of `cache_mb` MiB: a sixteenth of it, at
    /// most 16 MiB, for each of GraphQL and gRPC (bodies are small; the embedding cache holds the
    /// expensive part).
    pub fn for_cache_mb(cache_mb: u64) -> Self {
        let bytes = (cache_mb.saturating_mul(1024 * 1024) / 16).min(16 * 1024 * 1024);
        Self::new(bytes)
    }

    /// The kept rewrite of `body`; the caller checks [`Entry::planned_against`] the current view.
    pub async fn get(&self, body: &Bytes) -> Option<Arc<Entry<T>>> {
        self.cache.as_ref()?.get(body).await
    }

    /// Keeps a rewrite (callers check that it qualifies, see the module docs). The key is
    /// copied: a request body is usually a slice of its connection's read buffer, which it
    /// would otherwise keep alive (and uncounted) as long as the entry.
    pub async fn insert(&self, body: Bytes, entry: Entry<T>) {
        if let Some(cache) = &self.cache {
            let body = Bytes::copy_from_slice(&body);
            cache.insert(body, Arc::new(entry)).await;
        }
    }
}
