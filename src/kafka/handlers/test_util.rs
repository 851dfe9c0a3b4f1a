//! Helpers shared by the handler tests: contexts, deferred replies, the encoding check, produce
//! and the JoinGroup / SyncGroup rounds that bring a group to Stable through the real handlers.

use super::{join_group, produce, sb, sync_group, topic_name};
use crate::broker::testing::Fixture;
use crate::kafka::context::RequestContext;
use crate::kafka::reply::Reply;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, JoinGroupRequest, JoinGroupResponse, ProduceRequest, ResponseKind, SyncGroupRequest,
    SyncGroupResponse,
};
use kafka_protocol::protocol::Encodable;

/// A request context at `v` on the fixture's broker.
pub(crate) fn ctx(f: &Fixture, v: i16) -> RequestContext {
    RequestContext::test(&f.broker, v)
}

/// A request context at `v` from the authenticated user `user` (`User:<user>`, from 127.0.0.1).
pub(crate) fn ctx_as(f: &Fixture, v: i16, user: &str) -> RequestContext {
    let mut c = RequestContext::test(&f.broker, v);
    c.principal = std::sync::Arc::new(crate::security::Principal::user(user));
    c
}

/// Stores ACLs directly (`(resource type, name, pattern, principal, operation, permission)`
/// codes as on the wire, host `*`).
pub(crate) async fn grant(f: &Fixture, acls: &[(i8, &str, i8, &str, i8, i8)]) {
    use crate::security::acl::{AclBinding, Operation, PatternType, Permission, ResourceType};
    let bindings = acls
        .iter()
        .map(|&(rt, name, pt, who, op, perm)| AclBinding {
            resource_type: ResourceType::from_code(rt).expect("resource type"),
            resource_name: name.into(),
            pattern: PatternType::from_code(pt).expect("pattern type"),
            principal: who.into(),
            host: "*".into(),
            operation: Operation::from_code(op).expect("operation"),
            permission: Permission::from_code(perm).expect("permission"),
        })
        .collect();
    f.broker.create_acls(bindings).await.expect("ACLs stored");
}

/// Asserts that `m` encodes at `v`: a field set at a version that lacks it fails here, as it
/// would when the connection writes the response.
pub(crate) fn assert_encodes<M: Encodable + std::fmt::Debug>(m: &M, v: i16) {
    let mut buf = bytes::BytesMut::new();
    if let Err(e) = m.encode(&mut buf, v) {
        panic!("does not encode at v{v}: {e}\n{m:?}");
    }
}

/// The response of a deferred reply.
pub(crate) async fn later(reply: Reply) -> ResponseKind {
    match reply {
        Reply::Later(h) => h.await.expect("reply task").expect("a response"),
        Reply::Now(r) => panic!("expected a deferred reply, got {r:?}"),
        Reply::None => panic!("expected a deferred reply, got none"),
    }
}

/// Appends `batch` to `topic`-`partition` through the Produce handler (acks=-1) and returns
/// the base offset.
pub(crate) async fn produce(f: &Fixture, topic: &str, partition: i32, batch: Vec<u8>) -> i64 {
    let mut pd = PartitionProduceData::default();
    pd.index = partition;
    pd.records = Some(batch.into());
    let mut td = TopicProduceData::default();
    td.name = topic_name(topic);
    td.partition_data = vec![pd];
    let mut r = ProduceRequest::default();
    r.acks = -1;
    r.timeout_ms = 5_000;
    r.topic_data = vec![td];
    match later(produce::handle(ctx(f, 9), r).await).await {
        ResponseKind::Produce(r) => {
            let p = &r.responses[0].partition_responses[0];
            assert_eq!(p.error_code, 0, "produce to {topic}-{partition}: {p:?}");
            p.base_offset
        }
        other => panic!("not a produce response: {other:?}"),
    }
}

