//! [`TractClip`]: the CLIP model run in-process with tract, behind the [`Embedder`] trait.
//!
//! Tokenization happens on the caller's task (microseconds), image decoding and resizing on
//! tokio's blocking pool (milliseconds, and in parallel with inference of earlier requests), and
//! the model itself on the dedicated runner thread (see [`crate::tract::runner`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use crossbeam_channel::{Sender, TrySendError};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::image::{self, ImageConfig, DEFAULT_MAX_IMAGE_PIXELS};
use crate::model_dir::{read_clip_dir, read_sentence_dir};
use crate::tokenize::TextTokenizer;
use crate::tract::plans::{TextTower, VisionTower};
use crate::tract::runner::{self, default_buckets, Job, JobResult, RunnerConfig, Work};
use crate::{EmbedError, Embedder, Vector};

/// How to load and run the local model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOptions {
    /// CLIP model directory (HF ONNX layout, see [`crate::model_dir`]).
    pub model_dir: PathBuf,
    /// Optional sentence-transformers text model replacing the CLIP text tower (spec §7.2).
    pub text_model_dir: Option<PathBuf>,
    /// Override of the layout's default L2 normalization (`--normalize true|false`).
    pub normalize: Option<bool>,
    /// Images with more pixels than this are refused before decoding.
    pub max_image_pixels: u64,
    /// Threads for tract's matrix products; 0 = all available cores.
    pub threads: usize,
    /// Maximum number of requests waiting for the model; more get `EmbedError::Overloaded`.
    pub queue_capacity: usize,
    /// Maximum number of texts or images in one model call.
    pub max_batch: usize,
    /// How long the runner waits for concurrent requests to join a batch. Only while requests
    /// are arriving concurrently: a request that comes in alone waits at most 200 µs for a
    /// companion and then runs (see [`crate::tract::runner::run`]).
    pub batch_wait: Duration,
    /// Maximum number of images in one vision-tower call. With clipgate's dense kernel larger
    /// calls were more efficient (more rows per streamed weight panel): 16 images in one
    /// request took 648 ms with 16 against 800–863 ms with 4 (`cargo bench --bench clip`, AMD
    /// machine). Since the kernel reads `x` in place, 4 and 16 per call are equal on the Intel
    /// machine (`PROFILE_BATCH=4|16 … --example op_profile`: 30.9–31.3 vs 30.4–30.9 ms per
    /// image); 16 kept.
    pub max_image_batch: usize,
    /// How long the dense kernel's helper threads spin without work before they park
    /// (`--idle-spin-ms`, see [`crate::tract::spin_pool::set_idle_spin`]; process-wide).
    pub idle_spin: Duration,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            model_dir: PathBuf::from("fixtures/model"),
            text_model_dir: None,
            normalize: None,
            max_image_pixels: DEFAULT_MAX_IMAGE_PIXELS,
            threads: 0,
            queue_capacity: 256,
            max_batch: 32,
            batch_wait: Duration::from_millis(2),
            max_image_batch: 16,
            idle_spin: crate::tract::spin_pool::DEFAULT_IDLE_SPIN,
        }
    }
}

struct Inner {
    tx: Sender<Job>,
    tokenizer: Option<TextTokenizer>,
    image: ImageConfig,
    max_pixels: u64,
    meta: Value,
    fingerprint: String,
}

/// The in-process CLIP model. Cheap to clone (shared state); the runner thread stops when the
/// last clone is dropped.
#[derive(Clone)]
pub struct TractClip {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TractClip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TractClip")
            .field("fingerprint", &self.inner.fingerprint)
            .finish()
    }
}

fn hash_file(h: &mut Sha256, path: &Path) -> Result<(), EmbedError> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| EmbedError::Model(format!("{}: cannot read: {e}", path.display())))?;
    let mut buf = vec![0u8; 1 << 20];
    h.update(
        path.file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or_default(),
    );
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| EmbedError::Model(format!("{}: cannot read: {e}", path.display())))?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf[..n]);
    }
}

