//! The composition root: opens storage, then starts the controller, replica manager, broker
//! registration and the Kafka listeners, in that order, and owns the shutdown tree. The Kafka
//! listeners are bound at once (their ports go into the registration) but accept connections
//! only once this node's registration is in its metadata image, as Kafka's brokers serve
//! only once registered (at most `KAFKA_SERVE_WAIT` later: then they serve what they know).

use crate::broker::Broker;
use crate::config::Config;
use crate::controller::policy::liveness::{self, Liveness, LivenessConfig};
use crate::controller::{Controller, ControllerError, ControllerHandle};
use crate::group::GroupCoordinator;
use crate::kafka::KafkaServer;
use crate::metadata::{BrokerRegistration, Endpoint, MetadataCommand};
use crate::replication::{ReplicaManager, ReplicaServiceImpl};
use crate::rpc::PeerPool;
use crate::storage::{StorageError, Store};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// How long in-flight requests may run after shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long the Kafka listeners wait for this node's registration before serving anyway (a
/// node without a quorum then answers from the image it has, as before it waited).
const KAFKA_SERVE_WAIT: Duration = Duration::from_secs(10);
/// How long a controlled shutdown waits for its leaderships to move to other replicas.
const CONTROLLED_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(8);

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Controller(#[from] ControllerError),
    #[error("{0}")]
    Bind(#[from] std::io::Error),
}

/// A running raftka node.
pub struct Node {
    config: Arc<Config>,
    store: Store,
    controller: Controller,
    broker: Broker,
    shutdown: CancellationToken,
    /// Stops re-registration first, so a controlled shutdown's fencing sticks.
    registration: CancellationToken,
    /// Set when shutdown starts (`/health` answers 503 from then on).
    stopping: Arc<AtomicBool>,
    tracker: TaskTracker,
    kafka_addrs: Vec<(String, SocketAddr)>,
    http_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("node_id", &self.config.node_id)
            .field("kafka", &self.kafka_addrs)
            .finish()
    }
}

