//! Controller tests: openraft's storage conformance suite against the RocksDB log store and
//! state machine (here), and in-process nodes on `127.0.0.1` ephemeral ports: `single_node.rs`
//! (bootstrap, propose, restart, purge) and `cluster.rs` (forwarding, failover, snapshot
//! catch-up, membership). This file also holds the harness they share.

mod cluster;
mod single_node;

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
        let (sm, _rx) = StateMachine::open(store.clone())
            .await
            .expect("open state machine");
        Ok((dir, LogStore::new(store), sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(SuiteBuilder).expect("the log store and state machine pass openraft's suite");
}

// ---------------------------------------------------------------------------------------------
// Harness

pub(super) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Polls `cond` until it holds; panics after `timeout`.
pub(super) async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut cond: F)
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

pub(super) const WAIT: Duration = Duration::from_secs(20);

pub(super) fn config(id: i32, dir: &Path, quorum: &BTreeMap<i32, String>) -> Arc<Config> {
    let voters: Vec<String> = quorum
        .iter()
        .map(|(id, addr)| format!("{id}@{addr}"))
        .collect();
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
pub(super) async fn open_store(dir: &Path) -> Store {
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
pub(super) struct TestNode {
    config: Arc<Config>,
    tuning: RaftTuning,
    pub(super) controller: Option<Controller>,
}

impl TestNode {
    pub(super) async fn start(
        config: Arc<Config>,
        tuning: RaftTuning,
        listener: Option<TcpListener>,
    ) -> Self {
        let mut node = Self {
            config,
            tuning,
            controller: None,
        };
        node.boot(listener).await;
        node
    }

    async fn boot(&mut self, listener: Option<TcpListener>) {
        let store = open_store(&self.config.data_dir).await;
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind(self.config.raft_listen)
                .await
                .expect("rebind raft port"),
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

    pub(super) fn ctl(&self) -> &Controller {
        self.controller.as_ref().expect("node is running")
    }

    pub(super) fn handle(&self) -> ControllerHandle {
        self.ctl().handle()
    }

    pub(super) async fn stop(&mut self) {
        if let Some(c) = self.controller.take() {
            c.shutdown().await;
        }
    }

    pub(super) async fn restart(&mut self) {
        self.stop().await;
        self.boot(None).await;
    }
}

/// Binds `n` listeners on ephemeral ports and starts a node on each (node ids 1..=n).
pub(super) async fn cluster(n: i32, tuning: RaftTuning, root: &Path) -> Vec<TestNode> {
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

pub(super) async fn leader_of(nodes: &[&TestNode]) -> Option<NodeId> {
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
            return n
                .ctl()
                .metrics()
                .await
                .is_leader
                .then_some(leader)
                .flatten();
        }
    }
    None
}

pub(super) async fn agreed_leader(nodes: &[&TestNode]) -> NodeId {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(leader) = leader_of(nodes).await {
            return leader;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for an agreed leader"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(super) fn register(id: i32) -> MetadataCommand {
    MetadataCommand::RegisterBroker {
        registration: BrokerRegistration {
            node_id: NodeId(id),
            endpoints: vec![],
            rack: None,
            fenced: false,
            registered_index: 0,
            raft_addr: None,
        },
    }
}

pub(super) fn create_topic(name: &str, replicas: &[i32]) -> MetadataCommand {
    MetadataCommand::CreateTopic {
        name: TopicName::new(name).expect("valid name"),
        topic_id: TopicId::random(),
        assignment: vec![replicas.iter().map(|r| NodeId(*r)).collect()],
        configs: BTreeMap::new(),
    }
}

pub(super) fn dir_of(root: &tempfile::TempDir, name: &str) -> PathBuf {
    root.path().join(name)
}
