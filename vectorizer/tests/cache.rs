//! `Cached<E>`: hits and misses, single-flight, batching of misses, the byte bound, failures.

mod common;

use std::sync::Arc;

use common::{strings, TestEmbedder, DIM};
use tokio::sync::Semaphore;
use vectorizer::{entry_weight, CacheOptions, Cached, EmbedError, Embedder};

fn cached(inner: TestEmbedder, max_bytes: u64) -> Cached<TestEmbedder> {
    Cached::new(
        inner,
        CacheOptions {
            max_bytes,
            backend: "test".to_string(),
        },
    )
}

#[tokio::test]
async fn counts_hits_and_misses_and_returns_the_inner_vectors() {
    let cache = cached(TestEmbedder::new(), 1 << 20);
    let first = cache
        .embed_texts(&strings(&["a red circle", "a blue square"]))
        .await;
    let second = cache.embed_texts(&strings(&["a red circle"])).await;
    let third = cache
        .embed_texts(&strings(&["a red circle", "a blue square"]))
        .await;

    let inner = cache.inner();
    assert_eq!(inner.calls(), 1);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (3, 2));
    let expected = inner.vector("a red circle", false);
    assert_eq!(first[0].as_ref().unwrap(), &expected);
    assert_eq!(second[0].as_ref().unwrap(), &expected);
    assert_eq!(
        third[1].as_ref().unwrap(),
        &inner.vector("a blue square", false)
    );
    // Same allocation handed out again, not a copy.
    assert!(Arc::ptr_eq(
        first[0].as_ref().unwrap(),
        third[0].as_ref().unwrap()
    ));
}

#[tokio::test]
async fn text_and_image_with_the_same_bytes_are_different_entries() {
    let cache = cached(TestEmbedder::new(), 1 << 20);
    let text = cache.embed_texts(&strings(&["aGVsbG8="])).await;
    let image = cache.embed_images(&strings(&["aGVsbG8="])).await;
    assert_eq!(cache.inner().calls(), 2);
    assert_ne!(text[0].as_ref().unwrap(), image[0].as_ref().unwrap());
    assert_eq!(
        image[0].as_ref().unwrap(),
        &cache.inner().vector("aGVsbG8=", true)
    );
}

/// On the current-thread runtime every task runs until it waits: all 32 requests have looked
/// up the key before the gate opens, so all 32 are misses, and exactly one reaches the model.
#[tokio::test]
async fn thirty_two_concurrent_identical_misses_make_one_inference() {
    let gate = Arc::new(Semaphore::new(0));
    let cache = Arc::new(cached(TestEmbedder::gated(gate.clone()), 1 << 20));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.embed_images(&strings(&["same image"])).await })
        })
        .collect();
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(1000);
    let expected = cache.inner().vector("same image", true);
    for task in tasks {
        let result = task.await.unwrap();
        assert_eq!(result.len(), 1);
        assert_eq!(result[0].as_ref().unwrap(), &expected);
    }
    assert_eq!(cache.inner().calls(), 1);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (0, 32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_flight_holds_on_the_multi_thread_runtime() {
    let gate = Arc::new(Semaphore::new(0));
    let cache = Arc::new(cached(TestEmbedder::gated(gate.clone()), 1 << 20));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.embed_texts(&strings(&["a red circle"])).await })
        })
        .collect();
    // Whoever computes waits for the gate; everyone else either joins it or, arriving after
    // it finished, hits the cache. Either way one inference.
    gate.add_permits(1000);
    for task in tasks {
        assert!(task.await.unwrap()[0].is_ok());
    }
    assert_eq!(cache.inner().calls(), 1);
    let stats = cache.stats();
    assert_eq!(stats.hits + stats.misses, 32);
}

#[tokio::test]
async fn a_batch_computes_only_its_misses_in_one_call() {
    let cache = cached(TestEmbedder::new(), 1 << 20);
    cache.embed_texts(&strings(&["a", "b"])).await;
    let batch = strings(&["a", "c", "b", "d", "c"]);
    let results = cache.embed_texts(&batch).await;

    let inner = cache.inner();
    assert_eq!(
        inner.batches(),
        vec![strings(&["a", "b"]), strings(&["c", "d"])]
    );
    for (input, result) in batch.iter().zip(&results) {
        assert_eq!(result.as_ref().unwrap(), &inner.vector(input, false));
    }
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (2, 2 + 3));
}

