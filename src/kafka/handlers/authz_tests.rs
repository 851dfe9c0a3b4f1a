//! Authorization across the APIs, through the real handlers, with Kafka's authorizer on: each
//! API refuses exactly where Kafka's `KafkaApis` does, with Kafka's codes, and lets through what
//! the ACLs grant. (The ACL APIs' own tests are in their handlers.)

use super::test_util::{ctx_as, grant, later};
use super::{
    create_topics, delete_topics, describe_configs, describe_groups, describe_log_dirs, fetch,
    find_coordinator, init_producer_id, list_groups, list_offsets, metadata, offset_fetch, produce,
    sb, topic_name,
};
use crate::broker::testing::Fixture;
use crate::kafka::context::RequestContext;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError as E;

// Wire codes: resource types, pattern types, operations, permissions.
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const CREATE: i8 = 5;
const DESCRIBE: i8 = 8;
const ALLOW: i8 = 3;
const DENY: i8 = 2;

const TAF: i16 = 29; // TOPIC_AUTHORIZATION_FAILED
const GAF: i16 = 30;
const CAF: i16 = 31;

/// A broker with topics `t` and `secret`, `User:admin` as super user, and alice allowed to
/// READ `t` and the group `g`.
async fn fixture() -> Fixture {
    let f = Fixture::authorized(&["User:admin"]).await;
    f.topic("t", 1, &[]).await;
    f.topic("secret", 1, &[]).await;
    grant(
        &f,
        &[
            (TOPIC, "t", LITERAL, "User:alice", READ, ALLOW),
            (GROUP, "g", LITERAL, "User:alice", READ, ALLOW),
        ],
    )
    .await;
    f
}

fn alice(f: &Fixture, v: i16) -> RequestContext {
    ctx_as(f, v, "alice")
}

fn metadata_request(names: Option<&[&str]>, auto_create: bool) -> MetadataRequest {
    let mut r = MetadataRequest::default();
    r.topics = names.map(|ns| {
        ns.iter()
            .map(|n| {
                let mut t = MetadataRequestTopic::default();
                t.name = Some(topic_name(n));
                t
            })
            .collect()
    });
    r.allow_auto_topic_creation = auto_create;
    r.include_topic_authorized_operations = true;
    r
}

fn topic_codes(r: &MetadataResponse) -> Vec<(String, i16)> {
    r.topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map_or(String::new(), |n| n.to_string()),
                t.error_code,
            )
        })
        .collect()
}

#[tokio::test]
async fn metadata_hides_what_cannot_be_described_and_guards_auto_creation() {
    let f = fixture().await;
    let r = metadata::respond(&alice(&f, 9), metadata_request(None, false)).await;
    assert_eq!(
        topic_codes(&r),
        vec![("t".to_owned(), 0)],
        "secret is left out"
    );
    // READ implies DESCRIBE; the KIP-430 bits are READ and DESCRIBE.
    assert_eq!(r.topics[0].topic_authorized_operations, (1 << 3) | (1 << 8));
    let r = metadata::respond(
        &alice(&f, 9),
        metadata_request(Some(&["secret", "t", "new"]), true),
    )
    .await;
    assert_eq!(
        topic_codes(&r),
        vec![("secret".into(), TAF), ("t".into(), 0), ("new".into(), TAF)]
    );
    assert!(
        f.broker.metadata_view().topic("new").is_none(),
        "not auto-created"
    );
    // DESCRIBE on a missing topic without CREATE: still no creation.
    grant(
        &f,
        &[(TOPIC, "new", LITERAL, "User:alice", DESCRIBE, ALLOW)],
    )
    .await;
    let r = metadata::respond(&alice(&f, 9), metadata_request(Some(&["new"]), true)).await;
    assert_eq!(topic_codes(&r), vec![("new".into(), TAF)]);
    // CREATE on the cluster lets alice auto-create.
    grant(
        &f,
        &[(
            CLUSTER,
            "kafka-cluster",
            LITERAL,
            "User:alice",
            CREATE,
            ALLOW,
        )],
    )
    .await;
    let r = metadata::respond(&alice(&f, 9), metadata_request(Some(&["new"]), true)).await;
    assert_eq!(topic_codes(&r), vec![("new".into(), 0)]);
    // A super user sees everything.
    let r = metadata::respond(&ctx_as(&f, 9, "admin"), metadata_request(None, false)).await;
    assert_eq!(r.topics.len(), 3);
}

fn produce_request(topic: &str) -> ProduceRequest {
    let mut pd = PartitionProduceData::default();
    pd.index = 0;
    pd.records = Some(crate::codec::kafka::batch::tests::make_batch(1, -1, -1, -1).into());
    let mut td = TopicProduceData::default();
    td.name = topic_name(topic);
    td.partition_data = vec![pd];
    let mut r = ProduceRequest::default();
    r.acks = 1;
    r.timeout_ms = 5_000;
    r.topic_data = vec![td];
    r
}

