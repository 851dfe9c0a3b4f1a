//! Metadata (key 3), v0–v13: brokers on the client's listener, topics with leaders, epochs,
//! replicas, ISR; auto-creates requested topics when allowed.
//!
//! Authorization (Kafka's): topics the principal may not DESCRIBE are left out of an
//! all-topics answer and answered TOPIC_AUTHORIZATION_FAILED when named; auto-creation needs
//! CREATE on the cluster or on the topic.

use super::{sb, topic_name};
use crate::broker::BrokerError;
use crate::kafka::authz::{Authz, Resource, OMITTED};
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::metadata::{MetadataImage, TopicImage};
use crate::security::acl::Operation;
use crate::types::TopicName;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::ResponseError as E;
use std::sync::Arc;

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
    let authz = Authz::new(ctx);
    let denied = E::TopicAuthorizationFailed.code();
    let mut topics = Vec::new();
    match requested {
        None => {
            for t in image.topics.values() {
                if authz.topic(Operation::Describe, t.name.as_str()) {
                    topics.push(topic_entry(v, &image, t, ctx));
                }
            }
        }
        Some(list) => {
            for rt in list {
                let by_id = rt.name.is_none() && !rt.topic_id.is_nil();
                if by_id {
                    match image.topic_by_id(&crate::types::TopicId(rt.topic_id)) {
                        // Topic ids are not secret: Kafka answers with the id, without a name.
                        Some(t) if !authz.topic(Operation::Describe, t.name.as_str()) => {
                            topics.push(error_topic(v, None, rt.topic_id, denied))
                        }
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
                if !authz.topic(Operation::Describe, &name) {
                    topics.push(error_topic(v, Some(&name), uuid::Uuid::nil(), denied));
                    continue;
                }
                if image.topic(&name).is_none()
                    && allow_auto_create
                    && !(authz.cluster(Operation::Create) || authz.topic(Operation::Create, &name))
                {
                    topics.push(error_topic(v, Some(&name), uuid::Uuid::nil(), denied));
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
        // Only a controller the client can reach: one listed with its endpoints. A node that
        // serves before its own registration is applied (just started) says "no controller"
        // (-1), so clients ask again soon instead of waiting for a broker they cannot find.
        r.controller_id = BrokerId(
            broker
                .controller_id()
                .map(|n| n.0)
                .filter(|id| r.brokers.iter().any(|b| b.node_id.0 == *id))
                .unwrap_or(-1),
        );
    }
    if (8..=10).contains(&v) {
        r.cluster_authorized_operations =
            authz.cluster_operations(req.include_cluster_authorized_operations);
    }
    if v >= 8 && req.include_topic_authorized_operations {
        // Kafka sets it on every topic of the answer, errors included.
        for t in &mut topics {
            let name = t.name.as_ref().map_or("", |n| n.0.as_str());
            t.topic_authorized_operations = authz.operations(Resource::Topic, name, true);
        }
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
        t.topic_authorized_operations = OMITTED;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;

    /// (index, error, leader, replicas, ISR)
    type PartitionRow = (i32, i16, i32, Vec<i32>, Vec<i32>);

    fn named(names: &[&str], auto_create: bool) -> MetadataRequest {
        let mut r = MetadataRequest::default();
        r.topics = Some(
            names
                .iter()
                .map(|n| {
                    let mut t = MetadataRequestTopic::default();
                    t.name = Some(topic_name(n));
                    t
                })
                .collect(),
        );
        r.allow_auto_topic_creation = auto_create;
        r
    }

    fn all(v: i16) -> MetadataRequest {
        let mut r = MetadataRequest::default();
        // v0 has no null: an empty list means all topics.
        r.topics = if v == 0 { Some(Vec::new()) } else { None };
        r
    }

    fn by_id(id: uuid::Uuid) -> MetadataRequest {
        let mut t = MetadataRequestTopic::default();
        t.name = None;
        t.topic_id = id;
        let mut r = MetadataRequest::default();
        r.topics = Some(vec![t]);
        r.allow_auto_topic_creation = false;
        r
    }

    fn topic<'a>(r: &'a MetadataResponse, name: &str) -> &'a MetadataResponseTopic {
        r.topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == name))
            .unwrap_or_else(|| panic!("{name} in the response"))
    }

    #[tokio::test]
    async fn all_topics_with_brokers_and_version_dependent_fields() {
        let f = Fixture::new().await;
        f.topic("t", 2, &[]).await;
        let image = f.broker.metadata_view();
        let ti = image.topic("t").expect("t");
        for v in VERSIONS.min..=VERSIONS.max {
            let r = respond(&ctx(&f, v), all(v)).await;
            assert_encodes(&r, v);
            let brokers: Vec<(i32, &str, i32)> = r
                .brokers
                .iter()
                .map(|b| (b.node_id.0, b.host.as_str(), b.port))
                .collect();
            assert_eq!(brokers, vec![(1, "127.0.0.1", 9092)], "v{v}");
            assert_eq!(
                r.cluster_id.as_ref().map(|s| s.as_str()),
                (v >= 2).then_some("test-cluster"),
                "v{v}"
            );
            if v >= 1 {
                assert_eq!(r.controller_id, BrokerId(1));
            }
            assert_eq!(r.topics.len(), 1, "v{v}");
            let t = topic(&r, "t");
            assert_eq!(t.error_code, 0);
            assert!(!t.is_internal);
            assert_eq!(
                t.topic_id,
                if v >= 10 { ti.id.0 } else { uuid::Uuid::nil() }
            );
            let parts: Vec<PartitionRow> = t
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition_index,
                        p.error_code,
                        p.leader_id.0,
                        p.replica_nodes.iter().map(|b| b.0).collect(),
                        p.isr_nodes.iter().map(|b| b.0).collect(),
                    )
                })
                .collect();
            assert_eq!(
                parts,
                vec![(0, 0, 1, vec![1], vec![1]), (1, 0, 1, vec![1], vec![1])],
                "v{v}"
            );
            for (p, pi) in t.partitions.iter().zip(&ti.partitions) {
                let want = if v >= 7 { pi.leader_epoch } else { -1 };
                assert_eq!(p.leader_epoch, want, "v{v}");
                assert!(p.offline_replicas.is_empty());
            }
        }
    }

    #[tokio::test]
    async fn an_empty_list_means_none_from_v1() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        let mut req = MetadataRequest::default();
        req.topics = Some(Vec::new());
        let r = respond(&ctx(&f, 1), req).await;
        assert!(r.topics.is_empty());
        assert_eq!(r.brokers.len(), 1);
    }

    #[tokio::test]
    async fn unknown_topics_auto_create_only_when_allowed() {
        let f = Fixture::new().await;
        // v4+: the request decides.
        let r = respond(&ctx(&f, 9), named(&["nope"], false)).await;
        assert_encodes(&r, 9);
        let t = topic(&r, "nope");
        assert_eq!(t.error_code, E::UnknownTopicOrPartition.code());
        assert!(t.partitions.is_empty());
        assert!(f.broker.metadata_view().topic("nope").is_none());
        let r = respond(&ctx(&f, 9), named(&["auto"], true)).await;
        let t = topic(&r, "auto");
        assert_eq!((t.error_code, t.partitions.len()), (0, 1));
        assert!(f.broker.metadata_view().topic("auto").is_some());
        // Before v4 a named request always auto-creates.
        let r = respond(&ctx(&f, 3), named(&["old"], false)).await;
        assert_eq!(topic(&r, "old").error_code, 0);
        // The broker setting wins over the request.
        let off = Fixture::with(&[("auto.create.topics.enable", "false")]).await;
        let r = respond(&ctx(&off, 1), named(&["x"], true)).await;
        assert_eq!(topic(&r, "x").error_code, E::UnknownTopicOrPartition.code());
        assert!(off.broker.metadata_view().topic("x").is_none());
    }

    #[tokio::test]
    async fn invalid_names_and_failed_auto_creation() {
        let f = Fixture::with(&[("default.replication.factor", "3")]).await;
        let r = respond(&ctx(&f, 9), named(&["bad name!", "new"], true)).await;
        assert_encodes(&r, 9);
        assert_eq!(
            topic(&r, "bad name!").error_code,
            E::InvalidTopicException.code()
        );
        // Fewer live brokers than default.replication.factor.
        assert_eq!(topic(&r, "new").error_code, E::LeaderNotAvailable.code());
        let image = f.broker.metadata_view();
        assert!(image.topic("bad name!").is_none() && image.topic("new").is_none());
    }

    #[tokio::test]
    async fn topics_by_id_from_v12() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        let id = f.broker.metadata_view().topic("t").expect("t").id.0;
        let r = respond(&ctx(&f, 12), by_id(id)).await;
        assert_encodes(&r, 12);
        assert_eq!(r.topics.len(), 1);
        assert_eq!(r.topics[0].name.as_ref().map(|n| n.as_str()), Some("t"));
        assert_eq!((r.topics[0].error_code, r.topics[0].topic_id), (0, id));
        let unknown = uuid::Uuid::from_u128(7);
        let r = respond(&ctx(&f, 13), by_id(unknown)).await;
        assert_encodes(&r, 13);
        let t = &r.topics[0];
        assert_eq!(t.error_code, E::UnknownTopicId.code());
        assert_eq!((t.name.clone(), t.topic_id), (None, unknown));
    }

    #[tokio::test]
    async fn the_offsets_topic_is_internal() {
        let f = Fixture::new().await;
        crate::kafka::handlers::test_util::coordinator(&f, "g").await;
        let r = respond(&ctx(&f, 1), named(&["__consumer_offsets"], false)).await;
        let t = topic(&r, "__consumer_offsets");
        assert!(t.is_internal);
        assert_eq!(t.partitions.len(), 2);
    }

    /// Kafka auto-creates `__consumer_offsets` with the offsets topic settings (its partition
    /// count, compacted), whoever asks first; a Metadata request for it must not create it as
    /// an ordinary topic (one partition, `cleanup.policy=delete`: committed offsets would then
    /// be deleted by retention).
    #[tokio::test]
    async fn metadata_auto_creates_the_offsets_topic_as_the_coordinator_would() {
        let f = Fixture::new().await;
        let r = respond(&ctx(&f, 9), named(&["__consumer_offsets"], true)).await;
        assert_eq!(topic(&r, "__consumer_offsets").error_code, 0);
        let image = f.broker.metadata_view();
        let t = image.topic("__consumer_offsets").expect("created");
        assert_eq!(t.partitions.len(), 2, "offsets.topic.num.partitions");
        assert_eq!(
            t.configs.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
        // An internal topic, so whatever auto.create.topics.enable says (as in Kafka).
        let off = Fixture::with(&[("auto.create.topics.enable", "false")]).await;
        let r = respond(&ctx(&off, 4), named(&["__consumer_offsets"], true)).await;
        assert_eq!(topic(&r, "__consumer_offsets").partitions.len(), 2);
    }

    /// librdkafka 0081 DescribeTopics / DescribeCluster (KIP-430): asked for, the topic and
    /// cluster operations are every one that applies (no authorizer); otherwise "omitted".
    #[tokio::test]
    async fn authorized_operations_when_asked() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        for v in 8..=VERSIONS.max {
            for asked in [false, true] {
                let mut req = named(&["t", "missing"], false);
                req.include_topic_authorized_operations = asked;
                if v <= 10 {
                    req.include_cluster_authorized_operations = asked;
                }
                let r = respond(&ctx(&f, v), req).await;
                assert_encodes(&r, v);
                let want = if asked { 3576 } else { i32::MIN };
                assert_eq!(topic(&r, "t").topic_authorized_operations, want, "v{v}");
                assert_eq!(topic(&r, "missing").topic_authorized_operations, want);
                if v <= 10 {
                    let want = if asked { 8096 } else { i32::MIN };
                    assert_eq!(r.cluster_authorized_operations, want, "v{v}");
                }
            }
        }
    }
}
