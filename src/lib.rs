//! raftka: a Kafka-compatible broker. See `../ARCHITECTURE` notes in `docs/design.md`.
//!
//! Layers (a module may import only from layers below it):
//! `node` → `kafka`, `zk` → `broker` → `replication`, `group`, `txn` → `controller` → `metadata`
//! → `storage`, `rpc` → `codec`, `security` → `types`, `config`. `admin` (the `raftka quorum` client) sits
//! beside `node` and uses only `cli` and `rpc`; `check` (`raftka check`, an offline verifier
//! of a data directory) sits beside them too and reads through `storage`, `replication` and
//! `controller`; `users` (`raftka users`, SCRAM credentials over the Kafka protocol) uses only
//! `cli` and `security`.

pub mod admin;
pub mod broker;
pub mod check;
pub mod cli;
pub mod client;
pub mod codec;
pub mod config;
pub mod consumer_groups;
pub mod controller;
pub mod group;
pub mod http;
pub mod kafka;
pub mod metadata;
pub mod metrics;
pub mod node;
pub mod replication;
pub mod rpc;
pub mod security;
pub mod storage;
pub mod telemetry;
pub mod txn;
pub mod types;
pub mod users;
pub mod zk;
