//! openraft's network over tonic: one lazily connected channel per peer (from the shared
//! [`PeerPool`]), a deadline on every RPC, and transport failures mapped to what openraft
//! expects (`Unreachable` backs off, `NetworkError` retries, `Timeout`).

// openraft's `RPCError` is the error type its `RaftNetwork` trait prescribes; it is large, but
// boxing it is not ours to choose.
#![allow(clippy::result_large_err)]

use super::codec::WIRE_FORMAT;
use super::types::{BasicNode, RaftNodeId, TypeConfig};
use crate::rpc::pb::raft::raft_service_client::RaftServiceClient;
use crate::rpc::pb::raft::{RaftReply, RaftRequest, SnapshotChunk};
use crate::rpc::{PeerError, PeerPool, MESSAGE_BYTES_MAX};
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{RPCTypes, RaftNetwork, RaftNetworkFactory};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// Longest deadline of a vote or append RPC (openraft usually asks for less: the heartbeat
/// interval for appends, the minimum election timeout for votes).
const RPC_TIMEOUT_MAX: Duration = Duration::from_secs(2);
/// Longest deadline of one snapshot chunk.
const SNAPSHOT_CHUNK_TIMEOUT_MAX: Duration = Duration::from_secs(30);
/// Room for the protobuf envelope around a payload.
const ENVELOPE_BYTES: usize = 1024;

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<RaftNodeId, BasicNode, RaftError<RaftNodeId, E>>>;

/// Creates one [`PeerNetwork`] per replication target.
#[derive(Debug, Clone)]
pub(crate) struct NetworkFactory {
    self_id: RaftNodeId,
    peers: PeerPool,
}

impl NetworkFactory {
    pub(crate) fn new(self_id: RaftNodeId, peers: PeerPool) -> Self {
        Self { self_id, peers }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: RaftNodeId, node: &BasicNode) -> PeerNetwork {
        // Building the channel does no I/O; a bad address surfaces as `Unreachable` per RPC.
        let client = self.peers.channel(&node.addr).map(|ch| {
            RaftServiceClient::new(ch)
                .max_decoding_message_size(MESSAGE_BYTES_MAX)
                .max_encoding_message_size(MESSAGE_BYTES_MAX)
        });
        PeerNetwork {
            self_id: self.self_id,
            target,
            node: node.clone(),
            client,
        }
    }
}

/// The Raft RPC client for one peer.
#[derive(Debug)]
pub(crate) struct PeerNetwork {
    self_id: RaftNodeId,
    target: RaftNodeId,
    node: BasicNode,
    client: Result<RaftServiceClient<Channel>, PeerError>,
}

impl PeerNetwork {
    fn client<E: std::error::Error>(&self) -> RpcResult<RaftServiceClient<Channel>, E> {
        self.client
            .clone()
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))
    }

    fn transport_error<E: std::error::Error>(
        &self,
        action: RPCTypes,
        ttl: Duration,
        status: Status,
    ) -> RPCError<RaftNodeId, BasicNode, RaftError<RaftNodeId, E>> {
        tracing::debug!(code = ?status.code(), message = status.message(), "raft rpc failed");
        match status.code() {
            // Connection refused or reset: back off before trying again.
            Code::Unavailable => RPCError::Unreachable(Unreachable::new(&status)),
            Code::DeadlineExceeded => self.timeout(action, ttl),
            _ => RPCError::Network(NetworkError::new(&status)),
        }
    }

    fn timeout<E: std::error::Error>(
        &self,
        action: RPCTypes,
        ttl: Duration,
    ) -> RPCError<RaftNodeId, BasicNode, RaftError<RaftNodeId, E>> {
        RPCError::Timeout(Timeout {
            action,
            id: self.self_id,
            target: self.target,
            timeout: ttl,
        })
    }

    fn decode_reply<T, E>(&self, reply: RaftReply) -> RpcResult<T, E>
    where
        T: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        if reply.format != WIRE_FORMAT {
            let e = std::io::Error::other(format!("unknown reply format {}", reply.format));
            return Err(RPCError::Network(NetworkError::new(&e)));
        }
        let res: Result<T, RaftError<RaftNodeId, E>> = serde_json::from_slice(&reply.payload)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        res.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))
        })
    }

    /// Sends one request with deadline `ttl`: the gRPC deadline header lets the server give
    /// up too, the local timeout bounds the wait whatever the server does.
    async fn call<T, E, F, Fut>(&self, action: RPCTypes, ttl: Duration, send: F) -> RpcResult<T, E>
    where
        T: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
        F: FnOnce(RaftServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<RaftReply>, Status>>,
    {
        let client = self.client()?;
        match tokio::time::timeout(ttl, send(client)).await {
            Err(_) => Err(self.timeout(action, ttl)),
            Ok(Err(status)) => Err(self.transport_error(action, ttl, status)),
            Ok(Ok(reply)) => self.decode_reply(reply.into_inner()),
        }
    }
}