impl TractClip {
    /// Loads the model files, builds the plans and starts the runner thread. Blocking (seconds
    /// for a full-size model): call it from a blocking context.
    pub fn load(opts: &ModelOptions) -> Result<TractClip, EmbedError> {
        let clip = read_clip_dir(&opts.model_dir, opts.text_model_dir.is_some())?;
        let sentence = opts
            .text_model_dir
            .as_deref()
            .map(read_sentence_dir)
            .transpose()?;

        // Normalization defaults (issue 2 item 5): the HF CLIP path L2-normalizes; a
        // sentence-transformers text model only if its pipeline has a Normalize module.
        let normalize_image = opts.normalize.unwrap_or(true);
        let normalize_text = opts
            .normalize
            .unwrap_or_else(|| sentence.as_ref().is_none_or(|s| s.has_normalize_module));

        let (tokenizer, text_tower, max_len, meta) = match &sentence {
            Some(s) => (
                TextTokenizer::from_file(&s.tokenizer, s.max_seq_length)?,
                TextTower::load(&s.onnx, "sentence_embedding")?,
                s.max_seq_length,
                serde_json::json!({ "clip_model": clip.config, "text_model": s.config }),
            ),
            None => {
                let (Some(tok), Some(onnx)) = (&clip.tokenizer, &clip.text_onnx) else {
                    return Err(EmbedError::Model("text tower files missing".to_string()));
                };
                (
                    TextTokenizer::from_file(tok, clip.max_positions)?,
                    TextTower::load(onnx, "text_embeds")?,
                    clip.max_positions,
                    clip.config.clone(),
                )
            }
        };
        let (h, w) = clip.image.output_size().unwrap_or((224, 224));
        let vision = VisionTower::load(&clip.vision_onnx, h, w)?;

        let mut hasher = Sha256::new();
        let mut files = vec![
            clip.config_path.clone(),
            clip.preprocessor_path.clone(),
            clip.vision_onnx.clone(),
        ];
        files.extend(clip.tokenizer.iter().cloned());
        files.extend(clip.text_onnx.iter().cloned());
        if let Some(s) = &sentence {
            files.extend([
                s.tokenizer.clone(),
                s.onnx.clone(),
                s.dir.join("config.json"),
            ]);
            let modules = s.dir.join("modules.json");
            if modules.is_file() {
                files.push(modules);
            }
        }
        for f in &files {
            hash_file(&mut hasher, f)?;
        }
        hasher.update(
            format!(
                "{:?}|max_len={max_len}|norm_text={normalize_text}|norm_image={normalize_image}",
                clip.image
            )
            .as_bytes(),
        );
        let fingerprint: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();

        crate::tract::spin_pool::set_idle_spin(opts.idle_spin);
        let threads = if opts.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            opts.threads
        };
        let cfg = RunnerConfig {
            threads,
            max_batch: opts.max_batch.max(1),
            max_image_batch: opts.max_image_batch.max(1),
            batch_wait: opts.batch_wait,
            text_buckets: default_buckets(max_len),
            pad_id: tokenizer.pad_id(),
            normalize_text,
            normalize_image,
        };
        // Build the plan of the most common query length now, so the first query is not slow
        // and a graph tract cannot run fails at load time, not on the first request.
        let mut text_tower = text_tower;
        text_tower.plan(cfg.text_buckets[0], 1)?;

        let (tx, rx) = crossbeam_channel::bounded(opts.queue_capacity.max(1));
        std::thread::Builder::new()
            .name("clipgate-infer".to_string())
            .spawn(move || runner::run(rx, Some(text_tower), vision, cfg))
            .map_err(|e| EmbedError::Model(format!("cannot start the inference thread: {e}")))?;

