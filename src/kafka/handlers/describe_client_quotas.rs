//! DescribeClientQuotas (key 48), v0–1: the quotas of the entities a filter matches. Each
//! component names an entity type (`user`, `client-id`) and a match: 0 = this name, 1 = the
//! default entity, 2 = any entity of the type; with `strict` an entity has no other type.
//! A bad filter is a top-level INVALID_REQUEST with a message and no entries.
//!
//! Authorization (Kafka's): DESCRIBE_CONFIGS on the cluster, else CLUSTER_AUTHORIZATION_FAILED.

use crate::broker::{BrokerError, QuotaMatch};
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::handlers::sb;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::Operation;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};

/// The versions of DescribeClientQuotas this handler serves.
pub(crate) const VERSIONS: Versions = Versions::new(0, 1);

impl RequestShape for DescribeClientQuotasRequest {
    fn shape(&self) -> Shape {
        Shape {
            entries: self.components.len(),
            partitions: 0,
        }
    }
}

/// Answers one DescribeClientQuotas request.
pub(crate) async fn handle(ctx: RequestContext, req: DescribeClientQuotasRequest) -> Reply {
    Reply::now(respond(&ctx, &req))
}

fn error(e: &BrokerError) -> DescribeClientQuotasResponse {
    let mut r = DescribeClientQuotasResponse::default();
    r.error_code = code(e);
    r.error_message = Some(sb(&e.to_string()));
    r.entries = None;
    r
}

fn component(
    c: &kafka_protocol::messages::describe_client_quotas_request::ComponentData,
) -> Result<(String, QuotaMatch), BrokerError> {
    let name = c._match.as_ref().map(|m| m.to_string());
    let m = match (c.match_type, name) {
        (0, n) => QuotaMatch::Exact(n),
        (1, None) => QuotaMatch::Default,
        (2, None) => QuotaMatch::Any,
        (1 | 2, Some(_)) => {
            return Err(BrokerError::InvalidRequest(format!(
                "Unexpected match for match type {}",
                c.match_type
            )))
        }
        (t, _) => {
            return Err(BrokerError::InvalidRequest(format!(
                "Unexpected match type {t}"
            )))
        }
    };
    Ok((c.entity_type.to_string(), m))
}

pub(crate) fn respond(
    ctx: &RequestContext,
    req: &DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    if !Authz::new(ctx).cluster(Operation::DescribeConfigs) {
        return error(&BrokerError::ClusterAuthorizationFailed);
    }
    let components: Vec<_> = match req.components.iter().map(component).collect() {
        Ok(c) => c,
        Err(e) => return error(&e),
    };
    let found: Vec<_> = match ctx.broker.describe_client_quotas(&components, req.strict) {
        Ok(f) => f,
        Err(e) => return error(&e),
    };
    let mut r = DescribeClientQuotasResponse::default();
    let entries = found
        .into_iter()
        .map(|(entity, values)| {
            let mut e = EntryData::default();
            e.entity = crate::broker::quota_entity_parts(&entity)
                .into_iter()
                .map(|(t, n)| {
                    let mut d = EntityData::default();
                    d.entity_type = sb(t);
                    d.entity_name = n.as_deref().map(sb);
                    d
                })
                .collect();
            e.values = values
                .into_iter()
                .map(|(k, v)| {
                    let mut d = ValueData::default();
                    d.key = sb(&k);
                    d.value = v;
                    d
                })
                .collect();
            e
        })
        .collect();
    r.entries = Some(entries);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
    use kafka_protocol::ResponseError as E;

    fn comp(t: &str, match_type: i8, m: Option<&str>) -> ComponentData {
        let mut c = ComponentData::default();
        c.entity_type = sb(t);
        c.match_type = match_type;
        c._match = m.map(sb);
        c
    }

    fn req(components: Vec<ComponentData>, strict: bool) -> DescribeClientQuotasRequest {
        let mut r = DescribeClientQuotasRequest::default();
        r.components = components;
        r.strict = strict;
        r
    }

    fn parts(v: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        v.iter()
            .map(|(t, n)| ((*t).to_owned(), n.map(str::to_owned)))
            .collect()
    }

    #[tokio::test]
    async fn filters_match_as_kafkas() {
        let f = Fixture::new().await;
        let set = |v: f64| vec![("producer_byte_rate".to_owned(), Some(v))];
        let r = f
            .broker
            .alter_client_quotas(
                vec![
                    (parts(&[("user", Some("alice"))]), set(1.0)),
                    (parts(&[("user", None)]), set(2.0)),
                    (
                        parts(&[("user", Some("alice")), ("client-id", Some("app"))]),
                        set(3.0),
                    ),
                    (parts(&[("client-id", None)]), set(4.0)),
                ],
                false,
            )
            .await
            .expect("applied");
        assert!(r.iter().all(Result::is_ok), "{r:?}");
        let count = |components, strict| {
            let resp = respond(&ctx(&f, 1), &req(components, strict));
            assert_encodes(&resp, 1);
            assert_eq!(resp.error_code, 0, "{:?}", resp.error_message);
            resp.entries.expect("entries").len()
        };
        // Everything.
        assert_eq!(count(vec![], false), 4);
        // Users only (strict: no client id component).
        assert_eq!(count(vec![comp("user", 2, None)], true), 2);
        assert_eq!(count(vec![comp("user", 2, None)], false), 3);
        assert_eq!(count(vec![comp("user", 0, Some("alice"))], false), 2);
        assert_eq!(count(vec![comp("user", 1, None)], false), 1);
        assert_eq!(
            count(
                vec![
                    comp("user", 0, Some("alice")),
                    comp("client-id", 0, Some("app"))
                ],
                true
            ),
            1
        );
        let resp = respond(&ctx(&f, 0), &req(vec![comp("client-id", 1, None)], true));
        let e = &resp.entries.expect("entries")[0];
        assert_eq!(e.entity[0].entity_type.as_str(), "client-id");
        assert_eq!(e.entity[0].entity_name, None);
        assert_eq!(e.values[0].value, 4.0);

        // Bad filters: unknown type, duplicate type, a name with match type "any".
        for bad in [
            vec![comp("group", 2, None)],
            vec![comp("user", 2, None), comp("user", 1, None)],
            vec![comp("user", 2, Some("x"))],
            vec![comp("user", 7, None)],
        ] {
            let resp = respond(&ctx(&f, 1), &req(bad, false));
            assert_eq!(resp.error_code, E::InvalidRequest.code());
            assert!(resp.error_message.is_some());
            assert!(resp.entries.is_none());
        }
    }
}
