//! `grpc.health.v1.Health`: SERVING for every service name.
//!
//! Why not tonic-health's reporter: Weaviate's health server answers SERVING whatever `service`
//! is asked for, and the TypeScript v3 client relies on that — it checks the service named
//! `/grpc.health.v1.Health/Check` (a method path, not a service), which a registry-based health
//! service answers with NOT_FOUND, failing the client's start-up.

use std::pin::Pin;

use tonic::codegen::tokio_stream::{self, Stream};
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::Health;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// The always-serving health service.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysServing;

fn serving() -> HealthCheckResponse {
    HealthCheckResponse {
        status: ServingStatus::Serving as i32,
    }
}

#[tonic::async_trait]
impl Health for AlwaysServing {
    async fn check(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(serving()))
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send + 'static>>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::once(Ok(serving())))))
    }
}
