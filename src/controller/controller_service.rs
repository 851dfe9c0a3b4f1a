//! The server side of proposal forwarding: a peer that is not the leader sends its proposals
//! and read barriers here. This node tries exactly once, locally, and never forwards again; if
//! it is not the leader it answers FAILED_PRECONDITION with the leader hint in the metadata.
//! Also serves the quorum administration calls (`DescribeQuorum`, `AddLearner`,
//! `ChangeVoters`), on the leader only, with the same not-the-leader answer.

use super::codec::WIRE_FORMAT;
use super::proposer::{LocalError, RaftProposer};
use super::types::{from_raft_id, BasicNode, Raft, RaftNodeId};
use crate::metadata::MetadataRequest;
use crate::rpc::pb::controller::controller_service_server::ControllerService;
use crate::rpc::pb::controller::{
    AddLearnerReply, AddLearnerRequest, ChangeVotersReply, ChangeVotersRequest,
    DescribeQuorumReply, DescribeQuorumRequest, ProposeReply, ProposeRequest, QuorumMember,
    ReadIndexReply, ReadIndexRequest, RemoveNodeReply, RemoveNodeRequest,
};
use crate::rpc::{LEADER_ADDR_KEY, LEADER_ID_KEY};
use openraft::error::{ChangeMembershipError, ClientWriteError, Fatal, RaftError};
use openraft::{ChangeMembers, ServerState};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

/// Serves `ControllerService` for the local node.
#[derive(Clone)]
pub(crate) struct ControllerServiceImpl {
    proposer: Arc<RaftProposer>,
    raft: Raft,
    liveness: Option<Arc<super::policy::liveness::Liveness>>,
}

impl std::fmt::Debug for ControllerServiceImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerServiceImpl")
            .field("proposer", &self.proposer)
            .finish_non_exhaustive()
    }
}

/// How long AddLearner waits for the learner to catch up unless the request says otherwise.
const ADD_LEARNER_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// The most AddLearner waits (below the server's request backstop of 60 s).
const ADD_LEARNER_TIMEOUT_MAX: Duration = Duration::from_secs(55);
/// Deadline of a voter change (two membership entries through the joint configuration).
const CHANGE_VOTERS_TIMEOUT: Duration = Duration::from_secs(30);

impl ControllerServiceImpl {
    pub(crate) fn new(
        proposer: Arc<RaftProposer>,
        raft: Raft,
        liveness: Option<Arc<super::policy::liveness::Liveness>>,
    ) -> Self {
        Self {
            proposer,
            raft,
            liveness,
        }
    }

    /// `Ok` on the leader, else FAILED_PRECONDITION with the leader hint.
    fn ensure_leader(&self) -> Result<openraft::RaftMetrics<RaftNodeId, BasicNode>, Status> {
        let m = self.raft.metrics().borrow().clone();
        // A leader whose committed membership left it out goes on leading for a moment (so
        // the followers learn of the commit) before it steps down: it answers as a node
        // without a known leader, so that callers wait for its successor instead of
        // changing the membership through it (e.g. adding itself back as a learner, an entry
        // its step-down would leave uncommitted).
        let stepping_down = !m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == m.id);
        if m.state == ServerState::Leader && !stepping_down {
            return Ok(m);
        }
        let leader_id = m.current_leader.filter(|l| *l != m.id);
        let leader_addr = leader_id.and_then(|l| {
            m.membership_config
                .membership()
                .get_node(&l)
                .map(|n| n.addr.clone())
        });
        Err(status(LocalError::NotLeader {
            leader_id,
            leader_addr,
        }))
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

/// The status for a failed membership change.
fn membership_status(e: RaftError<RaftNodeId, ClientWriteError<RaftNodeId, BasicNode>>) -> Status {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            status(LocalError::from_forward(f))
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(e),
        )) => Status::aborted(format!(
            "another membership change is in progress; retry later ({e})"
        )),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            Status::invalid_argument(e.to_string())
        }
        RaftError::Fatal(Fatal::Stopped) => Status::aborted("controller is shutting down"),
        RaftError::Fatal(f) => Status::internal(f.to_string()),
    }
}