        Ok(TractClip {
            inner: Arc::new(Inner {
                tx,
                tokenizer: Some(tokenizer),
                image: clip.image,
                max_pixels: opts.max_image_pixels,
                meta,
                fingerprint,
            }),
        })
    }

    async fn submit(&self, work: Work) -> JobResult {
        let (reply, rx) = oneshot::channel();
        match self.inner.tx.try_send(Job { work, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(EmbedError::Overloaded),
            Err(TrySendError::Disconnected(_)) => {
                return Err(EmbedError::Inference(
                    "the inference thread has stopped".to_string(),
                ))
            }
        }
        rx.await.unwrap_or_else(|_| {
            Err(EmbedError::Inference(
                "the inference thread has stopped".to_string(),
            ))
        })
    }

    /// Runs prepared inputs and merges the model's answers back into input order.
    async fn embed_prepared<T>(
        &self,
        prepared: Vec<Result<T, EmbedError>>,
        make: impl FnOnce(Vec<T>) -> Work,
    ) -> Vec<Result<Vector, EmbedError>> {
        let mut ok = Vec::new();
        let mut slots = Vec::with_capacity(prepared.len());
        for p in prepared {
            match p {
                Ok(x) => {
                    slots.push(Ok(ok.len()));
                    ok.push(x);
                }
                Err(e) => slots.push(Err(e)),
            }
        }
        let results = if ok.is_empty() {
            Ok(Vec::new())
        } else {
            self.submit(make(ok)).await
        };
        match results {
            Ok(vectors) => {
                let vectors: Vec<Vector> = vectors.into_iter().map(Vector::from).collect();
                slots
                    .into_iter()
                    .map(|s| {
                        s.and_then(|i| {
                            vectors
                                .get(i)
                                .cloned()
                                .ok_or_else(|| EmbedError::Inference("missing output".to_string()))
                        })
                    })
                    .collect()
            }
            Err(e) => slots.into_iter().map(|s| s.and(Err(e.clone()))).collect(),
        }
    }

    /// The CHW tensor this model's preprocessing makes of a base64 image (for tests/benches).
    pub fn preprocess_image(&self, b64: &str) -> Result<Vec<f32>, EmbedError> {
        image::preprocess_base64(b64, &self.inner.image, self.inner.max_pixels)
    }

    /// The token ids this model's tokenizer makes of a text (for tests/benches).
    pub fn tokenize(&self, text: &str) -> Result<Vec<i64>, EmbedError> {
        match &self.inner.tokenizer {
            Some(t) => t.encode(text),
            None => Err(EmbedError::Model("this model has no tokenizer".to_string())),
        }
    }
}

#[async_trait]
impl Embedder for TractClip {
    async fn embed_texts(&self, texts: &[String]) -> Vec<Result<Vector, EmbedError>> {
        let prepared: Vec<_> = texts.iter().map(|t| self.tokenize(t)).collect();
        self.embed_prepared(prepared, Work::Texts).await
    }

    async fn embed_images(&self, images: &[String]) -> Vec<Result<Vector, EmbedError>> {
        if images.is_empty() {
            return Vec::new();
        }
        let inner = self.inner.clone();
        let owned = images.to_vec();
        let prepared = tokio::task::spawn_blocking(move || {
            owned
                .iter()
                .map(|b| image::preprocess_base64(b, &inner.image, inner.max_pixels))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_else(|e| {
            images
                .iter()
                .map(|_| {
                    Err(EmbedError::Inference(format!(
                        "image preprocessing failed: {e}"
                    )))
                })
                .collect()
        });
        self.embed_prepared(prepared, Work::Images).await
    }

    async fn meta(&self) -> Result<Value, EmbedError> {
        Ok(self.inner.meta.clone())
    }

    async fn ready(&self) -> Result<(), EmbedError> {
        Ok(())
    }

    fn fingerprint(&self) -> &str {
        &self.inner.fingerprint
    }
}
