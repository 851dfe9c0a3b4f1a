//! Mutual TLS on the node-to-node port (`raft.ssl.*`, see `config::security::raft_tls`): the
//! server requires a client certificate of a trusted CA, and every client presents the node's
//! certificate and checks the peer's against the same CAs and the address it dialled (the
//! certificate must name that host or IP). A node without a trusted certificate can therefore
//! neither vote, replicate, fetch, forward nor join.

use crate::config::Config;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// Deadline of a node-to-node TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Both sides' TLS configs, built from the node's stores.
#[derive(Debug, Clone)]
pub struct RaftTls {
    pub client: ClientTlsConfig,
    pub server: ServerTlsConfig,
}

impl RaftTls {
    /// `None` when node-to-node TLS is off.
    ///
    /// # Errors
    /// The key or trust store cannot be read (the message never contains a password).
    pub fn from_config(config: &Config) -> Result<Option<Self>, String> {
        let Some(s) = &config.raft_tls else {
            return Ok(None);
        };
        let (chain, key, ca) = crate::security::tls::pem_material(s)
            .map_err(|e| format!("node-to-node TLS (raft.ssl.*): {e}"))?;
        let identity = Identity::from_pem(chain, key);
        let ca = Certificate::from_pem(ca);
        Ok(Some(Self {
            client: ClientTlsConfig::new()
                .ca_certificate(ca.clone())
                .identity(identity.clone())
                .timeout(HANDSHAKE_TIMEOUT),
            server: ServerTlsConfig::new()
                .identity(identity)
                .client_ca_root(ca)
                .client_auth_optional(false)
                .timeout(HANDSHAKE_TIMEOUT),
        }))
    }

    /// The client side only, for the peer pools (`None` when off or unloadable: the node's
    /// server start, which loads the same stores, fails first and says why).
    pub fn client_for(config: &Config) -> Option<ClientTlsConfig> {
        Self::from_config(config).ok().flatten().map(|t| t.client)
    }
}
