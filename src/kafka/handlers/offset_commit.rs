//! OffsetCommit (key 8), v0–v9. Answered from a deferred task once the commit is durable
//! (WAL fsync + high watermark of the offsets partition). v0 (which Kafka 2.2.1 kept in
//! ZooKeeper) and v1 land in the group store like every other version and are readable
//! through every OffsetFetch version; v1's per-partition commit timestamp is not used (the
//! commit time is the broker's, as for v2+).
//!
//! Authorization (Kafka's): READ on the group, else every partition gets
//! GROUP_AUTHORIZATION_FAILED; READ on each topic, else its partitions get
//! TOPIC_AUTHORIZATION_FAILED (before the partition's existence is looked at).

use super::topic_name;
use crate::broker::{BrokerError, OffsetCommitEntry};
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, ResponseKind};

/// The versions of OffsetCommit this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 9);

pub(crate) async fn handle(ctx: RequestContext, req: OffsetCommitRequest) -> Reply {
    // Checked and ordered before the connection reads its next request; only the wait for
    // durability is deferred. (Kafka handles one request per connection at a time, so a
    // client's pipelined commits apply in the order it sent them.)
    let pending = start(&ctx, req);
    Reply::Later(tokio::spawn(async move {
        Some(ResponseKind::OffsetCommit(pending.await))
    }))
}

fn start(
    ctx: &RequestContext,
    req: OffsetCommitRequest,
) -> impl std::future::Future<Output = OffsetCommitResponse> + Send + 'static {
    let v = ctx.api_version;
    let image = ctx.broker.metadata_view();
    let authz = Authz::new(ctx);
    let group_denied = !authz.group(Operation::Read, &req.group_id.0);
    // (topic, partition, precomputed error or index into the entries sent to the coordinator)
    let mut slots: Slots = Vec::new();
    let mut entries = Vec::new();
    for t in &req.topics {
        let topic = t.name.0.to_string();
        let topic_denied = !group_denied && !authz.topic(Operation::Read, &topic);
        for p in &t.partitions {
            let slot = if group_denied {
                Err(BrokerError::GroupAuthorizationFailed)
            } else if topic_denied {
                Err(BrokerError::TopicAuthorizationFailed)
            } else if image.partition(&topic, p.partition_index).is_none() {
                Err(BrokerError::UnknownTopicOrPartition)
            } else {
                entries.push(OffsetCommitEntry {
                    topic: topic.clone(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if v >= 6 { p.committed_leader_epoch } else { -1 },
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                });
                Ok(entries.len() - 1)
            };
            slots.push((topic.clone(), p.partition_index, slot));
        }
    }
    let instance = if v >= 7 {
        req.group_instance_id.as_ref().map(|s| s.to_string())
    } else {
        None
    };
    let (group_id, member_id, generation) = (
        req.group_id.0.to_string(),
        req.member_id.to_string(),
        req.generation_id_or_member_epoch,
    );
    // The request frame is not kept while the commit waits to become durable.
    drop(req);
    let pending = (!entries.is_empty()).then(|| {
        ctx.broker.commit_offsets(
            &group_id,
            &member_id,
            instance.as_deref(),
            generation,
            entries,
        )
    });
    async move {
        let results = match pending {
            None => Ok(Vec::new()),
            Some(p) => p.await,
        };
        respond(slots, results)
    }
}

/// Per requested partition, in request order: (topic, partition, the index of its entry in
/// the commit, or the error it got before the commit).
pub(super) type Slots = Vec<(String, i32, Result<usize, BrokerError>)>;

/// The error code of each requested partition, grouped by topic in request order (shared with
/// TxnOffsetCommit).
pub(super) fn slot_codes(
    slots: Slots,
    results: &Result<Vec<Result<(), BrokerError>>, BrokerError>,
) -> Vec<(String, Vec<(i32, i16)>)> {
    let mut out: Vec<(String, Vec<(i32, i16)>)> = Vec::new();
    for (topic, partition, slot) in slots {
        let err = match (slot, results) {
            (Err(e), _) => Some(e),
            (Ok(_), Err(e)) => Some(e.clone()),
            (Ok(i), Ok(rs)) => rs.get(i).and_then(|x| x.clone().err()),
        };
        let c = err.as_ref().map_or(0, code);
        match out.last_mut() {
            Some((t, parts)) if *t == topic => parts.push((partition, c)),
            _ => out.push((topic, vec![(partition, c)])),
        }
    }
    out
}

