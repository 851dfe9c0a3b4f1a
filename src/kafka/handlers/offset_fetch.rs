//! OffsetFetch (key 9), v0–v9: one group (v0–v7) or several (v8+); null topics (v2+) = every
//! committed offset of the group. v0 (ZooKeeper-stored offsets in Kafka 2.2.1) reads the same
//! group store as v1. v7+ `require_stable` (KIP-447): a requested partition whose
//! transactional offsets still wait for their marker answers UNSTABLE_OFFSET_COMMIT, which
//! clients retry.
//!
//! Authorization (Kafka's): DESCRIBE on the group, else GROUP_AUTHORIZATION_FAILED; requested
//! topics the principal may not DESCRIBE get TOPIC_AUTHORIZATION_FAILED per partition, and
//! are left out of an all-topics answer.

use super::{sb, topic_name};
use crate::broker::{BrokerError, CommittedOffsetView, TopicResults};
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::security::acl::Operation;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse};

type Fetched = Result<TopicResults<Result<Option<CommittedOffsetView>, BrokerError>>, BrokerError>;
/// Requested partitions by topic (`None` = all).
type Requested = Option<Vec<(String, Vec<i32>)>>;
/// (partition, offset, leader epoch, metadata, error code) by topic.
type Rows = Vec<(String, Vec<(i32, i64, i32, String, i16)>)>;

/// The group's committed offsets for what the principal may see, and the rows of the
/// requested topics it may not (TOPIC_AUTHORIZATION_FAILED).
fn fetch(
    ctx: &RequestContext,
    authz: &Authz,
    group: &str,
    topics: Requested,
    require_stable: bool,
) -> (Fetched, Requested, Rows) {
    if !authz.group(Operation::Describe, group) {
        return (
            Err(BrokerError::GroupAuthorizationFailed),
            topics,
            Vec::new(),
        );
    }
    let denied_code = code(&BrokerError::TopicAuthorizationFailed);
    let mut denied = Vec::new();
    let topics = topics.map(|ts| {
        let (ok, no): (Vec<_>, Vec<_>) = ts
            .into_iter()
            .partition(|(t, _)| authz.topic(Operation::Describe, t));
        denied = no
            .into_iter()
            .map(|(t, ps)| {
                let rows = ps
                    .into_iter()
                    .map(|p| (p, -1, -1, String::new(), denied_code))
                    .collect();
                (t, rows)
            })
            .collect();
        ok
    });
    let all = topics.is_none();
    let mut res = if topics.as_ref().is_some_and(Vec::is_empty) {
        Ok(Vec::new())
    } else {
        ctx.broker
            .fetch_offsets_stable(group, topics.clone(), require_stable)
    };
    if let (true, Ok(found)) = (all, &mut res) {
        found.retain(|(t, _)| authz.topic(Operation::Describe, t));
    }
    (res, topics, denied)
}

/// Per-partition view: (partition, offset, leader epoch, metadata, error).
fn rows(res: &Fetched, requested: &Requested) -> Rows {
    match res {
        Ok(topics) => topics
            .iter()
            .map(|(t, ps)| {
                let parts = ps
                    .iter()
                    .map(|(p, c)| match c {
                        Ok(Some(c)) => (*p, c.offset, c.leader_epoch, c.metadata.clone(), 0),
                        Ok(None) => (*p, -1, -1, String::new(), 0),
                        Err(e) => (*p, -1, -1, String::new(), code(e)),
                    })
                    .collect();
                (t.clone(), parts)
            })
            .collect(),
        Err(e) => requested
            .iter()
            .flatten()
            .map(|(t, ps)| {
                (
                    t.clone(),
                    ps.iter()
                        .map(|p| (*p, -1, -1, String::new(), code(e)))
                        .collect(),
                )
            })
            .collect(),
    }
}

/// The versions of OffsetFetch this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 9);

/// Answers one OffsetFetch request.
pub(crate) async fn handle(ctx: RequestContext, req: OffsetFetchRequest) -> Reply {
    Reply::now(respond(&ctx, req))
}

