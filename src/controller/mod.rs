//! The controller: an openraft quorum whose state machine is the only writer of metadata.
//! Offers [`ControllerHandle`] (`propose`, `read_barrier`, `describe_quorum`, `image`,
//! `subscribe`); [`Controller`]
//! starts and owns the Raft node, its RocksDB-backed log and state machine, and the gRPC
//! services (`RaftService` for openraft, `ControllerService` for forwarding to the leader).
//!
//! Imports `metadata`, `storage`, `rpc`, `types`, `config`; never `kafka`, `zk`, `broker`,
//! `replication` or `node`.
//!
//! | File | Owns |
//! | --- | --- |
//! | `handle.rs` | `ControllerHandle`, `Proposer`, `ProposeError`, `QuorumView` (the interface above) |
//! | `types.rs` | openraft type config, id mapping |
//! | `log_store.rs` | Raft log + vote in `raft_log` / `raft_meta` |
//! | `state_machine.rs`, `image_store.rs` | apply, snapshots, the image in `meta_snapshot` |
//! | `network.rs` | openraft network (client) |
//! | `raft_service.rs`, `controller_service.rs`, `server.rs` | gRPC server side |
//! | `proposer.rs`, `forward.rs` | propose / read barrier / quorum description with leader forwarding |
//! | `raft_node.rs` | `Controller`: start, bootstrap, shutdown, membership, metrics |
//! | `policy/` | liveness (heartbeats, fencing) and leader elections, proposed from the leader's node |

mod codec;
mod controller_service;
mod forward;
mod handle;
mod image_store;
mod log_store;
mod network;
pub mod policy;
mod proposer;
mod raft_node;
mod raft_service;
mod server;
mod state_machine;
pub mod types;
pub mod verify;

#[cfg(test)]
mod tests;

pub use handle::{ControllerHandle, ProposeError, Proposer, QuorumMemberView, QuorumView};
pub use raft_node::{Controller, ControllerError, ControllerMetrics, ControllerProbe};

#[cfg(test)]
pub use handle::testing;