/// A v2 batch of `n` records whose timestamps are all `ts`.
pub(crate) fn batch_at(n: i32, ts: i64) -> Vec<u8> {
    let mut b = crate::codec::kafka::batch::tests::make_batch(n, -1, -1, -1);
    b[27..35].copy_from_slice(&ts.to_be_bytes());
    b[35..43].copy_from_slice(&ts.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Creates `__consumer_offsets` and waits until this node coordinates `group` and has loaded
/// every offsets partition (so any other group id is served too).
pub(crate) async fn coordinator(f: &Fixture, group: &str) {
    f.broker
        .find_coordinator(0, group, "PLAINTEXT")
        .await
        .expect("this node coordinates the group");
    let partitions = f.broker.config().defaults.offsets_topic_num_partitions;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !(0..partitions).all(|p| f.broker.groups().is_loaded(p)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "offsets partitions never loaded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A consumer-protocol subscription (v0) to `topics`.
pub(crate) fn subscription(topics: &[&str]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend_from_slice(&(t.len() as i16).to_be_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b
}

/// A JoinGroup request of protocol type `consumer` with one protocol, `range`, whose metadata
/// subscribes to `topics`.
pub(crate) fn join_request(group: &str, member_id: &str, topics: &[&str]) -> JoinGroupRequest {
    let mut p = JoinGroupRequestProtocol::default();
    p.name = sb("range");
    p.metadata = subscription(topics).into();
    let mut r = JoinGroupRequest::default();
    r.group_id = GroupId(sb(group));
    r.member_id = sb(member_id);
    r.session_timeout_ms = 10_000;
    r.rebalance_timeout_ms = 10_000;
    r.protocol_type = sb("consumer");
    r.protocols = vec![p];
    r
}

/// Runs the JoinGroup handler at `v` and awaits its deferred answer.
pub(crate) async fn join(f: &Fixture, v: i16, req: JoinGroupRequest) -> JoinGroupResponse {
    match later(join_group::handle(ctx(f, v), req).await).await {
        ResponseKind::JoinGroup(r) => r,
        other => panic!("not a JoinGroup response: {other:?}"),
    }
}

/// A SyncGroup request; `assignments` only matter for the leader.
pub(crate) fn sync_request(
    group: &str,
    member_id: &str,
    generation: i32,
    assignments: &[(&str, &[u8])],
) -> SyncGroupRequest {
    let mut r = SyncGroupRequest::default();
    r.group_id = GroupId(sb(group));
    r.member_id = sb(member_id);
    r.generation_id = generation;
    r.assignments = assignments
        .iter()
        .map(|(m, a)| {
            let mut x = SyncGroupRequestAssignment::default();
            x.member_id = sb(m);
            x.assignment = bytes::Bytes::copy_from_slice(a);
            x
        })
        .collect();
    r
}

/// Runs the SyncGroup handler at `v` and awaits its deferred answer.
pub(crate) async fn sync(f: &Fixture, v: i16, req: SyncGroupRequest) -> SyncGroupResponse {
    match later(sync_group::handle(ctx(f, v), req).await).await {
        ResponseKind::SyncGroup(r) => r,
        other => panic!("not a SyncGroup response: {other:?}"),
    }
}

/// Brings `group` to Stable with one dynamic member subscribed to `topics` (JoinGroup v3,
/// SyncGroup v3 with assignment `b"a1"`): returns (member id, generation).
pub(crate) async fn stable_group(f: &Fixture, group: &str, topics: &[&str]) -> (String, i32) {
    coordinator(f, group).await;
    let j = join(f, 3, join_request(group, "", topics)).await;
    assert_eq!(j.error_code, 0, "join: {j:?}");
    let member = j.member_id.to_string();
    let s = sync(
        f,
        3,
        sync_request(group, &member, j.generation_id, &[(&member, b"a1")]),
    )
    .await;
    assert_eq!(s.error_code, 0, "sync: {s:?}");
    (member, j.generation_id)
}

/// Waits (up to 5 s) until `group` is in `state` as DescribeGroups reports it.
pub(crate) async fn wait_for_state(f: &Fixture, group: &str, state: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let now = f.broker.describe_group(group).map(|d| d.state.as_str());
        if now == Ok(state) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{group} never reached {state}: {now:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Brings `group` to Stable with one static member `instance` (JoinGroup v5, SyncGroup v3):
/// returns (member id, generation).
pub(crate) async fn stable_static_group(
    f: &Fixture,
    group: &str,
    instance: &str,
    topics: &[&str],
) -> (String, i32) {
    coordinator(f, group).await;
    let mut req = join_request(group, "", topics);
    req.group_instance_id = Some(sb(instance));
    let j = join(f, 5, req).await;
    assert_eq!(j.error_code, 0, "join: {j:?}");
    let member = j.member_id.to_string();
    let mut s = sync_request(group, &member, j.generation_id, &[(&member, b"s1")]);
    s.group_instance_id = Some(sb(instance));
    let s = sync(f, 3, s).await;
    assert_eq!(s.error_code, 0, "sync: {s:?}");
    (member, j.generation_id)
}

/// Joins `instance` again with a new member id (KIP-345): the old id is fenced. Returns the
/// new member id.
pub(crate) async fn replace_static_member(f: &Fixture, group: &str, instance: &str) -> String {
    let mut req = join_request(group, "", &["t"]);
    req.group_instance_id = Some(sb(instance));
    let j = join(f, 5, req).await;
    assert_eq!(j.error_code, 0, "rejoin: {j:?}");
    j.member_id.to_string()
}

/// A standalone OffsetCommit (generation -1, no member) through the broker.
pub(crate) async fn commit_standalone(f: &Fixture, group: &str, offsets: &[(&str, i32, i64)]) {
    coordinator(f, group).await;
    let entries = offsets
        .iter()
        .map(|(t, p, o)| crate::broker::OffsetCommitEntry {
            topic: (*t).to_owned(),
            partition: *p,
            offset: *o,
            leader_epoch: -1,
            metadata: None,
        })
        .collect();
    let r = f
        .broker
        .commit_offsets(group, "", None, -1, entries)
        .await
        .expect("commit");
    assert!(r.iter().all(Result::is_ok), "{r:?}");
}

/// The committed offset of `group` for `topic`-`partition` (-1 if none).
pub(crate) fn committed(f: &Fixture, group: &str, topic: &str, partition: i32) -> i64 {
    let r = f
        .broker
        .fetch_offsets(group, Some(vec![(topic.to_owned(), vec![partition])]))
        .expect("fetch offsets");
    r[0].1[0].1.as_ref().map_or(-1, |c| c.offset)
}

/// Every stored batch of a partition up to the high watermark, each whole.
pub(crate) async fn read_all(f: &Fixture, topic: &str, partition: i32) -> Vec<Vec<u8>> {
    use crate::broker::{FetchParams, FetchPartitionRequest};
    let res = f
        .broker
        .fetch(
            vec![FetchPartitionRequest {
                topic: topic.to_owned(),
                partition,
                fetch_offset: 0,
                partition_max_bytes: 64 << 20,
                current_leader_epoch: -1,
            }],
            FetchParams {
                max_wait: std::time::Duration::ZERO,
                min_bytes: 0,
                max_bytes: 64 << 20,
                read_committed: false,
            },
        )
        .await;
    let records = res[0].records.clone();
    let mut out = Vec::new();
    let mut at = 0;
    for h in crate::codec::kafka::batch::validate_record_set(&records).expect("whole batches") {
        out.push(records[at..at + h.total_len()].to_vec());
        at += h.total_len();
    }
    out
}
