//! The ZooKeeper-compatible facade on 2181, so Kafka 2.x tools (`kafka-topics.sh --zookeeper`,
//! `kafka-configs.sh --zookeeper`, `zookeeper-shell.sh`) and generic ZooKeeper clients work
//! against any node. `server` accepts, `session` runs a connection, `dispatch` routes opcodes to
//! `ops/<op>.rs`, `tree` maps the image to znodes, `watch` holds one-shot watches, `janitor`
//! carries out topic delete markers, preferred replica elections and partition reassignments
//! (`/admin/...`, as a 2.2.1 controller) and purges old change notifications, `error` maps domain
//! errors to ZooKeeper codes, `acl` is ZooKeeper's access control (who a connection is after
//! `addauth`, which ACL guards a node, whether it allows an op: every op checks it where
//! ZooKeeper 3.8 does, before it proposes a write).
//!
//! Imports `codec::jute`, `broker`, `metadata` view types, `config`, `types`; never `storage`,
//! `controller`, `replication` or `rpc`.

pub mod acl;
mod dispatch;
pub mod error;
pub mod four_letter;
mod janitor;
pub mod ops;
mod server;
mod session;
#[cfg(test)]
pub(crate) mod testing;
pub mod tree;
pub mod watch;

pub use server::ZkServer;
pub use session::{SESSION_TIMEOUT_MAX_MS, SESSION_TIMEOUT_MIN_MS};
