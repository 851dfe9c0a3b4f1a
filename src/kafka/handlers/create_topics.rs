//! CreateTopics (key 19), v0–v7: partitions / replication factor or explicit assignments,
//! configs, validate-only (v1+); v5+ returns the resulting configs.
//!
//! Authorization (Kafka's): CREATE on the cluster, or on the topic, else
//! TOPIC_AUTHORIZATION_FAILED; the configs of v5+ need DESCRIBE_CONFIGS on the topic, else
//! `topic_config_error_code` says TOPIC_AUTHORIZATION_FAILED and none are returned.

use super::{sb, topic_name};
use crate::broker::{BrokerError, CreateTopicSpec};
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use std::collections::{BTreeMap, HashMap};

/// The versions of CreateTopics this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 7);

/// Answers one CreateTopics request.
pub(crate) async fn handle(ctx: RequestContext, req: CreateTopicsRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let v = ctx.api_version;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for t in &req.topics {
        *counts.entry(t.name.0.to_string()).or_default() += 1;
    }
    let authz = Authz::new(ctx);
    let cluster_create = authz.cluster(Operation::Create);
    let mut quota = crate::kafka::mutation_quota::MutationQuota::new(ctx, v >= 6);
    let mut r = CreateTopicsResponse::default();
    for t in req.topics {
        let name = t.name.0.to_string();
        let result = if counts.get(&name).copied().unwrap_or(0) > 1 {
            Err(BrokerError::InvalidRequest(format!(
                "Create topics request from client contains multiple entries for topic {name}"
            )))
        } else if !cluster_create && !authz.topic(Operation::Create, &name) {
            Err(BrokerError::TopicAuthorizationFailed)
        } else if let Err(e) = quota.check() {
            Err(e)
        } else {
            let mut configs = BTreeMap::new();
            let mut null_config = None;
            for c in t.configs {
                match c.value {
                    Some(val) => {
                        configs.insert(c.name.to_string(), val.to_string());
                    }
                    None => null_config = Some(c.name.to_string()),
                }
            }
            if let Some(k) = null_config {
                Err(BrokerError::InvalidConfig(format!(
                    "Null value not supported for topic configs: {k}"
                )))
            } else {
                let spec = CreateTopicSpec {
                    name: name.clone(),
                    num_partitions: t.num_partitions,
                    replication_factor: t.replication_factor,
                    assignment: t
                        .assignments
                        .into_iter()
                        .map(|a| {
                            (
                                a.partition_index,
                                a.broker_ids.into_iter().map(|b| b.0).collect(),
                            )
                        })
                        .collect(),
                    configs,
                };
                let created = ctx
                    .broker
                    .create_topics(vec![spec], req.validate_only)
                    .await
                    .pop()
                    .unwrap_or_else(|| Err(BrokerError::Internal("no result".into())));
                if let (Ok(c), false) = (&created, req.validate_only) {
                    quota.record(usize::try_from(c.num_partitions).unwrap_or(0));
                }
                created
            }
        };
        let mut tr = CreatableTopicResult::default();
        tr.name = topic_name(&name);
        match result {
            Ok(created) => {
                if v >= 7 {
                    tr.topic_id = created.topic_id.0;
                }
                if v >= 5 {
                    tr.num_partitions = created.num_partitions;
                    tr.replication_factor = created.replication_factor;
                    if authz.topic(Operation::DescribeConfigs, &name) {
                        tr.configs = Some(described_configs(ctx, &created.configs));
                    } else {
                        tr.configs = None;
                        tr.topic_config_error_code = code(&BrokerError::TopicAuthorizationFailed);
                    }
                }
            }
            Err(e) => {
                tr.error_code = code(&e);
                if v >= 1 {
                    tr.error_message = Some(sb(&e.to_string()));
                }
                if v >= 5 {
                    tr.num_partitions = -1;
                    tr.replication_factor = -1;
                }
            }
        }
        r.topics.push(tr);
    }
    if v >= 2 {
        r.throttle_time_ms = quota.throttle_ms();
    }
    r
}

