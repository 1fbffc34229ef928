//! The `clipgate` binary: `serve` (the gateway, default), `embed` (vectors on stdout, in the
//! container's `/vectorize` response shape) and `inference` (the multi2vec-clip container API,
//! so that an unmodified Weaviate can use clipgate as its `CLIP_INFERENCE_API`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use base64::Engine as _;
use clap::{Parser, Subcommand};
use gateway::config::{default_model_dir, Config, DEFAULT_CACHE_MB, DEFAULT_MAX_IMAGE_PIXELS};
use gateway::{observability, server};
use vectorizer::{CacheOptions, Cached, Embedder, ModelOptions};

/// clipgate: a drop-in gateway in front of an unmodified Weaviate that emulates the
/// multi2vec-clip module (nearText / nearImage, import-time vectorization) with an in-process
/// CLIP model. Without a subcommand it runs `serve`.
#[derive(Parser)]
#[command(name = "clipgate", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve(Box<ServeArgs>),
    /// Print the CLIP vectors of texts and images as JSON:
    /// {"textVectors":[[…]],"imageVectors":[[…]]}.
    Embed(EmbedArgs),
    /// Serve the multi2vec-clip inference container API (/vectorize, /meta, /.well-known/*).
    Inference(InferenceArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    config: Config,
}

/// The local model options shared by `embed` and `inference`.
#[derive(clap::Args)]
struct ModelArgs {
    /// Directory of the CLIP model. Default: the bundled fixture model (fixtures/model).
    #[arg(long, env = "CLIP_MODEL_DIR", default_value_os_t = default_model_dir())]
    model_dir: PathBuf,
    /// Directory of a separate sentence-transformers text model replacing the CLIP text tower.
    #[arg(long, env = "TEXT_MODEL_DIR")]
    text_model_dir: Option<PathBuf>,
    /// L2-normalize the vectors (true|false). Default: what the model layout implies.
    #[arg(long, env = "CLIPGATE_NORMALIZE")]
    normalize: Option<bool>,
    /// Inference threads. Default: the number of CPU cores.
    #[arg(long, env = "CLIPGATE_THREADS")]
    threads: Option<usize>,
    /// Milliseconds the model's helper threads keep spinning after work before they park.
    #[arg(long, env = "CLIPGATE_IDLE_SPIN_MS", default_value_t = gateway::config::DEFAULT_IDLE_SPIN_MS)]
    idle_spin_ms: u64,
    /// Largest image accepted, in pixels.
    #[arg(long, env = "CLIPGATE_MAX_IMAGE_PIXELS", default_value_t = DEFAULT_MAX_IMAGE_PIXELS)]
    max_image_pixels: u64,
}

impl ModelArgs {
    fn options(&self) -> ModelOptions {
        ModelOptions {
            model_dir: self.model_dir.clone(),
            text_model_dir: self.text_model_dir.clone(),
            normalize: self.normalize,
            max_image_pixels: self.max_image_pixels,
            threads: self.threads.unwrap_or(0),
            idle_spin: std::time::Duration::from_millis(self.idle_spin_ms),
            ..ModelOptions::default()
        }
    }
}

#[derive(clap::Args)]
struct EmbedArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// A text to embed (repeatable).
    #[arg(long = "text")]
    texts: Vec<String>,
    /// An image file to embed (repeatable).
    #[arg(long = "image")]
    images: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct InferenceArgs {
    /// Address the container API listens on.
    #[arg(long, env = "CLIPGATE_INFERENCE_LISTEN")]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    model: ModelArgs,
    /// Size of the embedding cache in MiB (0 turns it off).
    #[arg(long, env = "CLIPGATE_CACHE_MB", default_value_t = DEFAULT_CACHE_MB)]
    cache_mb: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    observability::init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        None => server::run(cli.serve).await,
        Some(Command::Serve(args)) => server::run(args.config).await,
        Some(Command::Embed(args)) => embed(args).await,
        Some(Command::Inference(args)) => inference(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("clipgate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `clipgate embed`: the vectors of every `--text` and `--image`, in the container's response
/// shape (spec §7.1), so tests and users can compute reference vectors independently.
async fn embed(args: EmbedArgs) -> anyhow::Result<()> {
    let mut images = Vec::with_capacity(args.images.len());
    for path in &args.images {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read image {}", path.display()))?;
        images.push(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    let model = server::load_model(args.model.options()).await?;
    let (texts, image_vectors) =
        tokio::join!(model.embed_texts(&args.texts), model.embed_images(&images));
    let mut text_vectors = Vec::with_capacity(texts.len());
    for (result, text) in texts.into_iter().zip(&args.texts) {
        text_vectors.push(result.with_context(|| format!("text {text:?}"))?);
    }
    let mut vectors = Vec::with_capacity(image_vectors.len());
    for (result, path) in image_vectors.into_iter().zip(&args.images) {
        vectors.push(result.with_context(|| format!("image {}", path.display()))?);
    }
    // Each f32 is widened to f64 and printed as its shortest f64 text, as the container's
    // Python JSON does (spec §7.2); it parses back to the same f32 exactly.
    let out = serde_json::to_string(&VectorizeOutput {
        text_vectors: text_vectors.iter().map(|v| widen(v)).collect(),
        image_vectors: vectors.iter().map(|v| widen(v)).collect(),
    })?;
    println!("{out}");
    Ok(())
}

fn widen(vector: &[f32]) -> Vec<f64> {
    vector.iter().map(|&x| f64::from(x)).collect()
}

/// The container's `/vectorize` response shape.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct VectorizeOutput {
    text_vectors: Vec<Vec<f64>>,
    image_vectors: Vec<Vec<f64>>,
}

/// `clipgate inference`: the container API over the local model, behind the cache.
async fn inference(args: InferenceArgs) -> anyhow::Result<()> {
    observability::install_metrics();
    let model = server::load_model(args.model.options()).await?;
    let embedder: Arc<dyn Embedder> = Arc::new(Cached::new(
        model,
        CacheOptions::from_mb(args.cache_mb, "tract"),
    ));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(listen = %listener.local_addr()?, "serving the multi2vec-clip container API");
    vectorizer::server::serve_inference(listener, embedder, server::shutdown_signal())
        .await
        .context("inference server error")
}
