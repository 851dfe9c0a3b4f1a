//! The server side of the Raft transport: decodes a request, hands it to the local openraft
//! node and returns its answer (a Raft-level error included) as JSON. Requests from peers are
//! validated, never trusted: an unknown format or undecodable payload is INVALID_ARGUMENT.

use super::codec::WIRE_FORMAT;
use super::types::{Raft, TypeConfig};
use crate::rpc::pb::raft::raft_service_server::RaftService;
use crate::rpc::pb::raft::{RaftReply, RaftRequest, SnapshotChunk};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status};

/// Serves `RaftService` for the local node.
#[derive(Clone)]
pub(crate) struct RaftServiceImpl {
    raft: Raft,
}

impl std::fmt::Debug for RaftServiceImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftServiceImpl").finish_non_exhaustive()
    }
}

impl RaftServiceImpl {
    pub(crate) fn new(raft: Raft) -> Self {
        Self { raft }
    }
}

fn check_format(format: u32) -> Result<(), Status> {
    if format == WIRE_FORMAT {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "unsupported raft wire format {format}"
        )))
    }
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, Status> {
    serde_json::from_slice(bytes)
        .map_err(|e| Status::invalid_argument(format!("undecodable {what}: {e}")))
}

fn reply<T: Serialize>(result: &T) -> Result<Response<RaftReply>, Status> {
    let payload = serde_json::to_vec(result)
        .map_err(|e| Status::internal(format!("cannot encode reply: {e}")))?;
    Ok(Response::new(RaftReply {
        format: WIRE_FORMAT,
        payload,
    }))
}

#[tonic::async_trait]
impl RaftService for RaftServiceImpl {
    async fn append_entries(
        &self,
        request: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let req = request.into_inner();
        check_format(req.format)?;
        let rpc: AppendEntriesRequest<TypeConfig> = decode("append entries", &req.payload)?;
        reply(&self.raft.append_entries(rpc).await)
    }

    async fn vote(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let req = request.into_inner();
        check_format(req.format)?;
        let rpc: VoteRequest<u64> = decode("vote", &req.payload)?;
        reply(&self.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<SnapshotChunk>,
    ) -> Result<Response<RaftReply>, Status> {
        let chunk = request.into_inner();
        check_format(chunk.format)?;
        let mut rpc: InstallSnapshotRequest<TypeConfig> =
            decode("snapshot chunk header", &chunk.header)?;
        if !rpc.data.is_empty() {
            return Err(Status::invalid_argument(
                "snapshot data must travel outside the header",
            ));
        }
        rpc.data = chunk.data;
        reply(&self.raft.install_snapshot(rpc).await)
    }
}
