//! Integration test harness: real servers on ephemeral loopback ports.
//!
//! ```ignore
//! mod common;
//!
//! #[tokio::test]
//! async fn finds_red_circle() {
//!     let env = common::start().await;             // double + gateway, default config
//!     let r = env.client.get(env.url("/v1/meta")).send().await.unwrap();
//!     // env.weaviate_url("/v1/schema") talks to the double directly;
//!     // env.double.store() inspects what the double stored.
//! }
//! ```
//!
//! - [`start`] / [`start_with`]: the in-memory Weaviate double (`conformance::double`) and a
//!   gateway in front of it. `start_with` takes a [`Config`] to change limits or timeouts.
//! - [`start_gateway`]: a gateway in front of any upstream URL (e.g. a test's own axum server).
//! - [`embedder`]: the fixture model (`fixtures/model`), loaded once per test binary and shared
//!   by every gateway (behind a cache, as in production).
//!
//! Servers run as tasks of the calling test's runtime and stop with it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use conformance::double::Double;
use gateway::config::Config;
use gateway::server::{self, AppState};
use tokio::sync::OnceCell;
use vectorizer::{CacheOptions, Cached, Embedder, TractClip};

/// A running gateway (and, with [`start`], the double behind it).
pub struct TestEnv {
    /// `http://127.0.0.1:<port>` of the gateway.
    pub gateway: String,
    /// Base URL of the upstream (the double with [`start`]).
    pub weaviate: String,
    /// The double's state, when the upstream is the double.
    pub double: Option<Double>,
    /// The gateway's state (config, upstream client, embedder, schema cache).
    pub state: AppState,
    pub client: reqwest::Client,
}

impl TestEnv {
    /// A URL on the gateway, `path` starting with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.gateway, path)
    }

    /// A URL on the upstream directly, bypassing the gateway.
    pub fn weaviate_url(&self, path: &str) -> String {
        format!("{}{}", self.weaviate, path)
    }

    /// The shared embedder (for computing expected vectors in tests).
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.state.embedder
    }
}

static EMBEDDER: OnceCell<Arc<dyn Embedder>> = OnceCell::const_new();

/// The fixture model behind a 64 MiB cache, loaded once per test binary.
pub async fn embedder() -> Arc<dyn Embedder> {
    EMBEDDER
        .get_or_init(|| async {
            let options = gateway::server::model_options(&Config::default());
            let model: TractClip = server::load_model(options)
                .await
                .expect("the fixture model in fixtures/model loads");
            Arc::new(Cached::new(model, CacheOptions::from_mb(64, "tract"))) as Arc<dyn Embedder>
        })
        .await
        .clone()
}

/// The double and a gateway with the default configuration in front of it.
pub async fn start() -> TestEnv {
    start_with(Config::default()).await
}

/// The double and a gateway with `config` (its `weaviate_url` is replaced by the double's).
pub async fn start_with(config: Config) -> TestEnv {
    start_double_with(Double::new(), config).await
}

/// A given double (e.g. `Double::new().with_api_keys(…)`) and a gateway in front of it.
pub async fn start_double_with(double: Double, config: Config) -> TestEnv {
    let (addr, _task) = conformance::double::spawn_double(double.clone())
        .await
        .expect("the double starts");
    let mut env = start_gateway(&format!("http://{addr}"), config).await;
    env.double = Some(double);
    env
}

/// A gateway with `config` in front of the upstream at `upstream_url`.
pub async fn start_gateway(upstream_url: &str, mut config: Config) -> TestEnv {
    config.weaviate_url = Some(upstream_url.to_string());
    let state = AppState::new(config, embedder().await).expect("valid test config");
    let (addr, _task) = server::spawn_with(state.clone())
        .await
        .expect("the gateway starts");
    TestEnv {
        gateway: base(addr),
        weaviate: upstream_url.to_string(),
        double: None,
        state,
        client: client(),
    }
}

/// A client without proxies or redirects, as a Weaviate client library behaves on loopback.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

pub fn base(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// The base URL of a loopback port nothing listens on (bound, then released): an upstream that
/// refuses connections.
pub fn unreachable_base() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    base(listener.local_addr().expect("addr"))
}
