//! The partition data plane: replicas on this node, their logs, producer state, high
//! watermarks, and the manager that follows the metadata image. Never writes metadata except
//! the ISR changes of partitions it leads, proposed through the controller handle (broker
//! liveness and leader elections are controller policies: `controller::policy`). Must not
//! import `kafka`, `zk`, `broker`.

pub mod compaction;
mod epoch_cache;
mod fetcher;
pub mod isr;
mod manager;
mod partition;
mod producer_state;
pub mod retention;
pub mod segments;
mod service;

pub use epoch_cache::EpochCache;
pub use manager::ReplicaManager;
pub(crate) use partition::report_undecodable;
pub use partition::DeleteRecordsError;
pub use partition::{
    AppendError, AppendInfo, AppendOptions, FollowerAppend, FollowerError, Partition,
    ReplicatedError,
};
pub use producer_state::{ProducerEntry, ProducerStateTable, SeqCheck};
pub use service::ReplicaServiceImpl;
