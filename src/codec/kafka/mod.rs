//! Kafka wire format pieces that the `kafka-protocol` crate does not cover: request framing
//! checks, record batch v2 headers (validation, offset rewrite), transaction markers (control
//! batches), the records inside a batch (bounded streaming decode and decompression, produce
//! validation), the old message formats (magic 0 and 1: up-conversion on produce,
//! down-conversion on fetch), the KIP-511 fallback body, and the primitives of Kafka's
//! internal record schemas (`schema`: the bounded reader the `__consumer_offsets` and
//! `__transaction_state` records share).

pub mod batch;
pub mod control;
pub mod frame;
pub mod legacy;
pub mod records;
pub mod schema;
