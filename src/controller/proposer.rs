//! [`RaftProposer`]: the [`Proposer`] behind a node's `ControllerHandle`.
//!
//! A proposal is first offered to the local openraft node. If this node is not the leader,
//! openraft says who is and the proposal is forwarded to it over `ControllerService` (one hop;
//! the leader never forwards again). Attempts that certainly appended nothing are retried with
//! jittered exponential backoff, bounded in number and by `limits.propose_timeout`. After the
//! commit, the call waits until **this** node has applied the entry, so the caller reads its
//! own write from `ControllerHandle::image()`.

use super::forward::{AttemptError, LeaderClient};
use super::handle::{ProposeError, Proposer};
use super::types::{from_raft_id, BasicNode, Raft, RaftNodeId};
use crate::metadata::{ApplyOutcome, MetadataImage, MetadataRequest};
use crate::rpc::PeerPool;
use crate::types::NodeId;
use futures::future::BoxFuture;
use openraft::error::{CheckIsLeaderError, ClientWriteError, Fatal, ForwardToLeader, RaftError};
use openraft::RaftMetrics;
use rand::Rng;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Attempts per proposal or read barrier, whatever the deadline leaves.
const ATTEMPTS_MAX: usize = 50;
const BACKOFF_FIRST: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_millis(250);

/// Why a local attempt failed (also what the `ControllerService` server maps to statuses).
#[derive(Debug)]
pub(crate) enum LocalError {
    /// This node is not the leader; the leader's id and address if known.
    NotLeader {
        leader_id: Option<RaftNodeId>,
        leader_addr: Option<String>,
    },
    /// The leader cannot currently reach a quorum (read barrier only; safe to retry).
    NoQuorum,
    Timeout,
    /// openraft has stopped (shutdown).
    Stopped,
    Fatal(String),
}

impl LocalError {
    pub(crate) fn from_forward(f: ForwardToLeader<RaftNodeId, BasicNode>) -> Self {
        LocalError::NotLeader {
            leader_id: f.leader_id,
            leader_addr: f.leader_node.map(|n| n.addr),
        }
    }

    fn from_fatal(f: Fatal<RaftNodeId>) -> Self {
        match f {
            Fatal::Stopped => LocalError::Stopped,
            other => LocalError::Fatal(other.to_string()),
        }
    }
}

/// Proposes through the local openraft node, forwarding to the leader when needed.
pub(crate) struct RaftProposer {
    raft_id: RaftNodeId,
    raft: Raft,
    metrics: watch::Receiver<RaftMetrics<RaftNodeId, BasicNode>>,
    image_rx: watch::Receiver<Arc<MetadataImage>>,
    peers: PeerPool,
    propose_timeout: Duration,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for RaftProposer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftProposer")
            .field("raft_id", &self.raft_id)
            .finish_non_exhaustive()
    }
}

impl RaftProposer {
    pub(crate) fn new(
        raft_id: RaftNodeId,
        raft: Raft,
        image_rx: watch::Receiver<Arc<MetadataImage>>,
        peers: PeerPool,
        propose_timeout: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        let metrics = raft.metrics();
        Self {
            raft_id,
            raft,
            metrics,
            image_rx,
            peers,
            propose_timeout,
            shutdown,
        }
    }

    pub(crate) fn propose_timeout(&self) -> Duration {
        self.propose_timeout
    }

