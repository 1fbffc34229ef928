//! An in-memory stand-in for an UNMODIFIED Weaviate without any vectorizer module.
//!
//! Why: no Docker engine or Weaviate binary runs on the project's machines, yet the gateway must
//! be tested against something that answers like Weaviate (spec `weaviate-multi2vec-clip.md`
//! §1.2, §1.4, §2, §3.3, §6, §9, §10). It is written from the spec and shares no code with the
//! gateway. Layers: [`store`] (data, transport-free, reusable by a gRPC layer), [`search`] and
//! [`filter`] (query logic), [`rest`] and [`graphql`] (HTTP edges), [`grpc`] (the gRPC edge), [`auth`] (optional API keys).

pub mod auth;
pub mod filter;
pub mod graphql;
pub mod grpc;
pub mod json;
pub mod rest;
pub mod schema;
pub mod search;
pub mod store;
pub mod vector;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use auth::ApiKey;
use auth::Keys;
use store::Store;

/// The double's shared state; cheap to clone (everything is behind `Arc`).
#[derive(Debug, Clone, Default)]
pub struct Double {
    store: Arc<Store>,
    keys: Keys,
}

impl Double {
    /// An empty Weaviate with anonymous access.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires `Authorization: Bearer <key>` with one of these keys on every request
    /// except `/v1/.well-known/*`.
    pub fn with_api_keys(mut self, keys: impl IntoIterator<Item = ApiKey>) -> Self {
        self.keys = Keys(Arc::new(keys.into_iter().collect()));
        self
    }

    /// The data, for in-process inspection and for other protocol layers (gRPC).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// All REST and GraphQL routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/meta", get(rest::meta))
            .route("/v1/nodes", get(rest::nodes))
            .route("/v1/.well-known/live", get(rest::ok))
            .route("/v1/.well-known/ready", get(rest::ok))
            .route("/v1/.well-known/openid-configuration", get(rest::not_found))
            .route("/v1/schema", get(rest::get_schema).post(rest::create_class))
            .route(
                "/v1/schema/{class}",
                get(rest::get_class)
                    .put(rest::update_class)
                    .delete(rest::delete_class),
            )
            .route("/v1/schema/{class}/properties", post(rest::add_property))
            .route(
                "/v1/schema/{class}/tenants",
                get(rest::get_tenants).post(rest::add_tenants),
            )
            .route(
                "/v1/objects",
                get(rest::list_objects).post(rest::create_object),
            )
            .route("/v1/objects/validate", post(rest::validate_object))
            .route(
                "/v1/objects/{id}",
                get(rest::get_object_by_id)
                    .head(rest::head_object_by_id)
                    .delete(rest::delete_object_by_id),
            )
            .route(
                "/v1/objects/{class}/{id}",
                get(rest::get_object)
                    .head(rest::head_object)
                    .put(rest::put_object)
                    .patch(rest::patch_object)
                    .delete(rest::delete_object),
            )
            .route("/v1/batch/objects", post(rest::batch_objects))
            .route("/v1/graphql", post(rest::graphql_single))
            .route("/v1/graphql/batch", post(rest::graphql_batch))
            .layer(axum::middleware::from_fn_with_state(
                self.keys.clone(),
                auth::authenticate,
            ))
            .with_state(self.clone())
    }
}

/// Serves the double on `listener` until the process ends.
pub async fn serve(listener: TcpListener, double: Double) -> std::io::Result<()> {
    axum::serve(no_delay(listener), double.router()).await
}

/// Serves the double until `shutdown` completes (graceful: in-flight requests finish).
pub async fn serve_with_shutdown(
    listener: TcpListener,
    double: Double,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(no_delay(listener), double.router())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Starts `double` on `127.0.0.1:<ephemeral>` in a background task (for tests).
pub async fn spawn_double(
    double: Double,
) -> std::io::Result<(SocketAddr, JoinHandle<std::io::Result<()>>)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    Ok((addr, tokio::spawn(serve(listener, double))))
}

/// Accepted connections with `TCP_NODELAY` (no 40 ms Nagle + delayed-ACK stalls on small answers).
fn no_delay(
    listener: TcpListener,
) -> axum::serve::TapIo<TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt;
    fn set(tcp: &mut tokio::net::TcpStream) {
        let _ = tcp.set_nodelay(true);
    }
    listener.tap_io(set as fn(&mut tokio::net::TcpStream))
}

/// Starts an empty, anonymous double on `127.0.0.1:<ephemeral>` (for tests).
pub async fn spawn() -> std::io::Result<(SocketAddr, JoinHandle<std::io::Result<()>>)> {
    spawn_double(Double::new()).await
}
