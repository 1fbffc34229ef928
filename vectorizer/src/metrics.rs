//! Names of the vectorizer's metrics, emitted through the `metrics` facade.
//!
//! The crate only emits; the gateway installs the recorder (Prometheus) and serves `/metrics`.
//! Names are prefixed `clipgate_` (issue 2, item 7) and follow Prometheus conventions: counters end
//! in `_total`, durations are in seconds. Labels: `modality` is `text` or `image`; `backend` is the
//! label the cache was built with (e.g. `tract`, `remote`).

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// Counter, label `modality`: inputs answered from the embedding cache.
pub const CACHE_HITS: &str = "clipgate_cache_hits_total";
/// Counter, label `modality`: inputs not in the cache (computed, or joined a computation already
/// running for the same input: single-flight).
pub const CACHE_MISSES: &str = "clipgate_cache_misses_total";
/// Counter, label `modality`: entries removed to keep the cache under its byte bound.
pub const CACHE_EVICTIONS: &str = "clipgate_cache_evictions_total";
/// Gauge: entries in the cache (as of the last request; moka applies evictions lazily).
pub const CACHE_ENTRIES: &str = "clipgate_cache_entries";
/// Gauge: weighted size of the cache in bytes (vector bytes + key + per-entry overhead).
pub const CACHE_BYTES: &str = "clipgate_cache_bytes";
/// Histogram, labels `modality`, `backend`: wall time of one batched call to the model or container.
pub const INFERENCE_SECONDS: &str = "clipgate_inference_duration_seconds";
/// Histogram, label `modality`: number of inputs in one call to the model or container.
pub const INFERENCE_BATCH_SIZE: &str = "clipgate_inference_batch_size";
/// Counter, labels `modality`, `backend`: inputs whose computation failed.
pub const INFERENCE_ERRORS: &str = "clipgate_inference_errors_total";
/// Counter: requests to the remote container resent after a connection reset (spec §7.3).
pub const REMOTE_RETRIES: &str = "clipgate_remote_retries_total";

/// Suggested buckets for [`INFERENCE_SECONDS`] (1 ms … 60 s): a cached-miss text on the tiny
/// fixture model takes about a millisecond, a batch of images on ViT-B/32 takes seconds, and the
/// container's client timeout is 50 s.
pub const INFERENCE_SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Suggested buckets for [`INFERENCE_BATCH_SIZE`].
pub const INFERENCE_BATCH_SIZE_BUCKETS: &[f64] =
    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Registers the description and unit of every metric above with the installed recorder.
/// Call once after installing the recorder (descriptions sent before that are lost).
pub fn describe() {
    describe_counter!(
        CACHE_HITS,
        Unit::Count,
        "Embedding inputs answered from the cache"
    );
    describe_counter!(
        CACHE_MISSES,
        Unit::Count,
        "Embedding inputs not found in the cache (computed or joined an in-flight computation)"
    );
    describe_counter!(
        CACHE_EVICTIONS,
        Unit::Count,
        "Cache entries evicted to stay under the byte bound"
    );
    describe_gauge!(CACHE_ENTRIES, Unit::Count, "Entries in the embedding cache");
    describe_gauge!(
        CACHE_BYTES,
        Unit::Bytes,
        "Weighted size of the embedding cache in bytes"
    );
    describe_histogram!(
        INFERENCE_SECONDS,
        Unit::Seconds,
        "Duration of one batched inference call (model or remote container)"
    );
    describe_histogram!(
        INFERENCE_BATCH_SIZE,
        Unit::Count,
        "Inputs per batched inference call"
    );
    describe_counter!(
        INFERENCE_ERRORS,
        Unit::Count,
        "Inputs whose inference failed"
    );
    describe_counter!(
        REMOTE_RETRIES,
        Unit::Count,
        "Requests to the inference container resent after a connection reset"
    );
}
