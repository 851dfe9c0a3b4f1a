//! The server side of proposal forwarding: a peer that is not the leader sends its proposals
//! and read barriers here. This node tries exactly once, locally, and never forwards again; if
//! it is not the leader it answers FAILED_PRECONDITION with the leader hint in the metadata.

use super::codec::WIRE_FORMAT;
use super::proposer::{LocalError, RaftProposer};
use crate::metadata::MetadataRequest;
use crate::rpc::pb::controller::controller_service_server::ControllerService;
use crate::rpc::pb::controller::{ProposeReply, ProposeRequest, ReadIndexReply, ReadIndexRequest};
use crate::rpc::{LEADER_ADDR_KEY, LEADER_ID_KEY};
use std::sync::Arc;
use tokio::time::Instant;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

/// Serves `ControllerService` for the local node.
#[derive(Debug, Clone)]
pub(crate) struct ControllerServiceImpl {
    proposer: Arc<RaftProposer>,
}

impl ControllerServiceImpl {
    pub(crate) fn new(proposer: Arc<RaftProposer>) -> Self {
        Self { proposer }
    }

    fn deadline(&self) -> Instant {
        // The caller's gRPC deadline also applies (tonic drops the handler when it passes).
        Instant::now() + self.proposer.propose_timeout()
    }
}

/// The status for a failed local attempt. UNAVAILABLE is used only for `NoQuorum`, which only
/// a read barrier can produce (always safe to retry).
fn status(e: LocalError) -> Status {
    match e {
        LocalError::NotLeader {
            leader_id,
            leader_addr,
        } => {
            let mut s = Status::failed_precondition("not the controller leader");
            if let Some(v) = leader_id.and_then(|id| MetadataValue::try_from(id.to_string()).ok()) {
                s.metadata_mut().insert(LEADER_ID_KEY, v);
            }
            if let Some(v) = leader_addr.and_then(|a| MetadataValue::try_from(a).ok()) {
                s.metadata_mut().insert(LEADER_ADDR_KEY, v);
            }
            s
        }
        LocalError::NoQuorum => Status::unavailable("the leader cannot reach a quorum"),
        LocalError::Timeout => Status::deadline_exceeded("not committed in time; outcome unknown"),
        LocalError::Stopped => Status::aborted("controller is shutting down; outcome unknown"),
        LocalError::Fatal(m) => Status::internal(m),
    }
}

#[tonic::async_trait]
impl ControllerService for ControllerServiceImpl {
    async fn propose(
        &self,
        request: Request<ProposeRequest>,
    ) -> Result<Response<ProposeReply>, Status> {
        let req = request.into_inner();
        if req.format != WIRE_FORMAT {
            return Err(Status::invalid_argument(format!(
                "unsupported controller wire format {}",
                req.format
            )));
        }
        let cmd: MetadataRequest = serde_json::from_slice(&req.request)
            .map_err(|e| Status::invalid_argument(format!("undecodable proposal: {e}")))?;
        tracing::debug!(command = %cmd, "forwarded proposal");
        let (log_index, outcome) = self
            .proposer
            .write_local(cmd, self.deadline())
            .await
            .map_err(status)?;
        let outcome = serde_json::to_vec(&outcome)
            .map_err(|e| Status::internal(format!("cannot encode outcome: {e}")))?;
        Ok(Response::new(ProposeReply {
            format: WIRE_FORMAT,
            log_index,
            outcome,
        }))
    }

    async fn read_index(
        &self,
        _request: Request<ReadIndexRequest>,
    ) -> Result<Response<ReadIndexReply>, Status> {
        let read_index = self
            .proposer
            .read_index_local(self.deadline())
            .await
            .map_err(status)?;
        Ok(Response::new(ReadIndexReply { read_index }))
    }
}
