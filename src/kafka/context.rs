//! Per-request context handed to handlers.

use crate::broker::fetch_memory::MemoryGrant;
use crate::broker::Broker;
use std::sync::{Arc, Mutex, PoisonError};

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
    /// Where a handler leaves memory its answer holds (a fetch's records), which the
    /// connection keeps until the answer is written. One per connection: its requests are
    /// handled one at a time.
    pub(crate) held: Held,
}

/// Memory an answer holds until it is written (see [`RequestContext::held`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Held(Arc<Mutex<Option<MemoryGrant>>>);

impl Held {
    /// Keeps `grant` with the answer of the request being handled.
    pub(crate) fn keep(&self, grant: MemoryGrant) {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        debug_assert!(slot.is_none(), "one answer at a time per connection");
        *slot = Some(grant);
    }

    /// What the handler left, for the connection to hold with the answer.
    pub(crate) fn take(&self) -> Option<MemoryGrant> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
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
            held: Held::default(),
        }
    }
}
