//! The cache's metrics reach an installed Prometheus recorder under the documented names.
//! One test in this binary: the recorder is process-global.

mod common;

use common::{strings, TestEmbedder};
use metrics_exporter_prometheus::PrometheusBuilder;
use vectorizer::metrics::{self, describe};
use vectorizer::{CacheOptions, Cached, Embedder};

#[tokio::test]
async fn cache_and_inference_metrics_are_exported() {
    let handle = PrometheusBuilder::new().install_recorder().unwrap();
    describe();
    let cache = Cached::new(
        TestEmbedder::with_dim(512),
        CacheOptions::from_mb(1, "test"),
    );
    cache.embed_texts(&strings(&["a", "b"])).await;
    cache.embed_texts(&strings(&["a", "fail"])).await;
    cache.embed_images(&strings(&["x"])).await;
    // 1 MiB holds about 480 vectors of 512 floats: 1000 more evict some.
    let many: Vec<String> = (0..1000).map(|i| format!("image {i}")).collect();
    cache.embed_images(&many).await;
    cache.run_pending_tasks().await;

    let text = handle.render();
    let has = |line: &str| text.lines().any(|l| l == line);
    assert!(
        has(&format!("{}{{modality=\"text\"}} 1", metrics::CACHE_HITS)),
        "{text}"
    );
    assert!(
        has(&format!("{}{{modality=\"text\"}} 3", metrics::CACHE_MISSES)),
        "{text}"
    );
    assert!(
        has(&format!(
            "{}{{modality=\"image\"}} 1001",
            metrics::CACHE_MISSES
        )),
        "{text}"
    );
    assert!(
        has(&format!(
            "{}{{modality=\"text\",backend=\"test\"}} 1",
            metrics::INFERENCE_ERRORS
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{}_count{{modality=\"image\",backend=\"test\"}} 2",
            metrics::INFERENCE_SECONDS
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{}_sum{{modality=\"image\"}} 1001",
            metrics::INFERENCE_BATCH_SIZE
        )),
        "{text}"
    );
    let evictions = cache.stats().evictions;
    assert!(evictions > 0);
    assert!(
        has(&format!(
            "{}{{modality=\"image\"}} {evictions}",
            metrics::CACHE_EVICTIONS
        )),
        "{text}"
    );
    let stats = cache.stats();
    assert!(
        has(&format!("{} {}", metrics::CACHE_ENTRIES, stats.entries)),
        "{text}"
    );
    assert!(
        has(&format!("{} {}", metrics::CACHE_BYTES, stats.bytes)),
        "{text}"
    );
    assert!(
        text.contains(&format!("# HELP {} ", metrics::CACHE_HITS)),
        "{text}"
    );
}
