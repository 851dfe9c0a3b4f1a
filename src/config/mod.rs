//! Validated node configuration: built once from `server.properties`, `-o key=value`, flags and
//! environment, then shared as `Arc<Config>`. Imports only `types`.

pub mod dynamic;
pub mod properties;
pub mod security;
pub mod topic;

use crate::types::NodeId;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use topic::{validate_topic_config, validate_topic_configs, TopicConfigError, TOPIC_CONFIGS};

/// ZooKeeper's default `jute.maxbuffer`.
pub const JUTE_MAXBUFFER_DEFAULT: usize = 1_048_575;
/// Room for a packet's header and path beyond `jute.maxbuffer` of data.
pub const ZK_PACKET_OVERHEAD_BYTES: usize = 1024 + 4096;

/// Default of `message.decompressed.max.bytes` (64 MiB).
pub const DECOMPRESSED_BATCH_BYTES_MAX_DEFAULT: usize = 64 << 20;

/// Every limit on input and queues, with documented defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest Kafka request frame accepted (`socket.request.max.bytes`, 100 MiB).
    pub kafka_request_bytes_max: usize,
    /// Concurrent Kafka connections on all listeners (`max.connections`, 10 000). When reached,
    /// the acceptor waits for a connection to close (new ones wait in the listen backlog).
    pub kafka_connections_max: usize,
    /// Concurrent Kafka connections from one IP address (`max.connections.per.ip`, 1000; Kafka's
    /// default is unbounded). One more is accepted and closed at once.
    pub kafka_connections_per_ip_max: usize,
    /// Per-address exceptions to `kafka_connections_per_ip_max`
    /// (`max.connections.per.ip.overrides`, `host1:100,127.0.0.1:200`; host names are resolved
    /// once at start, as Kafka does; 0 refuses the address).
    pub kafka_connections_per_ip_overrides: BTreeMap<IpAddr, usize>,
    /// A new connection must deliver its first complete request within this
    /// (`connections.first.request.timeout.ms`, 10 s) or it is closed.
    pub kafka_first_request_timeout: Duration,
    /// Once the first byte of a request (its size prefix included) arrived, the whole request
    /// must arrive within this (`connections.request.read.timeout.ms`, 30 s). Time spent waiting
    /// for `kafka_queued_request_bytes_max` does not count.
    pub kafka_request_read_timeout: Duration,
    /// Request bytes held by the node at once, over all connections, from the first byte read
    /// until the request's handler returned (`queued.max.request.bytes`, 256 MiB or twice
    /// `socket.request.max.bytes` when that is larger; `-1` = unbounded, Kafka's default). When
    /// exhausted the node stops reading from sockets until requests complete.
    pub kafka_queued_request_bytes_max: usize,
    /// While `kafka_queued_request_bytes_max` is exhausted, a partly received request whose
    /// client has sent nothing for this long is dropped, its connection closed, to free its
    /// bytes for requests that wait (`queued.max.request.stall.ms`, 1000 ms).
    pub kafka_queued_request_stall: Duration,
    /// Requests read ahead of their responses on one connection.
    pub kafka_inflight_per_conn: usize,
    /// Largest fetch response (`fetch.max.bytes`, 55 MiB).
    pub fetch_bytes_max: usize,
    /// Consumer fetch answer bytes held in memory at once, node-wide, from the read until the
    /// answer is written (`fetch.response.memory.max.bytes`, raftka, 64 MiB; `-1` =
    /// unbounded). A fetch gets what is free (at least 1 MiB, else it waits within its
    /// `max_wait`, then is answered with no records); see `broker/fetch_memory.rs`.
    pub fetch_response_memory_max: Option<usize>,
    /// Incremental fetch sessions kept (`max.incremental.fetch.session.cache.slots`, Kafka's
    /// 1000; 0 = none: every fetch is answered in full).
    pub fetch_session_slots: usize,
    /// Partitions cached over all fetch sessions (`fetch.session.cache.partitions.max`,
    /// raftka, 100 000): a session that would pass it is not created, or is closed.
    pub fetch_session_partitions_max: usize,
    /// Longest fetch long-poll honoured.
    pub fetch_wait_max: Duration,
    /// Topics (or partitions) in one request.
    pub topics_per_request_max: usize,
    pub partitions_per_request_max: usize,
    /// Partitions per topic and in the whole cluster.
    pub partitions_per_topic_max: i32,
    /// How long a produce with acks=all waits at most, whatever the client asked.
    pub produce_timeout_max: Duration,
    /// Idle Kafka connections (no request started) are closed after this
    /// (`connections.max.idle.ms`, 600 000 ms).
    pub kafka_idle_timeout: Duration,
    /// Deadline for a metadata proposal through Raft.
    pub propose_timeout: Duration,
    /// ZooKeeper packet size (`jute.maxbuffer`), sessions, watches per session, path length.
    pub zk_packet_bytes_max: usize,
    pub zk_sessions_max: usize,
    pub zk_watches_per_session_max: usize,
    pub zk_path_bytes_max: usize,
    /// Largest znode data (`jute.maxbuffer`, ZooKeeper's 1048575): a create or setData with
    /// more is refused with BADARGUMENTS; packets may exceed it by 1 KiB of framing.
    pub zk_data_bytes_max: usize,
    /// Total data of all stored znodes (`zk.data.total.max.bytes`, raftka, 64 MiB): they live
    /// in the replicated metadata on every node. A write past it gets QUOTAEXCEEDED.
    pub zk_data_total_bytes_max: u64,
    /// ACL bindings the cluster holds at most (`acls.max`, raftka, 100 000): they live in the
    /// replicated metadata on every node. CreateAcls past it is refused.
    pub acls_max: u64,
    /// Threads in the blocking pool used for RocksDB calls.
    pub blocking_threads_max: usize,
    /// glibc malloc arenas (`malloc.arena.max`, raftka; default the number of cores, at most
    /// 8; `-1` = glibc's own default of 8 per core, or `MALLOC_ARENA_MAX` when that is set).
    /// Freed memory stays in the arena that held it, so with many arenas the transient
    /// buffers of requests and fetch answers keep the resident size high after a burst.
    pub malloc_arenas: Option<usize>,
    /// The most one record batch may expand to when decompressed
    /// (`message.decompressed.max.bytes`, 64 MiB): larger batches are refused with
    /// MESSAGE_TOO_LARGE and stored ones are reported unreadable instead of expanded.
    pub decompressed_batch_bytes_max: usize,
    /// Open connections to the operations HTTP listener (`http.connections.max`, 64). One more
    /// evicts the oldest connection that has not sent its request head yet.
    pub http_connections_max: usize,
    /// Deadline for an HTTP request head after accept (`http.request.head.timeout.ms`, 2 s).
    pub http_head_timeout: Duration,
    /// `console.write.enable` (false): the web console may create and delete topics, change
    /// topic configs and reset group offsets (with an authorizer, only for a principal that
    /// authenticates with HTTP Basic and SCRAM credentials and holds the ACLs).
    pub console_write_enable: bool,
}

/// `queued.max.request.bytes` when not configured (or twice `socket.request.max.bytes`).
pub const QUEUED_REQUEST_BYTES_DEFAULT: usize = 256 << 20;
/// `malloc.arena.max` when not configured: the number of cores, at most 8.
fn default_malloc_arenas() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .clamp(1, 8)
}