impl Node {
    /// Starts every service of the node.
    ///
    /// # Errors
    /// Storage cannot be opened, the controller fails to start, or a listener cannot bind.
    pub async fn start(config: Arc<Config>) -> Result<Self, NodeError> {
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let store = open_store(&config).await?;
        // The controller gets its own token: it must keep serving Raft (and proposals) while
        // in-flight requests drain, and is stopped explicitly after the grace period.
        let replicas = ReplicaManager::new(config.node_id, store.clone());
        // Follower fetches are served on the node-to-node gRPC listener next to Raft.
        let liveness = Arc::new(Liveness::new(
            config.node_id,
            LivenessConfig::from_config(&config.replication),
        ));
        // The group service answers NOT_COORDINATOR until the coordinator exists (below).
        let group_service = crate::group::service::GroupServiceImpl::default();
        // Markers from other nodes' transaction coordinators, once the broker exists.
        let txn_service = crate::broker::TxnServiceImpl::default();
        let routes = tonic::service::Routes::new(
            ReplicaServiceImpl::new(replicas.clone(), liveness.clone()).into_server(),
        )
        .add_service(group_service.clone().into_server())
        .add_service(txn_service.clone().into_server());
        let controller = Controller::start_with_routes(
            config.clone(),
            store.clone(),
            CancellationToken::new(),
            routes,
            Some(liveness.clone()),
        )
        .await?;
        let handle = controller.handle();
        let peers = PeerPool::with_tls(crate::rpc::RaftTls::client_for(&config));
        replicas.enable_replication(
            config.controller_quorum.clone(),
            peers.clone(),
            shutdown.child_token(),
            tracker.clone(),
        );
        tracker.spawn(liveness::run_heartbeats(
            liveness.clone(),
            handle.clone(),
            config.controller_quorum.clone(),
            peers,
            shutdown.child_token(),
        ));
        let lease = liveness.lease();
        tracker.spawn(liveness::run_monitor(
            liveness,
            handle.clone(),
            config.controller_quorum.clone(),
            shutdown.child_token(),
        ));
        if let Some(every) = config.replication.leader_rebalance_interval {
            tracker.spawn(crate::controller::policy::elections::run(
                handle.clone(),
                every,
                shutdown.child_token(),
            ));
        }
        tracker.spawn(crate::controller::policy::elections::run_unclean(
            handle.clone(),
            config.clone(),
            shutdown.child_token(),
        ));
        tracker.spawn(
            replicas
                .clone()
                .run_hw_checkpoints(Duration::from_secs(1), shutdown.child_token()),
        );
        let lag_max = config.replication.replica_lag_time_max;
        tracker.spawn(crate::replication::isr::run(
            replicas.clone(),
            handle.clone(),
            lag_max,
            shutdown.child_token(),
        ));
        tracker.spawn(crate::replication::run_retention(
            replicas.clone(),
            config.clone(),
            handle.subscribe(),
            shutdown.child_token(),
        ));
        let groups = GroupCoordinator::new(config.clone(), replicas.clone(), handle.subscribe());
        group_service.bind(groups.clone());
        // Partition replicas and group coordination follow the metadata image only once it
        // has caught up with the controller: a restarted node loads its last persisted image,
        // which may still name it leader of partitions that moved while it was down.
        let (scrub_interval, scrub_rate) = (
            config.storage.scrub_interval,
            config.storage.scrub_bytes_per_sec,
        );
        tracker.spawn({
            let (handle, replicas, groups) = (handle.clone(), replicas.clone(), groups.clone());
            let (tracker, shutdown) = (tracker.clone(), shutdown.clone());
            async move {
                if !metadata_caught_up(&handle, &shutdown).await {
                    return;
                }
                tracker.spawn(
                    replicas
                        .clone()
                        .run(handle.subscribe(), shutdown.child_token()),
                );
                tracker.spawn(groups.run(shutdown.child_token()));
                if let Some(every) = scrub_interval {
                    // After the replicas are open, so what it finds lands on them.
                    replicas.wait_reconciled().await;
                    tracker.spawn(crate::replication::scrub::run(
                        replicas,
                        every,
                        scrub_rate,
                        shutdown.child_token(),
                    ));
                }
            }
        });
        let replicas_for_http = replicas.clone();
        let broker = Broker::new(
            config.clone(),
            handle.clone(),
            replicas,
            groups,
            shutdown.clone(),
        );
        broker.set_coordinator_lease(lease);
        txn_service.bind(&broker);
        tracker.spawn({
            let (handle, txn, shutdown) = (handle.clone(), broker.txn().clone(), shutdown.clone());
            async move {
                // As the group coordinator: only once the image has caught up.
                if metadata_caught_up(&handle, &shutdown).await {
                    txn.run(shutdown.child_token()).await;
                }
            }
        });
        tracker.spawn(storage_supervisor(
            store.clone(),
            config.clone(),
            shutdown.child_token(),
        ));
        let kafka = KafkaServer::bind(&broker).await?;
        let kafka_addrs = kafka.local_addrs();
        let registration = shutdown.child_token();
        let serving = CancellationToken::new();
        tracker.spawn(register_loop(
            config.clone(),
            handle.clone(),
            kafka_addrs.clone(),
            advertised_raft_addr(&config, controller.local_addr()),
            serving.clone(),
            registration.clone(),
        ));
        // Dynamic broker configs apply live: copied into `config.dynamic` on every change.
        tracker.spawn(
            broker
                .clone()
                .follow_dynamic_configs(shutdown.child_token()),
        );
        // Until its own registration is applied, a node's Metadata would list no controller
        // and no broker for itself (librdkafka's admin client then waited its whole 15 s
        // request timeout for a controller instead of asking again): `register_loop` opens
        // the listeners once the image holds this node's registration as it would propose it.
        tracker.spawn({
            let (serving, shutdown, id) = (serving.clone(), shutdown.child_token(), config.node_id);
            async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = serving.cancelled() => {}
                    _ = tokio::time::sleep(KAFKA_SERVE_WAIT) => {
                        warn!(node_id = %id, wait = ?KAFKA_SERVE_WAIT, "not registered yet (no quorum?); the Kafka listeners serve anyway");
                        serving.cancel();
                    }
                }
            }
        });
        kafka.spawn(broker.clone(), serving, shutdown.child_token(), &tracker);
        let zk = crate::zk::ZkServer::bind(&config).await?;
        zk.spawn(broker.clone(), shutdown.child_token(), &tracker);
        let stopping = Arc::new(AtomicBool::new(false));
        let http_addr = match config.http_listen {
            None => None,
            Some(addr) => match crate::http::HttpServer::bind(addr).await {
                Ok(server) => {
                    let bound = server.local_addr().ok();
                    let state = crate::http::OpsState {
                        broker: broker.clone(),
                        controller: controller.probe(),
                        stopping: stopping.clone(),
                        store: store.clone(),
                        replicas: replicas_for_http.clone(),
                    };
                    server.spawn(state, shutdown.child_token(), &tracker);
                    bound
                }
                // The default port may be taken when several nodes share a host: the
                // operations endpoint is then off (an explicit `http.listen` must bind).
                Err(e) if !config.http_listen_explicit => {
                    warn!(%addr, error = %e, "HTTP listener not started (set http.listen)");
                    None
                }
                Err(e) => return Err(NodeError::Bind(e)),
            },
        };
        info!(node_id = %config.node_id, data_dir = %config.data_dir.display(), "node started");
        Ok(Self {
            config,
            store,
            controller,
            broker,
            shutdown,
            registration,
            stopping,
            tracker,
            kafka_addrs,
            http_addr,
        })
    }

    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Resolves when the node asks to be restarted in-process (to rebuild its partition log
    /// without a corrupt block): the caller shuts it down and starts it again.
    pub async fn restart_requested(&self) -> String {
        self.store.health().rebuild_requested().await
    }

    /// The bound Kafka listener addresses.
    pub fn kafka_addrs(&self) -> &[(String, SocketAddr)] {
        &self.kafka_addrs
    }

    /// The bound operations HTTP address, if the listener runs.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Waits until this broker is registered (it then appears in Metadata responses).
    pub async fn wait_registered(&self, timeout: Duration) -> bool {
        let mut rx = self.controller.handle().subscribe();
        let id = self.config.node_id;
        tokio::time::timeout(timeout, rx.wait_for(|img| is_registered(img, id)))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Graceful shutdown: a controlled shutdown first (leadership moves to other in-sync
    /// replicas while the listeners still answer, so clients are redirected instead of timing
    /// out), then stop accepting, let in-flight requests finish (bounded), stop the
    /// controller, flush RocksDB.
    pub async fn shutdown(self) {
        info!("shutting down");
        self.stopping.store(true, Ordering::Release);
        self.registration.cancel();
        self.controlled_shutdown().await;
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            warn!("in-flight work did not finish within the grace period");
        }
        // Raft writes waiting for free space give up now.
        self.store.set_closing();
        self.controller.shutdown().await;
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.flush_all()).await {
            Ok(Ok(())) => info!("storage flushed"),
            Ok(Err(e)) => warn!(error = %e, "flush failed"),
            Err(e) => warn!(error = %e, "flush task failed"),
        }
    }
}

