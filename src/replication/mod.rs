//! The partition data plane: replicas on this node, their logs, producer state, high
//! watermarks, and the manager that follows the metadata image. Never writes metadata except
//! the ISR changes of partitions it leads, proposed through the controller handle (broker
//! liveness and leader elections are controller policies: `controller::policy`). Must not
//! import `kafka`, `zk`, `broker`.
//!
//! Stored batches are checked on every read (`partition/damage.rs`); a damaged range answers a
//! storage error, is repaired by a follower from its leader and makes a leader step down to an
//! in-sync replica; the scrubber (`scrub.rs`) finds damage nobody has read yet.

pub mod compaction;
mod epoch_cache;
mod fetcher;
pub mod isr;
mod manager;
mod partition;
mod producer_state;
pub mod retention;
pub mod scrub;
pub mod segments;
mod service;

pub use epoch_cache::EpochCache;
pub use manager::ReplicaManager;
pub(crate) use partition::report_undecodable;
pub use partition::DeleteRecordsError;
pub use partition::{
    verify_stored_batch, AppendError, AppendInfo, AppendOptions, Damage, DamageKind,
    FollowerAppend, FollowerError, Partition, ReplicatedError,
};
pub use producer_state::{ProducerEntry, ProducerStateTable, SeqCheck};
pub use service::ReplicaServiceImpl;
