//! Wire formats, sans-io: Kafka framing and record batches, ZooKeeper jute. Imports `types` only.

pub mod jute;
pub mod kafka;
