//! The partition data plane: replicas on this node, their logs, producer state, high
//! watermarks, and the manager that follows the metadata image. Never writes metadata except
//! the ISR changes of partitions it leads, proposed through the controller handle (broker
//! liveness and leader elections are controller policies: `controller::policy`). Must not
//! import `kafka`, `zk`, `broker`.
//!
//! | Part | Owns |
//! | --- | --- |
//! | `log/` | one partition's log on this node: `Partition` (appends, reads, truncation, the one
//! replicated write, damage), segments, retention, compaction, producer state, the epoch cache |
//! | `manager.rs` | the replicas of this node, following the metadata image |
//! | `fetcher.rs`, `service.rs` | follower fetches and the leader side of the RPC |
//! | `isr.rs` | ISR shrink/expand proposals for partitions this node leads |
//! | `maintenance.rs` | the retention and compaction passes over every replica |
//! | `throttle.rs` | replication throttles of out-of-sync replicas (KIP-73), from the image |
//! | `scrub.rs` | background re-reading of everything stored |
//!
//! Stored batches are checked on every read (`log/partition/damage.rs`); a damaged range answers a
//! storage error, is repaired by a follower from its leader and makes a leader step down to an
//! in-sync replica; the scrubber (`scrub.rs`) finds damage nobody has read yet.

mod fetcher;
pub mod isr;
pub mod log;
mod maintenance;
mod manager;
pub mod scrub;
mod service;
pub mod throttle;

pub use log::{compaction, retention, segments};

pub use log::DeleteRecordsError;
pub use log::EpochCache;
pub use log::{
    verify_stored_batch, AppendError, AppendInfo, AppendOptions, Damage, DamageKind,
    FollowerAppend, FollowerError, Partition, ReplicatedError, INLINE_READ_BYTES_MAX,
};
pub use log::{AbortedTxn, ProducerView};
pub use log::{ProducerEntry, ProducerStateTable, SeqCheck};
pub use maintenance::run_retention;
pub use manager::ReplicaManager;
pub use service::ReplicaServiceImpl;