/// `fetch.response.memory.max.bytes` when not configured.
pub const FETCH_RESPONSE_MEMORY_DEFAULT: usize = 64 << 20;
/// The smallest `fetch.response.memory.max.bytes` (one fetch's floor, `broker/fetch_memory.rs`).
pub const FETCH_RESPONSE_MEMORY_MIN: usize = 1 << 20;

impl Default for Limits {
    fn default() -> Self {
        Self {
            kafka_request_bytes_max: 104_857_600,
            kafka_connections_max: 10_000,
            kafka_connections_per_ip_max: 1_000,
            kafka_connections_per_ip_overrides: BTreeMap::new(),
            kafka_first_request_timeout: Duration::from_secs(10),
            kafka_request_read_timeout: Duration::from_secs(30),
            kafka_queued_request_bytes_max: QUEUED_REQUEST_BYTES_DEFAULT,
            kafka_queued_request_stall: Duration::from_secs(1),
            kafka_inflight_per_conn: 16,
            fetch_bytes_max: 57_671_680,
            fetch_response_memory_max: Some(FETCH_RESPONSE_MEMORY_DEFAULT),
            fetch_session_slots: 1_000,
            fetch_session_partitions_max: 100_000,
            fetch_wait_max: Duration::from_secs(30),
            topics_per_request_max: 10_000,
            partitions_per_request_max: 100_000,
            partitions_per_topic_max: 10_000,
            produce_timeout_max: Duration::from_secs(120),
            kafka_idle_timeout: Duration::from_secs(600),
            propose_timeout: Duration::from_secs(10),
            zk_packet_bytes_max: JUTE_MAXBUFFER_DEFAULT + ZK_PACKET_OVERHEAD_BYTES,
            zk_sessions_max: 10_000,
            zk_watches_per_session_max: 100_000,
            zk_path_bytes_max: 4096,
            zk_data_bytes_max: JUTE_MAXBUFFER_DEFAULT,
            zk_data_total_bytes_max: 64 << 20,
            acls_max: 100_000,
            blocking_threads_max: 64,
            malloc_arenas: Some(default_malloc_arenas()),
            decompressed_batch_bytes_max: DECOMPRESSED_BATCH_BYTES_MAX_DEFAULT,
            http_connections_max: 64,
            http_head_timeout: Duration::from_secs(2),
            console_write_enable: false,
        }
    }
}

/// One Kafka listener: a name (`PLAINTEXT`, `INTERNAL`, …), bind address and advertised address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub bind: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: u16,
    /// From `listener.security.protocol.map`.
    pub protocol: security::SecurityProtocol,
    /// What a SASL listener offers (`None` on the others).
    pub sasl: Option<std::sync::Arc<security::ListenerSasl>>,
    /// The key and trust stores of a TLS listener (`None` on the others).
    pub tls: Option<std::sync::Arc<security::TlsSettings>>,
}

/// Broker-wide defaults that topics inherit.
#[derive(Debug, Clone)]
pub struct BrokerDefaults {
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub min_insync_replicas: i32,
    pub message_max_bytes: i32,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_replication_factor: i16,
}

/// Consumer-group coordinator settings (Kafka's `group.*` / `offsets.*` keys).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms` (3000): a rebalance out of Empty waits this long
    /// for more members.
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms` (6000) / `group.max.session.timeout.ms` (1800000).
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
    /// `group.max.size`: members per group (Kafka's default is unbounded; ours 1000).
    pub max_size: usize,
    /// `group.max.groups` (raftka): groups per coordinator node.
    pub groups_max: usize,
    /// `group.member.metadata.max.bytes` (raftka, 1 MiB): protocol metadata of one member.
    pub member_metadata_bytes_max: usize,
    /// `offsets.retention.minutes` (10080): offsets of empty groups expire after this.
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms` (600000).
    pub offsets_retention_check_interval: Duration,
    /// `offset.metadata.max.bytes` (4096).
    pub offset_metadata_bytes_max: usize,
    /// `offsets.commit.timeout.ms` (5000): deadline for an offset commit to become durable.
    pub offsets_commit_timeout: Duration,
}

/// Transaction coordinator settings (Kafka's `transaction.*` keys).
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.state.log.num.partitions` (50).
    pub num_partitions: i32,
    /// `transaction.state.log.replication.factor` (3; capped by the live brokers when the
    /// topic is created, as for the offsets topic).
    pub replication_factor: i16,
    /// `transaction.state.log.min.isr` (2; capped by the replication factor).
    pub min_isr: i32,
    /// `transaction.max.timeout.ms` (900000): the longest `transaction.timeout.ms` a producer
    /// may ask for.
    pub max_timeout: Duration,
    /// `transactional.id.expiration.ms` (604800000): an id idle this long is removed.
    pub id_expiration: Duration,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (10000).
    pub abort_check_interval: Duration,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms` (3600000).
    pub expire_check_interval: Duration,
    /// `transaction.max.ids` (raftka, 100000): transactional ids per coordinator node.
    pub ids_max: usize,
    /// `transaction.version` (raftka, 2): the level of Kafka's `transaction.version` feature
    /// that ApiVersions advertises as finalized (what `kafka-features.sh` sets in Kafka 4).
    /// At 2 Kafka 4 clients use transaction version 2 (KIP-890 part 2: the epoch is bumped on
    /// every EndTxn, partitions are added by the produce itself); 0 or 1 keeps them on the
    /// protocol of Kafka 2.2.1–3.x. The coordinator serves both at any level.
    pub version: i16,
}

/// Replication, broker liveness and leadership timing (Kafka's keys), parsed once.
#[derive(Debug, Clone)]
pub struct ReplicationConfig {
    /// `replica.lag.time.max.ms` (30000): a follower not caught up for this long leaves the ISR.
    pub replica_lag_time_max: Duration,
    /// `broker.session.timeout.ms` (9000): a broker silent this long is fenced.
    pub broker_session_timeout: Duration,
    /// `broker.heartbeat.interval.ms` (500; Kafka: 2000): at most a third of the session
    /// timeout, so one lost heartbeat never fences a broker. Heartbeats cost one small RPC and
    /// no Raft write, and a short interval lets a crashed broker be confirmed dead within about
    /// a second.
    pub broker_heartbeat_interval: Duration,
    /// `auto.leader.rebalance.enable` (true) and `leader.imbalance.check.interval.seconds`
    /// (300): how often preferred leaders are restored, `None` when disabled.
    pub leader_rebalance_interval: Option<Duration>,
    /// `log.retention.check.interval.ms` (300000): how often retention (and compaction) run.
    pub retention_check_interval: Duration,
    /// `log.cleaner.backoff.ms` (15000): how often the log cleaner looks for compacted topics
    /// with something to clean, as Kafka's cleaner threads do between checks.
    pub cleaner_backoff: Duration,
}

