//! The gateway's configuration: one struct, read from flags and environment variables (clap), passed
//! down to every part. No other globals (ARCHITECTURE.md "Boundaries").
//!
//! Durations are written as a number with an optional unit: `500ms`, `30s`, `2m`, `1h`; a bare
//! number means seconds (`2.5` = 2.5 s).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default listen address of the gateway.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default listen address of the gateway's gRPC endpoint (Weaviate's own gRPC port is 50051).
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:50051";
/// Weaviate's default gRPC port, used for the upstream when only `--weaviate-url` is given.
pub const DEFAULT_WEAVIATE_GRPC_PORT: u16 = 50051;
/// Default embedding cache size in MiB.
pub const DEFAULT_CACHE_MB: u64 = 256;
/// Default of `--idle-spin-ms` (the vectorizer's default idle spin).
pub const DEFAULT_IDLE_SPIN_MS: u64 = 3;
/// Default time to wait for the upstream's response headers (and between body reads).
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time an inference may take. 50 s is Weaviate's own `MODULES_CLIENT_TIMEOUT` default
/// (spec §7.3).
pub const DEFAULT_INFERENCE_TIMEOUT: Duration = Duration::from_secs(50);
/// Default request body limit: 64 MiB, room for a batch of base64 images.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Default image size limit, as the vectorizer issue asks (50 megapixels).
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 50_000_000;
/// Default lifetime of the cached upstream schema.
pub const DEFAULT_SCHEMA_TTL: Duration = Duration::from_secs(5);
/// Default GraphQL document size limit: 16 MiB, room for a `nearImage` with an inline base64
/// image of about 12 MB (issue 7, "Hostile input").
pub const DEFAULT_MAX_GRAPHQL_BYTES: usize = 16 * 1024 * 1024;
/// Default nesting limit of a GraphQL document (selection sets and argument values together).
pub const DEFAULT_MAX_GRAPHQL_DEPTH: usize = 128;
/// Default limit on lexical tokens (whitespace runs included) of a GraphQL document.
pub const DEFAULT_MAX_GRAPHQL_TOKENS: usize = 250_000;
/// Default limit on the texts of one `nearText` (concepts plus moveTo/moveAwayFrom concepts).
pub const DEFAULT_MAX_CONCEPTS: usize = 100;
/// Default limit on the size of one search text (a concept or a hybrid query), in bytes.
pub const DEFAULT_MAX_CONCEPT_BYTES: usize = 64 * 1024;
/// Default limit on the move objects (moveTo + moveAwayFrom) of one `nearText`.
pub const DEFAULT_MAX_MOVE_OBJECTS: usize = 100;
/// Default limit on concurrent requests to the upstream Weaviate (issue 7, "Back-pressure").
pub const DEFAULT_MAX_UPSTREAM_REQUESTS: usize = 512;

