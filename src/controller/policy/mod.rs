//! Controller policies: the decisions a KRaft controller makes about brokers and leadership,
//! proposed as metadata commands from the controller leader's node. They live beside the
//! controller because they write metadata; `replication` only proposes ISR changes for the
//! partitions it leads.
//!
//! | File | Owns |
//! | --- | --- |
//! | `liveness.rs` | broker heartbeats (sent by every node, tracked by the leader) and `FenceBroker` |
//! | `elections.rs` | preferred-leader and unclean leader elections (`ChangePartition`) |
//!
//! Imports `metadata`, `rpc`, `types`, `config` and the controller's handle.

pub mod elections;
pub mod liveness;