/// Storage fault handling: free-space thresholds, the scrubber, corruption repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// `log.dir.free.bytes.min`: appends are refused (KAFKA_STORAGE_ERROR) while the log
    /// directory has less free space. `None` (`-1`, the default) = min(1 GiB, 10 % of the
    /// filesystem).
    pub free_bytes_min: Option<u64>,
    /// `log.dir.free.bytes.warn`: a warning is logged (and repeated each minute) below this.
    /// `None` (`-1`, the default) = max(2 × the refuse threshold, 5 % of the filesystem).
    pub free_bytes_warn: Option<u64>,
    /// `log.dir.free.check.interval.ms` (1000): how often free space is measured.
    pub free_check_interval: Duration,
    /// `log.scrub.interval.ms` (7 days): every stored byte is re-read with its checksums
    /// verified at start and then this often; `None` (`-1`) = never.
    pub scrub_interval: Option<Duration>,
    /// `log.scrub.bytes.per.sec` (32 MiB/s): the scrubber's read rate.
    pub scrub_bytes_per_sec: u64,
    /// `log.corruption.rebuild.enable` (true): on a corrupt partition-log block, restart the
    /// node in-process and rebuild the partition log without it (followers then re-fetch the
    /// lost range from their leaders). Off: report only.
    pub corruption_rebuild: bool,
    /// `storage.memtable.bytes.max` (128 MiB): RocksDB's memtables, all column families.
    pub memtable_bytes: usize,
    /// `storage.block.cache.bytes` (32 MiB): RocksDB's block cache, shared.
    pub block_cache_bytes: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            free_bytes_min: None,
            free_bytes_warn: None,
            free_check_interval: Duration::from_secs(1),
            scrub_interval: Some(Duration::from_secs(7 * 24 * 3600)),
            scrub_bytes_per_sec: 32 << 20,
            corruption_rebuild: true,
            memtable_bytes: 128 << 20,
            block_cache_bytes: 32 << 20,
        }
    }
}

/// The validated configuration of one node.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_id: NodeId,
    pub listeners: Vec<Listener>,
    pub zk_listen: SocketAddr,
    /// The ZooKeeper facade's TLS port (`zk.secure.listen`, or ZooKeeper's `secureClientPort`
    /// on all addresses); `None` = none.
    pub zk_secure_listen: Option<SocketAddr>,
    /// Its key and trust stores (`zk.ssl.*`, each falling back to `ssl.*`).
    pub zk_tls: Option<std::sync::Arc<security::TlsSettings>>,
    pub raft_listen: SocketAddr,
    /// Operations HTTP listener (`/metrics`, `/health`); `None` when `http.listen` is `none`.
    pub http_listen: Option<SocketAddr>,
    /// Whether `http.listen` was given (a bind failure of the default is only a warning).
    pub http_listen_explicit: bool,
    /// Mutual TLS on the node-to-node port (`raft.ssl.*`); `None` = plaintext.
    pub raft_tls: Option<std::sync::Arc<security::TlsSettings>>,
    /// Initial Raft voters: node id → gRPC address (host:port).
    pub controller_quorum: BTreeMap<NodeId, String>,
    pub data_dir: PathBuf,
    pub rack: Option<String>,
    pub defaults: BrokerDefaults,
    pub limits: Limits,
    pub groups: GroupConfig,
    pub txn: TxnConfig,
    /// Authentication limits (every listener).
    pub auth: security::AuthLimits,
    /// The ACL authorizer (`authorizer.class.name` names one of Kafka's); `None` = every
    /// principal may do everything and the ACL APIs answer SECURITY_DISABLED.
    pub authorizer: Option<std::sync::Arc<crate::security::acl::AuthorizerConfig>>,
    /// The ZooKeeper facade's super digest
    /// (`zookeeper.DigestAuthenticationProvider.superDigest`, `super:<base64 sha1>`).
    pub zk_super_digest: Option<String>,
    /// Kafka's `zookeeper.set.acl` (false): Kafka-owned znodes change only for super users.
    pub zk_set_acl: bool,
    pub replication: ReplicationConfig,
    pub storage: StorageConfig,
    /// All properties as given (for broker DescribeConfigs and topic-default synonyms).
    pub properties: BTreeMap<String, String>,
    /// Dynamic broker configs from the metadata image (`dynamic.rs`): the one part that
    /// changes at run time.
    pub dynamic: dynamic::DynamicBrokerConfigs,
    /// Raft timing.
    pub raft_heartbeat: Duration,
    pub raft_election_min: Duration,
    pub raft_election_max: Duration,
}

/// Why a configuration was rejected (the process exits with code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("cannot read config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("{0}")]
    Relation(String),
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Default port of the operations HTTP listener (`http.listen`).
pub const DEFAULT_HTTP_PORT: u16 = 9644;

/// Keys this node understands; any other key is accepted with a warning (as Kafka does).
pub const KNOWN_BROKER_KEYS: &[&str] = &[
    "broker.id",
    "node.id",
    "listeners",
    "advertised.listeners",
    "log.dirs",
    "log.dir",
    "num.partitions",
    "default.replication.factor",
    "log.retention.hours",
    "log.retention.minutes",
    "log.retention.ms",
    "log.retention.bytes",
    "log.segment.bytes",
    "log.roll.ms",
    "log.roll.hours",
    "auto.create.topics.enable",
    "min.insync.replicas",
    "delete.topic.enable",
    "message.max.bytes",
    "log.cleanup.policy",
    "broker.rack",
    "zookeeper.connect",
    "zookeeper.connection.timeout.ms",
    "controller.quorum.voters",
    "offsets.topic.num.partitions",
    "offsets.topic.replication.factor",
    "compression.type",
    "log.message.timestamp.type",
    "log.retention.check.interval.ms",
    "unclean.leader.election.enable",
    "replica.lag.time.max.ms",
    "num.network.threads",
    "num.io.threads",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "socket.request.max.bytes",
    "num.recovery.threads.per.data.dir",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "transaction.state.log.num.partitions",
    "transaction.max.timeout.ms",
    "transactional.id.expiration.ms",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    "transaction.remove.expired.transaction.cleanup.interval.ms",
    "transaction.max.ids",
    "transaction.version",
    "group.initial.rebalance.delay.ms",
    "offsets.retention.minutes",
    "log.cleaner.enable",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.min.cleanable.ratio",
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "group.max.size",
    "group.max.groups",
    "group.member.metadata.max.bytes",
    "offsets.retention.check.interval.ms",
    "offset.metadata.max.bytes",
    "offsets.commit.timeout.ms",
    "broker.session.timeout.ms",
    "broker.heartbeat.interval.ms",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
    "message.decompressed.max.bytes",
    "jute.maxbuffer",
    "zk.data.total.max.bytes",
    "max.connections",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "connections.max.idle.ms",
    "connections.first.request.timeout.ms",
    "connections.request.read.timeout.ms",
    "queued.max.request.bytes",
    "queued.max.request.stall.ms",
    "fetch.response.memory.max.bytes",
    "max.incremental.fetch.session.cache.slots",
    "fetch.session.cache.partitions.max",
    "malloc.arena.max",
    "http.connections.max",
    "http.request.head.timeout.ms",
    "console.write.enable",
    "log.dir.free.bytes.min",
    "log.dir.free.bytes.warn",
    "log.dir.free.check.interval.ms",
    "log.scrub.interval.ms",
    "log.scrub.bytes.per.sec",
    "log.corruption.rebuild.enable",
    "storage.memtable.bytes.max",
    "storage.block.cache.bytes",
    "sasl.enabled.mechanisms",
    "sasl.jaas.config",
    "connection.failed.authentication.delay.ms",
    "connections.max.reauth.ms",
    "sasl.server.max.receive.size",
    "authorizer.class.name",
    "zookeeper.set.acl",
    "zk.secure.listen",
    "secureClientPort",
    "zookeeper.DigestAuthenticationProvider.superDigest",
    "super.users",
    "allow.everyone.if.no.acl.found",
    "acls.max",
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.cipher.suites",
    "ssl.principal.mapping.rules",
    "ssl.keystore.reload.interval.ms",
];

