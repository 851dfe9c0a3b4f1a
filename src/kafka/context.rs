//! Per-request context handed to handlers.

use crate::broker::Broker;

/// What a handler knows about the request besides its body.
#[derive(Debug, Clone)]
pub(crate) struct RequestContext {
    pub(crate) broker: Broker,
    pub(crate) api_version: i16,
    /// The listener the client connected on: Metadata answers with that listener's endpoints.
    pub(crate) listener: String,
    /// The request header's client id (group member ids start with it).
    pub(crate) client_id: String,
    /// The peer address as Kafka reports it for group members (`/127.0.0.1`).
    pub(crate) client_host: String,
    /// Who the connection authenticated as (`User:ANONYMOUS` without SASL); the authorizer
    /// (`kafka::authz`) reads it.
    pub(crate) principal: std::sync::Arc<crate::security::Principal>,
}

#[cfg(test)]
impl RequestContext {
    /// A request from a test client (`PLAINTEXT` listener, client id `test`) at `api_version`.
    pub(crate) fn test(broker: &Broker, api_version: i16) -> Self {
        Self {
            broker: broker.clone(),
            api_version,
            listener: "PLAINTEXT".into(),
            client_id: "test".into(),
            client_host: "/127.0.0.1".into(),
            principal: std::sync::Arc::new(crate::security::Principal::anonymous()),
        }
    }
}