impl Node {
    /// Fences this broker through the controller (as Kafka's ControlledShutdown does) when
    /// another live broker can take over, then waits until no partition lists it as leader.
    /// Bounded by [`CONTROLLED_SHUTDOWN_DEADLINE`]; on timeout the node stops anyway and the
    /// others fence it when its heartbeats stop.
    async fn controlled_shutdown(&self) {
        let handle = self.controller.handle();
        let id = self.config.node_id;
        let image = handle.image();
        let others_live = image.brokers.iter().any(|(n, b)| *n != id && !b.fenced);
        let registered = image.brokers.get(&id).is_some_and(|b| !b.fenced);
        if !others_live || !registered {
            return;
        }
        let leads = |img: &crate::metadata::MetadataImage| {
            img.topics
                .values()
                .flat_map(|t| t.partitions.iter())
                .filter(|p| p.leader == Some(id))
                .count()
        };
        info!(
            leaderships = leads(&image),
            "controlled shutdown: moving leadership away"
        );
        let started = std::time::Instant::now();
        let mut rx = handle.subscribe();
        let moved = tokio::time::timeout(CONTROLLED_SHUTDOWN_DEADLINE, async {
            handle
                .propose(MetadataCommand::FenceBroker { node_id: id })
                .await
                .map_err(|e| e.to_string())?;
            rx.wait_for(|img| img.brokers.get(&id).is_none_or(|b| b.fenced) && leads(img) == 0)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        })
        .await;
        match moved {
            Ok(Ok(())) => info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "controlled shutdown: leadership moved"
            ),
            Ok(Err(e)) => warn!(error = %e, "controlled shutdown failed; stopping anyway"),
            Err(_) => warn!("controlled shutdown timed out; stopping anyway"),
        }
    }
}