/// clipgate's options. Every field is a flag and an environment variable; `clipgate serve --help`
/// lists them all.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address the gateway listens on (HTTP: REST and GraphQL).
    #[arg(long, env = "CLIPGATE_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Base URL of the upstream (unmodified) Weaviate, e.g. http://localhost:8081; a path prefix is
    /// kept. When absent, clipgate starts an in-memory Weaviate double in-process (for demos and
    /// tests; data is lost on exit).
    #[arg(long, env = "WEAVIATE_URL")]
    pub weaviate_url: Option<String>,

    /// Address of the gateway's gRPC endpoint (`weaviate.v1.Weaviate` and gRPC health), for the
    /// current clients (Python v4, TypeScript v3), which search and import over gRPC.
    #[arg(long, env = "CLIPGATE_GRPC_LISTEN", default_value = DEFAULT_GRPC_LISTEN)]
    pub grpc_listen: SocketAddr,

    /// The upstream Weaviate's gRPC address, e.g. http://localhost:50051. Default: the host of
    /// `--weaviate-url` on port 50051 (the embedded double's own gRPC address when it is used).
    #[arg(long = "weaviate-grpc", env = "WEAVIATE_GRPC_URL")]
    pub weaviate_grpc_url: Option<String>,

    /// Directory of the CLIP model (tokenizer.json, preprocessor_config.json, config.json and the
    /// text/vision ONNX files). Default: the bundled fixture model (fixtures/model).
    #[arg(long, env = "CLIP_MODEL_DIR", default_value_os_t = default_model_dir())]
    pub model_dir: PathBuf,

    /// Directory of a separate text model (sentence-transformers layout, e.g. a multilingual text
    /// tower) that replaces the CLIP text tower.
    #[arg(long, env = "TEXT_MODEL_DIR")]
    pub text_model_dir: Option<PathBuf>,

    /// Base URL of a multi2vec-clip inference container to use instead of the local model.
    #[arg(long, env = "CLIP_INFERENCE_API")]
    pub inference_url: Option<String>,

    /// Size of the embedding cache in MiB (0 turns the cache off).
    #[arg(long, env = "CLIPGATE_CACHE_MB", default_value_t = DEFAULT_CACHE_MB)]
    pub cache_mb: u64,

    /// L2-normalize the model's vectors (true|false). Default: what the model layout implies
    /// (HF CLIP: yes; sentence-transformers: only with a Normalize module).
    #[arg(long, env = "CLIPGATE_NORMALIZE")]
    pub normalize: Option<bool>,

    /// Inference threads of the local model. Default: the number of CPU cores.
    #[arg(long, env = "CLIPGATE_THREADS")]
    pub threads: Option<usize>,

    /// Milliseconds the local model's helper threads keep spinning after work before they park.
    /// Longer: an isolated request finds its helpers awake (lower latency), and a core stays
    /// busy that long after every request.
    #[arg(long, env = "CLIPGATE_IDLE_SPIN_MS", default_value_t = DEFAULT_IDLE_SPIN_MS)]
    pub idle_spin_ms: u64,

    /// Threads serving the HTTP API, each a single-threaded runtime accepting from the one
    /// listener (as nginx's worker processes do). Default: the number of CPU cores.
    #[arg(long, env = "CLIPGATE_HTTP_WORKERS")]
    pub http_workers: Option<usize>,

    /// Time to wait for the upstream Weaviate's response (headers, then each body read), e.g. 60s.
    /// Past it the client gets 504.
    #[arg(long, env = "CLIPGATE_UPSTREAM_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub upstream_timeout: Duration,

    /// Most requests in flight to the upstream Weaviate at once (0: no limit). A request over it
    /// waits up to `--upstream-timeout` for a slot, then gets 429 in Weaviate's error shape, so
    /// a slow Weaviate cannot make clipgate pile up connections and memory without bound.
    #[arg(long, env = "CLIPGATE_MAX_UPSTREAM_REQUESTS", default_value_t = DEFAULT_MAX_UPSTREAM_REQUESTS)]
    pub max_upstream_requests: usize,

    /// Time one inference (local or remote container) may take, e.g. 50s.
    #[arg(long, env = "CLIPGATE_INFERENCE_TIMEOUT", default_value = "50s", value_parser = parse_duration)]
    pub inference_timeout: Duration,

    /// Largest request body accepted, in bytes (larger ones get 413). Responses the gateway has to
    /// read itself (JSON it inspects or rewrites) are bounded to 4 times this.
    #[arg(long, env = "CLIPGATE_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Largest image accepted for vectorization, in pixels (width × height).
    #[arg(long, env = "CLIPGATE_MAX_IMAGE_PIXELS", default_value_t = DEFAULT_MAX_IMAGE_PIXELS)]
    pub max_image_pixels: u64,

    /// Largest GraphQL document (the `query` string) accepted, in bytes; larger ones are answered
    /// with a GraphQL error. Applies to every document, forwarded ones included.
    #[arg(long, env = "CLIPGATE_MAX_GRAPHQL_BYTES", default_value_t = DEFAULT_MAX_GRAPHQL_BYTES)]
    pub max_graphql_bytes: usize,

    /// Deepest nesting of a GraphQL document, counting selection sets and argument values
    /// (lists, objects) together; deeper ones are answered with a GraphQL error instead of being
    /// parsed further. At most 256 (the parser recurses; this bounds its stack use).
    #[arg(long, env = "CLIPGATE_MAX_GRAPHQL_DEPTH", default_value_t = DEFAULT_MAX_GRAPHQL_DEPTH,
          value_parser = crate::graphql::limits::parse_depth)]
    pub max_graphql_depth: usize,

    /// Most lexical tokens (names, punctuation, literals, whitespace runs) in one GraphQL
    /// document; bounds the parser's memory.
    #[arg(long, env = "CLIPGATE_MAX_GRAPHQL_TOKENS", default_value_t = DEFAULT_MAX_GRAPHQL_TOKENS)]
    pub max_graphql_tokens: usize,

    /// Most texts one `nearText` may ask to vectorize: its concepts plus the concepts of
    /// moveTo/moveAwayFrom. Over it, the class field gets an error and nothing is vectorized.
    #[arg(long, env = "CLIPGATE_MAX_CONCEPTS", default_value_t = DEFAULT_MAX_CONCEPTS)]
    pub max_concepts: usize,

    /// Largest search text (one concept, or a hybrid query), in bytes (UTF-8).
    #[arg(long, env = "CLIPGATE_MAX_CONCEPT_BYTES", default_value_t = DEFAULT_MAX_CONCEPT_BYTES)]
    pub max_concept_bytes: usize,

    /// Most move objects (moveTo + moveAwayFrom `objects`) of one `nearText`; each is one
    /// lookup in Weaviate.
    #[arg(long, env = "CLIPGATE_MAX_MOVE_OBJECTS", default_value_t = DEFAULT_MAX_MOVE_OBJECTS)]
    pub max_move_objects: usize,

    /// How long the upstream schema (which classes are clip-managed) is cached, e.g. 5s. Schema
    /// changes made through clipgate refresh it at once.
    #[arg(long, env = "CLIPGATE_SCHEMA_TTL", default_value = "5s", value_parser = parse_duration)]
    pub schema_ttl: Duration,

    /// A per-class `inferenceUrl` (moduleConfig) that clipgate may call. Repeatable; the env var
    /// takes a comma-separated list. Any other per-class URL is refused (no server-side fetching
    /// of arbitrary URLs).
    #[arg(
        long = "allowed-inference-url",
        env = "CLIPGATE_ALLOWED_INFERENCE_URLS",
        value_delimiter = ','
    )]
    pub allowed_inference_urls: Vec<String>,
}

