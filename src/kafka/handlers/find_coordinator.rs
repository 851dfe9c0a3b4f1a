//! FindCoordinator (key 10), v0–v6: a group's coordinator is the leader of its
//! `__consumer_offsets` partition, a transactional id's (key type 1, v1+) the leader of its
//! `__transaction_state` partition (each topic created on first need); v4+ batches keys.
//!
//! Authorization (Kafka's): DESCRIBE on the group, else GROUP_AUTHORIZATION_FAILED; on the
//! transactional id, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED.

use super::sb;
use crate::broker::{BrokerError, CoordinatorView};
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

/// The versions of FindCoordinator this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 6);

/// Answers one FindCoordinator request.
pub(crate) async fn handle(ctx: RequestContext, req: FindCoordinatorRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let v = ctx.api_version;
    let key_type = if v >= 1 { req.key_type } else { 0 };
    let mut r = FindCoordinatorResponse::default();
    let authz = Authz::new(ctx);
    let find = |key: &str| {
        let denied = match key_type {
            0 if !authz.group(Operation::Describe, key) => {
                Some(BrokerError::GroupAuthorizationFailed)
            }
            1 if !authz.transactional_id(Operation::Describe, key) => {
                Some(BrokerError::TransactionalIdAuthorizationFailed)
            }
            _ => None,
        };
        let key = key.to_owned();
        async move {
            match denied {
                Some(e) => Err(e),
                None => {
                    ctx.broker
                        .find_coordinator(key_type, &key, &ctx.listener)
                        .await
                }
            }
        }
    };
    if v >= 4 {
        for key in req.coordinator_keys {
            let res = find(&key).await;
            let mut c = Coordinator::default();
            c.key = key;
            match res {
                Ok(view) => set_view(&mut c.node_id, &mut c.host, &mut c.port, &view),
                Err(e) => {
                    c.error_code = code(&e);
                    c.error_message = Some(sb(&e.to_string()));
                    c.node_id = BrokerId(-1);
                    c.port = -1;
                }
            }
            r.coordinators.push(c);
        }
        return r;
    }
    match find(&req.key).await {
        Ok(view) => set_view(&mut r.node_id, &mut r.host, &mut r.port, &view),
        Err(e) => {
            r.error_code = code(&e);
            if v >= 1 {
                r.error_message = Some(sb(&e.to_string()));
            }
            r.node_id = BrokerId(-1);
            r.port = -1;
        }
    }
    r
}

fn set_view(
    node: &mut BrokerId,
    host: &mut kafka_protocol::protocol::StrBytes,
    port: &mut i32,
    view: &CoordinatorView,
) {
    *node = BrokerId(view.node_id.0);
    *host = sb(&view.host);
    *port = i32::from(view.port);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use kafka_protocol::ResponseError as E;

    fn single(key: &str, key_type: i8) -> FindCoordinatorRequest {
        let mut r = FindCoordinatorRequest::default();
        r.key = sb(key);
        r.key_type = key_type;
        r
    }

    fn batch(keys: &[&str], key_type: i8) -> FindCoordinatorRequest {
        let mut r = FindCoordinatorRequest::default();
        r.coordinator_keys = keys.iter().map(|k| sb(k)).collect();
        r.key_type = key_type;
        r
    }

    #[tokio::test]
    async fn the_first_request_creates_the_offsets_topic() {
        let f = Fixture::new().await;
        assert!(f
            .broker
            .metadata_view()
            .topic("__consumer_offsets")
            .is_none());
        let r = respond(&ctx(&f, 0), single("g", 0)).await;
        assert_encodes(&r, 0);
        assert_eq!(
            (r.error_code, r.node_id, r.host.as_str(), r.port),
            (0, BrokerId(1), "127.0.0.1", 9092)
        );
        let image = f.broker.metadata_view();
        let t = image.topic("__consumer_offsets").expect("created");
        assert_eq!(t.partitions.len(), 2, "offsets.topic.num.partitions");
        assert_eq!(
            t.partitions[0].replicas.len(),
            1,
            "offsets.topic.replication.factor"
        );
        assert_eq!(
            t.configs.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
        // Once loaded, the coordinator serves the group.
        let p = crate::group::partition_for("g", 2);
        assert!(f.broker.groups().is_loaded(p));
    }

    #[tokio::test]
    async fn single_key_versions() {
        let f = Fixture::new().await;
        for v in 0..=3 {
            let r = respond(&ctx(&f, v), single("g", 0)).await;
            assert_encodes(&r, v);
            assert_eq!(
                (r.error_code, r.node_id, r.port),
                (0, BrokerId(1), 9092),
                "v{v}"
            );
            assert!(r.coordinators.is_empty());
            // Transactional ids are coordinated too (key type from v1).
            let r = respond(&ctx(&f, v), single("txn", 1)).await;
            assert_encodes(&r, v);
            assert_eq!(
                (r.error_code, r.node_id, r.port),
                (0, BrokerId(1), 9092),
                "v{v}"
            );
        }
        let image = f.broker.metadata_view();
        let t = image.topic("__transaction_state").expect("created");
        assert_eq!(
            t.partitions.len(),
            2,
            "transaction.state.log.num.partitions"
        );
        assert_eq!(
            t.configs.get("min.insync.replicas").map(String::as_str),
            Some("1"),
            "transaction.state.log.min.isr capped by the replication factor"
        );
        let r = respond(&ctx(&f, 1), single("", 1)).await;
        assert_eq!(
            r.error_code,
            E::InvalidRequest.code(),
            "an empty transactional id"
        );
        let r = respond(&ctx(&f, 2), single("g", 7)).await;
        assert_eq!(r.error_code, E::InvalidRequest.code());
    }

    #[tokio::test]
    async fn batched_keys_from_v4() {
        let f = Fixture::new().await;
        for v in 4..=VERSIONS.max {
            let r = respond(&ctx(&f, v), batch(&["a", "b"], 0)).await;
            assert_encodes(&r, v);
            let got: Vec<(&str, i16, i32, &str, i32)> = r
                .coordinators
                .iter()
                .map(|c| {
                    (
                        c.key.as_str(),
                        c.error_code,
                        c.node_id.0,
                        c.host.as_str(),
                        c.port,
                    )
                })
                .collect();
            assert_eq!(
                got,
                vec![
                    ("a", 0, 1, "127.0.0.1", 9092),
                    ("b", 0, 1, "127.0.0.1", 9092)
                ],
                "v{v}"
            );
            let r = respond(&ctx(&f, v), batch(&["t1"], 1)).await;
            assert_encodes(&r, v);
            let c = &r.coordinators[0];
            assert_eq!(
                (c.key.as_str(), c.error_code, c.node_id.0, c.port),
                ("t1", 0, 1, 9092)
            );
        }
    }
}
