//! The controller handle the rest of the node uses: propose a command, read the current image,
//! subscribe to new images. The Raft machinery behind it implements [`Proposer`].

use crate::metadata::{ApplyOutcome, MetadataCommand, MetadataImage, MetadataRequest};
use crate::types::NodeId;
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::watch;

/// Why a proposal did not commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// No leader is known (election in progress) or forwarding to it failed.
    #[error("not the controller leader (leader hint: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("proposal timed out")]
    Timeout,
    #[error("controller is shutting down")]
    Shutdown,
    #[error("controller failure: {0}")]
    Fatal(String),
}

/// What drives proposals: openraft on a real node, an in-memory applier in unit tests.
/// The controller quorum as its leader sees it (DescribeQuorum, `raftka quorum describe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumView {
    pub leader_id: NodeId,
    /// The Raft term (KRaft's leader epoch).
    pub term: u64,
    pub commit_index: Option<u64>,
    /// Voters first, then learners (KRaft's observers), each by node id.
    pub members: Vec<QuorumMemberView>,
}

/// One quorum member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumMemberView {
    pub node_id: NodeId,
    /// Its node-to-node (Raft) address, `host:port`.
    pub addr: String,
    pub voter: bool,
    /// The highest log index the leader knows it holds.
    pub matched_index: Option<u64>,
    pub last_fetch_ms: Option<i64>,
    pub last_caught_up_ms: Option<i64>,
}

pub trait Proposer: Send + Sync + 'static {
    /// Commits `req` through the quorum (forwarding to the leader if needed) and returns its
    /// outcome once it is applied **on this node** (read-your-writes for the caller).
    fn propose(&self, req: MetadataRequest) -> BoxFuture<'_, Result<ApplyOutcome, ProposeError>>;
    /// Commits `req` only if this node is the leader now: never forwarded, never retried on
    /// another node. For decisions that only the current leader's local state justifies (e.g.
    /// fencing a broker whose heartbeats this leader stopped seeing): a deposed leader's stale
    /// decision must not reach its successor. The default (for in-memory proposers) is
    /// `propose`.
    fn propose_as_leader(
        &self,
        req: MetadataRequest,
    ) -> BoxFuture<'_, Result<ApplyOutcome, ProposeError>> {
        self.propose(req)
    }
    /// The quorum as its leader describes it (asked of the leader, wherever it is). The
    /// default (in-memory proposers) has no quorum to describe.
    fn describe_quorum(&self) -> BoxFuture<'_, Result<QuorumView, ProposeError>> {
        Box::pin(async { Err(ProposeError::NotLeader { leader: None }) })
    }
    /// Returns once this node's image is at least as new as the leader's commit at call time
    /// (a linearizable read barrier, used by ZooKeeper `sync`).
    fn read_barrier(&self) -> BoxFuture<'_, Result<(), ProposeError>>;
    /// The current Raft leader, if known.
    fn leader_id(&self) -> Option<NodeId>;
    /// The current leader's node-to-node address as recorded in the Raft membership, if known
    /// (reaches leaders that are not in this node's `controller.quorum.voters`).
    fn leader_addr(&self) -> Option<String> {
        None
    }
}

/// Cloneable access to the controller.
#[derive(Clone)]
pub struct ControllerHandle {
    node_id: NodeId,
    proposer: Arc<dyn Proposer>,
    image_rx: watch::Receiver<Arc<MetadataImage>>,
}

impl std::fmt::Debug for ControllerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerHandle")
            .field("node_id", &self.node_id)
            .field("applied_index", &self.image_rx.borrow().applied_index)
            .finish()
    }
}

impl ControllerHandle {
    pub fn new(
        node_id: NodeId,
        proposer: Arc<dyn Proposer>,
        image_rx: watch::Receiver<Arc<MetadataImage>>,
    ) -> Self {
        Self {
            node_id,
            proposer,
            image_rx,
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// # Errors
    /// See [`ProposeError`]. A deterministic rejection is `Ok(ApplyOutcome::Rejected(..))`.
    pub async fn propose(&self, cmd: MetadataCommand) -> Result<ApplyOutcome, ProposeError> {
        self.proposer.propose(MetadataRequest::new(cmd)).await
    }

    /// See [`Proposer::propose_as_leader`].
    ///
    /// # Errors
    /// See [`ProposeError`]; `NotLeader` when this node does not lead.
    pub async fn propose_as_leader(
        &self,
        cmd: MetadataCommand,
    ) -> Result<ApplyOutcome, ProposeError> {
        self.proposer
            .propose_as_leader(MetadataRequest::new(cmd))
            .await
    }

    /// # Errors
    /// See [`ProposeError`].
    pub async fn read_barrier(&self) -> Result<(), ProposeError> {
        self.proposer.read_barrier().await
    }

    /// The latest applied image on this node.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image_rx.borrow().clone()
    }

    /// A receiver that sees every newly applied image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image_rx.clone()
    }

    pub fn leader_id(&self) -> Option<NodeId> {
        self.proposer.leader_id()
    }

    /// See [`Proposer::describe_quorum`].
    ///
    /// # Errors
    /// See [`ProposeError`].
    pub async fn describe_quorum(&self) -> Result<QuorumView, ProposeError> {
        self.proposer.describe_quorum().await
    }

    /// See [`Proposer::leader_addr`].
    pub fn leader_addr(&self) -> Option<String> {
        self.proposer.leader_addr()
    }

    pub fn is_leader(&self) -> bool {
        self.leader_id() == Some(self.node_id)
    }
}

/// An in-memory, single-process proposer: applies commands directly with `metadata::apply`.
/// For unit tests of the layers above the controller only; a node always runs Raft.
#[cfg(test)]
pub mod testing {
    use super::*;
    use crate::metadata::apply;
    use std::sync::Mutex;

    /// Applies proposals to an in-memory image.
    #[derive(Debug)]
    pub struct LocalProposer {
        node_id: NodeId,
        tx: watch::Sender<Arc<MetadataImage>>,
        lock: Mutex<()>,
    }

    impl LocalProposer {
        pub fn handle(node_id: NodeId) -> ControllerHandle {
            let (tx, rx) = watch::channel(Arc::new(MetadataImage::default()));
            let p = Arc::new(Self {
                node_id,
                tx,
                lock: Mutex::new(()),
            });
            ControllerHandle::new(node_id, p, rx)
        }
    }

    impl Proposer for LocalProposer {
        fn propose(
            &self,
            req: MetadataRequest,
        ) -> BoxFuture<'_, Result<ApplyOutcome, ProposeError>> {
            Box::pin(async move {
                let _g = self
                    .lock
                    .lock()
                    .map_err(|_| ProposeError::Fatal("poisoned".into()))?;
                let cur = self.tx.borrow().clone();
                let (next, out) = apply(&cur, &req, cur.applied_index + 1);
                self.tx.send_replace(Arc::new(next));
                Ok(out)
            })
        }
        fn read_barrier(&self) -> BoxFuture<'_, Result<(), ProposeError>> {
            Box::pin(async { Ok(()) })
        }
        fn leader_id(&self) -> Option<NodeId> {
            Some(self.node_id)
        }
    }
}
