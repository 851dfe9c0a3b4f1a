//! The node-to-node gRPC server on `raft.listen`: serves `RaftService` and
//! `ControllerService` (plus the services of upper layers passed in as `Routes`, e.g.
//! `ReplicaService`) with explicit message limits until its cancellation token fires.

use super::controller_service::ControllerServiceImpl;
use super::raft_service::RaftServiceImpl;
use crate::rpc::pb::controller::controller_service_server::ControllerServiceServer;
use crate::rpc::pb::raft::raft_service_server::RaftServiceServer;
use crate::rpc::MESSAGE_BYTES_MAX;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tracing::Instrument;

/// Backstop deadline for any request (callers set tighter ones).
const REQUEST_TIMEOUT_MAX: Duration = Duration::from_secs(60);
/// Concurrent requests per peer connection.
const REQUESTS_PER_CONNECTION_MAX: usize = 256;

/// Serves both services on `listener` until `token` is cancelled; in-flight requests finish
/// first (each is bounded by its deadline).
pub(crate) fn spawn(
    listener: TcpListener,
    raft: RaftServiceImpl,
    controller: ControllerServiceImpl,
    extra: tonic::service::Routes,
    tls: Option<tonic::transport::ServerTlsConfig>,
    token: CancellationToken,
) -> JoinHandle<()> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let raft = RaftServiceServer::new(raft)
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX);
    let controller = ControllerServiceServer::new(controller)
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let span = tracing::info_span!("raft_server", %addr);
    tokio::spawn(
        async move {
            tracing::info!(tls = tls.is_some(), "raft gRPC server listening");
            let mut builder = Server::builder();
            if let Some(tls) = tls {
                builder = match builder.tls_config(tls) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "raft gRPC server: TLS config refused");
                        return;
                    }
                };
            }
            let res = builder
                .timeout(REQUEST_TIMEOUT_MAX)
                .concurrency_limit_per_connection(REQUESTS_PER_CONNECTION_MAX)
                .http2_keepalive_interval(Some(Duration::from_secs(10)))
                .http2_keepalive_timeout(Some(Duration::from_secs(5)))
                .add_routes(extra)
                .add_service(raft)
                .add_service(controller)
                .serve_with_incoming_shutdown(incoming, token.cancelled_owned())
                .await;
            match res {
                Ok(()) => tracing::info!("raft gRPC server stopped"),
                Err(e) => tracing::error!(error = %e, "raft gRPC server failed"),
            }
        }
        .instrument(span),
    )
}