    /// Appends `req` on this node if it is the leader and returns the commit index and the
    /// outcome (the leader has applied it by then).
    ///
    /// # Errors
    /// See [`LocalError`].
    pub(crate) async fn write_local(
        &self,
        req: MetadataRequest,
        deadline: Instant,
    ) -> Result<(u64, ApplyOutcome), LocalError> {
        match tokio::time::timeout_at(deadline, self.raft.client_write(req)).await {
            Err(_) => Err(LocalError::Timeout),
            Ok(Ok(resp)) => Ok((resp.log_id.index, resp.data)),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(LocalError::from_forward(f))
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                Err(LocalError::Fatal(format!(
                    "unexpected membership error for a normal entry: {e}"
                )))
            }
            Ok(Err(RaftError::Fatal(f))) => Err(LocalError::from_fatal(f)),
        }
    }

    /// Confirms leadership with a quorum and returns the read index (openraft has applied up
    /// to it on this node by then).
    ///
    /// # Errors
    /// See [`LocalError`].
    pub(crate) async fn read_index_local(
        &self,
        deadline: Instant,
    ) -> Result<Option<u64>, LocalError> {
        match tokio::time::timeout_at(deadline, self.raft.ensure_linearizable()).await {
            Err(_) => Err(LocalError::Timeout),
            Ok(Ok(read_log_id)) => Ok(read_log_id.map(|l| l.index)),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                Err(LocalError::from_forward(f))
            }
            Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))) => {
                Err(LocalError::NoQuorum)
            }
            Ok(Err(RaftError::Fatal(f))) => Err(LocalError::from_fatal(f)),
        }
    }

    /// Classifies a local failure: forward when the leader is known elsewhere.
    fn leader_to_forward(&self, e: LocalError) -> Result<(RaftNodeId, String), AttemptError> {
        match e {
            LocalError::NotLeader {
                leader_id: Some(id),
                leader_addr: Some(addr),
            } if id != self.raft_id => Ok((id, addr)),
            LocalError::NotLeader { leader_id, .. } => Err(AttemptError::Retry {
                leader: leader_id.and_then(from_raft_id),
            }),
            LocalError::NoQuorum => Err(AttemptError::Retry { leader: None }),
            LocalError::Timeout => Err(AttemptError::Fail(ProposeError::Timeout)),
            LocalError::Stopped => Err(AttemptError::Fail(ProposeError::Shutdown)),
            LocalError::Fatal(m) => Err(AttemptError::Fail(ProposeError::Fatal(m))),
        }
    }

    async fn propose_attempt(
        &self,
        req: &MetadataRequest,
        deadline: Instant,
    ) -> Result<(u64, ApplyOutcome), AttemptError> {
        let local = self.write_local(req.clone(), deadline).await;
        let (leader, addr) = match local {
            Ok(done) => return Ok(done),
            Err(e) => self.leader_to_forward(e)?,
        };
        LeaderClient::new(&self.peers, leader, &addr)?
            .propose(req, deadline)
            .await
    }

    async fn read_index_attempt(&self, deadline: Instant) -> Result<Option<u64>, AttemptError> {
        let local = self.read_index_local(deadline).await;
        let (leader, addr) = match local {
            Ok(index) => return Ok(index),
            Err(e) => self.leader_to_forward(e)?,
        };
        LeaderClient::new(&self.peers, leader, &addr)?
            .read_index(deadline)
            .await
    }

    /// Runs `attempt` until it succeeds or fails for good, backing off between attempts.
    async fn with_retries<T, F, Fut>(
        &self,
        deadline: Instant,
        mut attempt: F,
    ) -> Result<T, ProposeError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AttemptError>>,
    {
        let mut backoff = BACKOFF_FIRST;
        let mut hint = None;
        for _ in 0..ATTEMPTS_MAX {
            if self.shutdown.is_cancelled() {
                return Err(ProposeError::Shutdown);
            }
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(AttemptError::Fail(e)) => return Err(e),
                Err(AttemptError::Retry { leader }) => hint = leader,
            }
            let jitter: f64 = rand::rng().random_range(0.5..1.5);
            let pause = backoff
                .mul_f64(jitter)
                .min(deadline.saturating_duration_since(Instant::now()));
            if pause.is_zero() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.shutdown.cancelled() => return Err(ProposeError::Shutdown),
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        tracing::debug!(?hint, "giving up: no reachable leader");
        Err(ProposeError::NotLeader { leader: hint })
    }

    /// Waits until this node has applied `index`.
    async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), ProposeError> {
        let mut rx = self.image_rx.clone();
        tokio::select! {
            res = tokio::time::timeout_at(deadline, rx.wait_for(|image| image.applied_index >= index)) => match res {
                Err(_) => Err(ProposeError::Timeout),
                // The state machine (the sender) is gone: openraft has shut down.
                Ok(Err(_)) => Err(ProposeError::Shutdown),
                Ok(Ok(_)) => Ok(()),
            },
            () = self.shutdown.cancelled() => Err(ProposeError::Shutdown),
        }
    }

    async fn propose_req(&self, req: MetadataRequest) -> Result<ApplyOutcome, ProposeError> {
        let deadline = Instant::now() + self.propose_timeout;
        let (index, outcome) = self
            .with_retries(deadline, || self.propose_attempt(&req, deadline))
            .await?;
        self.wait_applied(index, deadline).await?;
        Ok(outcome)
    }

    /// One local attempt: append here if leader, else fail with `NotLeader`.
    async fn propose_here(&self, req: MetadataRequest) -> Result<ApplyOutcome, ProposeError> {
        let deadline = Instant::now() + self.propose_timeout;
        match self.write_local(req, deadline).await {
            Ok((_, outcome)) => Ok(outcome),
            Err(LocalError::NotLeader { leader_id, .. }) => Err(ProposeError::NotLeader {
                leader: leader_id.and_then(from_raft_id),
            }),
            Err(LocalError::NoQuorum) => Err(ProposeError::NotLeader { leader: None }),
            Err(LocalError::Timeout) => Err(ProposeError::Timeout),
            Err(LocalError::Stopped) => Err(ProposeError::Shutdown),
            Err(LocalError::Fatal(m)) => Err(ProposeError::Fatal(m)),
        }
    }

    async fn barrier(&self) -> Result<(), ProposeError> {
        let deadline = Instant::now() + self.propose_timeout;
        let index = self
            .with_retries(deadline, || self.read_index_attempt(deadline))
            .await?;
        match index {
            Some(index) => self.wait_applied(index, deadline).await,
            None => Ok(()),
        }
    }

    async fn describe_quorum_attempt(
        &self,
        deadline: Instant,
    ) -> Result<super::handle::QuorumView, AttemptError> {
        let (leader, addr) = {
            let m = self.metrics.borrow();
            let leader = m
                .current_leader
                .ok_or(AttemptError::Retry { leader: None })?;
            let addr = m
                .membership_config
                .membership()
                .get_node(&leader)
                .map(|n| n.addr.clone())
                .ok_or(AttemptError::Retry { leader: None })?;
            (leader, addr)
        };
        let r = LeaderClient::new(&self.peers, leader, &addr)?
            .describe_quorum(deadline)
            .await?;
        let id = |n: u64| from_raft_id(n).ok_or(AttemptError::Retry { leader: None });
        Ok(super::handle::QuorumView {
            leader_id: id(r.leader_id)?,
            term: r.term,
            commit_index: r.commit_index,
            members: r
                .members
                .into_iter()
                .filter_map(|m| {
                    Some(super::handle::QuorumMemberView {
                        node_id: from_raft_id(m.node_id)?,
                        addr: m.addr,
                        voter: m.voter,
                        matched_index: m.matched_index,
                        last_fetch_ms: m.last_fetch_ms,
                        last_caught_up_ms: m.last_caught_up_ms,
                    })
                })
                .collect(),
        })
    }

    async fn quorum(&self) -> Result<super::handle::QuorumView, ProposeError> {
        let deadline = Instant::now() + self.propose_timeout;
        self.with_retries(deadline, || self.describe_quorum_attempt(deadline))
            .await
    }

    pub(crate) fn current_leader(&self) -> Option<NodeId> {
        self.metrics.borrow().current_leader.and_then(from_raft_id)
    }
}

impl Proposer for RaftProposer {
    fn propose(&self, req: MetadataRequest) -> BoxFuture<'_, Result<ApplyOutcome, ProposeError>> {
        Box::pin(self.propose_req(req))
    }

    fn propose_as_leader(
        &self,
        req: MetadataRequest,
    ) -> BoxFuture<'_, Result<ApplyOutcome, ProposeError>> {
        Box::pin(self.propose_here(req))
    }

    fn read_barrier(&self) -> BoxFuture<'_, Result<(), ProposeError>> {
        Box::pin(self.barrier())
    }

    fn describe_quorum(&self) -> BoxFuture<'_, Result<super::handle::QuorumView, ProposeError>> {
        Box::pin(self.quorum())
    }

    fn leader_id(&self) -> Option<NodeId> {
        self.current_leader()
    }

    fn leader_addr(&self) -> Option<String> {
        let m = self.metrics.borrow();
        let leader = m.current_leader?;
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
    }
}
