//! CreateTopics (key 19), v2–v7: partitions / replication factor or explicit assignments,
//! configs, validate-only; v5+ returns the resulting configs.

use super::{sb, topic_name};
use crate::broker::{BrokerError, CreateTopicSpec};
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use std::collections::{BTreeMap, HashMap};

/// The versions of CreateTopics this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(2, 7);

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
    let mut r = CreateTopicsResponse::default();
    for t in req.topics {
        let name = t.name.0.to_string();
        let result = if counts.get(&name).copied().unwrap_or(0) > 1 {
            Err(BrokerError::InvalidRequest(format!(
                "Create topics request from client contains multiple entries for topic {name}"
            )))
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
                ctx.broker
                    .create_topics(vec![spec], req.validate_only)
                    .await
                    .pop()
                    .unwrap_or_else(|| Err(BrokerError::Internal("no result".into())))
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
                    tr.configs = Some(described_configs(ctx, &name));
                }
            }
            Err(e) => {
                tr.error_code = code(&e);
                tr.error_message = Some(sb(&e.to_string()));
                if v >= 5 {
                    tr.num_partitions = -1;
                    tr.replication_factor = -1;
                }
            }
        }
        r.topics.push(tr);
    }
    r
}

fn described_configs(ctx: &RequestContext, topic: &str) -> Vec<CreatableTopicConfigs> {
    ctx.broker
        .describe_topic_configs(topic, None)
        .unwrap_or_default()
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