async fn produce_code(ctx: RequestContext, req: ProduceRequest) -> i16 {
    match later(produce::handle(ctx, req).await).await {
        ResponseKind::Produce(r) => r.responses[0].partition_responses[0].error_code,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn produce_needs_write_and_deny_wins() {
    let f = fixture().await;
    assert_eq!(produce_code(alice(&f, 9), produce_request("t")).await, TAF);
    assert_eq!(
        produce_code(alice(&f, 9), produce_request("missing")).await,
        TAF,
        "unauthorized before unknown"
    );
    grant(&f, &[(TOPIC, "t", PREFIXED, "User:alice", WRITE, ALLOW)]).await;
    assert_eq!(produce_code(alice(&f, 9), produce_request("t")).await, 0);
    grant(&f, &[(TOPIC, "t", LITERAL, "User:*", WRITE, DENY)]).await;
    assert_eq!(produce_code(alice(&f, 9), produce_request("t")).await, TAF);
    // A transactional id needs WRITE on it first.
    let mut txn = produce_request("secret");
    txn.transactional_id = Some(TransactionalId(sb("tx")));
    assert_eq!(
        produce_code(alice(&f, 9), txn).await,
        E::TransactionalIdAuthorizationFailed.code()
    );
}

fn fetch_request(topic: &str) -> FetchRequest {
    let mut p = FetchPartition::default();
    p.partition = 0;
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = topic_name(topic);
    t.partitions = vec![p];
    let mut r = FetchRequest::default();
    r.replica_id = BrokerId(-1);
    r.max_bytes = 1 << 20;
    r.topics = vec![t];
    r
}

#[tokio::test]
async fn reads_need_read_or_describe() {
    let f = fixture().await;
    let code = |r: &FetchResponse| r.responses[0].partitions[0].error_code;
    assert_eq!(
        code(&fetch::respond(&alice(&f, 11), fetch_request("t")).await),
        0
    );
    assert_eq!(
        code(&fetch::respond(&alice(&f, 11), fetch_request("secret")).await),
        TAF
    );
    // A fetch that names a replica needs CLUSTER_ACTION.
    let mut follower = fetch_request("t");
    follower.replica_id = BrokerId(2);
    assert_eq!(code(&fetch::respond(&alice(&f, 11), follower).await), TAF);

    let list = |topic: &str| {
        let mut p = ListOffsetsPartition::default();
        p.timestamp = -1;
        let mut t = ListOffsetsTopic::default();
        t.name = topic_name(topic);
        t.partitions = vec![p];
        let mut r = ListOffsetsRequest::default();
        r.topics = vec![t];
        r
    };
    let code = |r: &ListOffsetsResponse| r.topics[0].partitions[0].error_code;
    for v in [0, 1, 7] {
        assert_eq!(
            code(&list_offsets::respond(&alice(&f, v), list("t")).await),
            0
        );
        assert_eq!(
            code(&list_offsets::respond(&alice(&f, v), list("secret")).await),
            TAF
        );
    }
}

#[tokio::test]
async fn topic_administration() {
    let f = fixture().await;
    let create = |name: &str| {
        let mut t = CreatableTopic::default();
        t.name = topic_name(name);
        t.num_partitions = 1;
        t.replication_factor = 1;
        let mut r = CreateTopicsRequest::default();
        r.topics = vec![t];
        r.timeout_ms = 5_000;
        r
    };
    let code = |r: &CreateTopicsResponse| r.topics[0].error_code;
    assert_eq!(
        code(&create_topics::respond(&alice(&f, 5), create("alice-1")).await),
        TAF
    );
    grant(
        &f,
        &[(TOPIC, "alice-", PREFIXED, "User:alice", CREATE, ALLOW)],
    )
    .await;
    let r = create_topics::respond(&alice(&f, 5), create("alice-1")).await;
    assert_eq!(code(&r), 0);
    assert_eq!(
        r.topics[0].topic_config_error_code, TAF,
        "no DESCRIBE_CONFIGS: configs withheld"
    );
    assert!(r.topics[0].configs.is_none());
    assert_eq!(
        code(&create_topics::respond(&alice(&f, 5), create("bob-1")).await),
        TAF
    );

    let mut del = DeleteTopicsRequest::default();
    del.topic_names = vec![topic_name("t")];
    del.timeout_ms = 5_000;
    let r = delete_topics::respond(&alice(&f, 4), del).await;
    assert_eq!(r.responses[0].error_code, TAF);
    assert!(f.broker.metadata_view().topic("t").is_some());

    let describe = |kind: i8, name: &str| {
        let mut x = DescribeConfigsResource::default();
        x.resource_type = kind;
        x.resource_name = sb(name);
        x.configuration_keys = None;
        let mut r = DescribeConfigsRequest::default();
        r.resources = vec![x];
        r
    };
    let code = |r: &DescribeConfigsResponse| r.results[0].error_code;
    assert_eq!(
        code(&describe_configs::respond(&alice(&f, 1), describe(2, "t"))),
        TAF
    );
    assert_eq!(
        code(&describe_configs::respond(&alice(&f, 1), describe(4, "1"))),
        CAF
    );
    assert_eq!(
        code(&describe_configs::respond(
            &ctx_as(&f, 1, "admin"),
            describe(4, "1")
        )),
        0
    );

    let r = describe_log_dirs::respond(&alice(&f, 3), DescribeLogDirsRequest::default()).await;
    assert_eq!((r.error_code, r.results.len()), (CAF, 0));
    let r = describe_log_dirs::respond(&alice(&f, 1), DescribeLogDirsRequest::default()).await;
    assert!(r.results.is_empty(), "v1 has no error field: just nothing");
}

#[tokio::test]
async fn groups_and_producer_ids() {
    let f = fixture().await;
    super::test_util::coordinator(&f, "g").await;
    let find = |group: &str| {
        let mut r = FindCoordinatorRequest::default();
        r.key = sb(group);
        r
    };
    let r = find_coordinator::respond(&alice(&f, 2), find("other")).await;
    assert_eq!(r.error_code, GAF);
    let mut txn = find("tx");
    txn.key_type = 1;
    let r = find_coordinator::respond(&alice(&f, 2), txn).await;
    assert_eq!(r.error_code, E::TransactionalIdAuthorizationFailed.code());

    let mut dg = DescribeGroupsRequest::default();
    dg.groups = vec![GroupId(sb("g")), GroupId(sb("other"))];
    dg.include_authorized_operations = true;
    let r = describe_groups::respond(&alice(&f, 5), dg);
    assert_eq!(r.groups[0].error_code, 0);
    assert_eq!(r.groups[0].authorized_operations, (1 << 3) | (1 << 8));
    assert_eq!(r.groups[1].error_code, GAF);

    let mut of = OffsetFetchRequest::default();
    of.group_id = GroupId(sb("other"));
    of.topics = None;
    assert_eq!(offset_fetch::respond(&alice(&f, 5), of).error_code, GAF);

    // ListGroups: without DESCRIBE on the cluster, only the groups alice may describe.
    super::test_util::commit_standalone(&f, "g", &[("t", 0, 1)]).await;
    super::test_util::commit_standalone(&f, "other", &[("t", 0, 1)]).await;
    let listed = |ctx| {
        let r = list_groups::respond(&ctx, ListGroupsRequest::default());
        let mut ids: Vec<String> = r.groups.iter().map(|g| g.group_id.to_string()).collect();
        ids.sort();
        ids
    };
    assert_eq!(listed(alice(&f, 3)), vec!["g"]);
    assert_eq!(listed(ctx_as(&f, 3, "admin")), vec!["g", "other"]);

    // InitProducerId without a transactional id: IDEMPOTENT_WRITE on the cluster or WRITE on
    // some topic (KIP-679).
    let init = || {
        let mut r = InitProducerIdRequest::default();
        r.transactional_id = None;
        r.transaction_timeout_ms = 60_000;
        r.producer_id = ProducerId(-1);
        r.producer_epoch = -1;
        r
    };
    let r = init_producer_id::respond(&alice(&f, 4), init()).await;
    assert_eq!(r.error_code, CAF);
    grant(&f, &[(TOPIC, "t", LITERAL, "User:alice", WRITE, ALLOW)]).await;
    let r = init_producer_id::respond(&alice(&f, 4), init()).await;
    assert_eq!(r.error_code, 0);
}

#[tokio::test]
async fn allow_everyone_if_no_acl_found_both_ways() {
    // true: a resource no ACL covers is open to every principal; once one does, only the
    // ACLs decide (Kafka's `allow.everyone.if.no.acl.found`).
    let f = Fixture::with(&[
        (
            "authorizer.class.name",
            "kafka.security.auth.SimpleAclAuthorizer",
        ),
        ("allow.everyone.if.no.acl.found", "true"),
    ])
    .await;
    f.topic("t", 1, &[]).await;
    f.topic("u", 1, &[]).await;
    assert_eq!(produce_code(alice(&f, 9), produce_request("t")).await, 0);
    grant(&f, &[(TOPIC, "t", LITERAL, "User:bob", WRITE, ALLOW)]).await;
    assert_eq!(produce_code(alice(&f, 9), produce_request("t")).await, TAF);
    assert_eq!(produce_code(alice(&f, 9), produce_request("u")).await, 0);
    assert_eq!(
        produce_code(ctx_as(&f, 9, "bob"), produce_request("t")).await,
        0
    );
    // false (the default): nothing without an ACL.
    let g = Fixture::authorized(&[]).await;
    g.topic("t", 1, &[]).await;
    assert_eq!(produce_code(alice(&g, 9), produce_request("t")).await, TAF);
    // A LITERAL `*` ALLOW covers every topic; a PREFIXED DENY carves one family out.
    grant(
        &g,
        &[
            (TOPIC, "*", LITERAL, "User:alice", WRITE, ALLOW),
            (TOPIC, "t", PREFIXED, "User:alice", WRITE, DENY),
        ],
    )
    .await;
    g.topic("other", 1, &[]).await;
    assert_eq!(
        produce_code(alice(&g, 9), produce_request("other")).await,
        0
    );
    assert_eq!(produce_code(alice(&g, 9), produce_request("t")).await, TAF);
}