fn encode<T: Serialize, E: std::error::Error>(value: &T) -> RpcResult<Vec<u8>, E> {
    serde_json::to_vec(value).map_err(|e| RPCError::Network(NetworkError::new(&e)))
}

fn with_deadline<T>(message: T, ttl: Duration) -> Request<T> {
    let mut req = Request::new(message);
    req.set_timeout(ttl);
    req
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    #[tracing::instrument(level = "debug", name = "raft_rpc", skip_all, fields(peer = self.target, rpc = "append_entries"))]
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<RaftNodeId>> {
        let entries = rpc.entries.len();
        let payload = encode(&rpc)?;
        if payload.len() + ENVELOPE_BYTES > MESSAGE_BYTES_MAX {
            if entries > 1 {
                // Let openraft split the batch.
                let hint = u64::try_from(entries / 2).unwrap_or(1);
                return Err(RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint(hint),
                ));
            }
            let e = std::io::Error::other(format!(
                "one log entry of {} bytes exceeds the message limit",
                payload.len()
            ));
            return Err(RPCError::Network(NetworkError::new(&e)));
        }
        let ttl = option.hard_ttl().min(RPC_TIMEOUT_MAX);
        let msg = RaftRequest {
            format: WIRE_FORMAT,
            payload,
        };
        self.call(RPCTypes::AppendEntries, ttl, |mut c| async move {
            c.append_entries(with_deadline(msg, ttl)).await
        })
        .await
    }

    #[tracing::instrument(level = "debug", name = "raft_rpc", skip_all, fields(peer = self.target, rpc = "vote"))]
    async fn vote(
        &mut self,
        rpc: VoteRequest<RaftNodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<RaftNodeId>> {
        let ttl = option.hard_ttl().min(RPC_TIMEOUT_MAX);
        let msg = RaftRequest {
            format: WIRE_FORMAT,
            payload: encode(&rpc)?,
        };
        self.call(RPCTypes::Vote, ttl, |mut c| async move {
            c.vote(with_deadline(msg, ttl)).await
        })
        .await
    }

    #[tracing::instrument(level = "debug", name = "raft_rpc", skip_all, fields(peer = self.target, rpc = "install_snapshot"))]
    async fn install_snapshot(
        &mut self,
        mut rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<RaftNodeId>, InstallSnapshotError> {
        let ttl = option.hard_ttl().min(SNAPSHOT_CHUNK_TIMEOUT_MAX);
        let data = std::mem::take(&mut rpc.data);
        let msg = SnapshotChunk {
            format: WIRE_FORMAT,
            header: encode(&rpc)?,
            data,
        };
        self.call(RPCTypes::InstallSnapshot, ttl, |mut c| async move {
            c.install_snapshot(with_deadline(msg, ttl)).await
        })
        .await
    }
}
