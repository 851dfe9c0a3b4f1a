//! The controller mutation quota of one request (KIP-599): CreateTopics, CreatePartitions and
//! DeleteTopics count the partitions they create or delete against the caller's
//! `controller_mutation_rate`. Clients that know THROTTLING_QUOTA_EXCEEDED (CreateTopics v6+,
//! CreatePartitions v3+, DeleteTopics v5+) are strict: a topic asked for while the quota is
//! exhausted gets that error; older clients are permissive: the change is made and only
//! throttled. Either way the response carries the throttle and the connection is muted.

use super::context::RequestContext;
use crate::broker::{BrokerError, QuotaSubject};
use std::time::Duration;

pub(crate) struct MutationQuota<'a> {
    ctx: &'a RequestContext,
    subject: QuotaSubject,
    strict: bool,
    throttle: Duration,
}

impl<'a> MutationQuota<'a> {
    /// The quota of `ctx`'s caller; `strict` from the versions named above.
    pub(crate) fn new(ctx: &'a RequestContext, strict: bool) -> Self {
        Self {
            ctx,
            subject: QuotaSubject {
                user: ctx.principal.name.clone(),
                client_id: ctx.client_id.clone(),
            },
            strict,
            throttle: Duration::ZERO,
        }
    }

    /// Before one topic's change: THROTTLING_QUOTA_EXCEEDED while the quota is exhausted
    /// (strict clients only).
    pub(crate) fn check(&mut self) -> Result<(), BrokerError> {
        if !self.strict {
            return Ok(());
        }
        self.ctx
            .broker
            .mutation_allowed(&self.subject)
            .map_err(|t| {
                self.throttle = self.throttle.max(t);
                BrokerError::ThrottlingQuotaExceeded
            })
    }

    /// After one topic's change of `partitions` partitions.
    pub(crate) fn record(&mut self, partitions: usize) {
        let t = self.ctx.broker.record_mutations(&self.subject, partitions);
        self.throttle = self.throttle.max(t);
    }

    /// The throttle for the response's `throttle_time_ms`.
    pub(crate) fn throttle_ms(&self) -> i32 {
        i32::try_from(self.throttle.as_millis()).unwrap_or(i32::MAX)
    }
}
