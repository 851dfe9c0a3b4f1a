//! Transactions (KIP-98): the transaction coordinator. Each transactional id belongs to one
//! partition of the internal compacted topic `__transaction_state` (Kafka's placement:
//! `abs(javaHash(id)) % partitions`); the partition's leader is the id's coordinator and its
//! leader epoch the coordinator epoch that markers carry. The partition side (markers, last
//! stable offset, aborted-transactions index) lives in `replication::log`; transactional
//! offsets in `group` (see `docs/transactions.md`).
//!
//! | module | holds |
//! |---|---|
//! | `records.rs` | `TransactionLogKey` / `TransactionLogValue` (v0, v1) and Kafka's transaction states |
//! | `state.rs` | one id's state and its transitions (Kafka's `TransactionMetadata` and the coordinator's checks), pure |
//! | `coordinator/` | the driver: loading and unloading partitions as leadership moves, durable writes, markers, timeouts; its `mod.rs` has the file table |
//!
//! Every transition is written to `__transaction_state` with `acks=all` before it is answered
//! or acted on; a node that loses a partition's leadership forgets its ids (the new leader
//! reloads them and finishes what was prepared). Markers and new producer ids go through
//! [`TxnHost`], which the broker implements (local partitions directly, others over the
//! node-to-node gRPC service), so this module must not import `kafka`, `zk` or `broker`.

pub mod coordinator;
pub mod records;
pub mod state;

pub use coordinator::{MarkerOutcome, MarkerWrite, TxnCoordinator, TxnDescription, TxnHost};
pub use state::Tp;

/// Kafka's name of the transaction log topic.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Why a coordinator operation failed. Mapped to Kafka codes in `kafka/error.rs`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("This is not the correct coordinator.")]
    NotCoordinator,
    #[error("The coordinator is loading and hence can't process requests.")]
    CoordinatorLoadInProgress,
    #[error("The coordinator is not available.")]
    CoordinatorNotAvailable,
    #[error("The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing.")]
    ConcurrentTransactions,
    #[error("The producer attempted to use a producer id which is not currently assigned to its transactional id.")]
    InvalidProducerIdMapping,
    #[error(
        "There is a newer producer with the same transactionalId which fences the current one."
    )]
    ProducerFenced,
    #[error("The producer attempted a transactional operation in an invalid state.")]
    InvalidTxnState,
    #[error("The transaction timeout is larger than the maximum value allowed by the broker (as configured by transaction.max.timeout.ms).")]
    InvalidTransactionTimeout,
    #[error("The transactionalId could not be found.")]
    TransactionalIdNotFound,
    #[error("{0}")]
    InvalidRequest(String),
}
