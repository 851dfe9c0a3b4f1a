//! One lazily connected gRPC [`Channel`] per peer address, shared by every caller.

use super::{CONNECT_TIMEOUT, PEER_CONCURRENCY_MAX};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// Why a channel to a peer could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error("invalid peer address {addr:?}: {reason}")]
    InvalidAddress { addr: String, reason: String },
}

/// Channels keyed by `host:port`. Cheap to clone. A channel connects on first use and
/// reconnects by itself after a failure, so entries are never evicted; the map holds at most
/// one entry per address a peer was ever reached at (bounded by the cluster's membership).
#[derive(Debug, Clone, Default)]
pub struct PeerPool {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// Mutual TLS to every peer (`raft.ssl.*`), or plaintext.
    tls: Option<Arc<ClientTlsConfig>>,
}

impl PeerPool {
    /// A plaintext pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// A pool that speaks TLS to every peer when `tls` is given.
    pub fn with_tls(tls: Option<ClientTlsConfig>) -> Self {
        Self {
            channels: Arc::default(),
            tls: tls.map(Arc::new),
        }
    }

    /// The channel to `addr` (`host:port`), created lazily: no I/O happens here.
    ///
    /// # Errors
    /// `addr` is not a valid `host:port`.
    pub fn channel(&self, addr: &str) -> Result<Channel, PeerError> {
        // A poisoned lock only means another thread panicked while inserting; the map itself
        // is still a valid cache.
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ch) = channels.get(addr) {
            return Ok(ch.clone());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let bad = |e: tonic::transport::Error| PeerError::InvalidAddress {
            addr: addr.to_owned(),
            reason: e.to_string(),
        };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}")).map_err(bad)?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config((**tls).clone()).map_err(bad)?;
        }
        let endpoint = endpoint
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(true)
            .concurrency_limit(PEER_CONCURRENCY_MAX);
        let ch = endpoint.connect_lazy();
        channels.insert(addr.to_owned(), ch.clone());
        Ok(ch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn channels_are_cached_and_bad_addresses_rejected() {
        let pool = PeerPool::new();
        assert!(pool.channel("127.0.0.1:1").is_ok());
        assert!(pool.channel("127.0.0.1:1").is_ok());
        assert_eq!(pool.channels.lock().expect("not poisoned").len(), 1);
        assert!(matches!(
            pool.channel("bad host:x"),
            Err(PeerError::InvalidAddress { .. })
        ));
    }
}