/// How long opening the store keeps retrying while RocksDB's lock is still held by the
/// previous incarnation of this node (an in-process restart).
const STORE_LOCK_WAIT: Duration = Duration::from_secs(15);

/// Opens the store (finishing a requested partition-log rebuild first).
async fn open_store(config: &Config) -> Result<Store, StorageError> {
    let dir = config.data_dir.clone();
    let options = crate::storage::StoreOptions {
        disk: crate::storage::DiskThresholds {
            free_bytes_min: config.storage.free_bytes_min,
            free_bytes_warn: config.storage.free_bytes_warn,
        },
        memory: crate::storage::StoreMemory {
            memtable_bytes: config.storage.memtable_bytes,
            block_cache_bytes: config.storage.block_cache_bytes,
        },
    };
    let started = std::time::Instant::now();
    loop {
        let (dir, options) = (dir.clone(), options.clone());
        let res = tokio::task::spawn_blocking(move || Store::open_with(&dir, &options))
            .await
            .map_err(|e| StorageError::Join(e.to_string()))?;
        match res {
            Err(StorageError::Rocks(e))
                if e.to_string().contains("lock") && started.elapsed() < STORE_LOCK_WAIT =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => return other,
        }
    }
}

/// Watches the storage: measures free space every `log.dir.free.check.interval.ms`, probes
/// whether RocksDB accepts writes again after a failure (it recovers from a full disk by
/// itself once space is freed; a probe is what clears the recorded fault on an idle node),
/// and asks for a partition-log rebuild when a corrupt block was found there.
async fn storage_supervisor(store: Store, config: Arc<Config>, shutdown: CancellationToken) {
    let every = config.storage.free_check_interval;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let s = store.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = s.disk().probe() {
                tracing::debug!(error = %e, "free-space probe failed");
            }
            if s.health().write_fault().is_some() {
                s.probe_writable();
            }
        })
        .await;
        if store.wal().last_error().is_some() && store.health().write_fault().is_none() {
            // The last fsync failed and writes work again: a fresh barrier (never a retry of
            // the failed tickets) tells whether fsyncs do too.
            let _ = tokio::time::timeout(Duration::from_secs(10), store.wal().barrier()).await;
        }
        if config.storage.corruption_rebuild && store.health().rebuild_reason().is_none() {
            let bad_block = store.health().corruptions().into_iter().find(|c| {
                (c.cf == crate::storage::CF_PART_LOG && c.file.is_some()) || c.cf == "unknown"
            });
            if let Some(c) = bad_block {
                let reason = format!(
                    "corrupt block in {} ({}): {}",
                    c.cf,
                    c.file.as_deref().unwrap_or("file unknown"),
                    c.error
                );
                if let Err(e) = store.request_rebuild(&reason) {
                    warn!(error = %e, "cannot record the rebuild request");
                }
            }
        }
    }
}

/// A Kafka-style cluster id: 16 random bytes in URL-safe base64 without padding (22 chars).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = String::with_capacity(22);
    for b in bytes {
        bits = (bits << 8) | u32::from(b);
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out
}