impl Config {
    /// Builds and validates the configuration from merged properties (file < `-o` < flags).
    ///
    /// # Errors
    /// Any invalid value or broken relation between values.
    pub fn from_properties(props: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            props
                .get(k)
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let node_id = match get("node.id").or_else(|| get("broker.id")) {
            Some(v) => {
                let n: i32 = v
                    .parse()
                    .map_err(|_| invalid("broker.id", &v, "not an integer"))?;
                if n < 0 {
                    return Err(invalid("broker.id", &v, "must be >= 0"));
                }
                NodeId(n)
            }
            None => NodeId(1),
        };
        let listeners_s = get("listeners").unwrap_or_else(|| "PLAINTEXT://0.0.0.0:9092".into());
        let advertised_s = get("advertised.listeners");
        let mut listeners = parse_listeners(&listeners_s, advertised_s.as_deref())?;
        let protocol_map =
            security::parse_protocol_map(get("listener.security.protocol.map").as_deref())?;
        for l in &mut listeners {
            l.protocol = *protocol_map.get(&l.name).ok_or_else(|| {
                invalid(
                    "listeners",
                    &listeners_s,
                    format!(
                        "no security protocol for listener {} in listener.security.protocol.map",
                        l.name
                    ),
                )
            })?;
            if l.protocol.is_tls() {
                l.tls = Some(std::sync::Arc::new(security::listener_tls(&l.name, &get)?));
            }
            if l.protocol.is_sasl() {
                l.sasl = Some(std::sync::Arc::new(security::listener_sasl(&l.name, &get)?));
            }
        }
        let zk_listen = parse_addr(
            "zk.listen",
            &get("zk.listen").unwrap_or_else(|| "0.0.0.0:2181".into()),
        )?;
        let raft_listen = parse_addr(
            "raft.listen",
            &get("raft.listen").unwrap_or_else(|| "0.0.0.0:9193".into()),
        )?;
        let http_listen_explicit = get("http.listen").is_some();
        let http_listen = match get("http.listen").as_deref().map(str::trim) {
            Some("none" | "") => None,
            Some(v) => Some(parse_addr("http.listen", v)?),
            None => Some(SocketAddr::from(([0, 0, 0, 0], DEFAULT_HTTP_PORT))),
        };
        let data_dir = PathBuf::from(
            get("log.dirs")
                .or_else(|| get("log.dir"))
                .map(|s| s.split(',').next().unwrap_or("./data").trim().to_owned())
                .unwrap_or_else(|| "./data".into()),
        );
        let controller_quorum = match get("controller.quorum.voters") {
            Some(v) => parse_quorum(&v)?,
            None => {
                let host = if raft_listen.ip().is_unspecified() {
                    "127.0.0.1".to_owned()
                } else {
                    raft_listen.ip().to_string()
                };
                BTreeMap::from([(node_id, format!("{host}:{}", raft_listen.port()))])
            }
        };
        // A node whose id is not among the voters joins an existing quorum: it never
        // bootstraps and waits to be added as a learner (`raftka quorum add-voter`).
        let int = |k: &str, d: i64, min: i64, max: i64| -> Result<i64, ConfigError> {
            match get(k) {
                None => Ok(d),
                Some(v) => {
                    let n: i64 = v.parse().map_err(|_| invalid(k, &v, "not an integer"))?;
                    if n < min || n > max {
                        return Err(invalid(k, &v, format!("must be between {min} and {max}")));
                    }
                    Ok(n)
                }
            }
        };
        let boolean = |k: &str, d: bool| -> Result<bool, ConfigError> {
            match get(k) {
                None => Ok(d),
                Some(v) => match v.to_ascii_lowercase().as_str() {
                    "true" => Ok(true),
                    "false" => Ok(false),
                    _ => Err(invalid(k, &v, "expected true or false")),
                },
            }
        };
        let defaults = BrokerDefaults {
            num_partitions: int("num.partitions", 1, 1, 10_000)? as i32,
            default_replication_factor: int("default.replication.factor", 1, 1, 32)? as i16,
            auto_create_topics_enable: boolean("auto.create.topics.enable", true)?,
            delete_topic_enable: boolean("delete.topic.enable", true)?,
            min_insync_replicas: int("min.insync.replicas", 1, 1, 32)? as i32,
            message_max_bytes: int("message.max.bytes", 1_048_588, 0, i32::MAX as i64)? as i32,
            offsets_topic_num_partitions: int("offsets.topic.num.partitions", 50, 1, 10_000)?
                as i32,
            offsets_topic_replication_factor: int("offsets.topic.replication.factor", 3, 1, 32)?
                as i16,
        };
        // Topic defaults given as broker synonyms must be valid topic values too.
        for def in TOPIC_CONFIGS {
            for (syn, mult) in def.synonyms {
                if let Some(v) = get(syn) {
                    let value = if *mult == 1 {
                        v.clone()
                    } else {
                        let n: i64 = v.parse().map_err(|_| invalid(syn, &v, "not an integer"))?;
                        n.checked_mul(*mult)
                            .ok_or_else(|| invalid(syn, &v, "too large"))?
                            .to_string()
                    };
                    validate_topic_config(def.name, &value)
                        .map_err(|e| invalid(syn, &v, e.to_string()))?;
                }
            }
        }
        let session_timeout_ms = int("broker.session.timeout.ms", 9_000, 300, 3_600_000)?;
        let replication = ReplicationConfig {
            replica_lag_time_max: Duration::from_millis(int(
                "replica.lag.time.max.ms",
                30_000,
                100,
                3_600_000,
            )? as u64),
            broker_session_timeout: Duration::from_millis(session_timeout_ms as u64),
            // Unset: 500 ms, or a third of a short session timeout.
            broker_heartbeat_interval: Duration::from_millis(int(
                "broker.heartbeat.interval.ms",
                500.min(session_timeout_ms / 3),
                50,
                1_200_000,
            )? as u64),
            leader_rebalance_interval: boolean("auto.leader.rebalance.enable", true)?
                .then(|| {
                    int(
                        "leader.imbalance.check.interval.seconds",
                        300,
                        1,
                        86_400 * 365,
                    )
                })
                .transpose()?
                .map(|s| Duration::from_secs(s as u64)),
            retention_check_interval: Duration::from_millis(int(
                "log.retention.check.interval.ms",
                300_000,
                10,
                i64::from(i32::MAX),
            )? as u64),
            cleaner_backoff: Duration::from_millis(int(
                "log.cleaner.backoff.ms",
                15_000,
                10,
                i64::from(i32::MAX),
            )? as u64),
        };
        let jute_maxbuffer = int(
            "jute.maxbuffer",
            JUTE_MAXBUFFER_DEFAULT as i64,
            1024,
            64 << 20,
        )? as usize;
        let ms = |k: &str, d: i64, min: i64, max: i64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_millis(int(k, d, min, max)? as u64))
        };
        let kafka_request_bytes_max = int(
            "socket.request.max.bytes",
            104_857_600,
            1024,
            i32::MAX as i64,
        )? as usize;
        let limits = Limits {
            kafka_request_bytes_max,
            kafka_connections_max: int("max.connections", 10_000, 1, 1_000_000)? as usize,
            kafka_connections_per_ip_max: int("max.connections.per.ip", 1_000, 0, 1_000_000)?
                as usize,
            kafka_connections_per_ip_overrides: match get("max.connections.per.ip.overrides") {
                Some(v) => parse_per_ip_overrides(&v)?,
                None => BTreeMap::new(),
            },
            kafka_idle_timeout: ms("connections.max.idle.ms", 600_000, 1_000, i32::MAX as i64)?,
            kafka_first_request_timeout: ms(
                "connections.first.request.timeout.ms",
                10_000,
                100,
                i32::MAX as i64,
            )?,
            kafka_request_read_timeout: ms(
                "connections.request.read.timeout.ms",
                30_000,
                100,
                i32::MAX as i64,
            )?,
            kafka_queued_request_bytes_max: match int("queued.max.request.bytes", 0, -1, i64::MAX)?
            {
                -1 => usize::MAX,
                0 if get("queued.max.request.bytes").is_none() => {
                    QUEUED_REQUEST_BYTES_DEFAULT.max(2 * kafka_request_bytes_max)
                }
                n => usize::try_from(n).unwrap_or(usize::MAX),
            },
            kafka_queued_request_stall: ms("queued.max.request.stall.ms", 1_000, 10, 3_600_000)?,
            malloc_arenas: match int("malloc.arena.max", default_malloc_arenas() as i64, -1, 64)? {
                -1 => None,
                0 => {
                    return Err(ConfigError::Relation(
                        "malloc.arena.max must be -1 or between 1 and 64".into(),
                    ))
                }
                n => Some(n as usize),
            },
            fetch_response_memory_max: match int(
                "fetch.response.memory.max.bytes",
                FETCH_RESPONSE_MEMORY_DEFAULT as i64,
                -1,
                i64::MAX,
            )? {
                -1 => None,
                n if n < FETCH_RESPONSE_MEMORY_MIN as i64 => {
                    return Err(ConfigError::Relation(format!(
                        "fetch.response.memory.max.bytes ({n}) must be -1 or at least \
                         {FETCH_RESPONSE_MEMORY_MIN}"
                    )))
                }
                n => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            },
            fetch_session_slots: int(
                "max.incremental.fetch.session.cache.slots",
                1_000,
                0,
                1_000_000,
            )? as usize,
            fetch_session_partitions_max: int(
                "fetch.session.cache.partitions.max",
                100_000,
                0,
                100_000_000,
            )? as usize,
            http_connections_max: int("http.connections.max", 64, 1, 100_000)? as usize,
            http_head_timeout: ms("http.request.head.timeout.ms", 2_000, 100, 300_000)?,
            console_write_enable: boolean("console.write.enable", false)?,
            decompressed_batch_bytes_max: int(
                "message.decompressed.max.bytes",
                DECOMPRESSED_BATCH_BYTES_MAX_DEFAULT as i64,
                1 << 20,
                i64::from(i32::MAX),
            )? as usize,
            zk_data_bytes_max: jute_maxbuffer,
            zk_packet_bytes_max: jute_maxbuffer + ZK_PACKET_OVERHEAD_BYTES,
            zk_data_total_bytes_max: int("zk.data.total.max.bytes", 64 << 20, 0, i64::MAX)? as u64,
            acls_max: int("acls.max", 100_000, 0, 10_000_000)? as u64,
            ..Limits::default()
        };
        let groups = GroupConfig {
            initial_rebalance_delay: ms("group.initial.rebalance.delay.ms", 3_000, 0, 300_000)?,
            min_session_timeout: ms("group.min.session.timeout.ms", 6_000, 1, i32::MAX as i64)?,
            max_session_timeout: ms(
                "group.max.session.timeout.ms",
                1_800_000,
                1,
                i32::MAX as i64,
            )?,
            max_size: int("group.max.size", 1_000, 1, 1_000_000)? as usize,
            groups_max: int("group.max.groups", 100_000, 1, 10_000_000)? as usize,
            member_metadata_bytes_max: int(
                "group.member.metadata.max.bytes",
                1 << 20,
                1024,
                64 << 20,
            )? as usize,
            offsets_retention: Duration::from_secs(
                int("offsets.retention.minutes", 10_080, 1, 52_560_000)? as u64 * 60,
            ),
            offsets_retention_check_interval: ms(
                "offsets.retention.check.interval.ms",
                600_000,
                100,
                i32::MAX as i64,
            )?,
            offset_metadata_bytes_max: int("offset.metadata.max.bytes", 4096, 0, 1 << 20)? as usize,
            offsets_commit_timeout: ms("offsets.commit.timeout.ms", 5_000, 1, 300_000)?,
        };
        let txn_rf = int("transaction.state.log.replication.factor", 3, 1, 32)? as i16;
        let txn = TxnConfig {
            num_partitions: int("transaction.state.log.num.partitions", 50, 1, 10_000)? as i32,
            replication_factor: txn_rf,
            min_isr: int("transaction.state.log.min.isr", 2, 1, 32)? as i32,
            max_timeout: ms("transaction.max.timeout.ms", 900_000, 1, i32::MAX as i64)?,
            id_expiration: ms(
                "transactional.id.expiration.ms",
                604_800_000,
                1,
                i32::MAX as i64,
            )?,
            abort_check_interval: ms(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                10_000,
                1,
                i32::MAX as i64,
            )?,
            expire_check_interval: ms(
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                3_600_000,
                1,
                i32::MAX as i64,
            )?,
            ids_max: int("transaction.max.ids", 100_000, 1, 10_000_000)? as usize,
            version: int("transaction.version", 2, 0, 2)? as i16,
        };
        let auto_bytes = |k: &str| -> Result<Option<u64>, ConfigError> {
            let n = int(k, -1, -1, i64::MAX)?;
            Ok((n >= 0).then_some(n as u64))
        };
        let storage = StorageConfig {
            free_bytes_min: auto_bytes("log.dir.free.bytes.min")?,
            free_bytes_warn: auto_bytes("log.dir.free.bytes.warn")?,
            free_check_interval: ms("log.dir.free.check.interval.ms", 1000, 10, 3_600_000)?,
            scrub_interval: match int("log.scrub.interval.ms", 604_800_000, -1, i64::MAX)? {
                n if n <= 0 => None,
                n => Some(Duration::from_millis(n as u64)),
            },
            scrub_bytes_per_sec: int("log.scrub.bytes.per.sec", 32 << 20, 1 << 10, 1 << 40)? as u64,
            corruption_rebuild: boolean("log.corruption.rebuild.enable", true)?,
            memtable_bytes: int("storage.memtable.bytes.max", 128 << 20, 16 << 20, 64 << 30)?
                as usize,
            block_cache_bytes: int("storage.block.cache.bytes", 32 << 20, 1 << 20, 64 << 30)?
                as usize,
        };
        let raft_tls = security::raft_tls(&get)?.map(std::sync::Arc::new);
        let auth = security::AuthLimits {
            failed_delay: ms("connection.failed.authentication.delay.ms", 100, 0, 60_000)?,
            reauth_max: match int("connections.max.reauth.ms", 0, 0, i64::from(i32::MAX))? {
                0 => None,
                n => Some(Duration::from_millis(n as u64)),
            },
            receive_max: int("sasl.server.max.receive.size", 524_288, 1024, 64 << 20)? as usize,
        };
        let authorizer = security::authorizer(&get)?.map(std::sync::Arc::new);
        let zk_secure_listen = match (get("zk.secure.listen"), get("secureClientPort")) {
            (Some(a), _) if a.trim() != "none" => Some(parse_addr("zk.secure.listen", &a)?),
            (None, Some(p)) => Some(parse_addr(
                "secureClientPort",
                &format!("0.0.0.0:{}", p.trim()),
            )?),
            _ => None,
        };
        let zk_tls = match zk_secure_listen {
            None => None,
            Some(_) => Some(std::sync::Arc::new(security::zk_tls(&get)?)),
        };
        let config = Config {
            groups,
            txn,
            auth,
            authorizer,
            zk_super_digest: get("zookeeper.DigestAuthenticationProvider.superDigest")
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty()),
            zk_set_acl: boolean("zookeeper.set.acl", false)?,
            raft_tls,
            replication,
            storage,
            node_id,
            listeners,
            zk_listen,
            zk_secure_listen,
            zk_tls,
            raft_listen,
            http_listen,
            http_listen_explicit,
            controller_quorum,
            data_dir,
            rack: get("broker.rack"),
            defaults,
            limits,
            properties: BTreeMap::new(),
            dynamic: dynamic::DynamicBrokerConfigs::default(),
            // A follower of openraft 0.9 stands for election `max` (the leader lease) plus a
            // random time in [min, max) after the leader's last heartbeat: 0.9–1.2 s with these
            // defaults, so a crashed controller leader is replaced well inside issue 18's 2 s
            // failover (600/1200 gave 1.8–2.4 s, and 2.4–3.9 s failovers).
            raft_heartbeat: Duration::from_millis(int("raft.heartbeat.ms", 50, 10, 10_000)? as u64),
            raft_election_min: Duration::from_millis(int(
                "raft.election.timeout.min.ms",
                300,
                50,
                60_000,
            )? as u64),
            raft_election_max: Duration::from_millis(int(
                "raft.election.timeout.max.ms",
                600,
                60,
                120_000,
            )? as u64),
        };
        let config = Config {
            properties: props,
            ..config
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.raft_election_min <= self.raft_heartbeat * 2 {
            return Err(ConfigError::Relation(
                "raft.election.timeout.min.ms must be more than twice raft.heartbeat.ms".into(),
            ));
        }
        if self.raft_election_max <= self.raft_election_min {
            return Err(ConfigError::Relation(
                "raft.election.timeout.max.ms must be greater than raft.election.timeout.min.ms"
                    .into(),
            ));
        }
        if self.limits.kafka_request_bytes_max < self.defaults.message_max_bytes as usize {
            return Err(ConfigError::Relation(
                "socket.request.max.bytes must be at least message.max.bytes".into(),
            ));
        }
        if self.limits.decompressed_batch_bytes_max < self.defaults.message_max_bytes as usize {
            return Err(ConfigError::Relation(
                "message.decompressed.max.bytes must be at least message.max.bytes".into(),
            ));
        }
        let r = &self.replication;
        if r.broker_heartbeat_interval * 3 > r.broker_session_timeout {
            return Err(ConfigError::Relation(
                "broker.heartbeat.interval.ms must be at most a third of broker.session.timeout.ms"
                    .into(),
            ));
        }
        let l = &self.limits;
        if l.kafka_queued_request_bytes_max != usize::MAX
            && l.kafka_queued_request_bytes_max < 2 * l.kafka_request_bytes_max
        {
            return Err(ConfigError::Relation(format!(
                "queued.max.request.bytes ({}) must be -1 or at least twice socket.request.max.bytes \
                 ({}): one largest request is kept in reserve so partly read requests can always \
                 complete",
                l.kafka_queued_request_bytes_max, l.kafka_request_bytes_max
            )));
        }
        if l.kafka_connections_per_ip_max == 0 && l.kafka_connections_per_ip_overrides.is_empty() {
            return Err(ConfigError::Relation(
                "max.connections.per.ip can be 0 only if max.connections.per.ip.overrides is set"
                    .into(),
            ));
        }
        if l.kafka_first_request_timeout > l.kafka_idle_timeout {
            return Err(ConfigError::Relation(
                "connections.first.request.timeout.ms must not exceed connections.max.idle.ms"
                    .into(),
            ));
        }
        if self.groups.min_session_timeout > self.groups.max_session_timeout {
            return Err(ConfigError::Relation(
                "group.min.session.timeout.ms must not exceed group.max.session.timeout.ms".into(),
            ));
        }
        if let (Some(min), Some(warn)) = (self.storage.free_bytes_min, self.storage.free_bytes_warn)
        {
            if warn < min {
                return Err(ConfigError::Relation(
                    "log.dir.free.bytes.warn must not be below log.dir.free.bytes.min".into(),
                ));
            }
        }
        if self.listeners.is_empty() {
            return Err(ConfigError::Relation(
                "at least one listener is required".into(),
            ));
        }
        Ok(())
    }

    /// The effective broker-level value for a topic config (dynamic broker config, cluster
    /// default, static property or Kafka default), with the key it came from (`None` = Kafka
    /// default).
    pub fn topic_default(&self, def: &topic::TopicConfigDef) -> (String, Option<&'static str>) {
        let (v, from) = self.topic_default_layered(def);
        (v, from.map(|(k, _)| k))
    }

    /// As [`Self::topic_default`], with the layer the value came from. As Kafka merges the
    /// dynamic layers over the static properties before resolving synonyms, the most specific
    /// synonym set in any layer wins (`log.retention.ms` over `log.retention.hours`).
    pub fn topic_default_layered(
        &self,
        def: &topic::TopicConfigDef,
    ) -> (String, Option<(&'static str, dynamic::Layer)>) {
        for (syn, mult) in def.synonyms {
            if let Some((v, layer)) = self.broker_value(syn) {
                if *mult == 1 {
                    return (v, Some((syn, layer)));
                }
                if let Some(n) = v.parse::<i64>().ok().and_then(|n| n.checked_mul(*mult)) {
                    return (n.to_string(), Some((syn, layer)));
                }
            }
        }
        (def.default.to_owned(), None)
    }

    /// The listener a client connected on, by name.
    pub fn listener(&self, name: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.name == name)
    }
}

