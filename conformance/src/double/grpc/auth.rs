//! API-key authentication of gRPC calls: the `authorization` metadata entry carries the same
//! `Bearer <key>` value as the REST header (clients lower-case metadata names, spec `clients.md`).

use tonic::metadata::MetadataMap;

use super::GrpcError;
use crate::double::auth::{Keys, Principal};

/// The caller of a call, or `Unauthenticated` with the REST side's text.
pub fn principal(keys: &Keys, metadata: &MetadataMap) -> Result<Principal, GrpcError> {
    let header = metadata.get("authorization").and_then(|v| v.to_str().ok());
    keys.principal(header)
        .map_err(|e| GrpcError::Unauthenticated(e.to_string()))
}
