//! One partition's log on this node, and everything that maintains it.
//!
//! | File | Owns |
//! | --- | --- |
//! | `partition.rs` (+ `partition/`) | `Partition`: leader appends (`leader.rs`), follower appends and truncation (`follower.rs`), the one replicated write (`replicated.rs`), HW checkpoints, damage tracking, and `maintenance.rs` (segment index, retention deletes, DeleteRecords, compaction passes, space reclaim) |
//! | `segments.rs` | the segment index (pure) |
//! | `retention.rs` | retention policy and the pass driver |
//! | `compaction.rs` | Kafka log compaction (`cleanup.policy=compact`): which segments, which records |
//! | `producer_state.rs` | idempotent-producer sequence state, open transactions per producer |
//! | `txn_index.rs` | transactions for readers: the last stable offset, the stored index of ended (aborted) transactions |
//! | `epoch_cache.rs` | leader epoch → start offset |
//!
//! Words: *compaction* is Kafka's (keep the newest record per key); *reclaim* is RocksDB's
//! manual compaction of a deleted key range, run so the space leaves the disk.
//! Imports `storage`, `codec`, `metadata`, `config`, `types`; never `kafka`, `zk`, `broker`.

pub mod compaction;
mod epoch_cache;
mod partition;
mod producer_state;
pub mod retention;
pub mod segments;
mod txn_index;

pub use epoch_cache::EpochCache;
pub use partition::leader::FetchPosition;

pub use partition::txn::{AbortedTxn, ProducerView};
pub use partition::DeleteRecordsError;
pub use partition::{
    verify_stored_batch, AppendError, AppendInfo, AppendOptions, Damage, DamageKind,
    FollowerAppend, FollowerError, Partition, ReplicatedError, INLINE_READ_BYTES_MAX,
};
pub use producer_state::{ProducerEntry, ProducerStateTable, SeqCheck};