fn parse_addr(key: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    let v = v.trim();
    let v = if v.starts_with(':') {
        format!("0.0.0.0{v}")
    } else {
        v.to_owned()
    };
    use std::net::ToSocketAddrs;
    v.to_socket_addrs()
        .map_err(|e| invalid(key, &v, e.to_string()))?
        .next()
        .ok_or_else(|| invalid(key, &v, "does not resolve"))
}

fn split_listener(key: &str, item: &str) -> Result<(String, String, u16), ConfigError> {
    let (name, rest) = item
        .split_once("://")
        .ok_or_else(|| invalid(key, item, "expected NAME://host:port"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| invalid(key, item, "expected NAME://host:port"))?;
    let port: u16 = port.parse().map_err(|_| invalid(key, item, "bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(invalid(key, item, "bad listener name"));
    }
    Ok((name.to_ascii_uppercase(), host.to_owned(), port))
}

/// Parses `listeners` and `advertised.listeners` (`NAME://host:port,...`).
fn parse_listeners(
    listeners: &str,
    advertised: Option<&str>,
) -> Result<Vec<Listener>, ConfigError> {
    let mut out: Vec<Listener> = Vec::new();
    for item in listeners
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (name, host, port) = split_listener("listeners", item)?;
        if out.iter().any(|l| l.name == name) {
            return Err(invalid(
                "listeners",
                listeners,
                format!("listener name {name} repeated"),
            ));
        }
        let bind_host = if host.is_empty() {
            "0.0.0.0".to_owned()
        } else {
            host.clone()
        };
        let bind = parse_addr("listeners", &format!("{bind_host}:{port}"))?;
        let advertised_host = if host.is_empty() || bind.ip().is_unspecified() {
            default_advertised_host()
        } else {
            host
        };
        out.push(Listener {
            name,
            bind,
            advertised_host,
            advertised_port: port,
            protocol: security::SecurityProtocol::Plaintext,
            sasl: None,
            tls: None,
        });
    }
    if let Some(adv) = advertised {
        for item in adv.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, host, port) = split_listener("advertised.listeners", item)?;
            let l = out.iter_mut().find(|l| l.name == name).ok_or_else(|| {
                invalid(
                    "advertised.listeners",
                    item,
                    format!("no listener named {name} in listeners"),
                )
            })?;
            if !host.is_empty() {
                l.advertised_host = host;
            }
            l.advertised_port = port;
        }
    }
    Ok(out)
}

