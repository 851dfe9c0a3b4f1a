//! Command line: `raftka serve` with flags, environment variables and a config file.
//! Precedence: flags > environment > `-o key=value` > config file > defaults.

use crate::config::{properties, Config, ConfigError};
use clap::{Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// raftka: a Kafka-compatible broker with a built-in Raft controller and ZooKeeper facade.
#[derive(Debug, Parser)]
#[command(name = "raftka", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node.
    Serve(Box<ServeArgs>),
    /// Check a node's health endpoint: exit 0 on HTTP 200, 1 otherwise (container
    /// HEALTHCHECK).
    Health(HealthArgs),
    /// Inspect or change the controller (Raft) quorum: `describe`, `add-voter`, `remove-voter`.
    Quorum(QuorumArgs),
    /// Verify a stopped node's data directory without changing it: every column family read
    /// with checksums verified, every record batch's header and CRC32C, offsets, the Raft log
    /// and the metadata image. Exit 0 when clean, 1 on any problem, 2 if it cannot be read.
    Check(CheckArgs),
    /// Manage SCRAM credentials (AlterUserScramCredentials / DescribeUserScramCredentials over
    /// the Kafka protocol): `list`, `set`, `delete`.
    Users(UsersArgs),
    /// Consumer groups over the Kafka protocol, as `kafka-consumer-groups.sh`: `list`,
    /// `describe` (with lag), `reset-offsets`, `delete`.
    Groups(GroupsArgs),
}

/// `raftka groups --bootstrap-server host:port <action>`. Exit code 0 on success, 1 on any
/// failure (with the reason on stderr).
#[derive(Debug, clap::Args)]
pub struct GroupsArgs {
    #[command(flatten)]
    pub connect: KafkaConnectArgs,
    #[command(subcommand)]
    pub action: GroupsAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum GroupsAction {
    /// Every group of every node, one per line.
    List,
    /// State, members, committed offsets, log end offsets and lag per partition.
    Describe {
        #[arg(long)]
        group: Vec<String>,
        #[arg(long)]
        all_groups: bool,
    },
    /// Resets a group's committed offsets (the group must have no active members). A dry run
    /// that prints the new offsets unless `--execute`.
    ResetOffsets {
        #[arg(long)]
        group: String,
        /// `topic` (every partition) or `topic:0,2`; repeatable.
        #[arg(long)]
        topic: Vec<String>,
        /// Every topic the group has committed offsets for.
        #[arg(long)]
        all_topics: bool,
        #[command(flatten)]
        strategy: ResetStrategyArgs,
        #[arg(long)]
        execute: bool,
    },
    /// Deletes groups without active members (and their committed offsets).
    Delete {
        #[arg(long)]
        group: Vec<String>,
    },
}

/// Exactly one of Kafka's reset strategies.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[group(required = true, multiple = false)]
pub struct ResetStrategyArgs {
    #[arg(long)]
    pub to_earliest: bool,
    #[arg(long)]
    pub to_latest: bool,
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// Moves each committed offset by N (negative: back).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// The first offset at or after this time, `YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM]` (UTC
    /// without a zone).
    #[arg(long, value_name = "DATETIME")]
    pub to_datetime: Option<String>,
    /// The first offset at or after now minus this ISO-8601 duration (`PnDTnHnMnS`).
    #[arg(long, value_name = "DURATION")]
    pub by_duration: Option<String>,
}

/// How raftka's Kafka-protocol tools (`users`, `groups`) reach a node.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaConnectArgs {
    /// A Kafka listener of any node.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// Authenticate first (a SASL listener): PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(long)]
    pub sasl_mechanism: Option<String>,
    #[arg(long)]
    pub sasl_username: Option<String>,
    /// Better given by the environment than on the command line.
    #[arg(long, env = "RAFTKA_SASL_PASSWORD", hide_env_values = true)]
    pub sasl_password: Option<String>,
    /// Deadline of each request, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: u64,
}

