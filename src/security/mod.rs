//! Authentication (and, later, authorization) logic without I/O: who a client is
//! ([`Principal`]), the SASL mechanisms' server sides ([`plain`], [`scram`]) and the SCRAM
//! credential that the metadata Raft stores (never a password).
//!
//! A leaf layer beside `codec`: imports only `types`; `metadata` stores its credentials,
//! `kafka` runs its exchanges on a connection, `broker` manages the credentials. Nothing here
//! logs or formats a secret: `Debug` of a credential shows its iteration count only.

pub mod plain;
pub mod principal;
pub mod scram;

pub use principal::Principal;
