//! The Kafka listener (9092): accept, framing, the route table (`dispatch.rs`: one row per API,
//! driving ApiVersions and dispatch), one handler per API (`handlers/`, each declaring its
//! versions), `Reply` (`reply.rs`) and the per-request size limits (`shape.rs`). Who the
//! connection is comes from TLS and SASL (`sasl.rs`); what it may do is decided per request by
//! `authz.rs` (Kafka's ACL authorizer over the metadata image's ACLs), and each handler checks
//! where Kafka's `KafkaApis` does.
//! Imports `codec::kafka`, `broker`, `config`, `types`, `security` (TLS, SASL, the ACL model)
//! and the `metadata` image types (read-only); never `storage`, `controller`, `replication` or
//! `rpc`.
//!
//! Owns the limits of the listener itself: `max.connections` and `max.connections.per.ip`
//! (`server.rs`, `connection_quotas.rs`), the connection deadlines and the node's request byte
//! budget `queued.max.request.bytes` (`frame_reader.rs`, `request_budget.rs`), and client quota
//! throttling on the wire (`throttling.rs`: `throttle_time_ms`, muting; the rates and quotas are
//! the broker's).

mod authz;
mod connection;
mod connection_quotas;
mod context;
mod dispatch;
mod error;
mod frame_reader;
mod handlers;
mod mutation_quota;
mod reply;
mod request_budget;
mod sasl;
mod server;
mod shape;
mod throttling;

pub use dispatch::{api_table, ApiEntry};
pub use server::KafkaServer;