fn default_advertised_host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty() && std::env::var("RAFTKA_ADVERTISE_HOSTNAME").is_ok())
        .unwrap_or_else(|| "127.0.0.1".to_owned())
}

/// Parses `max.connections.per.ip.overrides` as Kafka does: `host:count,...`, split at the last
/// `:` (so `::1:50` is the IPv6 loopback; `[::1]:50` works too). Each host is an IP address or
/// a name resolved now to all its addresses. A repeated address keeps the last count.
fn parse_per_ip_overrides(v: &str) -> Result<BTreeMap<IpAddr, usize>, ConfigError> {
    const KEY: &str = "max.connections.per.ip.overrides";
    let mut out = BTreeMap::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (host, count) = item
            .rsplit_once(':')
            .ok_or_else(|| invalid(KEY, item, "expected host:count"))?;
        let count: usize = count
            .trim()
            .parse()
            .map_err(|_| invalid(KEY, item, "count is not a non-negative integer"))?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(invalid(KEY, item, "empty host"));
        }
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                use std::net::ToSocketAddrs;
                (host, 0u16)
                    .to_socket_addrs()
                    .map_err(|e| invalid(KEY, item, format!("cannot resolve {host}: {e}")))?
                    .map(|a| a.ip())
                    .collect()
            }
        };
        if addrs.is_empty() {
            return Err(invalid(KEY, item, format!("{host} does not resolve")));
        }
        for ip in addrs {
            out.insert(ip.to_canonical(), count);
        }
    }
    Ok(out)
}

