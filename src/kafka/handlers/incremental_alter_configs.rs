//! IncrementalAlterConfigs (key 44), v0–v1: SET / DELETE / APPEND / SUBTRACT on topic configs.

use super::{sb, RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::broker::{BrokerError, IncrementalOp};
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
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
    for res in req.resources {
        let name = res.resource_name.to_string();
        let result = match res.resource_type {
            RESOURCE_TOPIC => match ops(res.configs) {
                Ok(ops) => {
                    ctx.broker
                        .incremental_alter_topic_configs(&name, ops, req.validate_only)
                        .await
                }
                Err(e) => Err(e),
            },
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