/// A batch whose keys are partly being computed by another request joins those and computes
/// only the rest, in one call.
#[tokio::test]
async fn a_batch_joins_keys_another_request_is_computing() {
    let gate = Arc::new(Semaphore::new(0));
    let cache = Arc::new(cached(TestEmbedder::gated(gate.clone()), 1 << 20));
    let first = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.embed_texts(&strings(&["x", "y"])).await })
    };
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
    let second = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.embed_texts(&strings(&["y", "z"])).await })
    };
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(10);
    let first = first.await.unwrap();
    let second = second.await.unwrap();

    let inner = cache.inner();
    assert_eq!(inner.batches(), vec![strings(&["x", "y"]), strings(&["z"])]);
    assert_eq!(first[1].as_ref().unwrap(), second[0].as_ref().unwrap());
    assert_eq!(second[1].as_ref().unwrap(), &inner.vector("z", false));
}

#[tokio::test]
async fn the_byte_bound_is_respected() {
    let dim = 512;
    let weight = entry_weight(dim);
    let max_bytes = 64 * 1024;
    let cache = cached(TestEmbedder::with_dim(dim), max_bytes);
    for round in 0..20 {
        let batch: Vec<String> = (0..10).map(|i| format!("text {round} {i}")).collect();
        assert!(cache.embed_texts(&batch).await.iter().all(Result::is_ok));
    }
    cache.run_pending_tasks().await;
    let stats = cache.stats();
    assert!(stats.bytes <= max_bytes, "{stats:?}");
    assert!(stats.entries * weight <= max_bytes, "{stats:?}");
    assert!(stats.entries > 0 && stats.entries < 200, "{stats:?}");
    assert_eq!(stats.bytes, stats.entries * weight);
    assert!(stats.evictions > 0, "{stats:?}");
}

#[tokio::test]
async fn failures_are_not_cached() {
    let cache = cached(TestEmbedder::new(), 1 << 20);
    let batch = strings(&["fail: too long", "fine"]);
    let first = cache.embed_texts(&batch).await;
    assert_eq!(
        first[0],
        Err(EmbedError::InvalidText(
            "rejected: fail: too long".to_string()
        ))
    );
    assert!(first[1].is_ok());
    let second = cache.embed_texts(&batch).await;
    assert_eq!(second[0], first[0]);
    // The failure was computed again; the success came from the cache.
    assert_eq!(
        cache.inner().batches(),
        vec![batch.clone(), strings(&["fail: too long"])]
    );
}

#[tokio::test]
async fn concurrent_waiters_share_one_failure() {
    let gate = Arc::new(Semaphore::new(0));
    let cache = Arc::new(cached(TestEmbedder::gated(gate.clone()), 1 << 20));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.embed_images(&strings(&["fail.png"])).await })
        })
        .collect();
    for _ in 0..32 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(100);
    for task in tasks {
        assert_eq!(
            task.await.unwrap()[0],
            Err(EmbedError::ImageDecode(
                "not an image: fail.png".to_string()
            ))
        );
    }
    assert_eq!(cache.inner().calls(), 1);
    cache.embed_images(&strings(&["fail.png"])).await;
    assert_eq!(cache.inner().calls(), 2);
}

#[tokio::test]
async fn zero_bytes_turns_the_cache_off() {
    let cache = cached(TestEmbedder::new(), 0);
    cache.embed_texts(&strings(&["a"])).await;
    let again = cache.embed_texts(&strings(&["a", "a"])).await;
    assert_eq!(cache.inner().calls(), 2);
    assert_eq!(cache.inner().batches()[1], strings(&["a", "a"]));
    assert_eq!(
        again[1].as_ref().unwrap(),
        &cache.inner().vector("a", false)
    );
    assert_eq!(cache.stats(), Default::default());
}

#[tokio::test]
async fn a_dropped_request_does_not_cancel_the_computation() {
    let gate = Arc::new(Semaphore::new(0));
    let cache = Arc::new(cached(TestEmbedder::gated(gate.clone()), 1 << 20));
    let abandoned = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.embed_texts(&strings(&["q"])).await })
    };
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
    abandoned.abort();
    let _ = abandoned.await;
    gate.add_permits(10);
    let result = cache.embed_texts(&strings(&["q"])).await;
    assert_eq!(
        result[0].as_ref().unwrap(),
        &cache.inner().vector("q", false)
    );
    assert_eq!(cache.inner().calls(), 1);
}

#[tokio::test]
async fn empty_input_makes_no_call() {
    let cache = cached(TestEmbedder::new(), 1 << 20);
    assert!(cache.embed_texts(&[]).await.is_empty());
    assert_eq!(cache.inner().calls(), 0);
    assert_eq!(cache.fingerprint(), "test-embedder");
    assert_eq!(cache.inner().vector("a", false).len(), DIM);
}
