//! [`Controller`]: starts the openraft node (log store, state machine, network), the gRPC
//! server, and bootstraps the quorum once; owns them until [`Controller::shutdown`].
//!
//! Safe single bootstrap: on a pristine store only the voter with the **lowest id** in
//! `controller.quorum.voters` calls `initialize` (with every voter); the others wait to be
//! contacted by it. A single-node quorum therefore initializes itself at once, and a restarted
//! node (which has a vote or log) never initializes again.

use super::controller_service::ControllerServiceImpl;
use super::handle::{ControllerHandle, Proposer};
use super::log_store::LogStore;
use super::network::NetworkFactory;
use super::proposer::RaftProposer;
use super::raft_service::RaftServiceImpl;
use super::server;
use super::state_machine::StateMachine;
use super::types::{from_raft_id, to_raft_id, BasicNode, Raft, RaftNodeId};
use crate::config::Config;
use crate::metadata::MetadataImage;
use crate::rpc::PeerPool;
use crate::storage::Store;
use crate::types::NodeId;
use openraft::error::{ClientWriteError, Fatal, InitializeError, RaftError};
use openraft::{ServerState, SnapshotPolicy};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long `shutdown` waits for the gRPC server to drain before aborting it.
const SERVER_STOP_GRACE: Duration = Duration::from_secs(5);
/// Deadline of one snapshot chunk transfer (openraft's `install_snapshot_timeout`).
const SNAPSHOT_CHUNK_TIMEOUT_MS: u64 = 10_000;
/// Snapshot chunk size: far below `rpc::MESSAGE_BYTES_MAX`.
const SNAPSHOT_CHUNK_BYTES: u64 = 1 << 20;
/// Entries per AppendEntries (the network also splits batches that exceed the message limit).
const APPEND_ENTRIES_MAX: u64 = 128;

/// Why the controller could not start or a membership call failed. openraft's errors are
/// boxed: they are large and this error travels through every start-up `?`.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("node id {node_id} cannot be a Raft node id")]
    InvalidNodeId { node_id: NodeId },
    #[error("invalid Raft configuration: {0}")]
    RaftConfig(Box<openraft::ConfigError>),
    #[error("controller storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("cannot bind the Raft listener {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("raft stopped: {0}")]
    Raft(Box<Fatal<RaftNodeId>>),
    #[error("cannot initialize the quorum: {0}")]
    Initialize(Box<RaftError<RaftNodeId, InitializeError<RaftNodeId, BasicNode>>>),
    #[error("not the controller leader (leader hint: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("membership change failed: {0}")]
    Membership(Box<RaftError<RaftNodeId, ClientWriteError<RaftNodeId, BasicNode>>>),
    #[error("{0}")]
    Tls(String),
}

impl From<openraft::ConfigError> for ControllerError {
    fn from(e: openraft::ConfigError) -> Self {
        ControllerError::RaftConfig(Box::new(e))
    }
}

impl From<Fatal<RaftNodeId>> for ControllerError {
    fn from(e: Fatal<RaftNodeId>) -> Self {
        ControllerError::Raft(Box::new(e))
    }
}

impl From<RaftError<RaftNodeId, InitializeError<RaftNodeId, BasicNode>>> for ControllerError {
    fn from(e: RaftError<RaftNodeId, InitializeError<RaftNodeId, BasicNode>>) -> Self {
        ControllerError::Initialize(Box::new(e))
    }
}

/// Raft settings that are not part of `Config` (tests shrink them).
#[derive(Debug, Clone)]
pub(crate) struct RaftTuning {
    /// Build a snapshot after this many applied entries.
    pub(crate) snapshot_logs_since_last: u64,
    /// Entries kept in the log behind the snapshot (lets a briefly lagging follower catch up
    /// without a snapshot transfer).
    pub(crate) logs_to_keep: u64,
    /// Services of upper layers served next to Raft and Controller (not a tuning knob, but
    /// it travels with the start options).
    pub(crate) routes: tonic::service::Routes,
    /// The broker heartbeats this node sees while it leads (DescribeQuorum's timestamps).
    pub(crate) liveness: Option<Arc<super::policy::liveness::Liveness>>,
}

impl Default for RaftTuning {
    fn default() -> Self {
        Self {
            snapshot_logs_since_last: 1000,
            logs_to_keep: 500,
            routes: tonic::service::Routes::default(),
            liveness: None,
        }
    }
}

/// A point-in-time view of the Raft node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerMetrics {
    pub term: u64,
    pub leader: Option<NodeId>,
    pub is_leader: bool,
    pub last_log_index: Option<u64>,
    pub committed_index: Option<u64>,
    pub last_applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub voters: BTreeSet<NodeId>,
}

