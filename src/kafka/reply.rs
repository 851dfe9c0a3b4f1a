//! What a handler returns, and the version range each handler declares. Its own module so
//! that handlers and the route table (`dispatch.rs`) both depend on it and not on each other.

use kafka_protocol::messages::ResponseKind;
use tokio::task::JoinHandle;

/// What a handler produced.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // moved once per request; boxing would add an allocation
pub(crate) enum Reply {
    Now(ResponseKind),
    /// The response completes later (e.g. `acks=all`), while the connection reads on.
    Later(JoinHandle<Option<ResponseKind>>),
    /// No response is sent (produce with `acks=0`).
    None,
}

impl Reply {
    /// An immediate answer.
    pub(crate) fn now(r: impl Into<ResponseKind>) -> Self {
        Reply::Now(r.into())
    }
}

/// The inclusive range of versions a handler serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Versions {
    pub(crate) min: i16,
    pub(crate) max: i16,
}

impl Versions {
    pub(crate) const fn new(min: i16, max: i16) -> Self {
        assert!(0 <= min && min <= max, "a version range must be non-empty");
        Self { min, max }
    }
}
