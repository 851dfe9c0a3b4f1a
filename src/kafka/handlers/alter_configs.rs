//! AlterConfigs (key 33), v0–v2: replaces a topic's overrides, or a broker's (or the cluster
//! default's) dynamic configs (legacy, non-incremental).
//!
//! Authorization (Kafka's): ALTER_CONFIGS on the topic, or on the cluster for a broker.

use super::{config_resource_denied, sb, RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use std::collections::BTreeMap;

/// The versions of AlterConfigs this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 2);

/// Answers one AlterConfigs request.
pub(crate) async fn handle(ctx: RequestContext, req: AlterConfigsRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut r = AlterConfigsResponse::default();
    let authz = Authz::new(ctx);
    for res in req.resources {
        let name = res.resource_name.to_string();
        let denied =
            config_resource_denied(&authz, res.resource_type, &name, Operation::AlterConfigs);
        let result = match (denied, res.resource_type) {
            (Some(e), _) => Err(e),
            (None, kind @ (RESOURCE_TOPIC | RESOURCE_BROKER)) => {
                let mut configs = BTreeMap::new();
                let mut bad = None;
                for c in res.configs {
                    match c.value {
                        Some(v) => {
                            configs.insert(c.name.to_string(), v.to_string());
                        }
                        None => bad = Some(c.name.to_string()),
                    }
                }
                match bad {
                    Some(k) => Err(BrokerError::InvalidConfig(format!(
                        "Null value not supported for {} configs: {k}",
                        if kind == RESOURCE_TOPIC {
                            "topic"
                        } else {
                            "broker"
                        }
                    ))),
                    None if kind == RESOURCE_TOPIC => {
                        ctx.broker
                            .replace_topic_configs(&name, configs, req.validate_only)
                            .await
                    }
                    None => {
                        ctx.broker
                            .replace_broker_configs(&name, configs, req.validate_only)
                            .await
                    }
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::ResponseError as E;

    fn resource(kind: i8, name: &str, configs: &[(&str, Option<&str>)]) -> AlterConfigsResource {
        let mut r = AlterConfigsResource::default();
        r.resource_type = kind;
        r.resource_name = sb(name);
        r.configs = configs
            .iter()
            .map(|(k, v)| {
                let mut c = AlterableConfig::default();
                c.name = sb(k);
                c.value = v.map(sb);
                c
            })
            .collect();
        r
    }

    fn request(resources: Vec<AlterConfigsResource>, validate_only: bool) -> AlterConfigsRequest {
        let mut r = AlterConfigsRequest::default();
        r.resources = resources;
        r.validate_only = validate_only;
        r
    }

    fn overrides(f: &Fixture, topic: &str) -> Vec<(String, String)> {
        let image = f.broker.metadata_view();
        let t = image.topic(topic).expect("topic exists");
        t.configs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    #[tokio::test]
    async fn replaces_every_override_of_a_topic() {
        let f = Fixture::new().await;
        f.topic(
            "t",
            1,
            &[("retention.ms", "1000"), ("cleanup.policy", "compact")],
        )
        .await;
        for v in VERSIONS.min..=VERSIONS.max {
            let r = respond(
                &ctx(&f, v),
                request(
                    vec![resource(
                        RESOURCE_TOPIC,
                        "t",
                        &[("retention.ms", Some("2000"))],
                    )],
                    false,
                ),
            )
            .await;
            assert_encodes(&r, v);
            assert_eq!(r.responses.len(), 1);
            let out = &r.responses[0];
            assert_eq!(
                (
                    out.error_code,
                    out.resource_type,
                    out.resource_name.as_str()
                ),
                (0, RESOURCE_TOPIC, "t")
            );
            assert_eq!(out.error_message.as_ref().map_or("", |m| m.as_str()), "");
            // Legacy AlterConfigs replaces: cleanup.policy is gone, not kept.
            assert_eq!(
                overrides(&f, "t"),
                vec![("retention.ms".into(), "2000".into())]
            );
        }
    }

    #[tokio::test]
    async fn validate_only_changes_nothing() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[("retention.ms", "1000")]).await;
        let r = respond(
            &ctx(&f, 1),
            request(
                vec![resource(
                    RESOURCE_TOPIC,
                    "t",
                    &[("retention.ms", Some("5"))],
                )],
                true,
            ),
        )
        .await;
        assert_eq!(r.responses[0].error_code, 0);
        assert_eq!(
            overrides(&f, "t"),
            vec![("retention.ms".into(), "1000".into())]
        );
        // validate_only still validates.
        let r = respond(
            &ctx(&f, 1),
            request(
                vec![resource(
                    RESOURCE_TOPIC,
                    "t",
                    &[("retention.ms", Some("x"))],
                )],
                true,
            ),
        )
        .await;
        assert_eq!(r.responses[0].error_code, E::InvalidConfig.code());
    }

    #[tokio::test]
    async fn errors_are_per_resource() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[("retention.ms", "1000")]).await;
        let r = respond(
            &ctx(&f, 2),
            request(
                vec![
                    resource(RESOURCE_TOPIC, "nope", &[("retention.ms", Some("1"))]),
                    resource(RESOURCE_TOPIC, "t", &[("retention.ms", Some("abc"))]),
                    resource(RESOURCE_TOPIC, "t", &[("no.such.config", Some("1"))]),
                    resource(RESOURCE_TOPIC, "t", &[("retention.ms", None)]),
                    resource(RESOURCE_BROKER, "1", &[("num.partitions", Some("3"))]),
                    resource(3, "g", &[]),
                ],
                false,
            ),
        )
        .await;
        assert_encodes(&r, 2);
        let codes: Vec<i16> = r.responses.iter().map(|x| x.error_code).collect();
        assert_eq!(
            codes,
            vec![
                E::UnknownTopicOrPartition.code(),
                E::InvalidConfig.code(),
                E::InvalidConfig.code(),
                E::InvalidConfig.code(),
                E::InvalidRequest.code(),
                E::InvalidRequest.code(),
            ]
        );
        assert!(r.responses.iter().all(|x| x.error_message.is_some()));
        let names: Vec<(i8, &str)> = r
            .responses
            .iter()
            .map(|x| (x.resource_type, x.resource_name.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                (RESOURCE_TOPIC, "nope"),
                (RESOURCE_TOPIC, "t"),
                (RESOURCE_TOPIC, "t"),
                (RESOURCE_TOPIC, "t"),
                (RESOURCE_BROKER, "1"),
                (3, "g"),
            ]
        );
        // Nothing changed.
        assert_eq!(
            overrides(&f, "t"),
            vec![("retention.ms".into(), "1000".into())]
        );
    }
}