/// The running controller of one node.
pub struct Controller {
    node_id: NodeId,
    raft: Raft,
    proposer: Arc<RaftProposer>,
    image_rx: watch::Receiver<Arc<MetadataImage>>,
    local_addr: SocketAddr,
    token: CancellationToken,
    server: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("node_id", &self.node_id)
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

fn voters(config: &Config) -> Result<BTreeMap<RaftNodeId, BasicNode>, ControllerError> {
    config
        .controller_quorum
        .iter()
        .map(|(id, addr)| {
            Ok((
                to_raft_id(*id).ok_or(ControllerError::InvalidNodeId { node_id: *id })?,
                BasicNode::new(addr),
            ))
        })
        .collect()
}

fn raft_config(config: &Config, tuning: &RaftTuning) -> Result<openraft::Config, ControllerError> {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let c = openraft::Config {
        cluster_name: "raftka-controller".into(),
        heartbeat_interval: ms(config.raft_heartbeat),
        election_timeout_min: ms(config.raft_election_min),
        election_timeout_max: ms(config.raft_election_max),
        install_snapshot_timeout: SNAPSHOT_CHUNK_TIMEOUT_MS,
        max_payload_entries: APPEND_ENTRIES_MAX,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(tuning.snapshot_logs_since_last),
        snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
        max_in_snapshot_log_to_keep: tuning.logs_to_keep,
        ..openraft::Config::default()
    };
    Ok(c.validate()?)
}

impl Controller {
    /// Binds `config.raft_listen` and starts the controller (see [`Self::start_with_listener`]).
    ///
    /// # Errors
    /// See [`ControllerError`].
    pub async fn start(
        config: Arc<Config>,
        store: Store,
        shutdown: CancellationToken,
    ) -> Result<Controller, ControllerError> {
        Self::start_with_routes(
            config,
            store,
            shutdown,
            tonic::service::Routes::default(),
            None,
        )
        .await
    }

    /// Like [`Self::start`], also serving `routes` (services owned by upper layers, such as
    /// `ReplicaService`) on the node-to-node gRPC listener.
    ///
    /// # Errors
    /// See [`ControllerError`].
    pub async fn start_with_routes(
        config: Arc<Config>,
        store: Store,
        shutdown: CancellationToken,
        routes: tonic::service::Routes,
        liveness: Option<Arc<super::policy::liveness::Liveness>>,
    ) -> Result<Controller, ControllerError> {
        let listener = TcpListener::bind(config.raft_listen)
            .await
            .map_err(|source| ControllerError::Bind {
                addr: config.raft_listen,
                source,
            })?;
        let tuning = RaftTuning {
            routes,
            liveness,
            ..RaftTuning::default()
        };
        Self::start_tuned(config, store, shutdown, listener, tuning).await
    }

    /// Starts the controller serving on an already bound `listener` (tests bind `127.0.0.1:0`
    /// first to learn their ports). Loads the persisted image, starts openraft and the gRPC
    /// server, and bootstraps the quorum if this node is the lowest-id voter of a pristine
    /// cluster. The gRPC server stops when `shutdown` (or [`Self::shutdown`]) fires.
    ///
    /// # Errors
    /// See [`ControllerError`].
    pub async fn start_with_listener(
        config: Arc<Config>,
        store: Store,
        shutdown: CancellationToken,
        listener: TcpListener,
    ) -> Result<Controller, ControllerError> {
        Self::start_tuned(config, store, shutdown, listener, RaftTuning::default()).await
    }

    pub(crate) async fn start_tuned(
        config: Arc<Config>,
        store: Store,
        shutdown: CancellationToken,
        listener: TcpListener,
        tuning: RaftTuning,
    ) -> Result<Controller, ControllerError> {
        let node_id = config.node_id;
        let raft_id = to_raft_id(node_id).ok_or(ControllerError::InvalidNodeId { node_id })?;
        let voters = voters(&config)?;
        let raft_config = Arc::new(raft_config(&config, &tuning)?);
        let local_addr = listener
            .local_addr()
            .map_err(|source| ControllerError::Bind {
                addr: config.raft_listen,
                source,
            })?;
        let (state_machine, image_rx) = StateMachine::open(store.clone()).await?;
        let raft_tls = crate::rpc::RaftTls::from_config(&config).map_err(ControllerError::Tls)?;
        let peers = PeerPool::with_tls(raft_tls.as_ref().map(|t| t.client.clone()));
        let network = NetworkFactory::new(raft_id, peers.clone());
        let raft = openraft::Raft::new(
            raft_id,
            raft_config,
            network,
            LogStore::new(store),
            state_machine,
        )
        .await?;
        let token = shutdown.child_token();
        let proposer = Arc::new(RaftProposer::new(
            raft_id,
            raft.clone(),
            image_rx.clone(),
            peers,
            config.limits.propose_timeout,
            token.clone(),
        ));
        let server = server::spawn(
            listener,
            RaftServiceImpl::new(raft.clone()),
            ControllerServiceImpl::new(proposer.clone(), raft.clone(), tuning.liveness),
            tuning.routes,
            raft_tls.map(|t| t.server),
            token.clone(),
        );
        let controller = Controller {
            node_id,
            raft,
            proposer,
            image_rx,
            local_addr,
            token,
            server: tokio::sync::Mutex::new(Some(server)),
        };
        if let Err(e) = controller.bootstrap(raft_id, voters).await {
            controller.shutdown().await;
            return Err(e);
        }
        Ok(controller)
    }

