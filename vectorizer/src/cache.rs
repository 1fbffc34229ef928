//! The embedding cache in front of any [`Embedder`] (issue 2, item 7).
//!
//! * Key: SHA-256 of the embedder's fingerprint, the modality and the exact input bytes, so two
//!   models, or a text and an image with the same bytes, never share a vector.
//! * Bounded by bytes, not entries (moka weigher), because vector sizes differ between models.
//! * Single-flight: concurrent misses for the same key wait for one computation.
//! * Batching is kept: all misses of one request go to the inner embedder in ONE call, while
//!   keys another request is already computing are joined rather than recomputed.
//! * Failures are handed to the requests waiting at that moment, never stored.
//!
//! The computation runs in a spawned task, so a client that disconnects does not cancel work
//! other requests wait for, and its result still lands in the cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use futures::channel::oneshot;
use futures::future::{FutureExt, Shared};
use moka::notification::RemovalCause;
use sha2::{Digest, Sha256};

use crate::metrics::{
    CACHE_BYTES, CACHE_ENTRIES, CACHE_EVICTIONS, CACHE_HITS, CACHE_MISSES, INFERENCE_BATCH_SIZE,
    INFERENCE_ERRORS, INFERENCE_SECONDS,
};
use crate::{EmbedError, Embedder, Vector};

/// Bytes charged per entry on top of the vector: the key, the `Arc` header and moka's own
/// bookkeeping. Measured with `bench/load.sh --soak` (issue 7): clipgate's RSS grew by about
/// 613 bytes per cached 64-dimensional vector (256 bytes of floats), so about 360 bytes per entry
/// besides the vector; with less charged, `--cache-mb` would bound well under the real memory.
const ENTRY_OVERHEAD_BYTES: u64 = 384;

/// How often a request re-examines keys that vanished between two looks at the cache (evicted
/// right after a concurrent computation stored them) before computing them uncached.
const MAX_ROUNDS: usize = 3;

/// Settings of [`Cached`].
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// Upper bound of the cache's weighted size in bytes (`--cache-mb` × 2²⁰). 0 turns caching
    /// off: every call goes to the inner embedder (metrics are still recorded).
    pub max_bytes: u64,
    /// Value of the `backend` label of the inference metrics (e.g. `tract`, `remote`).
    pub backend: String,
}

impl CacheOptions {
    /// A cache of `cache_mb` mebibytes in front of the backend named `backend`.
    pub fn from_mb(cache_mb: u64, backend: &str) -> Self {
        Self {
            max_bytes: cache_mb.saturating_mul(1024 * 1024),
            backend: backend.to_string(),
        }
    }
}

/// Counts since the cache was built (also exported as metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Inputs answered from the cache.
    pub hits: u64,
    /// Inputs not in the cache (computed, or joined a computation in flight).
    pub misses: u64,
    /// Entries evicted to respect the byte bound.
    pub evictions: u64,
    /// Entries now (moka applies pending evictions lazily; see [`Cached::run_pending_tasks`]).
    pub entries: u64,
    /// Weighted size now, in bytes.
    pub bytes: u64,
}

/// An [`Embedder`] that caches the vectors of `E`.
pub struct Cached<E: ?Sized> {
    inner: Arc<E>,
    backend: Arc<str>,
    store: Option<Store>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Modality {
    Text,
    Image,
}

impl Modality {
    fn label(self) -> &'static str {
        match self {
            Modality::Text => "text",
            Modality::Image => "image",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    modality: Modality,
    digest: [u8; 32],
}

type Outcome = Result<Vector, EmbedError>;
type Pending = Shared<oneshot::Receiver<Outcome>>;
type InFlight = Arc<Mutex<HashMap<Key, Pending>>>;

struct Store {
    cache: moka::future::Cache<Key, Vector>,
    in_flight: InFlight,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl<E: Embedder> Cached<E> {
    /// Wraps `inner`.
    pub fn new(inner: E, options: CacheOptions) -> Self {
        Self::from_arc(Arc::new(inner), options)
    }
}

impl<E: Embedder + ?Sized> Cached<E> {
    /// Wraps an embedder that is already shared (e.g. `Arc<dyn Embedder>`).
    pub fn from_arc(inner: Arc<E>, options: CacheOptions) -> Self {
        let store = (options.max_bytes > 0).then(|| {
            let counters = Arc::new(Counters::default());
            let listener_counters = counters.clone();
            let cache = moka::future::Cache::builder()
                .max_capacity(options.max_bytes)
                .weigher(|_key: &Key, vector: &Vector| {
                    u32::try_from(entry_weight(vector.len())).unwrap_or(u32::MAX)
                })
                .eviction_listener(move |key: Arc<Key>, _vector, cause| {
                    if cause == RemovalCause::Size {
                        listener_counters.evictions.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!(CACHE_EVICTIONS, "modality" => key.modality.label())
                            .increment(1);
                    }
                })
                .build();
            Store {
                cache,
                in_flight: Arc::default(),
                counters,
            }
        });
        Self {
            inner,
            backend: Arc::from(options.backend),
            store,
        }
    }