/// The configs the topic has (or, validate-only, would have) with these overrides (KIP-525).
fn described_configs(
    ctx: &RequestContext,
    overrides: &BTreeMap<String, String>,
) -> Vec<CreatableTopicConfigs> {
    ctx.broker
        .describe_topic_overrides(overrides, None)
        .into_iter()
        .map(|e| {
            let mut c = CreatableTopicConfigs::default();
            c.name = sb(&e.name);
            c.value = e.value.as_deref().map(sb);
            c.read_only = e.read_only;
            c.config_source = e.source.wire_id();
            c.is_sensitive = e.sensitive;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use kafka_protocol::messages::create_topics_request::{
        CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
    };
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::ResponseError as E;

    fn topic(
        name: &str,
        partitions: i32,
        rf: i16,
        configs: &[(&str, Option<&str>)],
    ) -> CreatableTopic {
        let mut t = CreatableTopic::default();
        t.name = topic_name(name);
        t.num_partitions = partitions;
        t.replication_factor = rf;
        t.configs = configs
            .iter()
            .map(|(k, v)| {
                let mut c = CreatableTopicConfig::default();
                c.name = sb(k);
                c.value = v.map(sb);
                c
            })
            .collect();
        t
    }

    fn assigned(name: &str, assignment: &[(i32, &[i32])]) -> CreatableTopic {
        let mut t = topic(name, -1, -1, &[]);
        t.assignments = assignment
            .iter()
            .map(|(p, ids)| {
                let mut a = CreatableReplicaAssignment::default();
                a.partition_index = *p;
                a.broker_ids = ids.iter().copied().map(BrokerId).collect();
                a
            })
            .collect();
        t
    }

    fn request(topics: Vec<CreatableTopic>, validate_only: bool) -> CreateTopicsRequest {
        let mut r = CreateTopicsRequest::default();
        r.topics = topics;
        r.timeout_ms = 5_000;
        r.validate_only = validate_only;
        r
    }

    /// KIP-599: with `controller_mutation_rate` 1/s (a burst of 11 partitions), a strict
    /// client (v6+) gets its first big creation and is throttled, then
    /// THROTTLING_QUOTA_EXCEEDED; an older client (v5) is only throttled.
    #[tokio::test]
    async fn the_controller_mutation_quota_throttles_and_refuses() {
        let f = Fixture::new().await;
        let r = f
            .broker
            .alter_client_quotas(
                vec![(
                    vec![("client-id".to_owned(), Some("test".to_owned()))],
                    vec![("controller_mutation_rate".to_owned(), Some(1.0))],
                )],
                false,
            )
            .await
            .expect("applied");
        assert!(r[0].is_ok());
        let first = respond(&ctx(&f, 7), request(vec![topic("m1", 20, 1, &[])], false)).await;
        assert_eq!(first.topics[0].error_code, 0);
        assert!(
            first.throttle_time_ms >= 8_000,
            "{}",
            first.throttle_time_ms
        );
        let second = respond(&ctx(&f, 7), request(vec![topic("m2", 1, 1, &[])], false)).await;
        assert_eq!(
            second.topics[0].error_code,
            E::ThrottlingQuotaExceeded.code()
        );
        assert!(second.throttle_time_ms > 0);
        assert!(f.broker.metadata_view().topic("m2").is_none());
        let old = respond(&ctx(&f, 5), request(vec![topic("m3", 1, 1, &[])], false)).await;
        assert_eq!(old.topics[0].error_code, 0);
        assert!(old.throttle_time_ms > 0);
        assert_encodes(&old, 5);
    }

    #[tokio::test]
    async fn creates_and_reports_id_counts_and_configs_by_version() {
        let f = Fixture::new().await;
        for v in VERSIONS.min..=VERSIONS.max {
            let name = format!("t{v}");
            let r = respond(
                &ctx(&f, v),
                request(
                    vec![topic(&name, 3, 1, &[("retention.ms", Some("1000"))])],
                    false,
                ),
            )
            .await;
            assert_encodes(&r, v);
            let t = &r.topics[0];
            assert_eq!((t.name.as_str(), t.error_code), (name.as_str(), 0));
            let image = f.broker.metadata_view();
            let created = image.topic(&name).expect("created");
            assert_eq!(created.partitions.len(), 3);
            assert_eq!(
                created.configs.get("retention.ms").map(String::as_str),
                Some("1000")
            );
            if v >= 7 {
                assert_eq!(t.topic_id, created.id.0);
            } else {
                assert!(t.topic_id.is_nil());
            }
            if v >= 5 {
                assert_eq!((t.num_partitions, t.replication_factor), (3, 1));
                let configs = t.configs.as_ref().expect("configs at v5+");
                let ret = configs
                    .iter()
                    .find(|c| c.name.as_str() == "retention.ms")
                    .expect("retention.ms listed");
                assert_eq!(ret.value.as_ref().map(|s| s.as_str()), Some("1000"));
                assert_eq!(ret.config_source, 1, "DYNAMIC_TOPIC_CONFIG");
                let cleanup = configs
                    .iter()
                    .find(|c| c.name.as_str() == "cleanup.policy")
                    .expect("defaults listed too");
                assert_eq!(cleanup.value.as_ref().map(|s| s.as_str()), Some("delete"));
                assert_eq!(cleanup.config_source, 5, "DEFAULT_CONFIG");
            } else {
                assert_eq!((t.num_partitions, t.replication_factor), (-1, -1));
            }
        }
    }

    #[tokio::test]
    async fn broker_defaults_and_explicit_assignments() {
        let f = Fixture::with(&[("num.partitions", "2")]).await;
        let r = respond(
            &ctx(&f, 5),
            request(
                vec![
                    topic("d", -1, -1, &[]),
                    assigned("x", &[(1, &[1]), (0, &[1])]),
                ],
                false,
            ),
        )
        .await;
        let got: Vec<(i16, i32, i16)> = r
            .topics
            .iter()
            .map(|t| (t.error_code, t.num_partitions, t.replication_factor))
            .collect();
        assert_eq!(got, vec![(0, 2, 1), (0, 2, 1)]);
        let image = f.broker.metadata_view();
        assert_eq!(image.topic("d").map(|t| t.partitions.len()), Some(2));
        assert_eq!(image.topic("x").map(|t| t.partitions.len()), Some(2));
    }

    #[tokio::test]
    async fn validate_only_creates_nothing() {
        let f = Fixture::new().await;
        let r = respond(&ctx(&f, 7), request(vec![topic("v", 4, 1, &[])], true)).await;
        assert_encodes(&r, 7);
        let t = &r.topics[0];
        assert_eq!(
            (t.error_code, t.num_partitions, t.replication_factor),
            (0, 4, 1)
        );
        assert!(t.topic_id.is_nil());
        assert!(f.broker.metadata_view().topic("v").is_none());
    }

    /// KIP-525: from v5 the response lists the configs the topic gets, validate-only included
    /// (tools preview a creation that way); they were empty for validate-only requests.
    #[tokio::test]
    async fn validate_only_lists_the_configs_the_topic_would_get() {
        let f = Fixture::new().await;
        let r = respond(
            &ctx(&f, 5),
            request(
                vec![topic("v", 1, 1, &[("retention.ms", Some("1000"))])],
                true,
            ),
        )
        .await;
        let t = &r.topics[0];
        assert_eq!(t.error_code, 0);
        let configs = t.configs.as_ref().expect("configs at v5+");
        assert_eq!(configs.len(), crate::config::topic::TOPIC_CONFIGS.len());
        let got = |name: &str| {
            configs
                .iter()
                .find(|c| c.name.as_str() == name)
                .map(|c| (c.value.as_ref().map(|v| v.to_string()), c.config_source))
        };
        assert_eq!(got("retention.ms"), Some((Some("1000".into()), 1)));
        assert_eq!(got("cleanup.policy"), Some((Some("delete".into()), 5)));
        assert!(f.broker.metadata_view().topic("v").is_none());
    }

    #[tokio::test]
    async fn errors_carry_codes_messages_and_minus_one_counts() {
        let f = Fixture::new().await;
        f.topic("exists", 1, &[]).await;
        f.topic("a.b", 1, &[]).await;
        let cases = vec![
            (topic("exists", 1, 1, &[]), E::TopicAlreadyExists),
            (topic("bad name!", 1, 1, &[]), E::InvalidTopicException),
            (topic("a_b", 1, 1, &[]), E::InvalidTopicException),
            (topic("p0", 0, 1, &[]), E::InvalidPartitions),
            (topic("rf3", 1, 3, &[]), E::InvalidReplicationFactor),
            (topic("rf0", 1, 0, &[]), E::InvalidReplicationFactor),
            (
                topic("c1", 1, 1, &[("retention.ms", Some("x"))]),
                E::InvalidConfig,
            ),
            (
                topic("c2", 1, 1, &[("no.such.config", Some("1"))]),
                E::InvalidConfig,
            ),
            (
                topic("c3", 1, 1, &[("retention.ms", None)]),
                E::InvalidConfig,
            ),
            (
                assigned("a1", &[(0, &[1]), (2, &[1])]),
                E::InvalidReplicaAssignment,
            ),
            (assigned("a2", &[(0, &[9])]), E::InvalidReplicaAssignment),
            (assigned("a3", &[(0, &[1, 1])]), E::InvalidReplicaAssignment),
            (
                {
                    let mut t = assigned("a4", &[(0, &[1])]);
                    t.num_partitions = 1;
                    t
                },
                E::InvalidRequest,
            ),
        ];
        for v in [VERSIONS.min, 4, 5, VERSIONS.max] {
            let (topics, want): (Vec<_>, Vec<_>) = cases.iter().cloned().unzip();
            let r = respond(&ctx(&f, v), request(topics, false)).await;
            assert_encodes(&r, v);
            for (t, want) in r.topics.iter().zip(&want) {
                assert_eq!(t.error_code, want.code(), "{} at v{v}", t.name.as_str());
                assert_eq!(
                    t.error_message.as_ref().is_some_and(|m| !m.is_empty()),
                    v >= 1,
                    "{} at v{v}: a message from v1",
                    t.name.as_str()
                );
                assert_eq!((t.num_partitions, t.replication_factor), (-1, -1));
            }
        }
        for name in [
            "bad name!",
            "a_b",
            "p0",
            "rf3",
            "c1",
            "c2",
            "c3",
            "a1",
            "a2",
            "a3",
            "a4",
        ] {
            assert!(f.broker.metadata_view().topic(name).is_none(), "{name}");
        }
    }

    #[tokio::test]
    async fn duplicate_names_in_one_request_fail_together() {
        let f = Fixture::new().await;
        let r = respond(
            &ctx(&f, 5),
            request(
                vec![
                    topic("dup", 1, 1, &[]),
                    topic("dup", 2, 1, &[]),
                    topic("ok", 1, 1, &[]),
                ],
                false,
            ),
        )
        .await;
        let codes: Vec<i16> = r.topics.iter().map(|t| t.error_code).collect();
        assert_eq!(
            codes,
            vec![E::InvalidRequest.code(), E::InvalidRequest.code(), 0]
        );
        assert!(f.broker.metadata_view().topic("dup").is_none());
        assert!(f.broker.metadata_view().topic("ok").is_some());
    }
}
