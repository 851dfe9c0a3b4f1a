//! OffsetFetch (key 9), v1–v9: one group (v1–v7) or several (v8+); null topics (v2+) = every
//! committed offset of the group.

use super::{sb, topic_name};
use crate::broker::{BrokerError, CommittedOffsetView, TopicResults};
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse};

type Fetched = Result<TopicResults<Option<CommittedOffsetView>>, BrokerError>;
/// Requested partitions by topic (`None` = all).
type Requested = Option<Vec<(String, Vec<i32>)>>;
/// (partition, offset, leader epoch, metadata, error code) by topic.
type Rows = Vec<(String, Vec<(i32, i64, i32, String, i16)>)>;

fn fetch(ctx: &RequestContext, group: &str, topics: Requested) -> (Fetched, Requested) {
    let res = ctx.broker.fetch_offsets(group, topics.clone());
    (res, topics)
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
                        Some(c) => (*p, c.offset, c.leader_epoch, c.metadata.clone(), 0),
                        None => (*p, -1, -1, String::new(), 0),
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
pub(crate) const VERSIONS: Versions = Versions::new(1, 9);

/// Answers one OffsetFetch request.
pub(crate) async fn handle(ctx: RequestContext, req: OffsetFetchRequest) -> Reply {
    Reply::now(respond(&ctx, req))
}

pub(crate) fn respond(ctx: &RequestContext, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let v = ctx.api_version;
    let mut r = OffsetFetchResponse::default();
    if v >= 8 {
        for g in req.groups {
            let topics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let (res, requested) = fetch(ctx, &g.group_id.0, topics);
            let mut gr = OffsetFetchResponseGroup::default();
            gr.group_id = GroupId(g.group_id.0.clone());
            if let Err(e) = &res {
                gr.error_code = code(e);
            }
            for (t, parts) in rows(&res, &requested) {
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
    let (res, requested) = fetch(ctx, &req.group_id.0, topics);
    if let Err(e) = &res {
        if v >= 2 {
            r.error_code = code(e);
        }
    }
    for (t, parts) in rows(&res, &requested) {
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
