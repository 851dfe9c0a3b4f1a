//! Kafka wire format pieces that the `kafka-protocol` crate does not cover: request framing
//! checks, record batch v2 headers (validation, offset rewrite), and the KIP-511 fallback body.

pub mod batch;
pub mod frame;
