//! ListPartitionReassignments (key 46), v0: what `kafka-reassign-partitions.sh --verify /
//! --list` and `Admin.listPartitionReassignments` send. The ongoing reassignments of every
//! partition (`topics` null) or of the listed ones: the current replicas (target first), the
//! replicas being added and those being removed. Partitions with no reassignment, and unknown
//! ones, are left out (Kafka's controller does the same).
//!
//! Authorization (Kafka's): DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED.

use super::{sb, topic_name};
use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::Operation;
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

/// The versions of ListPartitionReassignments this handler serves.
pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

impl RequestShape for ListPartitionReassignmentsRequest {
    fn shape(&self) -> Shape {
        let topics = self.topics.as_deref().unwrap_or_default();
        Shape {
            entries: topics.len(),
            partitions: topics
                .iter()
                .map(|t| t.partition_indexes.len())
                .fold(0, usize::saturating_add),
        }
    }
}

pub(crate) async fn handle(ctx: RequestContext, req: ListPartitionReassignmentsRequest) -> Reply {
    Reply::now(respond(&ctx, &req))
}

fn brokers(v: &[i32]) -> Vec<BrokerId> {
    v.iter().map(|b| BrokerId(*b)).collect()
}

pub(crate) fn respond(
    ctx: &RequestContext,
    req: &ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let mut r = ListPartitionReassignmentsResponse::default();
    if !Authz::new(ctx).cluster(Operation::Describe) {
        let e = BrokerError::ClusterAuthorizationFailed;
        r.error_code = code(&e);
        r.error_message = Some(sb(&e.to_string()));
        return r;
    }
    let filter: Option<Vec<(String, Vec<i32>)>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    for o in ctx.broker.partition_reassignments(filter.as_deref()) {
        let mut p = OngoingPartitionReassignment::default();
        p.partition_index = o.partition;
        p.replicas = brokers(&o.replicas);
        p.adding_replicas = brokers(&o.adding);
        p.removing_replicas = brokers(&o.removing);
        match r.topics.last_mut() {
            Some(t) if t.name.0.as_str() == o.topic => t.partitions.push(p),
            _ => {
                let mut t = OngoingTopicReassignment::default();
                t.name = topic_name(&o.topic);
                t.partitions.push(p);
                r.topics.push(t);
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx, ctx_as};
    use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
    use kafka_protocol::ResponseError as E;

    #[tokio::test]
    async fn nothing_in_progress_and_authorization() {
        let f = Fixture::authorized(&["User:admin"]).await;
        f.topic("t", 1, &[]).await;
        let mut req = ListPartitionReassignmentsRequest::default();
        let r = respond(&ctx_as(&f, 0, "admin"), &req);
        assert_encodes(&r, 0);
        assert_eq!(r.error_code, 0);
        assert!(r.topics.is_empty());
        let mut t = ListPartitionReassignmentsTopics::default();
        t.name = topic_name("t");
        t.partition_indexes = vec![0, 7];
        req.topics = Some(vec![t]);
        assert!(respond(&ctx_as(&f, 0, "admin"), &req).topics.is_empty());
        let r = respond(&ctx_as(&f, 0, "mallory"), &req);
        assert_eq!(r.error_code, E::ClusterAuthorizationFailed.code());
        let _ = ctx;
    }
}
