//! AlterConfigs (key 33), v0–v2: replaces a topic's overrides (legacy, non-incremental).

use super::{sb, RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::broker::BrokerError;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
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
    for res in req.resources {
        let name = res.resource_name.to_string();
        let result = match res.resource_type {
            RESOURCE_TOPIC => {
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
                        "Null value not supported for topic configs: {k}"
                    ))),
                    None => {
                        ctx.broker
                            .replace_topic_configs(&name, configs, req.validate_only)
                            .await
                    }
                }
            }
            RESOURCE_BROKER => Err(BrokerError::InvalidRequest(
                "Dynamic broker configs are not supported; set them in server.properties".into(),
            )),
            other => Err(BrokerError::InvalidRequest(format!(
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
