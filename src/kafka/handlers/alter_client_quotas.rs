//! AlterClientQuotas (key 49), v0–1: sets or removes quota keys per entity (`user`,
//! `client-id`, or both; a null name is the default entity). Each entity is validated on its
//! own (Kafka's errors: INVALID_REQUEST for an empty, duplicate or unknown entity type, an
//! unknown key, a byte rate that is not a whole number; raftka also refuses negative, NaN and
//! infinite values); the valid ones are applied together in one metadata command.
//! `validate_only` changes nothing.
//!
//! Authorization (Kafka's): ALTER_CONFIGS on the cluster, else CLUSTER_AUTHORIZATION_FAILED
//! for every entity.

use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::handlers::sb;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::Operation;
use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};

/// The versions of AlterClientQuotas this handler serves.
pub(crate) const VERSIONS: Versions = Versions::new(0, 1);

impl RequestShape for AlterClientQuotasRequest {
    fn shape(&self) -> Shape {
        Shape {
            entries: self.entries.len(),
            partitions: self.entries.iter().map(|e| e.ops.len()).sum(),
        }
    }
}

/// Answers one AlterClientQuotas request.
pub(crate) async fn handle(ctx: RequestContext, req: AlterClientQuotasRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let entities: Vec<Vec<EntityData>> = req
        .entries
        .iter()
        .map(|e| {
            e.entity
                .iter()
                .map(|d| {
                    let mut x = EntityData::default();
                    x.entity_type = d.entity_type.clone();
                    x.entity_name = d.entity_name.clone();
                    x
                })
                .collect()
        })
        .collect();
    let results: Vec<Result<(), BrokerError>> = if !Authz::new(ctx).cluster(Operation::AlterConfigs)
    {
        entities
            .iter()
            .map(|_| Err(BrokerError::ClusterAuthorizationFailed))
            .collect()
    } else {
        let entries = req
            .entries
            .into_iter()
            .map(|e| {
                let parts = e
                    .entity
                    .into_iter()
                    .map(|d| {
                        (
                            d.entity_type.to_string(),
                            d.entity_name.map(|n| n.to_string()),
                        )
                    })
                    .collect();
                let ops = e
                    .ops
                    .into_iter()
                    .map(|o| (o.key.to_string(), (!o.remove).then_some(o.value)))
                    .collect();
                (parts, ops)
            })
            .collect();
        match ctx
            .broker
            .alter_client_quotas(entries, req.validate_only)
            .await
        {
            Ok(r) => r,
            Err(e) => entities.iter().map(|_| Err(e.clone())).collect(),
        }
    };
    let mut r = AlterClientQuotasResponse::default();
    r.entries = entities
        .into_iter()
        .zip(results)
        .map(|(entity, res)| {
            let mut x = EntryData::default();
            x.entity = entity;
            if let Err(e) = res {
                x.error_code = code(&e);
                x.error_message = Some(sb(&e.to_string()));
            }
            x
        })
        .collect();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use kafka_protocol::messages::alter_client_quotas_request::{
        EntityData as ReqEntity, EntryData as ReqEntry, OpData,
    };
    use kafka_protocol::ResponseError as E;

    fn entry(entity: &[(&str, Option<&str>)], ops: &[(&str, f64, bool)]) -> ReqEntry {
        let mut e = ReqEntry::default();
        e.entity = entity
            .iter()
            .map(|(t, n)| {
                let mut d = ReqEntity::default();
                d.entity_type = sb(t);
                d.entity_name = n.map(sb);
                d
            })
            .collect();
        e.ops = ops
            .iter()
            .map(|(k, v, remove)| {
                let mut o = OpData::default();
                o.key = sb(k);
                o.value = *v;
                o.remove = *remove;
                o
            })
            .collect();
        e
    }

    async fn alter(f: &Fixture, entries: Vec<ReqEntry>, validate_only: bool) -> Vec<i16> {
        let mut req = AlterClientQuotasRequest::default();
        req.entries = entries;
        req.validate_only = validate_only;
        let r = respond(&ctx(f, 1), req).await;
        assert_encodes(&r, 1);
        r.entries.iter().map(|e| e.error_code).collect()
    }

    #[tokio::test]
    async fn sets_removes_and_refuses_bad_input_without_change() {
        let f = Fixture::new().await;
        let codes = alter(
            &f,
            vec![
                entry(
                    &[("client-id", Some("app"))],
                    &[("producer_byte_rate", 1024.0, false)],
                ),
                entry(&[("user", None)], &[("request_percentage", 12.5, false)]),
                // Bad: negative, fractional byte rate, unknown key, unknown and duplicate
                // entity types, duplicate key, ip entity.
                entry(
                    &[("client-id", Some("b"))],
                    &[("consumer_byte_rate", -1.0, false)],
                ),
                entry(
                    &[("client-id", Some("c"))],
                    &[("consumer_byte_rate", 1.5, false)],
                ),
                entry(&[("client-id", Some("d"))], &[("retention.ms", 1.0, false)]),
                entry(
                    &[("group", Some("g"))],
                    &[("producer_byte_rate", 1.0, false)],
                ),
                entry(
                    &[("user", Some("u")), ("user", Some("v"))],
                    &[("producer_byte_rate", 1.0, false)],
                ),
                entry(
                    &[("user", Some("w"))],
                    &[
                        ("producer_byte_rate", 1.0, false),
                        ("producer_byte_rate", 2.0, false),
                    ],
                ),
                entry(
                    &[("ip", Some("1.2.3.4"))],
                    &[("connection_creation_rate", 1.0, false)],
                ),
                entry(&[], &[("producer_byte_rate", 1.0, false)]),
            ],
            false,
        )
        .await;
        let invalid = E::InvalidRequest.code();
        assert_eq!(&codes[..2], &[0, 0]);
        assert!(codes[2..].iter().all(|c| *c == invalid), "{codes:?}");
        let q = f.broker.metadata_view().client_quotas.clone();
        assert_eq!(q.len(), 2, "only the valid entities: {q:?}");

        // validate_only changes nothing; removal drops the entity.
        let codes = alter(
            &f,
            vec![entry(
                &[("client-id", Some("x"))],
                &[("producer_byte_rate", 5.0, false)],
            )],
            true,
        )
        .await;
        assert_eq!(codes, vec![0]);
        assert_eq!(f.broker.metadata_view().client_quotas.len(), 2);
        let codes = alter(
            &f,
            vec![entry(
                &[("client-id", Some("app"))],
                &[("producer_byte_rate", 0.0, true)],
            )],
            false,
        )
        .await;
        assert_eq!(codes, vec![0]);
        assert_eq!(f.broker.metadata_view().client_quotas.len(), 1);
    }
}