impl Default for Config {
    /// The defaults of every option, without reading flags or the environment (for tests and
    /// embedding).
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
            weaviate_url: None,
            grpc_listen: DEFAULT_GRPC_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 50051))),
            weaviate_grpc_url: None,
            model_dir: default_model_dir(),
            text_model_dir: None,
            inference_url: None,
            cache_mb: DEFAULT_CACHE_MB,
            normalize: None,
            threads: None,
            idle_spin_ms: DEFAULT_IDLE_SPIN_MS,
            http_workers: None,
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
            max_upstream_requests: DEFAULT_MAX_UPSTREAM_REQUESTS,
            inference_timeout: DEFAULT_INFERENCE_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_image_pixels: DEFAULT_MAX_IMAGE_PIXELS,
            schema_ttl: DEFAULT_SCHEMA_TTL,
            max_graphql_bytes: DEFAULT_MAX_GRAPHQL_BYTES,
            max_graphql_depth: DEFAULT_MAX_GRAPHQL_DEPTH,
            max_graphql_tokens: DEFAULT_MAX_GRAPHQL_TOKENS,
            max_concepts: DEFAULT_MAX_CONCEPTS,
            max_concept_bytes: DEFAULT_MAX_CONCEPT_BYTES,
            max_move_objects: DEFAULT_MAX_MOVE_OBJECTS,
            allowed_inference_urls: Vec::new(),
        }
    }
}

impl Config {
    /// The upstream gRPC base URL: `--weaviate-grpc`, else `--weaviate-url`'s scheme and host on
    /// Weaviate's default gRPC port. `None` without either.
    pub fn upstream_grpc_url(&self) -> Option<String> {
        if let Some(url) = &self.weaviate_grpc_url {
            return Some(url.trim_end_matches('/').to_string());
        }
        let base: http::Uri = self.weaviate_url.as_deref()?.parse().ok()?;
        let scheme = base.scheme_str().unwrap_or("http");
        let host = base.host()?;
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        Some(format!("{scheme}://{host}:{DEFAULT_WEAVIATE_GRPC_PORT}"))
    }

    /// Bound on the upstream response bodies the gateway buffers (see `--max-body-bytes`).
    pub fn max_upstream_body_bytes(&self) -> usize {
        self.max_body_bytes.saturating_mul(4)
    }
}

/// Where the bundled fixture model is: `fixtures/model` under the current directory, else under
/// one of the executable's ancestor directories (an installed or `target/…` binary run from
/// elsewhere), else next to this crate's sources.
pub fn default_model_dir() -> PathBuf {
    let relative = Path::new("fixtures").join("model");
    if let Ok(cwd) = std::env::current_dir() {
        let candidate = cwd.join(&relative);
        if candidate.is_dir() {
            return candidate;
        }
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            let candidate = dir.join(&relative);
            if candidate.is_dir() {
                return candidate;
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// Parses `500ms`, `30s`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 500ms, 30s, 2m, 1h"))?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1000.0,
        "m" | "min" | "mins" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "invalid duration unit {other:?} in {text:?}: use ms, s, m or h"
            ))
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 weeks").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn flags_override_defaults() {
        let cli = Cli::try_parse_from([
            "clipgate",
            "--listen",
            "127.0.0.1:9999",
            "--weaviate-url",
            "http://localhost:8081/prefix",
            "--upstream-timeout",
            "250ms",
            "--allowed-inference-url",
            "http://a:8080",
            "--allowed-inference-url",
            "http://b:8080",
            "--normalize",
            "false",
            "--max-upstream-requests",
            "7",
            "--idle-spin-ms",
            "40",
        ])
        .expect("valid flags");
        let c = cli.config;
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(
            c.weaviate_url.as_deref(),
            Some("http://localhost:8081/prefix")
        );
        assert_eq!(c.upstream_timeout, Duration::from_millis(250));
        assert_eq!(
            c.allowed_inference_urls,
            vec!["http://a:8080", "http://b:8080"]
        );
        assert_eq!(c.normalize, Some(false));
        assert_eq!(c.max_upstream_requests, 7);
        assert_eq!(c.idle_spin_ms, 40);
        assert_eq!(
            crate::server::model_options(&c).idle_spin,
            Duration::from_millis(40)
        );
        assert_eq!(
            Cli::try_parse_from(["clipgate"])
                .expect("defaults")
                .config
                .max_upstream_requests,
            DEFAULT_MAX_UPSTREAM_REQUESTS
        );
    }
}
