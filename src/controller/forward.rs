//! Forwarding to the leader over `ControllerService`: one attempt per call, classified for the
//! retry loop in `proposer.rs`. Only failures where the command certainly was not appended (the
//! receiver is not the leader, the connection could not be made) are retried; an answer that
//! never came is reported as `Timeout` (outcome unknown) rather than risking a duplicate.

use super::codec::WIRE_FORMAT;
use super::handle::ProposeError;
use super::types::{from_raft_id, RaftNodeId};
use crate::metadata::{ApplyOutcome, MetadataRequest};
use crate::rpc::pb::controller::controller_service_client::ControllerServiceClient;
use crate::rpc::pb::controller::{
    DescribeQuorumReply, DescribeQuorumRequest, ProposeRequest, ReadIndexRequest,
};
use crate::rpc::{PeerPool, LEADER_ID_KEY, MESSAGE_BYTES_MAX};
use crate::types::NodeId;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// Why one attempt did not succeed.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// Nothing was appended; try again (after a backoff) once a leader is known.
    Retry { leader: Option<NodeId> },
    /// Give up with this error.
    Fail(ProposeError),
}

/// A client for the leader's `ControllerService`.
#[derive(Debug)]
pub(crate) struct LeaderClient {
    leader: RaftNodeId,
    client: ControllerServiceClient<Channel>,
}

impl LeaderClient {
    /// # Errors
    /// `Retry` if `addr` cannot be used (the leader's address may change with the next term).
    pub(crate) fn new(
        peers: &PeerPool,
        leader: RaftNodeId,
        addr: &str,
    ) -> Result<Self, AttemptError> {
        let channel = peers.channel(addr).map_err(|e| {
            tracing::warn!(error = %e, "leader address unusable");
            AttemptError::Retry {
                leader: from_raft_id(leader),
            }
        })?;
        let client = ControllerServiceClient::new(channel)
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX);
        Ok(Self { leader, client })
    }

    /// Proposes `req` on the leader; returns the commit index and the outcome.
    #[tracing::instrument(level = "debug", name = "raft_rpc", skip_all, fields(peer = self.leader, rpc = "propose"))]
    pub(crate) async fn propose(
        &mut self,
        req: &MetadataRequest,
        deadline: Instant,
    ) -> Result<(u64, ApplyOutcome), AttemptError> {
        let request = serde_json::to_vec(req).map_err(|e| {
            AttemptError::Fail(ProposeError::Fatal(format!("cannot encode proposal: {e}")))
        })?;
        let remaining = remaining(deadline)?;
        let mut msg = Request::new(ProposeRequest {
            format: WIRE_FORMAT,
            request,
        });
        msg.set_timeout(remaining);
        let reply = match tokio::time::timeout(remaining, self.client.propose(msg)).await {
            Err(_) => return Err(AttemptError::Fail(ProposeError::Timeout)),
            Ok(Err(status)) => return Err(self.classify(&status)),
            Ok(Ok(reply)) => reply.into_inner(),
        };
        if reply.format != WIRE_FORMAT {
            return Err(AttemptError::Fail(ProposeError::Fatal(format!(
                "unknown reply format {}",
                reply.format
            ))));
        }
        let outcome: ApplyOutcome = serde_json::from_slice(&reply.outcome).map_err(|e| {
            AttemptError::Fail(ProposeError::Fatal(format!("undecodable outcome: {e}")))
        })?;
        Ok((reply.log_index, outcome))
    }

    /// Asks the leader for the index a linearizable read must wait for.
    #[tracing::instrument(level = "debug", name = "raft_rpc", skip_all, fields(peer = self.leader, rpc = "read_index"))]
    pub(crate) async fn read_index(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<u64>, AttemptError> {
        let remaining = remaining(deadline)?;
        let mut msg = Request::new(ReadIndexRequest {});
        msg.set_timeout(remaining);
        match tokio::time::timeout(remaining, self.client.read_index(msg)).await {
            Err(_) => Err(AttemptError::Fail(ProposeError::Timeout)),
            Ok(Err(status)) => Err(self.classify(&status)),
            Ok(Ok(reply)) => Ok(reply.into_inner().read_index),
        }
    }

    /// Asks the leader for its view of the quorum.
    #[tracing::instrument(level = "debug", name = "raft_rpc", skip_all, fields(peer = self.leader, rpc = "describe_quorum"))]
    pub(crate) async fn describe_quorum(
        &mut self,
        deadline: Instant,
    ) -> Result<DescribeQuorumReply, AttemptError> {
        let remaining = remaining(deadline)?;
        let mut msg = Request::new(DescribeQuorumRequest {});
        msg.set_timeout(remaining);
        match tokio::time::timeout(remaining, self.client.describe_quorum(msg)).await {
            Err(_) => Err(AttemptError::Fail(ProposeError::Timeout)),
            Ok(Err(status)) => Err(self.classify(&status)),
            Ok(Ok(reply)) => Ok(reply.into_inner()),
        }
    }

    fn classify(&self, status: &Status) -> AttemptError {
        tracing::debug!(code = ?status.code(), message = status.message(), "forwarding failed");
        match status.code() {
            // It is no longer the leader; it may know who is.
            Code::FailedPrecondition => AttemptError::Retry {
                leader: leader_hint(status),
            },
            // The transport failed (the server never answers UNAVAILABLE to a proposal).
            Code::Unavailable => AttemptError::Retry {
                leader: from_raft_id(self.leader),
            },
            Code::DeadlineExceeded | Code::Aborted | Code::Cancelled => {
                AttemptError::Fail(ProposeError::Timeout)
            }
            _ => AttemptError::Fail(ProposeError::Fatal(format!(
                "leader {}: {}",
                self.leader,
                status.message()
            ))),
        }
    }
}

fn remaining(deadline: Instant) -> Result<std::time::Duration, AttemptError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(AttemptError::Fail(ProposeError::Timeout));
    }
    Ok(left)
}

/// The leader id a FAILED_PRECONDITION carries, if any.
fn leader_hint(status: &Status) -> Option<NodeId> {
    let raw = status.metadata().get(LEADER_ID_KEY)?.to_str().ok()?;
    from_raft_id(raw.parse::<u64>().ok()?)
}
