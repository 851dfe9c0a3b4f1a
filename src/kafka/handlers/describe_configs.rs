//! DescribeConfigs (key 32), v1–v4: topic configs with values, sources and synonyms; broker
//! configs (static).

use super::{sb, RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::broker::{BrokerError, ConfigEntryView};
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

/// The versions of DescribeConfigs this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(1, 4);

/// Answers one DescribeConfigs request.
pub(crate) async fn handle(ctx: RequestContext, req: DescribeConfigsRequest) -> Reply {
    Reply::now(respond(&ctx, req))
}

pub(crate) fn respond(
    ctx: &RequestContext,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let v = ctx.api_version;
    let mut r = DescribeConfigsResponse::default();
    for res in req.resources {
        let name = res.resource_name.to_string();
        let keys: Option<Vec<String>> = res
            .configuration_keys
            .map(|k| k.into_iter().map(|s| s.to_string()).collect());
        let entries = match res.resource_type {
            RESOURCE_TOPIC => ctx.broker.describe_topic_configs(&name, keys.as_deref()),
            RESOURCE_BROKER => ctx.broker.describe_broker_configs(&name, keys.as_deref()),
            8 => Ok(Vec::new()), // BROKER_LOGGER: no runtime loggers are exposed
            other => Err(BrokerError::InvalidRequest(format!(
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