/// This node's node-to-node (Raft / replication gRPC) address as peers should dial it: its own
/// `controller.quorum.voters` entry, else the `raft.advertised.listen` property, else
/// `raft.listen` (an unspecified host replaced by the first advertised Kafka host, port 0 by
/// the bound port). Carried in the broker registration so that nodes which do not have this
/// one in their voters config (it joined later) can still reach it.
fn advertised_raft_addr(config: &Config, bound: SocketAddr) -> String {
    if let Some(a) = config.controller_quorum.get(&config.node_id) {
        return a.clone();
    }
    if let Some(a) = config
        .properties
        .get("raft.advertised.listen")
        .map(|a| a.trim())
        .filter(|a| !a.is_empty())
    {
        return a.to_owned();
    }
    let host = if config.raft_listen.ip().is_unspecified() {
        config
            .listeners
            .first()
            .map_or_else(|| "127.0.0.1".to_owned(), |l| l.advertised_host.clone())
    } else {
        config.raft_listen.ip().to_string()
    };
    let port = match config.raft_listen.port() {
        0 => bound.port(),
        p => p,
    };
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Waits until this node's metadata image has caught up with the controller leader's commit
/// (a read barrier), retrying until it succeeds; false if `shutdown` comes first. Kafka's
/// brokers likewise stay fenced until they have caught up with the metadata log. A node that
/// cannot reach a leader (cut off, or a joining node not yet added) keeps waiting rather than
/// act on a stale image.
async fn metadata_caught_up(handle: &ControllerHandle, shutdown: &CancellationToken) -> bool {
    const RETRY: Duration = Duration::from_millis(200);
    const WARN_EVERY: Duration = Duration::from_secs(10);
    let started = std::time::Instant::now();
    let mut next_warning = WARN_EVERY;
    loop {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return false,
            r = handle.read_barrier() => r,
        };
        match outcome {
            Ok(()) => {
                info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    applied_index = handle.image().applied_index,
                    "metadata caught up with the controller; following it"
                );
                return true;
            }
            Err(e) if started.elapsed() >= next_warning => {
                warn!(error = %e, waited_s = started.elapsed().as_secs(),
                      "metadata not caught up yet; partitions and groups wait");
                next_warning += WARN_EVERY;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// Whether `image` holds the cluster id and this broker, unfenced.
fn is_registered(image: &crate::metadata::MetadataImage, id: crate::types::NodeId) -> bool {
    image.cluster_id.is_some() && image.brokers.get(&id).is_some_and(|b| !b.fenced)
}

/// Registers this broker (and the cluster id, once) through the controller; retries with
/// backoff until it sticks, and again whenever the image shows it fenced or stale. Cancels
/// `registered` the first time the image holds the registration as it would propose it.
async fn register_loop(
    config: Arc<Config>,
    handle: ControllerHandle,
    bound: Vec<(String, SocketAddr)>,
    raft_addr: String,
    registered: CancellationToken,
    shutdown: CancellationToken,
) {
    let endpoints: Vec<Endpoint> = config
        .listeners
        .iter()
        .map(|l| {
            // A listener bound to port 0 (tests) advertises the port it actually got.
            let port = if l.advertised_port == 0 {
                bound
                    .iter()
                    .find(|(n, _)| *n == l.name)
                    .map_or(0, |(_, a)| a.port())
            } else {
                l.advertised_port
            };
            Endpoint {
                listener: l.name.clone(),
                host: l.advertised_host.clone(),
                port,
                security_protocol: Some(l.protocol.name().to_owned()),
            }
        })
        .collect();
    let registration = BrokerRegistration {
        node_id: config.node_id,
        endpoints,
        rack: config.rack.clone(),
        fenced: false,
        registered_index: 0,
        raft_addr: Some(raft_addr),
    };
    let mut images = handle.subscribe();
    let mut backoff = Duration::from_millis(50);
    loop {
        let image = images.borrow_and_update().clone();
        let current = image.brokers.get(&config.node_id);
        let needs_registration = current.is_none_or(|b| {
            b.fenced
                || b.endpoints != registration.endpoints
                || b.rack != registration.rack
                || b.raft_addr != registration.raft_addr
        });
        if image.cluster_id.is_none() || needs_registration {
            let mut ok = true;
            if image.cluster_id.is_none() {
                ok &= handle
                    .propose(MetadataCommand::InitCluster {
                        cluster_id: new_cluster_id(),
                    })
                    .await
                    .is_ok();
            }
            if ok && needs_registration {
                ok &= handle
                    .propose(MetadataCommand::RegisterBroker {
                        registration: registration.clone(),
                    })
                    .await
                    .is_ok();
                if ok {
                    info!(node_id = %config.node_id, "broker registered");
                }
            }
            if !ok {
                let jitter = Duration::from_millis(rand::random::<u64>() % 50);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff + jitter) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
            backoff = Duration::from_millis(50);
        } else {
            registered.cancel();
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = images.changed() => if r.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cluster_id_shape() {
        let id = super::new_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
