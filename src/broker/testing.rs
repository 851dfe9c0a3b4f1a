//! The handler test fixture: one in-process broker over a temporary RocksDB, with the
//! controller replaced by [`LocalProposer`] (commands applied at once to an in-memory image),
//! the real replica manager and group coordinator running, and this node registered. Handlers
//! of `kafka/handlers/` and ops of `zk/ops/` test their answers and error codes against it
//! without a cluster or a socket (compare tansu's in-memory engine).

use super::{Broker, CreateTopicSpec};
use crate::config::Config;
use crate::controller::testing::LocalProposer;
use crate::group::GroupCoordinator;
use crate::metadata::{BrokerRegistration, MetadataCommand};
use crate::replication::ReplicaManager;
use crate::storage::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A running single-node broker for tests. Dropping it stops its tasks.
#[derive(Debug)]
pub(crate) struct Fixture {
    pub(crate) broker: Broker,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// A broker with default settings.
    pub(crate) async fn new() -> Self {
        Self::with(&[]).await
    }

    /// A broker with Kafka's ACL authorizer on and `super_users` (`User:admin`).
    pub(crate) async fn authorized(super_users: &[&str]) -> Self {
        let supers = super_users.join(";");
        Self::with(&[
            (
                "authorizer.class.name",
                "kafka.security.authorizer.AclAuthorizer",
            ),
            ("super.users", supers.as_str()),
        ])
        .await
    }

    /// A broker with `server.properties` overrides.
    ///
    /// # Panics
    /// If the overrides are not a valid configuration or the store cannot be opened.
    pub(crate) async fn with(props: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut p: BTreeMap<String, String> = [
            ("log.dirs", dir.path().to_str().expect("utf-8 temp path")),
            ("listeners", "PLAINTEXT://127.0.0.1:9092"),
            ("offsets.topic.replication.factor", "1"),
            ("offsets.topic.num.partitions", "2"),
            ("group.initial.rebalance.delay.ms", "0"),
            ("transaction.state.log.replication.factor", "1"),
            ("transaction.state.log.num.partitions", "2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in props {
            p.insert(k.to_string(), v.to_string());
        }
        let config = Arc::new(Config::from_properties(p).expect("valid test config"));
        let store = Store::open(&config.data_dir).expect("open store");
        let handle = LocalProposer::handle(config.node_id);
        let replicas = ReplicaManager::new(config.node_id, store);
        let groups = GroupCoordinator::new(config.clone(), replicas.clone(), handle.subscribe());
        let shutdown = CancellationToken::new();
        tokio::spawn(
            replicas
                .clone()
                .run(handle.subscribe(), shutdown.child_token()),
        );
        tokio::spawn(groups.clone().run(shutdown.child_token()));
        handle
            .propose(MetadataCommand::InitCluster {
                cluster_id: "test-cluster".into(),
            })
            .await
            .expect("init cluster");
        handle
            .propose(MetadataCommand::RegisterBroker {
                registration: BrokerRegistration::for_test(config.node_id, "127.0.0.1"),
            })
            .await
            .expect("register");
        let broker = Broker::new(config, handle, replicas, groups, shutdown.clone());
        tokio::spawn(broker.txn().clone().run(shutdown.child_token()));
        Self {
            broker,
            shutdown,
            _dir: dir,
        }
    }

    /// Creates `__transaction_state` (through FindCoordinator) and waits until this node has
    /// loaded the partition of `transactional_id`.
    ///
    /// # Panics
    /// If the coordinator does not come up.
    pub(crate) async fn txn_coordinator_ready(&self, transactional_id: &str) {
        let view = self
            .broker
            .find_coordinator(super::KEY_TYPE_TRANSACTION, transactional_id, "PLAINTEXT")
            .await;
        assert!(view.is_ok(), "transaction coordinator: {view:?}");
    }

    /// Creates `name` with `partitions` partitions (RF 1, `configs`) and waits until this
    /// node leads all of them.
    ///
    /// # Panics
    /// If the topic cannot be created or its partitions do not come up within 10 s.
    pub(crate) async fn topic(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        let spec = CreateTopicSpec {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: 1,
            assignment: Vec::new(),
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let created = self.broker.create_topics(vec![spec], false).await;
        assert!(created[0].is_ok(), "create {name}: {:?}", created[0]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for p in 0..partitions {
            loop {
                let image = self.broker.metadata_view();
                if self.broker.leader_partition(&image, name, p).await.is_ok() {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{name}-{p} never came up"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// This node's replica of `topic`-`partition`, which it leads.
    ///
    /// # Panics
    /// If it does not lead it.
    pub(crate) async fn leader(
        &self,
        topic: &str,
        partition: i32,
    ) -> std::sync::Arc<crate::replication::Partition> {
        let image = self.broker.metadata_view();
        self.broker
            .leader_partition(&image, topic, partition)
            .await
            .expect("this node leads the partition")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
