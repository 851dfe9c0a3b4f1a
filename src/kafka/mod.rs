//! The Kafka listener (9092): accept, framing, the API table, one handler per API.
//! Imports `codec::kafka`, `broker`, `config`, `types`; never `storage`, `controller`,
//! `replication` or `rpc`.

mod connection;
mod context;
mod dispatch;
mod error;
mod handlers;
mod server;

pub use dispatch::{api_table, ApiEntry};
pub use server::KafkaServer;
