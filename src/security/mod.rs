//! Authentication and authorization logic without I/O: Kafka's ACL model and decision
//! ([`acl`]: the metadata image stores an `AclStore`, `kafka::authz` enforces it), who a client is
//! ([`Principal`]), the SASL mechanisms' server sides ([`plain`], [`scram`]) and the SCRAM
//! credential that the metadata Raft stores (never a password).
//!
//! TLS ([`tls`]): server configs from Kafka's `ssl.*` settings, reloaded when the store files
//! change, and the mTLS principal from the client certificate.
//!
//! A leaf layer beside `codec`: imports only `types` and `config`; `metadata` stores its credentials,
//! `kafka` runs its exchanges on a connection, `broker` manages the credentials. Nothing here
//! logs or formats a secret: `Debug` of a credential shows its iteration count only.

pub mod acl;
pub mod plain;
pub mod principal;
pub mod scram;
pub mod tls;

pub use principal::Principal;