/// The leader's view of how far `id`'s log matches (the leader itself: its last log index).
fn matched_index(m: &openraft::RaftMetrics<RaftNodeId, BasicNode>, id: RaftNodeId) -> Option<u64> {
    if id == m.id {
        return m.last_log_index;
    }
    m.replication
        .as_ref()
        .and_then(|r| r.get(&id).cloned().flatten())
        .map(|l| l.index)
}

/// A node id that is also a valid broker id.
fn check_node_id(id: u64) -> Result<RaftNodeId, Status> {
    from_raft_id(id)
        .map(|_| id)
        .ok_or_else(|| Status::invalid_argument(format!("node id {id} is out of range")))
}

/// `host:port` with a non-empty host and a non-zero port.
fn check_addr(addr: &str) -> Result<(), Status> {
    let ok = addr
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0));
    if ok {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "address {addr:?} is not host:port"
        )))
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

    async fn describe_quorum(
        &self,
        _request: Request<DescribeQuorumRequest>,
    ) -> Result<Response<DescribeQuorumReply>, Status> {
        let m = self.ensure_leader()?;
        let commit_index = self
            .raft
            .with_raft_state(|st| st.committed.map(|l| l.index))
            .await
            .map_err(|e| Status::aborted(format!("controller stopped: {e}")))?;
        let membership = m.membership_config.membership();
        let voters: BTreeSet<RaftNodeId> = membership.voter_ids().collect();
        let now = crate::types::now_ms();
        let mut members: Vec<QuorumMember> = membership
            .nodes()
            .map(|(id, node)| {
                let matched = matched_index(&m, *id);
                // The leader: now. A follower: its last broker heartbeat here; it was caught
                // up then if it matches the leader's log now (else: not known).
                let last_fetch_ms = if *id == m.id {
                    Some(now)
                } else {
                    from_raft_id(*id).and_then(|n| self.liveness.as_ref()?.last_seen_ms(n))
                };
                let last_caught_up_ms = if matched.is_some() && matched == m.last_log_index {
                    last_fetch_ms
                } else {
                    None
                };
                QuorumMember {
                    node_id: *id,
                    addr: node.addr.clone(),
                    voter: voters.contains(id),
                    matched_index: matched,
                    last_fetch_ms,
                    last_caught_up_ms,
                }
            })
            .collect();
        members.sort_by_key(|mb| (!mb.voter, mb.node_id));
        Ok(Response::new(DescribeQuorumReply {
            leader_id: m.id,
            term: m.current_term,
            commit_index,
            last_log_index: m.last_log_index,
            members,
        }))
    }

    async fn add_learner(
        &self,
        request: Request<AddLearnerRequest>,
    ) -> Result<Response<AddLearnerReply>, Status> {
        let req = request.into_inner();
        let id = check_node_id(req.node_id)?;
        check_addr(&req.addr)?;
        let m = self.ensure_leader()?;
        if let Some(n) = m.membership_config.membership().get_node(&id) {
            if n.addr != req.addr {
                return Err(Status::invalid_argument(format!(
                    "node {id} is already a member at {}; remove it first to change its address",
                    n.addr
                )));
            }
        }
        let timeout = match req.timeout_ms {
            0 => ADD_LEARNER_TIMEOUT_DEFAULT,
            ms => Duration::from_millis(u64::from(ms)).min(ADD_LEARNER_TIMEOUT_MAX),
        };
        tracing::info!(node = id, addr = %req.addr, "adding a learner");
        let deadline = Instant::now() + timeout;
        let not_caught_up = |what: &str| {
            Status::deadline_exceeded(format!(
                "node {id} {what} within {} ms (is it running and reachable at {}?)",
                timeout.as_millis(),
                req.addr
            ))
        };
        // Not openraft's blocking mode: it gives up waiting after 500 ms and reports success.
        let resp = tokio::time::timeout_at(
            deadline,
            self.raft.add_learner(id, BasicNode::new(&req.addr), false),
        )
        .await
        .map_err(|_| not_caught_up("was not added as a learner"))?
        .map_err(membership_status)?;
        let target = resp.log_id.index;
        let mut metrics = self.raft.metrics();
        let caught_up = tokio::time::timeout_at(
            deadline,
            metrics.wait_for(|m| matched_index(m, id).is_some_and(|i| i >= target)),
        )
        .await;
        match caught_up {
            Ok(Ok(_)) => Ok(Response::new(AddLearnerReply { log_index: target })),
            Ok(Err(_)) => Err(Status::aborted("controller is shutting down")),
            Err(_) => Err(not_caught_up("was added as a learner but did not catch up")),
        }
    }

    async fn change_voters(
        &self,
        request: Request<ChangeVotersRequest>,
    ) -> Result<Response<ChangeVotersReply>, Status> {
        let req = request.into_inner();
        let ids = req
            .voters
            .iter()
            .map(|id| check_node_id(*id))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if ids.is_empty() {
            return Err(Status::invalid_argument("the voter set cannot be empty"));
        }
        let m = self.ensure_leader()?;
        let membership = m.membership_config.membership();
        if let Some(unknown) = ids.iter().find(|id| membership.get_node(id).is_none()) {
            return Err(Status::invalid_argument(format!(
                "node {unknown} is neither a voter nor a learner: add it as a learner first"
            )));
        }
        // A new voter that has not caught up (or is unreachable) would stall the joint
        // configuration and with it every commit: refuse it.
        let current: BTreeSet<RaftNodeId> = membership.voter_ids().collect();
        let needed = m.membership_config.log_id().map_or(0, |l| l.index);
        for id in ids.iter().filter(|id| !current.contains(id)) {
            let matched = matched_index(&m, *id);
            if matched.is_none_or(|i| i < needed) {
                return Err(Status::invalid_argument(format!(
                    "node {id} has not caught up (matched index {matched:?}, needs {needed}): \
                     is it running and reachable? add it as a learner again first"
                )));
            }
        }
        // A voter left out stays a learner (retain), so its broker keeps receiving the
        // metadata log (a KRaft observer) instead of serving a frozen image. Except this
        // leader itself: openraft lets a learner go on leading, so the leader leaves the
        // membership altogether, which makes it step down once the change commits; the admin
        // client then adds it back as a learner through the new leader.
        let retain = ids.contains(&m.id);
        tracing::info!(voters = ?ids, retain, "changing the voter set");
        let resp = tokio::time::timeout(
            CHANGE_VOTERS_TIMEOUT,
            self.raft.change_membership(ids, retain),
        )
        .await
        .map_err(|_| Status::deadline_exceeded("voter change not committed in time"))?
        .map_err(membership_status)?;
        let voters = resp
            .membership
            .map(|mb| mb.voter_ids().collect())
            .unwrap_or_default();
        Ok(Response::new(ChangeVotersReply {
            log_index: resp.log_id.index,
            voters,
        }))
    }

    async fn remove_node(
        &self,
        request: Request<RemoveNodeRequest>,
    ) -> Result<Response<RemoveNodeReply>, Status> {
        let id = check_node_id(request.into_inner().node_id)?;
        let m = self.ensure_leader()?;
        let membership = m.membership_config.membership();
        if membership.get_node(&id).is_none() {
            return Err(Status::not_found(format!("node {id} is not a member")));
        }
        if membership.voter_ids().any(|v| v == id) {
            return Err(Status::failed_precondition(format!(
                "node {id} is a voter: remove it from the voters first (remove-voter)"
            )));
        }
        tracing::info!(node = id, "removing a learner from the membership");
        let resp = tokio::time::timeout(
            CHANGE_VOTERS_TIMEOUT,
            self.raft
                .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false),
        )
        .await
        .map_err(|_| Status::deadline_exceeded("membership change not committed in time"))?
        .map_err(membership_status)?;
        Ok(Response::new(RemoveNodeReply {
            log_index: resp.log_id.index,
        }))
    }
}
