//! DescribeConfigs (key 32), v0–v4 (v0: `is_default` instead of a source): topic and broker configs with values, sources (topic,
//! dynamic broker, dynamic cluster default, static, default) and synonyms.
//!
//! Authorization (Kafka's): DESCRIBE_CONFIGS on the topic, or on the cluster for a broker.

use super::{config_resource_denied, sb, RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_TOPIC};
use crate::broker::{BrokerError, ConfigEntryView, ConfigSource};
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

/// The versions of DescribeConfigs this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 4);

/// Answers one DescribeConfigs request.
pub(crate) async fn handle(ctx: RequestContext, req: DescribeConfigsRequest) -> Reply {
    Reply::now(respond(&ctx, req))
}

pub(crate) fn respond(
    ctx: &RequestContext,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let v = ctx.api_version;
    let authz = Authz::new(ctx);
    let mut r = DescribeConfigsResponse::default();
    for res in req.resources {
        let name = res.resource_name.to_string();
        let keys: Option<Vec<String>> = res
            .configuration_keys
            .map(|k| k.into_iter().map(|s| s.to_string()).collect());
        let denied =
            config_resource_denied(&authz, res.resource_type, &name, Operation::DescribeConfigs);
        let entries = match (denied, res.resource_type) {
            (Some(e), _) => Err(e),
            (None, RESOURCE_TOPIC) => ctx.broker.describe_topic_configs(&name, keys.as_deref()),
            (None, RESOURCE_BROKER) => ctx.broker.describe_broker_configs(&name, keys.as_deref()),
            (None, RESOURCE_BROKER_LOGGER) => Ok(Vec::new()), // BROKER_LOGGER: no runtime loggers are exposed
            (None, other) => Err(BrokerError::InvalidRequest(format!(
                "Unsupported resource type {other}"
            ))),
        };
        let mut out = DescribeConfigsResult::default();
        out.resource_type = res.resource_type;
        out.resource_name = res.resource_name;
        match entries {
            Ok(entries) => {
                out.configs = entries
                    .into_iter()
                    .map(|e| entry(v, req.include_synonyms, e))
                    .collect()
            }
            Err(e) => {
                out.error_code = code(&e);
                out.error_message = Some(sb(&e.to_string()));
            }
        }
        r.results.push(out);
    }
    r
}

