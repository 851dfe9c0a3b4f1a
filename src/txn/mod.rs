//! Transactions (KIP-98): the transaction coordinator's side. Issue 17 builds it in steps;
//! so far this holds the records of its log, `__transaction_state`, in Kafka's schemas.
//! The partition side (markers, last stable offset, aborted-transactions index) lives in
//! `replication::log` (see `docs/transactions.md`).
//!
//! | module | holds |
//! |---|---|
//! | `records.rs` | `TransactionLogKey` / `TransactionLogValue` (v0, v1) and Kafka's transaction states |
//!
//! Pure so far; must not import `kafka`, `zk` or `broker`.

pub mod records;

/// Kafka's name of the transaction log topic.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
