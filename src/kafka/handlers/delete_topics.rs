//! DeleteTopics (key 20), v0–v6: by name (v0–v5) or by name or topic id (v6).
//!
//! Authorization (Kafka's): DELETE on the topic, else TOPIC_AUTHORIZATION_FAILED (before its
//! existence is looked at); a topic named by id shows its name only to a principal that may
//! DESCRIBE it.

use super::{sb, topic_name};
use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use crate::types::TopicId;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};

/// The versions of DeleteTopics this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 6);

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
    let authz = Authz::new(ctx);
    let mut quota = crate::kafka::mutation_quota::MutationQuota::new(ctx, v >= 5);
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
            Ok(n) if !authz.topic(Operation::Delete, n) => {
                Err(BrokerError::TopicAuthorizationFailed)
            }
            Ok(n) => match quota.check() {
                Err(e) => Err(e),
                Ok(()) => {
                    let partitions = image.topic(n).map_or(0, |t| t.partitions.len());
                    let res = ctx.broker.delete_topic(n).await;
                    if res.is_ok() {
                        quota.record(partitions);
                    }
                    res
                }
            },
            Err(e) => Err(e.clone()),
        };
        let mut tr = DeletableTopicResult::default();
        let shown_name = name.clone().or_else(|| {
            resolved
                .as_ref()
                .ok()
                .filter(|n| authz.topic(Operation::Describe, n))
                .cloned()
        });
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
    if v >= 1 {
        r.throttle_time_ms = quota.throttle_ms();
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::ResponseError as E;

    fn by_names(names: &[&str]) -> DeleteTopicsRequest {
        let mut r = DeleteTopicsRequest::default();
        r.topic_names = names.iter().map(|n| topic_name(n)).collect();
        r.timeout_ms = 5_000;
        r
    }

    fn by_states(states: &[(Option<&str>, uuid::Uuid)]) -> DeleteTopicsRequest {
        let mut r = DeleteTopicsRequest::default();
        r.topics = states
            .iter()
            .map(|(n, id)| {
                let mut s = DeleteTopicState::default();
                s.name = n.map(topic_name);
                s.topic_id = *id;
                s
            })
            .collect();
        r.timeout_ms = 5_000;
        r
    }

    #[tokio::test]
    async fn deletes_by_name_before_v6() {
        let f = Fixture::new().await;
        for v in 0..=5 {
            let name = format!("t{v}");
            f.topic(&name, 1, &[]).await;
            let r = respond(&ctx(&f, v), by_names(&[&name, "nope"])).await;
            assert_encodes(&r, v);
            let ok = &r.responses[0];
            assert_eq!(ok.name.as_ref().map(|n| n.as_str()), Some(name.as_str()));
            assert_eq!(ok.error_code, 0);
            assert!(ok.topic_id.is_nil(), "no topic ids before v6");
            assert!(f.broker.metadata_view().topic(&name).is_none());
            let missing = &r.responses[1];
            assert_eq!(missing.error_code, E::UnknownTopicOrPartition.code());
            assert_eq!(missing.name.as_ref().map(|n| n.as_str()), Some("nope"));
            // Messages only from v5.
            assert_eq!(missing.error_message.is_some(), v >= 5, "v{v}");
        }
    }

    #[tokio::test]
    async fn deletes_by_name_or_id_at_v6() {
        let f = Fixture::new().await;
        f.topic("a", 1, &[]).await;
        f.topic("b", 1, &[]).await;
        let image = f.broker.metadata_view();
        let a_id = image.topic("a").expect("a").id.0;
        let b_id = image.topic("b").expect("b").id.0;
        let unknown = uuid::Uuid::from_u128(42);
        let r = respond(
            &ctx(&f, 6),
            by_states(&[
                (Some("a"), uuid::Uuid::nil()),
                (None, b_id),
                (None, unknown),
                (None, uuid::Uuid::nil()),
            ]),
        )
        .await;
        assert_encodes(&r, 6);
        let got: Vec<(Option<&str>, uuid::Uuid, i16)> = r
            .responses
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().map(|n| n.as_str()),
                    t.topic_id,
                    t.error_code,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("a"), a_id, 0),
                (Some("b"), b_id, 0),
                (None, unknown, E::UnknownTopicId.code()),
                (None, uuid::Uuid::nil(), E::InvalidRequest.code()),
            ]
        );
        assert!(r.responses[2].error_message.is_some());
        let image = f.broker.metadata_view();
        assert!(image.topic("a").is_none() && image.topic("b").is_none());
    }

    #[tokio::test]
    async fn deletion_can_be_disabled() {
        let f = Fixture::with(&[("delete.topic.enable", "false")]).await;
        f.topic("keep", 1, &[]).await;
        let r = respond(&ctx(&f, 4), by_names(&["keep"])).await;
        assert_eq!(r.responses[0].error_code, E::TopicDeletionDisabled.code());
        assert!(f.broker.metadata_view().topic("keep").is_some());
    }
}
