//! A small deterministic [`Embedder`] for the cache, server and remote-client tests: it counts
//! its calls, can be held at a gate, and fails on chosen inputs.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::Semaphore;
use vectorizer::{EmbedError, Embedder, Vector};

/// Dimension of the test vectors.
pub const DIM: usize = 8;

/// Vectors derived from the input bytes (different for texts and images); inputs starting
/// with `fail` are rejected (text: `InvalidText`, image: `ImageDecode`).
pub struct TestEmbedder {
    fingerprint: String,
    dim: usize,
    calls: AtomicUsize,
    batches: Mutex<Vec<Vec<String>>>,
    gate: Option<Arc<Semaphore>>,
    ready: AtomicBool,
}

impl TestEmbedder {
    pub fn new() -> Self {
        Self::with_dim(DIM)
    }

    pub fn with_dim(dim: usize) -> Self {
        Self {
            fingerprint: "test-embedder".to_string(),
            dim,
            calls: AtomicUsize::new(0),
            batches: Mutex::new(Vec::new()),
            gate: None,
            ready: AtomicBool::new(true),
        }
    }

    /// Every call waits for one permit of `gate` before answering.
    pub fn gated(gate: Arc<Semaphore>) -> Self {
        Self {
            gate: Some(gate),
            ..Self::new()
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The inputs of every call so far, in call order.
    pub fn batches(&self) -> Vec<Vec<String>> {
        self.batches.lock().unwrap().clone()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// The vector this embedder computes for one input.
    pub fn vector(&self, input: &str, image: bool) -> Vector {
        let mut state: u64 = if image {
            0x9e37_79b9_7f4a_7c15
        } else {
            0xcbf2_9ce4_8422_2325
        };
        for b in input.bytes() {
            state = (state ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        (0..self.dim)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407 + i as u64);
                // Values with full f32 mantissas, to catch any lossy round trip.
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) / 3.0
            })
            .collect()
    }

    async fn run(&self, inputs: &[String], image: bool) -> Vec<Result<Vector, EmbedError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.batches.lock().unwrap().push(inputs.to_vec());
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        inputs
            .iter()
            .map(|input| {
                if input.starts_with("fail") {
                    Err(if image {
                        EmbedError::ImageDecode(format!("not an image: {input}"))
                    } else {
                        EmbedError::InvalidText(format!("rejected: {input}"))
                    })
                } else {
                    Ok(self.vector(input, image))
                }
            })
            .collect()
    }
}

#[async_trait]
impl Embedder for TestEmbedder {
    async fn embed_texts(&self, texts: &[String]) -> Vec<Result<Vector, EmbedError>> {
        self.run(texts, false).await
    }

    async fn embed_images(&self, images: &[String]) -> Vec<Result<Vector, EmbedError>> {
        self.run(images, true).await
    }

    async fn meta(&self) -> Result<serde_json::Value, EmbedError> {
        Ok(serde_json::json!({"model_type": "test", "projection_dim": self.dim}))
    }

    async fn ready(&self) -> Result<(), EmbedError> {
        if self.ready.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(EmbedError::Model("still loading".to_string()))
        }
    }

    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Serves `router` on an ephemeral loopback port; returns the base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}
