//! IncrementalAlterConfigs (key 44), v0–v1: SET / DELETE / APPEND / SUBTRACT on topic configs
//! and on dynamic broker configs (a broker id, or the cluster default with an empty name).
//!
//! Authorization (Kafka's): ALTER_CONFIGS on the topic, or on the cluster for a broker.

use super::{config_resource_denied, sb, RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::broker::{BrokerError, IncrementalOp};
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

/// The versions of IncrementalAlterConfigs this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 1);

/// Answers one IncrementalAlterConfigs request.
pub(crate) async fn handle(ctx: RequestContext, req: IncrementalAlterConfigsRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut r = IncrementalAlterConfigsResponse::default();
    let authz = Authz::new(ctx);
    for res in req.resources {
        let name = res.resource_name.to_string();
        let denied =
            config_resource_denied(&authz, res.resource_type, &name, Operation::AlterConfigs);
        let result = match (denied, res.resource_type) {
            (Some(e), _) => Err(e),
            (None, RESOURCE_TOPIC) => match ops(res.configs) {
                Ok(ops) => {
                    ctx.broker
                        .incremental_alter_topic_configs(&name, ops, req.validate_only)
                        .await
                }
                Err(e) => Err(e),
            },
            (None, RESOURCE_BROKER) => match ops(res.configs) {
                Ok(ops) => {
                    ctx.broker
                        .incremental_alter_broker_configs(&name, ops, req.validate_only)
                        .await
                }
                Err(e) => Err(e),
            },
            (None, other) => Err(BrokerError::InvalidRequest(format!(
                "Unsupported resource type {other}"
            ))),
        };
        let mut out = AlterConfigsResourceResponse::default();
        out.resource_type = res.resource_type;
        out.resource_name = res.resource_name;
        if let Err(e) = result {
            out.error_code = code(&e);
            out.error_message = Some(sb(&e.to_string()));
        }
        r.responses.push(out);
    }
    r
}

fn ops(
    configs: Vec<kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig>,
) -> Result<Vec<IncrementalOp>, BrokerError> {
    configs
        .into_iter()
        .map(|c| {
            let k = c.name.to_string();
            let val = c.value.map(|v| v.to_string());
            match (c.config_operation, val) {
                (0, Some(v)) => Ok(IncrementalOp::Set(k, v)),
                (1, _) => Ok(IncrementalOp::Delete(k)),
                (2, Some(v)) => Ok(IncrementalOp::Append(k, v)),
                (3, Some(v)) => Ok(IncrementalOp::Subtract(k, v)),
                (0 | 2 | 3, None) => Err(BrokerError::InvalidConfig(format!(
                    "Null value not supported for {k}"
                ))),
                (op, _) => Err(BrokerError::InvalidRequest(format!(
                    "Unknown config operation {op}"
                ))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::ResponseError as E;

    const SET: i8 = 0;
    const DELETE: i8 = 1;
    const APPEND: i8 = 2;
    const SUBTRACT: i8 = 3;

    fn resource(kind: i8, name: &str, ops: &[(&str, i8, Option<&str>)]) -> AlterConfigsResource {
        let mut r = AlterConfigsResource::default();
        r.resource_type = kind;
        r.resource_name = sb(name);
        r.configs = ops
            .iter()
            .map(|(k, op, v)| {
                let mut c = AlterableConfig::default();
                c.name = sb(k);
                c.config_operation = *op;
                c.value = v.map(sb);
                c
            })
            .collect();
        r
    }

    fn request(
        resources: Vec<AlterConfigsResource>,
        validate_only: bool,
    ) -> IncrementalAlterConfigsRequest {
        let mut r = IncrementalAlterConfigsRequest::default();
        r.resources = resources;
        r.validate_only = validate_only;
        r
    }

    fn overrides(f: &Fixture, topic: &str) -> Vec<(String, String)> {
        let image = f.broker.metadata_view();
        image
            .topic(topic)
            .expect("topic")
            .configs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn set_delete_append_subtract() {
        let f = Fixture::new().await;
        f.topic(
            "t",
            1,
            &[("retention.ms", "1000"), ("segment.bytes", "1048576")],
        )
        .await;
        let r = respond(
            &ctx(&f, 1),
            request(
                vec![resource(
                    RESOURCE_TOPIC,
                    "t",
                    &[
                        ("retention.ms", SET, Some("2000")),
                        ("segment.bytes", DELETE, None),
                        ("cleanup.policy", APPEND, Some("compact")),
                    ],
                )],
                false,
            ),
        )
        .await;
        assert_encodes(&r, 1);
        let out = &r.responses[0];
        assert_eq!(
            (
                out.error_code,
                out.resource_type,
                out.resource_name.as_str()
            ),
            (0, RESOURCE_TOPIC, "t")
        );
        // APPEND starts from the effective value (the default "delete").
        assert_eq!(
            overrides(&f, "t"),
            kv(&[
                ("cleanup.policy", "delete,compact"),
                ("retention.ms", "2000")
            ])
        );
        let r = respond(
            &ctx(&f, 0),
            request(
                vec![resource(
                    RESOURCE_TOPIC,
                    "t",
                    &[("cleanup.policy", SUBTRACT, Some("delete"))],
                )],
                false,
            ),
        )
        .await;
        assert_encodes(&r, 0);
        assert_eq!(r.responses[0].error_code, 0);
        assert_eq!(
            overrides(&f, "t"),
            kv(&[("cleanup.policy", "compact"), ("retention.ms", "2000")])
        );
    }

    #[tokio::test]
    async fn validate_only_and_failed_ops_change_nothing() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[("retention.ms", "1000")]).await;
        let r = respond(
            &ctx(&f, 1),
            request(
                vec![resource(
                    RESOURCE_TOPIC,
                    "t",
                    &[("retention.ms", SET, Some("5"))],
                )],
                true,
            ),
        )
        .await;
        assert_eq!(r.responses[0].error_code, 0);
        assert_eq!(overrides(&f, "t"), kv(&[("retention.ms", "1000")]));
        // One bad op: none of the resource's ops apply.
        let r = respond(
            &ctx(&f, 1),
            request(
                vec![resource(
                    RESOURCE_TOPIC,
                    "t",
                    &[
                        ("retention.ms", SET, Some("5")),
                        ("segment.bytes", SET, Some("x")),
                    ],
                )],
                false,
            ),
        )
        .await;
        assert_eq!(r.responses[0].error_code, E::InvalidConfig.code());
        assert_eq!(overrides(&f, "t"), kv(&[("retention.ms", "1000")]));
    }

    #[tokio::test]
    async fn errors_are_per_resource() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        let r = respond(
            &ctx(&f, 1),
            request(
                vec![
                    resource(RESOURCE_TOPIC, "nope", &[("retention.ms", SET, Some("1"))]),
                    resource(RESOURCE_TOPIC, "t", &[("retention.ms", SET, None)]),
                    resource(RESOURCE_TOPIC, "t", &[("retention.ms", 7, Some("1"))]),
                    resource(RESOURCE_TOPIC, "t", &[("retention.ms", APPEND, Some("1"))]),
                    resource(RESOURCE_TOPIC, "t", &[("no.such.config", DELETE, None)]),
                    resource(RESOURCE_TOPIC, "t", &[("no.such.config", SET, Some("1"))]),
                    resource(RESOURCE_BROKER, "1", &[("num.partitions", SET, Some("2"))]),
                    resource(5, "x", &[]),
                ],
                false,
            ),
        )
        .await;
        assert_encodes(&r, 1);
        let codes: Vec<i16> = r.responses.iter().map(|x| x.error_code).collect();
        assert_eq!(
            codes,
            vec![
                E::UnknownTopicOrPartition.code(),
                E::InvalidConfig.code(),
                E::InvalidRequest.code(),
                E::InvalidConfig.code(),
                E::InvalidConfig.code(),
                E::InvalidConfig.code(),
                E::InvalidRequest.code(),
                E::InvalidRequest.code(),
            ]
        );
        assert!(r
            .responses
            .iter()
            .all(|x| x.error_message.as_ref().is_some_and(|m| !m.is_empty())));
        assert!(overrides(&f, "t").is_empty());
    }

    fn broker_entry(f: &Fixture, name: &str, key: &str) -> Option<crate::broker::ConfigEntryView> {
        f.broker
            .describe_broker_configs(name, Some(&[key.to_owned()]))
            .expect("describe")
            .into_iter()
            .next()
    }

    /// Dynamic broker configs: per broker and cluster default, stored in the metadata image,
    /// applied live to the topic defaults, described with their source; read-only and unknown
    /// keys are refused.
    #[tokio::test]
    async fn dynamic_broker_configs() {
        use crate::broker::ConfigSource as S;
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        let me = f.broker.node_id().0.to_string();
        let retention = |f: &Fixture| {
            let image = f.broker.metadata_view();
            f.broker
                .topic_config_value(image.topic("t").expect("t"), "retention.ms")
        };
        assert_eq!(retention(&f).as_deref(), Some("604800000"));
        // The cluster default first, then this broker's own value on top of it.
        let r = respond(
            &ctx(&f, 1),
            request(
                vec![resource(
                    RESOURCE_BROKER,
                    "",
                    &[("log.retention.ms", SET, Some("7000"))],
                )],
                false,
            ),
        )
        .await;
        assert_eq!(r.responses[0].error_code, 0, "{r:?}");
        assert_eq!(retention(&f).as_deref(), Some("7000"));
        let e = broker_entry(&f, &me, "log.retention.ms").expect("entry");
        assert_eq!(
            (e.value.as_deref(), e.source),
            (Some("7000"), S::DynamicDefaultBroker)
        );
        assert!(!e.read_only);
        let r = respond(
            &ctx(&f, 1),
            request(
                vec![resource(
                    RESOURCE_BROKER,
                    &me,
                    &[
                        ("log.retention.hours", SET, Some("2")),
                        ("log.cleanup.policy", APPEND, Some("compact")),
                    ],
                )],
                false,
            ),
        )
        .await;
        assert_eq!(r.responses[0].error_code, 0, "{r:?}");
        // log.retention.ms (cluster default) is more specific than log.retention.hours.
        assert_eq!(retention(&f).as_deref(), Some("7000"));
        let image = f.broker.metadata_view();
        let t = image.topic("t").expect("t");
        assert_eq!(
            f.broker.topic_config_value(t, "cleanup.policy").as_deref(),
            Some("delete,compact")
        );
        let topic = f
            .broker
            .describe_topic_configs("t", Some(&["cleanup.policy".to_owned()]))
            .expect("describe");
        assert_eq!(topic[0].source, S::DynamicBroker);
        let e = broker_entry(&f, &me, "log.retention.hours").expect("entry");
        assert_eq!(
            (e.value.as_deref(), e.source),
            (Some("2"), S::DynamicBroker)
        );
        let defaults = f
            .broker
            .describe_broker_configs("", None)
            .expect("describe");
        assert_eq!(defaults.len(), 1);
        assert_eq!(defaults[0].source, S::DynamicDefaultBroker);
        // Stored in the metadata image.
        assert_eq!(
            image.broker_configs(Some(f.broker.node_id())),
            [
                ("log.cleanup.policy".to_owned(), "delete,compact".to_owned()),
                ("log.retention.hours".to_owned(), "2".to_owned())
            ]
            .into_iter()
            .collect()
        );
        // Refused: read-only keys (Kafka's message), unknown keys, bad values, another
        // broker's id; nothing changes.
        let r = respond(
            &ctx(&f, 1),
            request(
                vec![
                    resource(
                        RESOURCE_BROKER,
                        &me,
                        &[("log.dirs", SET, Some("/x")), ("broker.id", SET, Some("9"))],
                    ),
                    resource(RESOURCE_BROKER, "", &[("no.such.key", SET, Some("1"))]),
                    resource(RESOURCE_BROKER, "", &[("log.retention.ms", SET, Some("x"))]),
                    resource(
                        RESOURCE_BROKER,
                        "99",
                        &[("log.retention.ms", SET, Some("1"))],
                    ),
                ],
                false,
            ),
        )
        .await;
        let got: Vec<(i16, String)> = r
            .responses
            .iter()
            .map(|x| {
                (
                    x.error_code,
                    x.error_message.as_deref().unwrap_or("").to_owned(),
                )
            })
            .collect();
        assert_eq!(got[0].0, E::InvalidRequest.code());
        assert_eq!(
            got[0].1,
            "Cannot update these configs dynamically: Set(broker.id, log.dirs)"
        );
        assert_eq!(got[1].0, E::InvalidConfig.code());
        assert_eq!(got[2].0, E::InvalidConfig.code());
        assert_eq!(got[3].0, E::InvalidRequest.code());
        assert_eq!(retention(&f).as_deref(), Some("7000"));
        // Deleting the cluster default falls back to this broker's hours.
        let r = respond(
            &ctx(&f, 1),
            request(
                vec![resource(
                    RESOURCE_BROKER,
                    "",
                    &[("log.retention.ms", DELETE, None)],
                )],
                false,
            ),
        )
        .await;
        assert_eq!(r.responses[0].error_code, 0);
        assert_eq!(retention(&f).as_deref(), Some("7200000"));
        assert!(f.broker.metadata_view().broker_configs(None).is_empty());
    }
}
