//! The double's gRPC edge: `weaviate.v1.Weaviate` (Search, Aggregate, BatchObjects) and the
//! standard `grpc.health.v1.Health` service (always SERVING, see [`health`]), over the same store, search, filter and auth code as
//! the REST / GraphQL edges.
//!
//! Why: the Python v4 and TypeScript v3 clients query and import over gRPC and check gRPC health
//! at connect (`shared/spec/clients.md`); the gateway's gRPC rewrite (issue 6) needs a Weaviate that
//! answers those calls. Message shapes, byte encodings and error texts: spec
//! `weaviate-multi2vec-clip.md` §8. Errors are plain Go errors upstream, i.e. status `Unknown` with
//! Weaviate's text; authentication failures are `Unauthenticated`, authorization `PermissionDenied`.

mod aggregate;
mod auth;
mod batch;
mod filters;
mod health;
mod near;
mod properties;
mod search;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use weaviate_proto::v1::weaviate_server::{Weaviate, WeaviateServer};
use weaviate_proto::v1::{
    AggregateReply, AggregateRequest, BatchObjectsReply, BatchObjectsRequest, SearchReply,
    SearchRequest,
};

use super::auth::Principal;
use super::Double;

/// Weaviate's default `GRPC_MAX_MESSAGE_SIZE` (also announced by `/v1/meta`), so the fixture
/// images fit in one batch as they do against a real server.
const MAX_MESSAGE_SIZE: usize = 104_858_000;

/// A failed call, mapped onto the status code Weaviate's gRPC server uses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GrpcError {
    /// No or an unknown API key (`Unauthenticated`).
    #[error("{0}")]
    Unauthenticated(String),
    /// The key may not access the collection (`PermissionDenied`).
    #[error("{0}")]
    PermissionDenied(String),
    /// Any other failure: Weaviate returns the plain Go error, i.e. status `Unknown` (§8).
    #[error("{0}")]
    Unknown(String),
}

impl GrpcError {
    /// An `Unknown` status with Weaviate's message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self::Unknown(message.into())
    }
}

impl From<GrpcError> for Status {
    fn from(e: GrpcError) -> Self {
        match e {
            GrpcError::Unauthenticated(m) => Status::unauthenticated(m),
            GrpcError::PermissionDenied(m) => Status::permission_denied(m),
            GrpcError::Unknown(m) => Status::unknown(m),
        }
    }
}

/// Checks the caller may touch `collection` (same rule and text as the REST / GraphQL edges).
fn authorize(principal: &Principal, collection: &str) -> Result<(), GrpcError> {
    if principal.can_access(collection) {
        Ok(())
    } else {
        Err(GrpcError::PermissionDenied(
            principal.forbidden_message(collection),
        ))
    }
}

/// `took` in seconds, as Weaviate reports it.
fn took_since(start: Instant) -> f32 {
    start.elapsed().as_secs_f32()
}

/// The `weaviate.v1.Weaviate` implementation over a [`Double`].
#[derive(Debug, Clone)]
pub struct WeaviateService {
    double: Double,
}

impl WeaviateService {
    pub fn new(double: Double) -> Self {
        Self { double }
    }
}

#[tonic::async_trait]
impl Weaviate for WeaviateService {
    async fn search(
        &self,
        request: Request<SearchRequest>,
    ) -> Result<Response<SearchReply>, Status> {
        let start = Instant::now();
        let principal = auth::principal(&self.double.keys, request.metadata())?;
        let req = request.into_inner();
        authorize(&principal, &req.collection)?;
        let mut reply = self.double.store().read(|db| search::search(db, &req))?;
        reply.took = took_since(start);
        Ok(Response::new(reply))
    }

    async fn aggregate(
        &self,
        request: Request<AggregateRequest>,
    ) -> Result<Response<AggregateReply>, Status> {
        let start = Instant::now();
        let principal = auth::principal(&self.double.keys, request.metadata())?;
        let req = request.into_inner();
        authorize(&principal, &req.collection)?;
        let mut reply = self
            .double
            .store()
            .read(|db| aggregate::aggregate(db, &req))?;
        reply.took = took_since(start);
        Ok(Response::new(reply))
    }

    async fn batch_objects(
        &self,
        request: Request<BatchObjectsRequest>,
    ) -> Result<Response<BatchObjectsReply>, Status> {
        let start = Instant::now();
        let principal = auth::principal(&self.double.keys, request.metadata())?;
        let req = request.into_inner();
        let errors = batch::batch_objects(self.double.store(), &principal, req)?;
        Ok(Response::new(BatchObjectsReply {
            took: took_since(start),
            errors,
        }))
    }
}

/// The tonic router with both services (health answers `SERVING` for any service name).
fn routes(double: Double) -> tonic::service::Routes {
    let health = tonic_health::pb::health_server::HealthServer::new(health::AlwaysServing);
    let weaviate = WeaviateServer::new(WeaviateService::new(double))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    tonic::service::Routes::new(health).add_service(weaviate)
}

/// Serves the double's gRPC API on `listener` until the process ends.
pub async fn serve(listener: TcpListener, double: Double) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_routes(routes(double))
        .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
        .await
}

/// Serves the double's gRPC API until `shutdown` completes (in-flight calls finish).
pub async fn serve_with_shutdown(
    listener: TcpListener,
    double: Double,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_routes(routes(double))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}

/// Starts the gRPC API of `double` on `127.0.0.1:<ephemeral>` in a background task (for tests).
pub async fn spawn(
    double: Double,
) -> std::io::Result<(SocketAddr, JoinHandle<Result<(), tonic::transport::Error>>)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    Ok((addr, tokio::spawn(serve(listener, double))))
}