pub(crate) fn respond(ctx: &RequestContext, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let v = ctx.api_version;
    let authz = Authz::new(ctx);
    let mut r = OffsetFetchResponse::default();
    if v >= 8 {
        for g in req.groups {
            let topics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let (res, requested, denied) =
                fetch(ctx, &authz, &g.group_id.0, topics, req.require_stable);
            let mut gr = OffsetFetchResponseGroup::default();
            gr.group_id = GroupId(g.group_id.0.clone());
            if let Err(e) = &res {
                gr.error_code = code(e);
            }
            for (t, parts) in rows(&res, &requested).into_iter().chain(denied) {
                let mut tr = OffsetFetchResponseTopics::default();
                tr.name = topic_name(&t);
                for (p, offset, epoch, metadata, err) in parts {
                    let mut pr = OffsetFetchResponsePartitions::default();
                    pr.partition_index = p;
                    pr.committed_offset = offset;
                    pr.committed_leader_epoch = epoch;
                    pr.metadata = Some(sb(&metadata));
                    pr.error_code = err;
                    tr.partitions.push(pr);
                }
                gr.topics.push(tr);
            }
            r.groups.push(gr);
        }
        return r;
    }
    let topics = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let (res, requested, denied) = fetch(
        ctx,
        &authz,
        &req.group_id.0,
        topics,
        v >= 7 && req.require_stable,
    );
    if let Err(e) = &res {
        if v >= 2 {
            r.error_code = code(e);
        }
    }
    for (t, parts) in rows(&res, &requested).into_iter().chain(denied) {
        let mut tr = OffsetFetchResponseTopic::default();
        tr.name = topic_name(&t);
        for (p, offset, epoch, metadata, err) in parts {
            let mut pr = OffsetFetchResponsePartition::default();
            pr.partition_index = p;
            pr.committed_offset = offset;
            if v >= 5 {
                pr.committed_leader_epoch = epoch;
            }
            pr.metadata = Some(sb(&metadata));
            pr.error_code = err;
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
    use crate::kafka::handlers::test_util::{assert_encodes, commit_standalone, coordinator, ctx};
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    use kafka_protocol::ResponseError as E;

    /// Requested partitions by topic.
    type Wanted<'a> = Option<&'a [(&'a str, &'a [i32])]>;

    fn single(group: &str, topics: Wanted<'_>) -> OffsetFetchRequest {
        let mut r = OffsetFetchRequest::default();
        r.group_id = GroupId(sb(group));
        r.topics = topics.map(|ts| {
            ts.iter()
                .map(|(t, ps)| {
                    let mut x = OffsetFetchRequestTopic::default();
                    x.name = topic_name(t);
                    x.partition_indexes = ps.to_vec();
                    x
                })
                .collect()
        });
        r
    }

    fn multi(groups: &[(&str, Wanted<'_>)]) -> OffsetFetchRequest {
        let mut r = OffsetFetchRequest::default();
        r.groups = groups
            .iter()
            .map(|(g, topics)| {
                let mut x = OffsetFetchRequestGroup::default();
                x.group_id = GroupId(sb(g));
                x.topics = topics.map(|ts| {
                    ts.iter()
                        .map(|(t, ps)| {
                            let mut y = OffsetFetchRequestTopics::default();
                            y.name = topic_name(t);
                            y.partition_indexes = ps.to_vec();
                            y
                        })
                        .collect()
                });
                x
            })
            .collect();
        r
    }

    type Row<'a> = (&'a str, i32, i64, i32, Option<&'a str>, i16);

    fn rows(r: &OffsetFetchResponse) -> Vec<Row<'_>> {
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    (
                        t.name.as_str(),
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.metadata.as_ref().map(|m| m.as_str()),
                        p.error_code,
                    )
                })
            })
            .collect()
    }

    fn group_rows(g: &OffsetFetchResponseGroup) -> Vec<Row<'_>> {
        g.topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    (
                        t.name.as_str(),
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.metadata.as_ref().map(|m| m.as_str()),
                        p.error_code,
                    )
                })
            })
            .collect()
    }

    async fn setup() -> Fixture {
        let f = Fixture::new().await;
        f.topic("t", 3, &[]).await;
        f.topic("u", 1, &[]).await;
        coordinator(&f, "g").await;
        let entries = vec![
            crate::broker::OffsetCommitEntry {
                topic: "t".into(),
                partition: 0,
                offset: 10,
                leader_epoch: 2,
                metadata: Some("m0".into()),
            },
            crate::broker::OffsetCommitEntry {
                topic: "t".into(),
                partition: 1,
                offset: 11,
                leader_epoch: 2,
                metadata: None,
            },
        ];
        f.broker
            .commit_offsets("g", "", None, -1, entries)
            .await
            .expect("commit");
        commit_standalone(&f, "h", &[("u", 0, 5)]).await;
        f
    }

    #[tokio::test]
    async fn requested_partitions_one_group_before_v8() {
        let f = setup().await;
        // v0 read ZooKeeper-stored offsets in Kafka 2.2.1: here the same group store.
        for v in 0..=7 {
            let r = respond(&ctx(&f, v), single("g", Some(&[("t", &[0, 1, 2])])));
            assert_encodes(&r, v);
            assert_eq!(r.error_code, 0);
            let epoch = if v >= 5 { 2 } else { -1 };
            assert_eq!(
                rows(&r),
                vec![
                    ("t", 0, 10, epoch, Some("m0"), 0),
                    ("t", 1, 11, epoch, Some(""), 0),
                    ("t", 2, -1, -1, Some(""), 0),
                ],
                "v{v}"
            );
        }
        // An unknown group has no offsets, and no error.
        let r = respond(&ctx(&f, 3), single("nope", Some(&[("t", &[0])])));
        assert_eq!(rows(&r), vec![("t", 0, -1, -1, Some(""), 0)]);
    }

    #[tokio::test]
    async fn null_topics_mean_every_committed_offset_from_v2() {
        let f = setup().await;
        for v in 2..=7 {
            let r = respond(&ctx(&f, v), single("g", None));
            assert_encodes(&r, v);
            let got: Vec<(&str, i32, i64)> = rows(&r)
                .into_iter()
                .map(|(t, p, o, ..)| (t, p, o))
                .collect();
            assert_eq!(got, vec![("t", 0, 10), ("t", 1, 11)], "v{v}");
        }
    }

    #[tokio::test]
    async fn several_groups_from_v8() {
        let f = setup().await;
        for v in 8..=VERSIONS.max {
            let r = respond(
                &ctx(&f, v),
                multi(&[("g", Some(&[("t", &[1])])), ("h", None), ("nope", None)]),
            );
            assert_encodes(&r, v);
            assert!(r.topics.is_empty());
            let ids: Vec<(&str, i16)> = r
                .groups
                .iter()
                .map(|g| (g.group_id.as_str(), g.error_code))
                .collect();
            assert_eq!(ids, vec![("g", 0), ("h", 0), ("nope", 0)]);
            assert_eq!(group_rows(&r.groups[0]), vec![("t", 1, 11, 2, Some(""), 0)]);
            assert_eq!(group_rows(&r.groups[1]), vec![("u", 0, 5, -1, Some(""), 0)]);
            assert!(r.groups[2].topics.is_empty());
        }
    }

    #[tokio::test]
    async fn errors_by_version() {
        let f = Fixture::new().await;
        // No coordinator yet: per partition at v0 and v1, and at the top from v2.
        for v in 0..=1 {
            let r = respond(&ctx(&f, v), single("g", Some(&[("t", &[0])])));
            assert_encodes(&r, v);
            assert_eq!(r.error_code, 0);
            assert_eq!(
                rows(&r),
                vec![("t", 0, -1, -1, Some(""), E::NotCoordinator.code())],
                "v{v}"
            );
        }
        let r = respond(&ctx(&f, 2), single("g", None));
        assert_encodes(&r, 2);
        assert_eq!(
            (r.error_code, r.topics.len()),
            (E::NotCoordinator.code(), 0)
        );
        let r = respond(&ctx(&f, 8), multi(&[("g", None)]));
        assert_encodes(&r, 8);
        assert_eq!(r.groups[0].error_code, E::NotCoordinator.code());
        coordinator(&f, "g").await;
        let long = "x".repeat(1025);
        let r = respond(&ctx(&f, 6), single(&long, Some(&[("t", &[0])])));
        assert_eq!(r.error_code, E::InvalidGroupId.code());
        assert_eq!(rows(&r)[0].5, E::InvalidGroupId.code());
    }
}
