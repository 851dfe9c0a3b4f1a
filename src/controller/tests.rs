//! Controller tests: openraft's storage conformance suite against the RocksDB log store and
//! state machine, and in-process nodes on `127.0.0.1` ephemeral ports (single node, a 3-node
//! quorum with forwarding and failover, log purge, snapshot catch-up).

use super::log_store::LogStore;
use super::raft_node::RaftTuning;
use super::state_machine::StateMachine;
use super::types::{RaftStorageError, TypeConfig};
use super::{Controller, ControllerHandle, ProposeError};
use crate::config::Config;
use crate::metadata::{ApplyOutcome, BrokerRegistration, MetadataCommand, MetadataError};
use crate::storage::{keys, Cf, Store};
use crate::types::{NodeId, TopicId, TopicName};
use openraft::testing::{StoreBuilder, Suite};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------------
// openraft's storage suite

struct SuiteBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for SuiteBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), RaftStorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open store");
        let (sm, _rx) = StateMachine::open(store.clone()).await.expect("open state machine");
        Ok((dir, LogStore::new(store), sm))
    }
}

#[test]
fn openraft_storage_suite() -> Result<(), RaftStorageError> {
    Suite::test_all(SuiteBuilder)
}

// ---------------------------------------------------------------------------------------------
// Harness

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Polls `cond` until it holds; panics after `timeout`.
async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const WAIT: Duration = Duration::from_secs(20);

