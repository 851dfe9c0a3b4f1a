//! Node-to-node transport plumbing: the generated protobuf/gRPC code ([`pb`]), the peer channel
//! pool ([`PeerPool`]) and the message-size limits every server and client sets explicitly.
//! Service implementations live with their owners (`controller`, `replication`, `group`).
//! Node-to-node mutual TLS (`raft.ssl.*`) is set up here too ([`RaftTls`]).
//! Imports only `types`, `config`, `security` and `metadata`; never `controller` or anything
//! above it.

mod peer_pool;
mod tls;

pub use peer_pool::{PeerError, PeerPool};
pub use tls::RaftTls;

use std::time::Duration;

/// Generated code, one module per `proto/*.proto` package.
pub mod pb {
    /// `proto/raft.proto`: the openraft transport.
    pub mod raft {
        #![allow(unreachable_pub, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("raftka.raft");
    }
    /// `proto/controller.proto`: proposal and read-barrier forwarding to the leader.
    pub mod controller {
        #![allow(unreachable_pub, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("raftka.controller");
    }
    /// `proto/group.proto`: committed offsets read from other nodes' group coordinators.
    pub mod group {
        #![allow(unreachable_pub, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("raftka.group");
    }
    /// `proto/replica.proto`: follower fetches from partition leaders.
    pub mod replica {
        #![allow(unreachable_pub, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("raftka.replica");
    }
    /// `proto/txn.proto`: transaction markers sent to partition leaders on other nodes.
    pub mod txn {
        #![allow(unreachable_pub, missing_debug_implementations, clippy::all)]
        tonic::include_proto!("raftka.txn");
    }
}

/// Largest gRPC message a node-to-node service decodes or encodes (both directions). Raft
/// append batches and snapshot chunks are sized to stay well below it.
pub const MESSAGE_BYTES_MAX: usize = 64 << 20;

/// How long establishing a TCP/HTTP2 connection to a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Requests in flight on one peer channel; more wait in the channel's buffer.
pub const PEER_CONCURRENCY_MAX: usize = 256;

/// gRPC metadata keys carrying the leader hint on a FAILED_PRECONDITION (not the leader).
pub const LEADER_ID_KEY: &str = "raftka-leader-id";
pub const LEADER_ADDR_KEY: &str = "raftka-leader-addr";
