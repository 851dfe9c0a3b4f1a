//! Metadata (key 3), v0–v13: brokers on the client's listener, topics with leaders, epochs,
//! replicas, ISR; auto-creates requested topics when allowed.

use super::{sb, topic_name};
use crate::broker::BrokerError;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::metadata::{MetadataImage, TopicImage};
use crate::types::TopicName;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::ResponseError as E;
use std::sync::Arc;

const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// The versions of Metadata this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 13);

/// Answers one Metadata request.
pub(crate) async fn handle(ctx: RequestContext, req: MetadataRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(ctx: &RequestContext, req: MetadataRequest) -> MetadataResponse {
    let v = ctx.api_version;
    let broker = &ctx.broker;
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested: Option<Vec<_>> = match req.topics {
        None => None,
        Some(t) if t.is_empty() && v == 0 => None,
        Some(t) => Some(t),
    };
    let allow_auto_create = v < 4 || req.allow_auto_topic_creation;
    let mut image = broker.metadata_view();
    let mut topics = Vec::new();
    match requested {
        None => {
            for t in image.topics.values() {
                topics.push(topic_entry(v, &image, t, ctx));
            }
        }
        Some(list) => {
            for rt in list {
                let by_id = rt.name.is_none() && !rt.topic_id.is_nil();
                if by_id {
                    match image.topic_by_id(&crate::types::TopicId(rt.topic_id)) {
                        Some(t) => topics.push(topic_entry(v, &image, t, ctx)),
                        None => {
                            topics.push(error_topic(v, None, rt.topic_id, E::UnknownTopicId.code()))
                        }
                    }
                    continue;
                }
                let Some(name) = rt.name else { continue };
                let name = name.0.to_string();
                if TopicName::new(&name).is_err() {
                    topics.push(error_topic(
                        v,
                        Some(&name),
                        uuid::Uuid::nil(),
                        E::InvalidTopicException.code(),
                    ));
                    continue;
                }
                if image.topic(&name).is_none() && allow_auto_create {
                    match broker.auto_create_topic(&name).await {
                        Ok(()) => image = broker.metadata_view(),
                        Err(BrokerError::UnknownTopicOrPartition) => {}
                        Err(e) => {
                            topics.push(error_topic(v, Some(&name), uuid::Uuid::nil(), code(&e)));
                            continue;
                        }
                    }
                }
                match image.topic(&name) {
                    Some(t) => topics.push(topic_entry(v, &image, t, ctx)),
                    None => topics.push(error_topic(
                        v,
                        Some(&name),
                        uuid::Uuid::nil(),
                        E::UnknownTopicOrPartition.code(),
                    )),
                }
            }
        }
    }
    let mut r = MetadataResponse::default();
    r.brokers = brokers(&image, &ctx.listener, v);
    if v >= 2 {
        r.cluster_id = image.cluster_id.as_deref().map(sb);
    }
    if v >= 1 {
        r.controller_id = BrokerId(broker.controller_id().map_or(-1, |n| n.0));
    }
    if (8..=10).contains(&v) {
        r.cluster_authorized_operations = AUTHORIZED_OPERATIONS_OMITTED;
    }
    r.topics = topics;
    r
}

fn brokers(image: &MetadataImage, listener: &str, v: i16) -> Vec<MetadataResponseBroker> {
    image
        .live_brokers()
        .filter_map(|b| {
            let ep = b.endpoints.iter().find(|e| e.listener == listener)?;
            let mut m = MetadataResponseBroker::default();
            m.node_id = BrokerId(b.node_id.0);
            m.host = sb(&ep.host);
            m.port = i32::from(ep.port);
            if v >= 1 {
                m.rack = b.rack.as_deref().map(sb);
            }
            Some(m)
        })
        .collect()
}

fn error_topic(v: i16, name: Option<&str>, id: uuid::Uuid, error: i16) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.error_code = error;
    t.name = name.map(topic_name);
    if v >= 10 {
        t.topic_id = id;
    }
    if v >= 8 {
        t.topic_authorized_operations = AUTHORIZED_OPERATIONS_OMITTED;
    }
    t
}

fn topic_entry(
    v: i16,
    image: &MetadataImage,
    t: &Arc<TopicImage>,
    _ctx: &RequestContext,
) -> MetadataResponseTopic {
    let mut out = error_topic(v, Some(t.name.as_str()), t.id.0, 0);
    if v >= 1 {
        out.is_internal = t.name.is_internal() && t.name.as_str() == "__consumer_offsets";
    }
    let live = |n: &crate::types::NodeId| image.brokers.get(n).is_some_and(|b| !b.fenced);
    out.partitions = t
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut mp = MetadataResponsePartition::default();
            mp.partition_index = i as i32;
            mp.error_code = if p.leader.is_some() {
                0
            } else {
                E::LeaderNotAvailable.code()
            };
            mp.leader_id = BrokerId(p.leader.map_or(-1, |l| l.0));
            if v >= 7 {
                mp.leader_epoch = p.leader_epoch;
            }
            mp.replica_nodes = p.replicas.iter().map(|n| BrokerId(n.0)).collect();
            mp.isr_nodes = p.isr.iter().map(|n| BrokerId(n.0)).collect();
            if v >= 5 {
                mp.offline_replicas = p
                    .replicas
                    .iter()
                    .filter(|n| !live(n))
                    .map(|n| BrokerId(n.0))
                    .collect();
            }
            mp
        })
        .collect();
    out
}