fn entry(v: i16, include_synonyms: bool, e: ConfigEntryView) -> DescribeConfigsResourceResult {
    let mut c = DescribeConfigsResourceResult::default();
    c.name = sb(&e.name);
    c.value = e.value.as_deref().map(sb);
    c.read_only = e.read_only;
    c.config_source = e.source.wire_id();
    if v == 0 {
        c.is_default = e.source == ConfigSource::Default;
    }
    c.is_sensitive = e.sensitive;
    if include_synonyms {
        c.synonyms = e
            .synonyms
            .iter()
            .map(|s| {
                let mut y = DescribeConfigsSynonym::default();
                y.name = sb(&s.name);
                y.value = s.value.as_deref().map(sb);
                y.source = s.source.wire_id();
                y
            })
            .collect();
    }
    if v >= 3 {
        c.config_type = e.config_type;
        c.documentation = e.documentation.as_deref().map(sb);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::ResponseError as E;

    fn resource(kind: i8, name: &str, keys: Option<&[&str]>) -> DescribeConfigsResource {
        let mut r = DescribeConfigsResource::default();
        r.resource_type = kind;
        r.resource_name = sb(name);
        r.configuration_keys = keys.map(|k| k.iter().map(|s| sb(s)).collect());
        r
    }

    fn request(resources: Vec<DescribeConfigsResource>, synonyms: bool) -> DescribeConfigsRequest {
        let mut r = DescribeConfigsRequest::default();
        r.resources = resources;
        r.include_synonyms = synonyms;
        r
    }

    fn find<'a>(res: &'a DescribeConfigsResult, name: &str) -> &'a DescribeConfigsResourceResult {
        res.configs
            .iter()
            .find(|c| c.name.as_str() == name)
            .unwrap_or_else(|| panic!("{name} is described"))
    }

    fn value(c: &DescribeConfigsResourceResult) -> Option<&str> {
        c.value.as_ref().map(|s| s.as_str())
    }

    #[tokio::test]
    async fn topic_configs_show_values_sources_synonyms_and_types_by_version() {
        let f = Fixture::with(&[("log.retention.hours", "2")]).await;
        f.topic("t", 1, &[("cleanup.policy", "compact")]).await;
        for v in VERSIONS.min..=VERSIONS.max {
            let r = respond(
                &ctx(&f, v),
                request(vec![resource(RESOURCE_TOPIC, "t", None)], true),
            );
            assert_encodes(&r, v);
            let res = &r.results[0];
            assert_eq!(
                (
                    res.error_code,
                    res.resource_type,
                    res.resource_name.as_str()
                ),
                (0, RESOURCE_TOPIC, "t")
            );
            assert_eq!(
                res.configs.len(),
                crate::config::topic::TOPIC_CONFIGS.len(),
                "every topic config is described"
            );
            // An override.
            let c = find(res, "cleanup.policy");
            assert_eq!(
                (value(c), c.config_source, c.read_only),
                (Some("compact"), 1, false)
            );
            let syn: Vec<(&str, Option<&str>, i8)> = c
                .synonyms
                .iter()
                .map(|s| {
                    (
                        s.name.as_str(),
                        s.value.as_ref().map(|x| x.as_str()),
                        s.source,
                    )
                })
                .collect();
            assert_eq!(
                syn,
                vec![
                    ("cleanup.policy", Some("compact"), 1),
                    ("log.cleanup.policy", Some("delete"), 5),
                ]
            );
            // A static broker default (hours scaled to ms).
            let c = find(res, "retention.ms");
            assert_eq!((value(c), c.config_source), (Some("7200000"), 4));
            assert_eq!(c.synonyms[0].name.as_str(), "log.retention.hours");
            assert_eq!(c.synonyms[0].source, 4);
            // Types and documentation only from v3.
            if v >= 3 {
                assert_eq!((c.config_type, c.documentation.clone()), (5, None), "LONG");
                assert_eq!(find(res, "cleanup.policy").config_type, 7, "LIST");
            } else {
                assert_eq!(c.config_type, 0);
            }
        }
    }

    #[tokio::test]
    async fn keys_filter_and_synonyms_flag() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[("retention.ms", "1000")]).await;
        let r = respond(
            &ctx(&f, 4),
            request(
                vec![resource(
                    RESOURCE_TOPIC,
                    "t",
                    Some(&["retention.ms", "segment.bytes"]),
                )],
                false,
            ),
        );
        let res = &r.results[0];
        let got: Vec<(&str, Option<&str>, i8)> = res
            .configs
            .iter()
            .map(|c| (c.name.as_str(), value(c), c.config_source))
            .collect();
        assert_eq!(
            got,
            vec![
                ("retention.ms", Some("1000"), 1),
                ("segment.bytes", Some("1073741824"), 5)
            ]
        );
        assert!(res.configs.iter().all(|c| c.synonyms.is_empty()));
    }

    #[tokio::test]
    async fn broker_configs_with_their_source() {
        let f = Fixture::new().await;
        for name in ["1", ""] {
            let r = respond(
                &ctx(&f, 2),
                request(
                    vec![resource(
                        RESOURCE_BROKER,
                        name,
                        Some(&[
                            "offsets.topic.num.partitions",
                            "num.partitions",
                            "log.retention.ms",
                        ]),
                    )],
                    true,
                ),
            );
            assert_encodes(&r, 2);
            let res = &r.results[0];
            assert_eq!(res.error_code, 0, "broker {name:?}");
            let got: Vec<(&str, Option<&str>, i8, bool)> = res
                .configs
                .iter()
                .map(|c| (c.name.as_str(), value(c), c.config_source, c.read_only))
                .collect();
            let want = if name.is_empty() {
                // The cluster default lists its dynamic configs only (none here).
                vec![]
            } else {
                vec![
                    // Dynamic broker configs can change it; the others need a restart.
                    ("log.retention.ms", Some("604800000"), 5, false),
                    ("num.partitions", Some("1"), 5, true),
                    ("offsets.topic.num.partitions", Some("2"), 4, true),
                ]
            };
            assert_eq!(got, want);
        }
    }

    #[tokio::test]
    async fn errors_are_per_resource() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        let r = respond(
            &ctx(&f, 1),
            request(
                vec![
                    resource(RESOURCE_TOPIC, "nope", None),
                    resource(RESOURCE_TOPIC, "t", Some(&["no.such.config"])),
                    resource(RESOURCE_BROKER, "7", None),
                    resource(3, "x", None),
                    resource(8, "1", None),
                ],
                false,
            ),
        );
        assert_encodes(&r, 1);
        let got: Vec<(i16, usize)> = r
            .results
            .iter()
            .map(|x| (x.error_code, x.configs.len()))
            .collect();
        assert_eq!(
            got,
            vec![
                (E::UnknownTopicOrPartition.code(), 0),
                (E::InvalidConfig.code(), 0),
                (E::InvalidRequest.code(), 0),
                (E::InvalidRequest.code(), 0),
                (0, 0), // BROKER_LOGGER: nothing exposed
            ]
        );
        for x in &r.results[..4] {
            assert!(x.error_message.as_ref().is_some_and(|m| !m.is_empty()));
        }
    }
}