/// Parses `controller.quorum.voters` (`1@host:port,2@host:port`).
fn parse_quorum(v: &str) -> Result<BTreeMap<NodeId, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = item
            .split_once('@')
            .ok_or_else(|| invalid("controller.quorum.voters", item, "expected id@host:port"))?;
        let id: i32 = id
            .parse()
            .map_err(|_| invalid("controller.quorum.voters", item, "id is not an integer"))?;
        if addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            return Err(invalid(
                "controller.quorum.voters",
                item,
                "expected host:port",
            ));
        }
        if out.insert(NodeId(id), addr.to_owned()).is_some() {
            return Err(invalid(
                "controller.quorum.voters",
                item,
                "node id repeated",
            ));
        }
    }
    if out.is_empty() {
        return Err(invalid("controller.quorum.voters", v, "empty"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn replication_timing_is_typed_and_related() {
        let c = Config::from_properties(BTreeMap::new()).expect("defaults");
        let r = &c.replication;
        assert_eq!(r.broker_session_timeout, Duration::from_millis(9_000));
        assert_eq!(r.broker_heartbeat_interval, Duration::from_millis(500));
        assert_eq!(r.replica_lag_time_max, Duration::from_millis(30_000));
        assert_eq!(r.leader_rebalance_interval, Some(Duration::from_secs(300)));
        assert_eq!(r.retention_check_interval, Duration::from_millis(300_000));
        assert_eq!(c.raft_heartbeat, Duration::from_millis(50));
        assert_eq!(c.raft_election_min, Duration::from_millis(300));
        assert_eq!(c.raft_election_max, Duration::from_millis(600));
        // An unset interval follows a short session timeout; a set one must fit it.
        let c =
            Config::from_properties(props(&[("broker.session.timeout.ms", "900")])).expect("valid");
        assert_eq!(
            c.replication.broker_heartbeat_interval,
            Duration::from_millis(300)
        );
        assert!(Config::from_properties(props(&[
            ("broker.session.timeout.ms", "900"),
            ("broker.heartbeat.interval.ms", "5000"),
        ]))
        .is_err());
        let off = Config::from_properties(props(&[("auto.leader.rebalance.enable", "false")]))
            .expect("valid");
        assert_eq!(off.replication.leader_rebalance_interval, None);
        for bad in [
            ("replica.lag.time.max.ms", "x"),
            ("auto.leader.rebalance.enable", "maybe"),
            ("log.retention.check.interval.ms", "0"),
        ] {
            assert!(Config::from_properties(props(&[bad])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn defaults() {
        let c = Config::from_properties(BTreeMap::new()).expect("defaults are valid");
        assert_eq!(c.node_id, NodeId(1));
        assert_eq!(c.listeners[0].bind.port(), 9092);
        assert_eq!(c.zk_listen.port(), 2181);
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.controller_quorum.len(), 1);
    }

    #[test]
    fn storage_fault_keys() {
        let d = Config::from_properties(BTreeMap::new()).expect("defaults");
        assert_eq!(d.storage, StorageConfig::default());
        let c = Config::from_properties(props(&[
            ("log.dir.free.bytes.min", "33554432"),
            ("log.dir.free.bytes.warn", "67108864"),
            ("log.dir.free.check.interval.ms", "200"),
            ("log.scrub.interval.ms", "-1"),
            ("log.scrub.bytes.per.sec", "1048576"),
            ("log.corruption.rebuild.enable", "false"),
        ]))
        .expect("valid");
        assert_eq!(c.storage.free_bytes_min, Some(32 << 20));
        assert_eq!(c.storage.free_bytes_warn, Some(64 << 20));
        assert_eq!(c.storage.free_check_interval, Duration::from_millis(200));
        assert_eq!(c.storage.scrub_interval, None);
        assert_eq!(c.storage.scrub_bytes_per_sec, 1 << 20);
        assert!(!c.storage.corruption_rebuild);
        assert!(Config::from_properties(props(&[
            ("log.dir.free.bytes.min", "100"),
            ("log.dir.free.bytes.warn", "10"),
        ]))
        .is_err());
        assert!(Config::from_properties(props(&[("log.dir.free.bytes.min", "-2")])).is_err());
        assert!(Config::from_properties(props(&[("log.dir.free.bytes.min", "lots")])).is_err());
    }

    #[test]
    fn classic_keys_and_errors() {
        let c = Config::from_properties(props(&[
            ("broker.id", "3"),
            ("listeners", "PLAINTEXT://:9093,INTERNAL://127.0.0.1:19093"),
            ("advertised.listeners", "PLAINTEXT://kafka.example:9093"),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
            ),
            ("log.retention.hours", "2"),
            ("controller.quorum.voters", "3@127.0.0.1:9300"),
        ]))
        .expect("valid");
        assert_eq!(c.node_id, NodeId(3));
        assert_eq!(c.listeners.len(), 2);
        assert_eq!(c.listeners[0].advertised_host, "kafka.example");
        assert!(c
            .listeners
            .iter()
            .all(|l| l.protocol == security::SecurityProtocol::Plaintext && l.sasl.is_none()));
        // Listener security: a SASL listener gets its mechanisms and PLAIN users; a name
        // without a protocol and the TLS protocols (not served yet) are refused.
        let sc = Config::from_properties(props(&[
            ("listeners", "SASL_PLAINTEXT://:9092,EXTERNAL://:9094"),
            (
                "listener.security.protocol.map",
                "SASL_PLAINTEXT:SASL_PLAINTEXT,EXTERNAL:PLAINTEXT",
            ),
            ("sasl.enabled.mechanisms", "SCRAM-SHA-512,PLAIN"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"b\";",
            ),
            ("connections.max.reauth.ms", "60000"),
        ]))
        .expect("valid");
        let sasl = sc.listeners[0].sasl.as_ref().expect("a SASL listener");
        assert_eq!(sasl.mechanisms, vec!["SCRAM-SHA-512", "PLAIN"]);
        assert_eq!(sasl.plain_users["a"], "b");
        assert!(sc.listeners[1].sasl.is_none());
        assert_eq!(sc.auth.reauth_max, Some(Duration::from_secs(60)));
        assert_eq!(sc.auth.failed_delay, Duration::from_millis(100));
        assert!(Config::from_properties(props(&[("listeners", "INTERNAL://:9092")])).is_err());
        // A TLS listener needs a key store.
        assert!(Config::from_properties(props(&[("listeners", "SASL_SSL://:9092")])).is_err());
        let def = topic::topic_config_def("retention.ms").expect("known");
        assert_eq!(
            c.topic_default(def),
            ("7200000".to_owned(), Some("log.retention.hours"))
        );
        assert!(Config::from_properties(props(&[("num.partitions", "x")])).is_err());
        assert!(Config::from_properties(props(&[("log.retention.ms", "abc")])).is_err());
        assert!(Config::from_properties(props(&[("listeners", "nonsense")])).is_err());
        // A node outside the initial voters is a joining node (added later as a learner).
        let joining = Config::from_properties(props(&[("controller.quorum.voters", "2@h:1")]))
            .expect("joining node");
        assert!(!joining.controller_quorum.contains_key(&joining.node_id));
    }
    #[test]
    fn connection_and_request_limits() {
        let c = Config::from_properties(BTreeMap::new()).expect("defaults");
        let l = &c.limits;
        assert_eq!(l.kafka_connections_max, 10_000);
        assert_eq!(l.kafka_connections_per_ip_max, 1_000);
        assert!(l.kafka_connections_per_ip_overrides.is_empty());
        assert_eq!(l.kafka_idle_timeout, Duration::from_secs(600));
        assert_eq!(l.kafka_first_request_timeout, Duration::from_secs(10));
        assert_eq!(l.kafka_request_read_timeout, Duration::from_secs(30));
        assert_eq!(l.kafka_queued_request_bytes_max, 256 << 20);
        assert_eq!(l.kafka_queued_request_stall, Duration::from_secs(1));
        assert_eq!(l.http_connections_max, 64);
        assert_eq!(l.http_head_timeout, Duration::from_secs(2));

        let c = Config::from_properties(props(&[
            ("max.connections", "500"),
            ("max.connections.per.ip", "7"),
            (
                "max.connections.per.ip.overrides",
                " 10.0.0.1:100 , ::1:0,[fe80::1]:3,::ffff:10.0.0.2:9",
            ),
            ("connections.max.idle.ms", "60000"),
            ("connections.first.request.timeout.ms", "2000"),
            ("connections.request.read.timeout.ms", "5000"),
            ("queued.max.request.bytes", "4194304"),
            ("queued.max.request.stall.ms", "250"),
            ("socket.request.max.bytes", "2097152"),
            ("message.max.bytes", "1048576"),
            ("http.connections.max", "8"),
            ("http.request.head.timeout.ms", "500"),
        ]))
        .expect("valid");
        let l = &c.limits;
        assert_eq!(l.kafka_connections_max, 500);
        assert_eq!(l.kafka_connections_per_ip_max, 7);
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(
            l.kafka_connections_per_ip_overrides,
            BTreeMap::from([
                (ip("10.0.0.1"), 100),
                (ip("::1"), 0),
                (ip("fe80::1"), 3),
                (ip("10.0.0.2"), 9), // IPv4-mapped addresses are stored as IPv4
            ])
        );
        assert_eq!(l.kafka_idle_timeout, Duration::from_secs(60));
        assert_eq!(l.kafka_first_request_timeout, Duration::from_secs(2));
        assert_eq!(l.kafka_request_read_timeout, Duration::from_secs(5));
        assert_eq!(l.kafka_queued_request_bytes_max, 4 << 20);
        assert_eq!(l.kafka_queued_request_stall, Duration::from_millis(250));
        assert_eq!(l.http_connections_max, 8);
        assert_eq!(l.http_head_timeout, Duration::from_millis(500));

        // Host names resolve to every address of the name.
        let c = Config::from_properties(props(&[(
            "max.connections.per.ip.overrides",
            "localhost:5",
        )]))
        .expect("localhost resolves");
        assert_eq!(
            c.limits
                .kafka_connections_per_ip_overrides
                .get(&ip("127.0.0.1")),
            Some(&5)
        );

        // The budget follows a larger socket.request.max.bytes when not set; -1 is unbounded.
        let c = Config::from_properties(props(&[("socket.request.max.bytes", "209715200")]))
            .expect("valid");
        assert_eq!(c.limits.kafka_queued_request_bytes_max, 400 << 20);
        let c =
            Config::from_properties(props(&[("queued.max.request.bytes", "-1")])).expect("valid");
        assert_eq!(c.limits.kafka_queued_request_bytes_max, usize::MAX);

        for bad in [
            &[("max.connections.per.ip.overrides", "10.0.0.1")][..],
            &[("max.connections.per.ip.overrides", "10.0.0.1:-1")],
            &[("max.connections.per.ip.overrides", ":5")],
            &[("max.connections.per.ip.overrides", "no-such-host.invalid:5")],
            &[("max.connections.per.ip", "-1")],
            &[("max.connections.per.ip", "0")], // 0 only with overrides, as in Kafka
            &[("max.connections", "0")],
            &[("queued.max.request.bytes", "-2")],
            &[("queued.max.request.bytes", "0")],
            &[("queued.max.request.bytes", "104857600")], // < 2 x socket.request.max.bytes
            &[
                ("connections.max.idle.ms", "5000"),
                ("connections.first.request.timeout.ms", "6000"),
            ],
            &[("http.connections.max", "0")],
        ] {
            assert!(
                Config::from_properties(props(bad)).is_err(),
                "{bad:?} accepted"
            );
        }
        let ok = Config::from_properties(props(&[
            ("max.connections.per.ip", "0"),
            ("max.connections.per.ip.overrides", "127.0.0.1:10"),
        ]));
        assert!(ok.is_ok(), "{ok:?}");
    }
}