    /// The wrapped embedder.
    pub fn inner(&self) -> &Arc<E> {
        &self.inner
    }

    /// Hit, miss and eviction counts and the current size.
    pub fn stats(&self) -> CacheStats {
        match &self.store {
            None => CacheStats::default(),
            Some(store) => CacheStats {
                hits: store.counters.hits.load(Ordering::Relaxed),
                misses: store.counters.misses.load(Ordering::Relaxed),
                evictions: store.counters.evictions.load(Ordering::Relaxed),
                entries: store.cache.entry_count(),
                bytes: store.cache.weighted_size(),
            },
        }
    }

    /// Applies moka's pending maintenance (evictions, size accounting) now instead of lazily.
    pub async fn run_pending_tasks(&self) {
        if let Some(store) = &self.store {
            store.cache.run_pending_tasks().await;
            publish_size(&store.cache);
        }
    }

    async fn embed(&self, modality: Modality, inputs: &[String]) -> Vec<Outcome> {
        if inputs.is_empty() {
            return Vec::new();
        }
        let Some(store) = &self.store else {
            return infer(self.inner.as_ref(), &self.backend, modality, inputs).await;
        };
        let fingerprint = self.inner.fingerprint();
        let keys: Vec<Key> = inputs
            .iter()
            .map(|input| key(fingerprint, modality, input))
            .collect();
        let mut results: Vec<Option<Outcome>> = vec![None; inputs.len()];
        let mut open: Vec<usize> = (0..inputs.len()).collect();
        let (mut hits, mut misses) = (0u64, 0u64);

        for round in 0..MAX_ROUNDS {
            let mut unresolved = Vec::new();
            for i in open {
                match store.cache.get(&keys[i]).await {
                    Some(vector) => {
                        results[i] = Some(Ok(vector));
                        hits += 1;
                    }
                    None => unresolved.push(i),
                }
            }
            if unresolved.is_empty() {
                break;
            }
            if round + 1 == MAX_ROUNDS {
                // Keys that keep vanishing (a cache far too small for its traffic): compute
                // them directly rather than loop.
                let direct: Vec<String> = unresolved.iter().map(|&i| inputs[i].clone()).collect();
                let outcomes = infer(self.inner.as_ref(), &self.backend, modality, &direct).await;
                misses += unresolved.len() as u64;
                for (i, outcome) in unresolved.into_iter().zip(outcomes) {
                    results[i] = Some(outcome);
                }
                break;
            }

            let mut waits: Vec<(usize, Pending)> = Vec::new();
            let mut leading: Vec<(Key, String, oneshot::Sender<Outcome>)> = Vec::new();
            let mut recheck = Vec::new();
            {
                let mut in_flight = store
                    .in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for i in unresolved {
                    let k = keys[i];
                    if let Some(pending) = in_flight.get(&k) {
                        // Computed by another request, or by this one (duplicate input).
                        waits.push((i, pending.clone()));
                    } else if store.cache.contains_key(&k) {
                        // Stored after our lookup: a computation finished in between.
                        recheck.push(i);
                    } else {
                        let (tx, rx) = oneshot::channel();
                        let pending = rx.shared();
                        in_flight.insert(k, pending.clone());
                        waits.push((i, pending));
                        leading.push((k, inputs[i].clone(), tx));
                    }
                }
            }
            misses += waits.len() as u64;
            if !leading.is_empty() {
                self.spawn_computation(store, modality, leading);
            }
            for (i, pending) in waits {
                results[i] = Some(pending.await.unwrap_or_else(|_| {
                    Err(EmbedError::Inference(
                        "the inference task ended without a result".to_string(),
                    ))
                }));
            }
            open = recheck;
            if open.is_empty() {
                break;
            }
        }

        store.counters.hits.fetch_add(hits, Ordering::Relaxed);
        store.counters.misses.fetch_add(misses, Ordering::Relaxed);
        metrics::counter!(CACHE_HITS, "modality" => modality.label()).increment(hits);
        metrics::counter!(CACHE_MISSES, "modality" => modality.label()).increment(misses);
        publish_size(&store.cache);
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(EmbedError::Inference(
                        "cache: input left without a result".to_string(),
                    ))
                })
            })
            .collect()
    }

    /// Computes `leading` in one inner call in a task of its own, stores the successes, hands
    /// every outcome to its waiters, then removes the keys from the in-flight map (in that
    /// order, so a request arriving in between finds either the pending result or the entry).
    fn spawn_computation(
        &self,
        store: &Store,
        modality: Modality,
        leading: Vec<(Key, String, oneshot::Sender<Outcome>)>,
    ) {
        let inner = self.inner.clone();
        let backend = self.backend.clone();
        let cache = store.cache.clone();
        let mut keys = Vec::with_capacity(leading.len());
        let mut inputs = Vec::with_capacity(leading.len());
        let mut senders = Vec::with_capacity(leading.len());
        for (k, input, tx) in leading {
            keys.push(k);
            inputs.push(input);
            senders.push(tx);
        }
        // Removes the keys even if the inner embedder panics; the dropped senders then tell
        // the waiters that no result will come.
        let guard = InFlightGuard {
            in_flight: store.in_flight.clone(),
            keys,
        };
        tokio::spawn(async move {
            let outcomes = infer(inner.as_ref(), &backend, modality, &inputs).await;
            for ((k, tx), outcome) in guard.keys.iter().zip(senders).zip(outcomes) {
                if let Ok(vector) = &outcome {
                    cache.insert(*k, vector.clone()).await;
                }
                // A waiter that went away is not an error.
                let _ = tx.send(outcome);
            }
            drop(guard);
        });
    }
}