fn respond(
    slots: Slots,
    results: Result<Vec<Result<(), BrokerError>>, BrokerError>,
) -> OffsetCommitResponse {
    let mut r = OffsetCommitResponse::default();
    for (topic, parts) in slot_codes(slots, &results) {
        let mut tr = OffsetCommitResponseTopic::default();
        tr.name = topic_name(&topic);
        for (partition, error_code) in parts {
            let mut pr = OffsetCommitResponsePartition::default();
            pr.partition_index = partition;
            pr.error_code = error_code;
            tr.partitions.push(pr);
        }
        r.topics.push(tr);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::sb;
    use crate::kafka::handlers::test_util::{
        assert_encodes, coordinator, ctx, join, join_request, later, replace_static_member,
        stable_group, stable_static_group,
    };
    use kafka_protocol::messages::GroupId;
    use kafka_protocol::ResponseError as E;

    fn request(
        group: &str,
        member: &str,
        generation: i32,
        parts: &[(&str, i32, i64, Option<&str>)],
    ) -> OffsetCommitRequest {
        let mut r = OffsetCommitRequest::default();
        r.group_id = GroupId(sb(group));
        r.member_id = sb(member);
        r.generation_id_or_member_epoch = generation;
        for (t, p, o, meta) in parts {
            let mut pr = kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition::default();
            pr.partition_index = *p;
            pr.committed_offset = *o;
            pr.committed_leader_epoch = 4;
            pr.committed_metadata = meta.map(sb);
            if r.topics.last().is_none_or(|x| x.name.as_str() != *t) {
                let mut tr =
                    kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic::default();
                tr.name = topic_name(t);
                r.topics.push(tr);
            }
            if let Some(tr) = r.topics.last_mut() {
                tr.partitions.push(pr);
            }
        }
        r
    }

    async fn commit(f: &Fixture, v: i16, req: OffsetCommitRequest) -> OffsetCommitResponse {
        match later(handle(ctx(f, v), req).await).await {
            ResponseKind::OffsetCommit(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn codes(r: &OffsetCommitResponse) -> Vec<(&str, i32, i16)> {
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.name.as_str(), p.partition_index, p.error_code))
            })
            .collect()
    }

    fn stored(f: &Fixture, group: &str, topic: &str, p: i32) -> Option<(i64, i32, String)> {
        let r = f
            .broker
            .fetch_offsets(group, Some(vec![(topic.to_owned(), vec![p])]))
            .expect("fetch");
        r[0].1[0]
            .1
            .as_ref()
            .map(|c| (c.offset, c.leader_epoch, c.metadata.clone()))
    }

    /// librdkafka 0030: a newer commit must not be overwritten by an older one. Commits are
    /// ordered when they are made, not when their futures first run: here the second commit's
    /// future runs first, and the first commit still lands before it.
    #[tokio::test]
    async fn commits_apply_in_the_order_they_were_made() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        let (m, gen) = stable_group(&f, "g", &["t"]).await;
        let entry = |o: i64| {
            vec![OffsetCommitEntry {
                topic: "t".into(),
                partition: 0,
                offset: o,
                leader_epoch: -1,
                metadata: None,
            }]
        };
        let older = f.broker.commit_offsets("g", &m, None, gen, entry(49));
        let newer = f.broker.commit_offsets("g", &m, None, gen, entry(50));
        let newer = tokio::spawn(newer);
        tokio::task::yield_now().await;
        let older = tokio::spawn(older);
        for r in [newer.await, older.await] {
            assert!(r.expect("task").expect("commit").iter().all(Result::is_ok));
        }
        assert_eq!(stored(&f, "g", "t", 0).map(|s| s.0), Some(50));
    }

    /// Pipelined OffsetCommits on one connection (the handler is called in request order and
    /// the answers are awaited afterwards) leave the last one committed, on a runtime where
    /// the deferred parts run in parallel.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pipelined_commits_leave_the_last_one() {
        let f = Fixture::new().await;
        f.topic("t", 2, &[]).await;
        let (m, gen) = stable_group(&f, "g", &["t"]).await;
        for round in 0..30i64 {
            let mut replies = Vec::new();
            for k in 0..4 {
                let o = round * 4 + k;
                let req = request("g", &m, gen, &[("t", 0, o, None), ("t", 1, o, None)]);
                replies.push(handle(ctx(&f, 8), req).await);
            }
            for r in replies {
                let ResponseKind::OffsetCommit(r) = later(r).await else {
                    panic!("not an OffsetCommit response")
                };
                assert_eq!(codes(&r), vec![("t", 0, 0), ("t", 1, 0)]);
            }
            for p in 0..2 {
                assert_eq!(
                    stored(&f, "g", "t", p).map(|s| s.0),
                    Some(round * 4 + 3),
                    "round {round} partition {p}"
                );
            }
        }
    }

    #[tokio::test]
    async fn standalone_commits_are_stored_with_epoch_from_v6() {
        let f = Fixture::new().await;
        f.topic("t", 2, &[]).await;
        coordinator(&f, "g").await;
        for v in VERSIONS.min..=VERSIONS.max {
            let g = format!("g{v}");
            let r = commit(
                &f,
                v,
                request(&g, "", -1, &[("t", 0, 10, Some("m")), ("t", 1, 20, None)]),
            )
            .await;
            assert_encodes(&r, v);
            assert_eq!(codes(&r), vec![("t", 0, 0), ("t", 1, 0)], "v{v}");
            let epoch = if v >= 6 { 4 } else { -1 };
            assert_eq!(
                stored(&f, &g, "t", 0),
                Some((10, epoch, "m".into())),
                "v{v}"
            );
            assert_eq!(stored(&f, &g, "t", 1), Some((20, epoch, String::new())));
        }
    }

    #[tokio::test]
    async fn partition_errors_do_not_stop_the_others() {
        let f = Fixture::with(&[("offset.metadata.max.bytes", "4")]).await;
        f.topic("t", 1, &[]).await;
        coordinator(&f, "g").await;
        let r = commit(
            &f,
            8,
            request(
                "g",
                "",
                -1,
                &[
                    ("t", 0, 1, Some("ok")),
                    ("t", 5, 1, None),
                    ("nope", 0, 1, None),
                    ("t", 0, 2, Some("too long")),
                ],
            ),
        )
        .await;
        assert_encodes(&r, 8);
        assert_eq!(
            codes(&r),
            vec![
                ("t", 0, 0),
                ("t", 5, E::UnknownTopicOrPartition.code()),
                ("nope", 0, E::UnknownTopicOrPartition.code()),
                ("t", 0, E::OffsetMetadataTooLarge.code()),
            ]
        );
        assert_eq!(stored(&f, "g", "t", 0).map(|s| s.0), Some(1));
    }

    #[tokio::test]
    async fn members_commit_within_their_generation() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        let (m, gen) = stable_group(&f, "g", &["t"]).await;
        let r = commit(&f, 5, request("g", &m, gen, &[("t", 0, 3, None)])).await;
        assert_eq!(codes(&r), vec![("t", 0, 0)]);
        assert_eq!(stored(&f, "g", "t", 0).map(|s| s.0), Some(3));
        let long = "x".repeat(1025);
        for (req, want) in [
            (
                request("g", &m, gen + 1, &[("t", 0, 4, None)]),
                E::IllegalGeneration,
            ),
            (
                request("g", "ghost", gen, &[("t", 0, 4, None)]),
                E::UnknownMemberId,
            ),
            // A generation for a group that does not exist.
            (
                request("nope", "m", 1, &[("t", 0, 4, None)]),
                E::IllegalGeneration,
            ),
            (
                request(&long, "", -1, &[("t", 0, 4, None)]),
                E::InvalidGroupId,
            ),
        ] {
            let r = commit(&f, 5, req).await;
            assert_eq!(codes(&r), vec![("t", 0, want.code())]);
        }
        assert_eq!(stored(&f, "g", "t", 0).map(|s| s.0), Some(3));
    }

    #[tokio::test]
    async fn not_coordinator_and_rebalance_in_progress() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        let r = commit(&f, 2, request("g", "", -1, &[("t", 0, 1, None)])).await;
        assert_eq!(codes(&r), vec![("t", 0, E::NotCoordinator.code())]);
        coordinator(&f, "g").await;
        // Joined but not synced: the generation is not complete yet.
        let j = join(&f, 3, join_request("g", "", &["t"])).await;
        let r = commit(
            &f,
            3,
            request("g", &j.member_id, j.generation_id, &[("t", 0, 1, None)]),
        )
        .await;
        assert_eq!(codes(&r), vec![("t", 0, E::RebalanceInProgress.code())]);
    }

    #[tokio::test]
    async fn a_replaced_static_member_is_fenced_from_v7() {
        let f = Fixture::new().await;
        f.topic("t", 1, &[]).await;
        let (old, gen) = stable_static_group(&f, "s", "inst", &["t"]).await;
        let new = replace_static_member(&f, "s", "inst").await;
        let mut req = request("s", &old, gen, &[("t", 0, 1, None)]);
        req.group_instance_id = Some(sb("inst"));
        let r = commit(&f, 7, req.clone()).await;
        assert_encodes(&r, 7);
        assert_eq!(codes(&r), vec![("t", 0, E::FencedInstanceId.code())]);
        let r = commit(&f, 6, req).await;
        assert_eq!(codes(&r), vec![("t", 0, E::UnknownMemberId.code())]);
        let mut ok = request("s", &new, gen, &[("t", 0, 9, None)]);
        ok.group_instance_id = Some(sb("inst"));
        assert_eq!(codes(&commit(&f, 9, ok).await), vec![("t", 0, 0)]);
    }
}