/// `raftka users --bootstrap-server host:port <action>`. Exit code 0 on success, 1 on any
/// failure (with the reason on stderr).
#[derive(Debug, clap::Args)]
pub struct UsersArgs {
    #[command(flatten)]
    pub connect: KafkaConnectArgs,
    #[command(subcommand)]
    pub action: UsersAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum UsersAction {
    /// Users with SCRAM credentials and their mechanisms and iterations (all, or those named).
    List {
        #[arg(long)]
        user: Vec<String>,
    },
    /// Sets a user's credential for one mechanism (the password is salted locally).
    Set {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        /// Better given by the environment than on the command line.
        #[arg(long, env = "RAFTKA_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// 4096 to 16384.
        #[arg(long, default_value_t = 8192)]
        iterations: i32,
    },
    /// Deletes a user's credential for one mechanism.
    Delete {
        #[arg(long)]
        user: String,
        #[arg(long)]
        mechanism: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The node's data directory (its `log.dirs` / `--data-dir`).
    #[arg(value_name = "DATA_DIR")]
    pub data_dir: PathBuf,
}

/// `raftka quorum --bootstrap host:port <action>`: quorum administration over the node-to-node
/// gRPC port. Any node answers (a follower points at the leader, which is then asked once).
/// Exit code 0 on success, 1 on any failure (with the reason on stderr).
#[derive(Debug, clap::Args)]
pub struct QuorumArgs {
    /// Any node's Raft / node-to-node gRPC address (its `raft.listen`, default port 9193), or
    /// several, comma-separated (tried in turn).
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT...]")]
    pub bootstrap: String,
    /// Deadline of each call in milliseconds; `add-voter` waits up to this long for the new
    /// node to catch up.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u32).range(100..=55_000))]
    pub timeout_ms: u32,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// With node-to-node TLS (`raft.ssl.*`): the CA that signed the nodes' certificates (PEM).
    #[arg(long, value_name = "PEM", requires_all = ["ssl_cert", "ssl_key"])]
    pub ssl_ca: Option<PathBuf>,
    /// This client's certificate chain (PEM), signed by a CA the nodes trust.
    #[arg(long, value_name = "PEM", requires = "ssl_ca")]
    pub ssl_cert: Option<PathBuf>,
    /// This client's private key (PEM, unencrypted).
    #[arg(long, value_name = "PEM", requires = "ssl_ca")]
    pub ssl_key: Option<PathBuf>,
    #[command(subcommand)]
    pub action: QuorumAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum QuorumAction {
    /// Leader, term, commit index, voters and learners with their Raft addresses.
    Describe,
    /// Adds a node as a learner, waits until it has caught up, then makes it a voter.
    AddVoter {
        /// The node's id (its `node.id`).
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
        id: i32,
        /// The node's Raft / node-to-node gRPC address as the other nodes reach it.
        #[arg(long, value_name = "HOST:PORT")]
        addr: String,
    },
    /// Removes a voter from the quorum (refuses to remove the last one). The node stays a
    /// learner, so its broker keeps following the metadata log.
    RemoveVoter {
        /// The voter's id.
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
        id: i32,
    },
    /// Takes a learner (a node that is not a voter) out of the membership altogether, e.g. a
    /// node being decommissioned after `remove-voter`, or one a failed `add-voter` left.
    RemoveNode {
        /// The learner's id.
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
        id: i32,
    },
}

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The health URL (default: `http://127.0.0.1:<port>/health`, the port of
    /// RAFTKA_HTTP_LISTEN, else of `http.listen` in the RAFTKA_CONFIG file, else 9644).
    #[arg(long, env = "RAFTKA_HEALTH_URL")]
    pub url: Option<String>,
}

impl HealthArgs {
    /// The URL to probe.
    pub fn resolved_url(&self) -> String {
        if let Some(u) = &self.url {
            return u.clone();
        }
        // Where `serve` would listen: RAFTKA_HTTP_LISTEN, else `http.listen` in the
        // RAFTKA_CONFIG file, else the default port.
        let from_file = || {
            let path = std::env::var_os("RAFTKA_CONFIG")?;
            let text = std::fs::read_to_string(path).ok()?;
            properties::parse(&text).remove("http.listen")
        };
        let port = std::env::var("RAFTKA_HTTP_LISTEN")
            .ok()
            .or_else(from_file)
            .and_then(|a| {
                a.rsplit_once(':')
                    .and_then(|(_, p)| p.trim().parse::<u16>().ok())
            })
            .unwrap_or(crate::config::DEFAULT_HTTP_PORT);
        format!("http://127.0.0.1:{port}/health")
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// A server.properties-style config file.
    #[arg(short = 'c', long, env = "RAFTKA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Node id (`broker.id` / `node.id`).
    #[arg(long, env = "RAFTKA_NODE_ID")]
    pub node_id: Option<i32>,
    /// Kafka listeners, e.g. `PLAINTEXT://0.0.0.0:9092`.
    #[arg(long, env = "RAFTKA_LISTENERS")]
    pub listeners: Option<String>,
    /// Advertised listeners, e.g. `PLAINTEXT://kafka1:9092`.
    #[arg(long, env = "RAFTKA_ADVERTISED_LISTENERS")]
    pub advertised_listeners: Option<String>,
    /// ZooKeeper facade address (default 0.0.0.0:2181).
    #[arg(long, env = "RAFTKA_ZK_LISTEN")]
    pub zk_listen: Option<String>,
    /// Node-to-node gRPC (Raft) address (default 0.0.0.0:9193).
    #[arg(long, env = "RAFTKA_RAFT_LISTEN")]
    pub raft_listen: Option<String>,
    /// Operations HTTP address for /metrics and /health (default 0.0.0.0:9644; `none` disables).
    #[arg(long, env = "RAFTKA_HTTP_LISTEN")]
    pub http_listen: Option<String>,
    /// Initial Raft voters: `1@host:port,2@host:port,...` (default: this node alone).
    #[arg(long, env = "RAFTKA_CONTROLLER_QUORUM")]
    pub controller_quorum: Option<String>,
    /// Data directory (`log.dirs`; default ./data).
    #[arg(long, env = "RAFTKA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Rack of this broker (`broker.rack`).
    #[arg(long, env = "RAFTKA_RACK")]
    pub rack: Option<String>,
    /// Any server.properties key, repeatable: `-o num.partitions=3`.
    #[arg(short = 'o', long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Log format.
    #[arg(long, env = "RAFTKA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl ServeArgs {
    /// Merges file, `-o` overrides and flags into a validated config.
    ///
    /// # Errors
    /// Unreadable file, malformed `-o`, invalid values.
    pub fn to_config(&self) -> Result<Config, ConfigError> {
        let mut props: BTreeMap<String, String> = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                properties::parse(&text)
            }
            None => BTreeMap::new(),
        };
        for kv in &self.set {
            let (k, v) = kv.split_once('=').ok_or_else(|| ConfigError::Invalid {
                key: "--set".into(),
                value: kv.clone(),
                reason: "expected KEY=VALUE".into(),
            })?;
            props.insert(k.trim().to_owned(), v.trim().to_owned());
        }
        let mut flag = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                props.insert(k.to_owned(), v);
            }
        };
        flag("node.id", self.node_id.map(|n| n.to_string()));
        flag("listeners", self.listeners.clone());
        flag("advertised.listeners", self.advertised_listeners.clone());
        flag("zk.listen", self.zk_listen.clone());
        flag("raft.listen", self.raft_listen.clone());
        flag("http.listen", self.http_listen.clone());
        flag("controller.quorum.voters", self.controller_quorum.clone());
        flag(
            "log.dirs",
            self.data_dir.as_ref().map(|d| d.display().to_string()),
        );
        flag("broker.rack", self.rack.clone());
        if props.contains_key("node.id") {
            props.remove("broker.id");
        }
        Config::from_properties(props)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("raftka").chain(args.iter().copied()))
    }

    fn quorum(args: &[&str]) -> QuorumArgs {
        match parse(args).expect("parses").command {
            Command::Quorum(q) => q,
            other => panic!("not a quorum command: {other:?}"),
        }
    }

    #[test]
    fn quorum_commands_parse() {
        let q = quorum(&["quorum", "--bootstrap", "h:9193", "describe"]);
        assert_eq!(q.bootstrap, "h:9193");
        assert_eq!(q.action, QuorumAction::Describe);
        assert!(!q.json);
        assert_eq!(q.timeout_ms, 30_000);
        let q = quorum(&["quorum", "--bootstrap", "h:1", "describe", "--json"]);
        assert!(q.json);
        let q = quorum(&[
            "quorum",
            "--bootstrap",
            "h:1",
            "--timeout-ms",
            "5000",
            "add-voter",
            "--id",
            "4",
            "--addr",
            "n4:9193",
        ]);
        assert_eq!(q.timeout_ms, 5000);
        assert_eq!(
            q.action,
            QuorumAction::AddVoter {
                id: 4,
                addr: "n4:9193".into()
            }
        );
        let q = quorum(&["quorum", "--bootstrap", "h:1", "remove-voter", "--id", "1"]);
        assert_eq!(q.action, QuorumAction::RemoveVoter { id: 1 });
    }

    #[test]
    fn check_takes_a_data_dir() {
        match parse(&["check", "/var/lib/raftka"])
            .expect("parses")
            .command
        {
            Command::Check(c) => assert_eq!(c.data_dir, PathBuf::from("/var/lib/raftka")),
            other => panic!("not check: {other:?}"),
        }
        assert!(parse(&["check"]).is_err());
    }

    #[test]
    fn quorum_commands_reject_bad_input() {
        assert!(
            parse(&["quorum", "describe"]).is_err(),
            "--bootstrap is required"
        );
        assert!(
            parse(&["quorum", "--bootstrap", "h:1"]).is_err(),
            "action required"
        );
        assert!(parse(&["quorum", "--bootstrap", "h:1", "add-voter", "--id", "4"]).is_err());
        assert!(parse(&["quorum", "--bootstrap", "h:1", "remove-voter", "--id", "-1"]).is_err());
        assert!(parse(&["quorum", "--bootstrap", "h:1", "remove-voter"]).is_err());
        assert!(parse(&[
            "quorum",
            "--bootstrap",
            "h:1",
            "--timeout-ms",
            "0",
            "describe"
        ])
        .is_err());
    }
}

/// A reset strategy, resolved (times as epoch milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetStrategy {
    ToEarliest,
    ToLatest,
    ToOffset(i64),
    ShiftBy(i64),
    ToDatetime(i64),
    ByDuration(i64),
}

impl ResetStrategyArgs {
    /// The strategy these flags name, times resolved against `now_ms`.
    ///
    /// # Errors
    /// An unparsable date-time or duration.
    pub fn resolve(&self, now_ms: i64) -> Result<ResetStrategy, String> {
        Ok(if self.to_earliest {
            ResetStrategy::ToEarliest
        } else if self.to_latest {
            ResetStrategy::ToLatest
        } else if let Some(o) = self.to_offset {
            ResetStrategy::ToOffset(o)
        } else if let Some(n) = self.shift_by {
            ResetStrategy::ShiftBy(n)
        } else if let Some(t) = &self.to_datetime {
            ResetStrategy::ToDatetime(crate::consumer_groups::parse_datetime(t)?)
        } else if let Some(d) = &self.by_duration {
            ResetStrategy::ByDuration(now_ms - crate::consumer_groups::parse_duration(d)?)
        } else {
            return Err("name one reset strategy".into());
        })
    }
}