fn config(id: i32, dir: &Path, quorum: &BTreeMap<i32, String>) -> Arc<Config> {
    let voters: Vec<String> = quorum.iter().map(|(id, addr)| format!("{id}@{addr}")).collect();
    let props: BTreeMap<String, String> = [
        ("node.id", id.to_string()),
        ("log.dirs", dir.display().to_string()),
        ("listeners", "PLAINTEXT://127.0.0.1:0".to_owned()),
        ("raft.listen", quorum[&id].clone()),
        ("controller.quorum.voters", voters.join(",")),
        ("raft.heartbeat.ms", "50".to_owned()),
        ("raft.election.timeout.min.ms", "300".to_owned()),
        ("raft.election.timeout.max.ms", "600".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Arc::new(Config::from_properties(props).expect("valid test config"))
}

/// Opens the store under `dir`. A previous incarnation's RocksDB closes only once openraft's
/// tasks have dropped it, which may be just after `shutdown` returns.
async fn open_store(dir: &Path) -> Store {
    let mut store = None;
    wait_until("the store to (re)open", WAIT, || {
        let opened = Store::open(dir).ok();
        let ok = opened.is_some();
        if ok {
            store = opened;
        }
        async move { ok }
    })
    .await;
    store.expect("store opened")
}

/// One in-process node: its directory and config survive restarts.
struct TestNode {
    config: Arc<Config>,
    tuning: RaftTuning,
    controller: Option<Controller>,
}

impl TestNode {
    async fn start(config: Arc<Config>, tuning: RaftTuning, listener: Option<TcpListener>) -> Self {
        let mut node = Self { config, tuning, controller: None };
        node.boot(listener).await;
        node
    }

    async fn boot(&mut self, listener: Option<TcpListener>) {
        let store = open_store(&self.config.data_dir).await;
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind(self.config.raft_listen).await.expect("rebind raft port"),
        };
        let controller = Controller::start_tuned(
            self.config.clone(),
            store,
            CancellationToken::new(),
            listener,
            self.tuning.clone(),
        )
        .await
        .expect("controller starts");
        self.controller = Some(controller);
    }

    fn ctl(&self) -> &Controller {
        self.controller.as_ref().expect("node is running")
    }

    fn handle(&self) -> ControllerHandle {
        self.ctl().handle()
    }

    async fn stop(&mut self) {
        if let Some(c) = self.controller.take() {
            c.shutdown().await;
        }
    }

    async fn restart(&mut self) {
        self.stop().await;
        self.boot(None).await;
    }
}

/// Binds `n` listeners on ephemeral ports and starts a node on each (node ids 1..=n).
async fn cluster(n: i32, tuning: RaftTuning, root: &Path) -> Vec<TestNode> {
    let mut listeners = BTreeMap::new();
    let mut quorum = BTreeMap::new();
    for id in 1..=n {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        quorum.insert(id, l.local_addr().expect("addr").to_string());
        listeners.insert(id, l);
    }
    let mut starting = Vec::new();
    for (id, l) in listeners {
        let cfg = config(id, &root.join(format!("node{id}")), &quorum);
        starting.push(TestNode::start(cfg, tuning.clone(), Some(l)));
    }
    futures::future::join_all(starting).await
}

async fn leader_of(nodes: &[&TestNode]) -> Option<NodeId> {
    let mut leader = None;
    for n in nodes {
        let m = n.ctl().metrics().await;
        match (leader, m.leader) {
            (_, None) => return None,
            (None, Some(l)) => leader = Some(l),
            (Some(a), Some(b)) if a != b => return None,
            _ => {}
        }
    }
    // The agreed leader must itself be among `nodes` and believe it leads.
    for n in nodes {
        if Some(n.ctl().handle().node_id()) == leader {
            return n.ctl().metrics().await.is_leader.then_some(leader).flatten();
        }
    }
    None
}

async fn agreed_leader(nodes: &[&TestNode]) -> NodeId {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(leader) = leader_of(nodes).await {
            return leader;
        }
        assert!(Instant::now() < deadline, "timed out waiting for an agreed leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn register(id: i32) -> MetadataCommand {
    MetadataCommand::RegisterBroker {
        registration: BrokerRegistration {
            node_id: NodeId(id),
            endpoints: vec![],
            rack: None,
            fenced: false,
            registered_index: 0,
        },
    }
}

fn create_topic(name: &str, replicas: &[i32]) -> MetadataCommand {
    MetadataCommand::CreateTopic {
        name: TopicName::new(name).expect("valid name"),
        topic_id: TopicId::random(),
        assignment: vec![replicas.iter().map(|r| NodeId(*r)).collect()],
        configs: BTreeMap::new(),
    }
}

fn dir_of(root: &tempfile::TempDir, name: &str) -> PathBuf {
    root.path().join(name)
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_node_bootstraps_proposes_and_restarts() {
    init_tracing();
    let root = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let quorum = BTreeMap::from([(1, listener.local_addr().expect("addr").to_string())]);
    let cfg = config(1, &dir_of(&root, "n1"), &quorum);
    let mut node = TestNode::start(cfg, RaftTuning::default(), Some(listener)).await;
    let h = node.handle();

    assert_eq!(h.propose(MetadataCommand::InitCluster { cluster_id: "c1".into() }).await, Ok(ApplyOutcome::Done));
    assert!(h.is_leader(), "a single voter leads once it has committed");
    assert_eq!(h.propose(register(1)).await, Ok(ApplyOutcome::Done));
    assert_eq!(h.propose(create_topic("t1", &[1])).await, Ok(ApplyOutcome::Done));
    // Read-your-writes: the image already shows the topic when propose returns.
    assert!(h.image().topic("t1").is_some());
    assert_eq!(
        h.propose(create_topic("t1", &[1])).await,
        Ok(ApplyOutcome::Rejected(MetadataError::TopicExists("t1".into())))
    );
    assert_eq!(h.propose(MetadataCommand::AllocateProducerIds { count: 10 }).await, Ok(ApplyOutcome::ProducerIds { first: 0 }));
    h.read_barrier().await.expect("barrier on the leader");
    let before = h.image();
    let m = node.ctl().metrics().await;
    assert_eq!(m.last_applied_index, Some(before.applied_index));
    assert_eq!(m.committed_index, Some(before.applied_index));

    node.restart().await;
    let h = node.handle();
    // The persisted image is there before any election.
    assert_eq!(*h.image(), *before);
    assert_eq!(h.propose(MetadataCommand::AllocateProducerIds { count: 1 }).await, Ok(ApplyOutcome::ProducerIds { first: 10 }));
    assert!(h.image().applied_index > before.applied_index);
    node.stop().await;
    assert_eq!(h.propose(register(2)).await, Err(ProposeError::Shutdown));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_forward_and_fail_over() {
    init_tracing();
    let root = tempfile::tempdir().expect("tempdir");
    let mut nodes = cluster(3, RaftTuning::default(), root.path()).await;
    let leader = agreed_leader(&nodes.iter().collect::<Vec<_>>()).await;
    // Only the lowest id bootstraps, and it wins the first election.
    assert_eq!(leader, NodeId(1));

    let follower = nodes.iter().find(|n| n.handle().node_id() != leader).expect("a follower");
    let fh = follower.handle();
    assert!(!fh.is_leader());
    for id in 1..=3 {
        assert_eq!(fh.propose(register(id)).await, Ok(ApplyOutcome::Done));
    }
    assert_eq!(fh.propose(create_topic("forwarded", &[1, 2, 3])).await, Ok(ApplyOutcome::Done));
    // Read-your-writes on the follower that took the write.
    assert!(fh.image().topic("forwarded").is_some(), "follower sees its forwarded write at once");

    // A read barrier on the other follower makes the write visible there too.
    let other = nodes.iter().find(|n| n.handle().node_id() != leader && n.handle().node_id() != fh.node_id()).expect("third node");
    other.handle().read_barrier().await.expect("barrier through the leader");
    assert!(other.handle().image().topic("forwarded").is_some());

    // Kill the leader: the other two elect a new one and keep accepting proposals.
    let leader_idx = nodes.iter().position(|n| n.handle().node_id() == leader).expect("leader node");
    nodes[leader_idx].stop().await;
    let survivors: Vec<&TestNode> = nodes.iter().filter(|n| n.controller.is_some()).collect();
    let new_leader = agreed_leader(&survivors).await;
    assert_ne!(new_leader, leader);
    for n in &survivors {
        let h = n.handle();
        let name = format!("after-failover-{}", h.node_id());
        assert_eq!(h.propose(create_topic(&name, &[2, 3])).await, Ok(ApplyOutcome::Done));
        assert!(h.image().topic(&name).is_some());
    }

    // The old leader rejoins as a follower and catches up.
    nodes[leader_idx].restart().await;
    let back = nodes[leader_idx].handle();
    back.read_barrier().await.expect("barrier after rejoining");
    assert!(back.image().topic("after-failover-2").is_some() || back.image().topic("after-failover-3").is_some());
    for n in &mut nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn log_is_purged_after_the_snapshot_threshold() {
    init_tracing();
    let root = tempfile::tempdir().expect("tempdir");
    let tuning = RaftTuning { snapshot_logs_since_last: 50, logs_to_keep: 10 };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let quorum = BTreeMap::from([(1, listener.local_addr().expect("addr").to_string())]);
    let cfg = config(1, &dir_of(&root, "n1"), &quorum);
    let mut node = TestNode::start(cfg.clone(), tuning, Some(listener)).await;
    let h = node.handle();
    for i in 0..130 {
        assert_eq!(h.propose(MetadataCommand::AllocateProducerIds { count: 1 }).await, Ok(ApplyOutcome::ProducerIds { first: i }));
    }
    let ctl = node.ctl();
    wait_until("a snapshot and a purge", WAIT, || async {
        let m = ctl.metrics().await;
        m.snapshot_index.is_some() && m.purged_index.is_some_and(|p| p > 50)
    })
    .await;
    let m = ctl.metrics().await;
    let purged = m.purged_index.expect("purged");
    let last = m.last_log_index.expect("log not empty");
    assert!(last - purged <= 60, "log bounded: purged {purged}, last {last}");

    node.restart().await;
    let h = node.handle();
    assert_eq!(h.image().next_producer_id, 130);
    assert_eq!(h.propose(MetadataCommand::AllocateProducerIds { count: 1 }).await, Ok(ApplyOutcome::ProducerIds { first: 130 }));
    node.stop().await;
    // On disk: no entry at or below the purge point survives.
    let store = open_store(&cfg.data_dir).await;
    let first = store
        .scan(Cf::RaftLog, &keys::u64_key(0), &keys::u64_key(u64::MAX), 1, |_, _| true)
        .expect("scan");
    let first_index = keys::read_u64(&first[0].0).expect("key");
    assert!(first_index > purged, "first entry {first_index} after purge point {purged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lagging_follower_catches_up_from_a_snapshot() {
    init_tracing();
    let root = tempfile::tempdir().expect("tempdir");
    let tuning = RaftTuning { snapshot_logs_since_last: 20, logs_to_keep: 5 };
    let mut nodes = cluster(3, tuning, root.path()).await;
    let leader = agreed_leader(&nodes.iter().collect::<Vec<_>>()).await;
    let lh = nodes.iter().find(|n| n.handle().node_id() == leader).expect("leader").handle();
    let lag_idx = nodes.iter().position(|n| n.handle().node_id() != leader).expect("a follower");
    let applied_before = nodes[lag_idx].handle().image().applied_index;
    nodes[lag_idx].stop().await;

    lh.propose(register(1)).await.expect("register");
    for i in 0..60 {
        lh.propose(create_topic(&format!("t{i}"), &[1])).await.expect("create");
    }
    let leader_node = nodes.iter().find(|n| n.controller.is_some() && n.handle().node_id() == leader).expect("leader");
    wait_until("the leader to purge past the lagging follower", WAIT, || async {
        leader_node.ctl().metrics().await.purged_index.is_some_and(|p| p > 40)
    })
    .await;

    nodes[lag_idx].restart().await;
    let fh = nodes[lag_idx].handle();
    let target = lh.image();
    wait_until("the follower to catch up", WAIT, || async { fh.image().applied_index >= target.applied_index }).await;
    assert_eq!(fh.image().topics, target.topics);
    // The entries it missed were purged on the leader, so it must have installed a snapshot.
    let m = nodes[lag_idx].ctl().metrics().await;
    assert!(m.snapshot_index.is_some_and(|s| s > applied_before + 40), "caught up through a snapshot: {m:?}");
    for n in &mut nodes {
        n.stop().await;
    }
}