struct InFlightGuard {
    in_flight: InFlight,
    keys: Vec<Key>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for k in &self.keys {
            in_flight.remove(k);
        }
    }
}

#[async_trait]
impl<E: Embedder + ?Sized> Embedder for Cached<E> {
    async fn embed_texts(&self, texts: &[String]) -> Vec<Result<Vector, EmbedError>> {
        self.embed(Modality::Text, texts).await
    }

    async fn embed_images(&self, images: &[String]) -> Vec<Result<Vector, EmbedError>> {
        self.embed(Modality::Image, images).await
    }

    async fn meta(&self) -> Result<serde_json::Value, EmbedError> {
        self.inner.meta().await
    }

    async fn ready(&self) -> Result<(), EmbedError> {
        self.inner.ready().await
    }

    fn fingerprint(&self) -> &str {
        self.inner.fingerprint()
    }
}

/// One inner call, measured; a result list of the wrong length becomes one error per input
/// instead of a misattributed vector.
async fn infer<E: Embedder + ?Sized>(
    inner: &E,
    backend: &Arc<str>,
    modality: Modality,
    inputs: &[String],
) -> Vec<Outcome> {
    let started = Instant::now();
    let outcomes = match modality {
        Modality::Text => inner.embed_texts(inputs).await,
        Modality::Image => inner.embed_images(inputs).await,
    };
    let labels = [
        ("modality", modality.label().to_string()),
        ("backend", backend.to_string()),
    ];
    metrics::histogram!(INFERENCE_SECONDS, &labels).record(started.elapsed().as_secs_f64());
    metrics::histogram!(INFERENCE_BATCH_SIZE, "modality" => modality.label())
        .record(inputs.len() as f64);
    if outcomes.len() != inputs.len() {
        metrics::counter!(INFERENCE_ERRORS, &labels).increment(inputs.len() as u64);
        let error = EmbedError::Inference(format!(
            "embedder returned {} results for {} inputs",
            outcomes.len(),
            inputs.len()
        ));
        return vec![Err(error); inputs.len()];
    }
    let failed = outcomes.iter().filter(|o| o.is_err()).count() as u64;
    if failed > 0 {
        metrics::counter!(INFERENCE_ERRORS, &labels).increment(failed);
    }
    outcomes
}

fn key(fingerprint: &str, modality: Modality, input: &str) -> Key {
    let mut hasher = Sha256::new();
    // Length-prefixed, so that no (fingerprint, input) pair can be shifted into another.
    hasher.update((fingerprint.len() as u64).to_le_bytes());
    hasher.update(fingerprint.as_bytes());
    hasher.update([match modality {
        Modality::Text => b't',
        Modality::Image => b'i',
    }]);
    hasher.update(input.as_bytes());
    Key {
        modality,
        digest: hasher.finalize().into(),
    }
}

/// Bytes charged for an entry holding a vector of `dimensions` floats.
pub fn entry_weight(dimensions: usize) -> u64 {
    (dimensions as u64) * 4 + ENTRY_OVERHEAD_BYTES
}

fn publish_size(cache: &moka::future::Cache<Key, Vector>) {
    metrics::gauge!(CACHE_ENTRIES).set(cache.entry_count() as f64);
    metrics::gauge!(CACHE_BYTES).set(cache.weighted_size() as f64);
}