    async fn bootstrap(
        &self,
        raft_id: RaftNodeId,
        voters: BTreeMap<RaftNodeId, BasicNode>,
    ) -> Result<(), ControllerError> {
        if self.raft.is_initialized().await? {
            tracing::info!("raft state found; rejoining the quorum");
            return Ok(());
        }
        let lowest = voters.keys().next().copied();
        if lowest != Some(raft_id) {
            if voters.contains_key(&raft_id) {
                tracing::info!(
                    ?lowest,
                    "pristine node; waiting for the lowest-id voter to bootstrap the quorum"
                );
            } else {
                // Not an initial voter: a node joining an existing quorum. It never initializes;
                // the leader adds it as a learner (`raftka quorum add-voter`).
                tracing::info!(
                    voters = ?voters.keys().collect::<Vec<_>>(),
                    "pristine node outside the initial voters; waiting to be added as a learner"
                );
            }
            return Ok(());
        }
        tracing::info!(voters = ?voters.keys().collect::<Vec<_>>(), "bootstrapping the controller quorum");
        match self.raft.initialize(voters).await {
            Ok(()) => Ok(()),
            // Contacted by a leader between the check and the call: already part of a quorum.
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                tracing::info!(reason = %e, "quorum already initialized");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The handle the rest of the node uses.
    pub fn handle(&self) -> ControllerHandle {
        let proposer: Arc<dyn Proposer> = self.proposer.clone();
        ControllerHandle::new(self.node_id, proposer, self.image_rx.clone())
    }

    /// The address the Raft gRPC server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops openraft, then the gRPC server (bounded grace). Idempotent. Pending proposals on
    /// this node fail with `Shutdown`.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft core ended abnormally");
        }
        self.token.cancel();
        let Some(mut server) = self.server.lock().await.take() else {
            return;
        };
        if tokio::time::timeout(SERVER_STOP_GRACE, &mut server)
            .await
            .is_err()
        {
            tracing::warn!("raft gRPC server did not drain in time; aborting it");
            server.abort();
        }
        tracing::info!("controller stopped");
    }

    /// Adds `id` (serving Raft at `addr`) as a learner and waits until it has caught up.
    /// Must run on the leader.
    ///
    /// # Errors
    /// `NotLeader` on a follower; `Membership` for other failures.
    pub async fn add_learner(&self, id: NodeId, addr: String) -> Result<(), ControllerError> {
        let raft_id = to_raft_id(id).ok_or(ControllerError::InvalidNodeId { node_id: id })?;
        self.raft
            .add_learner(raft_id, BasicNode::new(addr), true)
            .await
            .map_err(membership_error)?;
        Ok(())
    }

    /// Replaces the voter set (through a joint configuration); nodes must be known (voters or
    /// learners) first. Removed voters are dropped from the membership. Must run on the leader.
    ///
    /// # Errors
    /// `NotLeader` on a follower; `Membership` for other failures.
    pub async fn change_membership(&self, voters: BTreeSet<NodeId>) -> Result<(), ControllerError> {
        let ids = voters
            .iter()
            .map(|id| to_raft_id(*id).ok_or(ControllerError::InvalidNodeId { node_id: *id }))
            .collect::<Result<BTreeSet<_>, _>>()?;
        self.raft
            .change_membership(ids, false)
            .await
            .map_err(membership_error)?;
        Ok(())
    }

    /// Term, leader, log and apply positions, and voters of this node.
    pub async fn metrics(&self) -> ControllerMetrics {
        self.probe().metrics().await
    }

    /// A cloneable reader of [`ControllerMetrics`] (for the metrics endpoint).
    pub fn probe(&self) -> ControllerProbe {
        ControllerProbe {
            raft: self.raft.clone(),
        }
    }
}

/// Reads the Raft node's metrics without owning the controller.
#[derive(Clone)]
pub struct ControllerProbe {
    raft: Raft,
}

impl std::fmt::Debug for ControllerProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerProbe").finish()
    }
}

impl ControllerProbe {
    /// Term, leader, log and apply positions, and voters of this node.
    pub async fn metrics(&self) -> ControllerMetrics {
        let m = self.raft.metrics().borrow().clone();
        let committed_index = self
            .raft
            .with_raft_state(|st| st.committed.map(|l| l.index))
            .await
            .ok()
            .flatten();
        ControllerMetrics {
            term: m.current_term,
            leader: m.current_leader.and_then(from_raft_id),
            is_leader: m.state == ServerState::Leader,
            last_log_index: m.last_log_index,
            committed_index,
            last_applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            voters: m
                .membership_config
                .membership()
                .voter_ids()
                .filter_map(from_raft_id)
                .collect(),
        }
    }
}

fn membership_error(
    e: RaftError<RaftNodeId, ClientWriteError<RaftNodeId, BasicNode>>,
) -> ControllerError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ControllerError::NotLeader {
            leader: f.leader_id.and_then(from_raft_id),
        },
        other => ControllerError::Membership(Box::new(other)),
    }
}
