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

/// What a client's request version lets KIP-890's check do (Kafka's
/// `TransactionSupportedOperation`, from `AddPartitionsToTxnManager`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnSupport {
    /// The client predates TRANSACTION_ABORTABLE: a partition not in the transaction is
    /// answered INVALID_TXN_STATE (Produce v0–v10, TxnOffsetCommit v0–v3).
    DefaultError,
    /// TRANSACTION_ABORTABLE is answered as it is (Produce v11, TxnOffsetCommit v4).
    GenericError,
    /// Transaction version 2 (Produce v12+, TxnOffsetCommit v5+): the partition is added to
    /// the open transaction instead of only verified.
    AddPartition,
}

impl TxnSupport {
    /// For a Produce request of version `v`.
    #[must_use]
    pub fn for_produce(v: i16) -> Self {
        match v {
            12.. => Self::AddPartition,
            11 => Self::GenericError,
            _ => Self::DefaultError,
        }
    }

    /// For a TxnOffsetCommit request of version `v`.
    #[must_use]
    pub fn for_txn_offset_commit(v: i16) -> Self {
        match v {
            5.. => Self::AddPartition,
            4 => Self::GenericError,
            _ => Self::DefaultError,
        }
    }

    /// Whether the check adds the partition (transaction version 2).
    #[must_use]
    pub fn adds(self) -> bool {
        self == Self::AddPartition
    }

    /// The error as this client should see it: TRANSACTION_ABORTABLE becomes
    /// INVALID_TXN_STATE for a client that predates it.
    #[must_use]
    pub fn downgrade(self, e: TxnError) -> TxnError {
        match e {
            TxnError::TransactionAbortable if self == Self::DefaultError => {
                TxnError::InvalidTxnState
            }
            other => other,
        }
    }
}

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
    /// A partition checked by KIP-890's verification is not in the producer's open
    /// transaction (Kafka 3.8+ answers this rather than INVALID_TXN_STATE; clients that
    /// predate it get INVALID_TXN_STATE instead, see [`TxnSupport`]).
    #[error("The server encountered an error with the transaction. The client can abort the transaction to continue using this transactional ID.")]
    TransactionAbortable,
    #[error("The transaction timeout is larger than the maximum value allowed by the broker (as configured by transaction.max.timeout.ms).")]
    InvalidTransactionTimeout,
    #[error("The transactionalId could not be found.")]
    TransactionalIdNotFound,
    #[error("{0}")]
    InvalidRequest(String),
}

#[cfg(test)]
mod tests {
    use super::{TxnError, TxnSupport};

    /// Kafka's `AddPartitionsToTxnManager` tables: Produce v11 / TxnOffsetCommit v4 know
    /// TRANSACTION_ABORTABLE, v12 / v5 add the partition; older versions get INVALID_TXN_STATE.
    #[test]
    fn request_versions_map_to_kafkas_supported_operations() {
        let produce: Vec<_> = (0..=13).map(TxnSupport::for_produce).collect();
        assert!(produce[..11].iter().all(|s| *s == TxnSupport::DefaultError));
        assert_eq!(produce[11], TxnSupport::GenericError);
        assert!(produce[12..].iter().all(|s| s.adds()));
        let commit: Vec<_> = (0..=5).map(TxnSupport::for_txn_offset_commit).collect();
        assert!(commit[..4].iter().all(|s| *s == TxnSupport::DefaultError));
        assert_eq!(commit[4], TxnSupport::GenericError);
        assert!(commit[5].adds());
        let a = TxnError::TransactionAbortable;
        assert_eq!(
            TxnSupport::DefaultError.downgrade(a.clone()),
            TxnError::InvalidTxnState
        );
        assert_eq!(TxnSupport::GenericError.downgrade(a.clone()), a);
        assert_eq!(TxnSupport::AddPartition.downgrade(a.clone()), a);
        assert_eq!(
            TxnSupport::DefaultError.downgrade(TxnError::ProducerFenced),
            TxnError::ProducerFenced
        );
    }
}
