//! DeleteTopics (key 20), v1–v6: by name (v1–v5) or by name or topic id (v6).

use super::{sb, topic_name};
use crate::broker::BrokerError;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::types::TopicId;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};

/// The versions of DeleteTopics this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(1, 6);

/// Answers one DeleteTopics request.
pub(crate) async fn handle(ctx: RequestContext, req: DeleteTopicsRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let v = ctx.api_version;
    // (name as given, topic id as given)
    let targets: Vec<(Option<String>, uuid::Uuid)> = if v >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let mut r = DeleteTopicsResponse::default();
    for (name, id) in targets {
        let image = ctx.broker.metadata_view();
        let resolved = match (&name, id.is_nil()) {
            (Some(n), _) => Ok(n.clone()),
            (None, false) => image
                .topic_by_id(&TopicId(id))
                .map(|t| t.name.to_string())
                .ok_or(BrokerError::UnknownTopicId),
            (None, true) => Err(BrokerError::InvalidRequest(
                "neither a topic name nor a topic id".into(),
            )),
        };
        let result = match &resolved {
            Ok(n) => ctx.broker.delete_topic(n).await,
            Err(e) => Err(e.clone()),
        };
        let mut tr = DeletableTopicResult::default();
        let shown_name = name.clone().or_else(|| resolved.as_ref().ok().cloned());
        tr.name = shown_name.as_deref().map(topic_name);
        match result {
            Ok(topic_id) => {
                if v >= 6 {
                    tr.topic_id = topic_id.0;
                }
            }
            Err(e) => {
                tr.error_code = code(&e);
                if v >= 6 {
                    tr.topic_id = id;
                }
                if v >= 5 {
                    tr.error_message = Some(sb(&e.to_string()));
                }
            }
        }
        r.responses.push(tr);
    }
    r
}
