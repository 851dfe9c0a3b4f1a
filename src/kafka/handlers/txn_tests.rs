//! The transactional APIs together through their handlers, on one in-process broker:
//! InitProducerId → AddPartitionsToTxn → a transactional produce → TxnOffsetCommit → EndTxn,
//! the markers the coordinator then writes, read_committed visibility, and Kafka's errors for
//! bad input (each with no state change): EndTxn with nothing open or an unknown id, a stale
//! epoch (per version), a produce with a transactional id never initialised or to a partition
//! not added, a TxnOffsetCommit with a stale generation.

use super::test_util::{assert_encodes, ctx};
use super::{
    add_offsets_to_txn, add_partitions_to_txn, describe_transactions, end_txn, init_producer_id,
    list_transactions, offset_fetch, sb, topic_name, txn_offset_commit,
};
use crate::broker::testing::Fixture;
use crate::broker::BrokerError;
use crate::codec::kafka::batch::{self, tests::make_batch};
use crate::txn::TxnError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError as E;
use std::time::Duration;

const TID: &str = "app-1";

async fn init(f: &Fixture, id: &str) -> (i64, i16) {
    let mut r = InitProducerIdRequest::default();
    r.transactional_id = Some(TransactionalId(sb(id)));
    r.transaction_timeout_ms = 60_000;
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    let resp = init_producer_id::respond(&ctx(f, 4), r).await;
    assert_eq!(resp.error_code, 0);
    (resp.producer_id.0, resp.producer_epoch)
}

fn add_request(
    id: &str,
    pid: i64,
    epoch: i16,
    topic: &str,
    parts: &[i32],
) -> AddPartitionsToTxnRequest {
    let mut t = AddPartitionsToTxnTopic::default();
    t.name = topic_name(topic);
    t.partitions = parts.to_vec();
    let mut r = AddPartitionsToTxnRequest::default();
    r.v3_and_below_transactional_id = TransactionalId(sb(id));
    r.v3_and_below_producer_id = ProducerId(pid);
    r.v3_and_below_producer_epoch = epoch;
    r.v3_and_below_topics = vec![t];
    r
}

fn add_codes(r: &AddPartitionsToTxnResponse) -> Vec<(String, i32, i16)> {
    r.results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.partition_error_code,
                )
            })
        })
        .collect()
}

fn end_request(id: &str, pid: i64, epoch: i16, commit: bool) -> EndTxnRequest {
    let mut r = EndTxnRequest::default();
    r.transactional_id = TransactionalId(sb(id));
    r.producer_id = ProducerId(pid);
    r.producer_epoch = epoch;
    r.committed = commit;
    r
}

fn txn_batch(n: i32, pid: i64, epoch: i16, seq: i32) -> bytes::Bytes {
    let mut raw = make_batch(n, pid, epoch, seq);
    batch::tests::set_transactional(&mut raw);
    raw.into()
}

async fn produce(f: &Fixture, id: Option<&str>, raw: bytes::Bytes) -> Result<i64, BrokerError> {
    produce_as(f, id, raw, crate::txn::TxnSupport::DefaultError).await
}

/// [`produce`] as a client of the Produce versions `support` stands for.
async fn produce_as(
    f: &Fixture,
    id: Option<&str>,
    raw: bytes::Bytes,
    support: crate::txn::TxnSupport,
) -> Result<i64, BrokerError> {
    let pending = f
        .broker
        .produce_append(
            "t",
            0,
            Some(raw),
            -1,
            Duration::from_secs(5),
            id.map(|id| crate::broker::ProduceTxn { id, support }),
        )
        .await?;
    Ok(pending.wait().await?.base_offset)
}

fn commit_request(
    group: &str,
    pid: i64,
    epoch: i16,
    generation: i32,
    offset: i64,
) -> TxnOffsetCommitRequest {
    let mut p = TxnOffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    p.committed_leader_epoch = -1;
    let mut t = TxnOffsetCommitRequestTopic::default();
    t.name = topic_name("t");
    t.partitions = vec![p];
    let mut r = TxnOffsetCommitRequest::default();
    r.transactional_id = TransactionalId(sb(TID));
    r.group_id = GroupId(sb(group));
    r.producer_id = ProducerId(pid);
    r.producer_epoch = epoch;
    r.generation_id = generation;
    r.member_id = sb("");
    r.topics = vec![t];
    r
}

fn committed(f: &Fixture, group: &str) -> Option<i64> {
    let r = f
        .broker
        .groups()
        .fetch_offsets(group, Some(vec![("t".into(), vec![0])]))
        .expect("fetch");
    r[0].1[0].1.as_ref().map(|c| c.offset)
}

/// The error code of an OffsetFetch of `t`-0 for `group` with `require_stable` set.
fn stable_fetch(f: &Fixture, group: &str, v: i16) -> i16 {
    let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = topic_name("t");
    t.partition_indexes = vec![0];
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(sb(group));
    r.topics = Some(vec![t]);
    r.require_stable = true;
    let resp = offset_fetch::respond(&ctx(f, v), r);
    assert_encodes(&resp, v);
    resp.topics[0].partitions[0].error_code
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_transaction_with_offsets_commits_through_the_handlers() {
    let f = Fixture::new().await;
    f.topic("t", 1, &[]).await;
    f.txn_coordinator_ready(TID).await;
    let (pid, epoch) = init(&f, TID).await;
    // Not added yet: the partition refuses the transactional batch (KIP-890), with
    // TRANSACTION_ABORTABLE to a Produce v11 client and INVALID_TXN_STATE to older ones.
    assert_eq!(
        produce(&f, Some(TID), txn_batch(2, pid, epoch, 0)).await,
        Err(BrokerError::Txn(TxnError::InvalidTxnState))
    );
    assert_eq!(
        produce_as(
            &f,
            Some(TID),
            txn_batch(2, pid, epoch, 0),
            crate::txn::TxnSupport::GenericError
        )
        .await,
        Err(BrokerError::Txn(TxnError::TransactionAbortable))
    );
    for v in add_partitions_to_txn::VERSIONS.min..=3 {
        let r =
            add_partitions_to_txn::respond(&ctx(&f, v), add_request(TID, pid, epoch, "t", &[0]))
                .await;
        assert_encodes(&r, v);
        assert_eq!(add_codes(&r), vec![("t".into(), 0, 0)], "v{v}");
    }
    assert_eq!(
        produce(&f, Some(TID), txn_batch(2, pid, epoch, 0)).await,
        Ok(0)
    );
    let p = f.leader("t", 0).await;
    assert_eq!((p.high_watermark(), p.last_stable_offset()), (2, 0));
    // Offsets in the transaction.
    let mut ao = AddOffsetsToTxnRequest::default();
    ao.transactional_id = TransactionalId(sb(TID));
    ao.producer_id = ProducerId(pid);
    ao.producer_epoch = epoch;
    ao.group_id = GroupId(sb("g"));
    let r = add_offsets_to_txn::respond(&ctx(&f, 3), ao).await;
    assert_eq!(r.error_code, 0);
    // As a client does: the group's coordinator first.
    f.broker
        .find_coordinator(crate::broker::KEY_TYPE_GROUP, "g", "PLAINTEXT")
        .await
        .expect("group coordinator");
    let r = txn_offset_commit::respond(&ctx(&f, 3), commit_request("g", pid, epoch, -1, 2)).await;
    assert_encodes(&r, 3);
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert_eq!(committed(&f, "g"), None, "not visible before the commit");
    // KIP-447: a read_committed consumer asking for stable offsets is told to retry.
    assert_eq!(stable_fetch(&f, "g", 7), E::UnstableOffsetCommit.code());
    assert_eq!(stable_fetch(&f, "g", 6), 0, "v6 has no require_stable");
    // DescribeTransactions / ListTransactions see it open.
    let mut d = DescribeTransactionsRequest::default();
    d.transactional_ids = vec![TransactionalId(sb(TID)), TransactionalId(sb("nope"))];
    let dr = describe_transactions::respond(&ctx(&f, 0), d);
    assert_encodes(&dr, 0);
    let s = &dr.transaction_states[0];
    assert_eq!((s.error_code, s.transaction_state.as_str()), (0, "Ongoing"));
    assert_eq!(s.topics.len(), 2, "t and __consumer_offsets");
    assert_eq!(
        dr.transaction_states[1].error_code,
        E::TransactionalIdNotFound.code()
    );
    let mut l = ListTransactionsRequest::default();
    l.state_filters = vec![sb("Ongoing"), sb("Bogus")];
    let lr = list_transactions::respond(&ctx(&f, 1), l);
    assert_encodes(&lr, 1);
    assert_eq!(lr.transaction_states.len(), 1);
    assert_eq!(lr.unknown_state_filters, vec![sb("Bogus")]);
    // Commit: answered once decided; the markers follow.
    let r = end_txn::respond(&ctx(&f, 3), end_request(TID, pid, epoch, true)).await;
    assert_encodes(&r, 3);
    assert_eq!(r.error_code, 0);
    wait_for("the commit marker", || p.last_stable_offset() == 3).await;
    wait_for("the offsets to commit", || committed(&f, "g") == Some(2)).await;
    assert_eq!(stable_fetch(&f, "g", 7), 0, "stable once committed");
    wait_for("CompleteCommit", || {
        f.broker.txn().describe(TID).map(|d| d.state.name()) == Ok("CompleteCommit")
    })
    .await;
    // A retried commit is fine; an abort now is not.
    let r = end_txn::respond(&ctx(&f, 3), end_request(TID, pid, epoch, true)).await;
    assert_eq!(r.error_code, 0);
    let r = end_txn::respond(&ctx(&f, 3), end_request(TID, pid, epoch, false)).await;
    assert_eq!(r.error_code, E::InvalidTxnState.code());
}

#[tokio::test]
async fn bad_input_gets_kafkas_errors_and_changes_nothing() {
    let f = Fixture::new().await;
    f.topic("t", 1, &[]).await;
    f.txn_coordinator_ready(TID).await;
    // A produce with a transactional id never initialised.
    assert_eq!(
        produce(&f, Some("never"), txn_batch(1, 4242, 0, 0)).await,
        Err(BrokerError::Txn(TxnError::InvalidProducerIdMapping))
    );
    // Transactional records without a transactional id.
    assert_eq!(
        produce(&f, None, txn_batch(1, 4242, 0, 0)).await,
        Err(BrokerError::TransactionalIdAuthorizationFailed)
    );
    assert_eq!(f.leader("t", 0).await.log_end_offset(), 0);
    // EndTxn for an unknown id, and with nothing open.
    let r = end_txn::respond(&ctx(&f, 1), end_request("nope", 1, 0, true)).await;
    assert_eq!(r.error_code, E::InvalidProducerIdMapping.code());
    let (pid, epoch) = init(&f, TID).await;
    let r = end_txn::respond(&ctx(&f, 1), end_request(TID, pid, epoch, true)).await;
    assert_eq!(r.error_code, E::InvalidTxnState.code());
    // A stale epoch: INVALID_PRODUCER_EPOCH below v2, PRODUCER_FENCED from v2.
    let (_, newer) = init(&f, TID).await;
    assert_eq!(newer, epoch + 1);
    for (v, code) in [(1, E::InvalidProducerEpoch), (2, E::ProducerFenced)] {
        let r =
            add_partitions_to_txn::respond(&ctx(&f, v), add_request(TID, pid, epoch, "t", &[0]))
                .await;
        assert_eq!(add_codes(&r), vec![("t".into(), 0, code.code())], "v{v}");
        let r = end_txn::respond(&ctx(&f, v), end_request(TID, pid, epoch, false)).await;
        assert_eq!(r.error_code, code.code(), "v{v}");
    }
    // An unknown partition: it gets UNKNOWN_TOPIC_OR_PARTITION, the rest
    // OPERATION_NOT_ATTEMPTED, and nothing is added.
    let mut req = add_request(TID, pid, newer, "t", &[0, 5]);
    let mut other = AddPartitionsToTxnTopic::default();
    other.name = topic_name("missing");
    other.partitions = vec![0];
    req.v3_and_below_topics.push(other);
    let r = add_partitions_to_txn::respond(&ctx(&f, 2), req).await;
    assert_eq!(
        add_codes(&r),
        vec![
            ("missing".into(), 0, E::UnknownTopicOrPartition.code()),
            ("t".into(), 0, E::OperationNotAttempted.code()),
            ("t".into(), 5, E::UnknownTopicOrPartition.code()),
        ]
    );
    assert_eq!(
        f.broker.txn().describe(TID).map(|d| d.state.name()),
        Ok("Empty")
    );
    // TxnOffsetCommit with a stale generation (KIP-447) on a group with no members.
    f.broker
        .find_coordinator(crate::broker::KEY_TYPE_GROUP, "g", "PLAINTEXT")
        .await
        .expect("group coordinator");
    // Offsets outside any open transaction (no AddOffsetsToTxn): the transaction
    // coordinator does not vouch for them (KIP-890), nothing is parked in the group.
    // TRANSACTION_ABORTABLE from v4 (Kafka 3.8+), INVALID_TXN_STATE for older clients.
    for (v, want) in [(3, E::InvalidTxnState), (4, E::TransactionAbortable)] {
        let r =
            txn_offset_commit::respond(&ctx(&f, v), commit_request("g", pid, newer, -1, 1)).await;
        assert_eq!(r.topics[0].partitions[0].error_code, want.code(), "v{v}");
    }
    let r = txn_offset_commit::respond(&ctx(&f, 3), commit_request("g", 999_999, 0, -1, 1)).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        E::InvalidProducerIdMapping.code()
    );
    let mut ao = AddOffsetsToTxnRequest::default();
    ao.transactional_id = TransactionalId(sb(TID));
    ao.producer_id = ProducerId(pid);
    ao.producer_epoch = newer;
    ao.group_id = GroupId(sb("g"));
    assert_eq!(
        add_offsets_to_txn::respond(&ctx(&f, 3), ao)
            .await
            .error_code,
        0
    );
    let r = txn_offset_commit::respond(&ctx(&f, 3), commit_request("g", pid, newer, 7, 1)).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        E::IllegalGeneration.code()
    );
    assert_eq!(committed(&f, "g"), None);
    // v4 (node to node): verify-only answers without adding.
    let mut t = AddPartitionsToTxnTopic::default();
    t.name = topic_name("t");
    t.partitions = vec![0];
    let mut tx = AddPartitionsToTxnTransaction::default();
    tx.transactional_id = TransactionalId(sb(TID));
    tx.producer_id = ProducerId(pid);
    tx.producer_epoch = newer;
    tx.verify_only = true;
    tx.topics = vec![t];
    let mut req = AddPartitionsToTxnRequest::default();
    req.transactions = vec![tx];
    let r = add_partitions_to_txn::respond(&ctx(&f, 4), req).await;
    assert_encodes(&r, 4);
    let pr = &r.results_by_transaction[0].topic_results[0].results_by_partition[0];
    // The coordinator's own code (Kafka 3.8+), whatever the version.
    assert_eq!(pr.partition_error_code, E::TransactionAbortable.code());
    let d = f.broker.txn().describe(TID).expect("described");
    assert_eq!(d.state.name(), "Ongoing", "the offsets partition was added");
    assert!(
        d.partitions.iter().all(|(t, _)| t != "t"),
        "verify-only added nothing: {:?}",
        d.partitions
    );
}

async fn produce_tv2(f: &Fixture, raw: bytes::Bytes) -> Result<i64, BrokerError> {
    let txn = crate::broker::ProduceTxn {
        id: TID,
        support: crate::txn::TxnSupport::AddPartition,
    };
    let pending = f
        .broker
        .produce_append("t", 0, Some(raw), -1, Duration::from_secs(5), Some(txn))
        .await?;
    Ok(pending.wait().await?.base_offset)
}

async fn wait_state(f: &Fixture, state: &'static str) {
    wait_for(state, || {
        f.broker.txn().describe(TID).map(|d| d.state.name()) == Ok(state)
    })
    .await;
}

/// Transaction version 2 (KIP-890 part 2): the produce adds its partition (no
/// AddPartitionsToTxn), EndTxn v5 answers the next epoch and writes its markers with it, so a
/// late batch of the ended transaction is fenced instead of opening a new one; a retried end
/// gets the same answer; an abort with nothing open bumps the epoch at v5 only.
#[tokio::test]
async fn version_2_adds_partitions_by_produce_and_bumps_the_epoch_on_every_end() {
    let f = Fixture::new().await;
    f.topic("t", 1, &[]).await;
    f.txn_coordinator_ready(TID).await;
    let (pid, epoch) = init(&f, TID).await;
    let p = f.leader("t", 0).await;
    assert_eq!(produce_tv2(&f, txn_batch(2, pid, epoch, 0)).await, Ok(0));
    let d = f.broker.txn().describe(TID).expect("described");
    assert_eq!((d.state.name(), d.partitions.len()), ("Ongoing", 1));
    let r = end_txn::respond(&ctx(&f, 5), end_request(TID, pid, epoch, true)).await;
    assert_encodes(&r, 5);
    assert_eq!(
        (r.error_code, r.producer_id.0, r.producer_epoch),
        (0, pid, epoch + 1)
    );
    wait_for("the commit marker", || p.last_stable_offset() == 3).await;
    wait_state(&f, "CompleteCommit").await;
    // A late batch of the committed transaction, at the old epoch.
    assert_eq!(
        produce_tv2(&f, txn_batch(1, pid, epoch, 2)).await,
        Err(BrokerError::InvalidProducerEpoch)
    );
    assert_eq!(p.log_end_offset(), 3);
    let r = end_txn::respond(&ctx(&f, 5), end_request(TID, pid, epoch, true)).await;
    assert_eq!((r.error_code, r.producer_epoch), (0, epoch + 1), "a retry");
    // The next transaction, at the new epoch from sequence 0: aborted.
    let e1 = epoch + 1;
    assert_eq!(produce_tv2(&f, txn_batch(1, pid, e1, 0)).await, Ok(3));
    let r = end_txn::respond(&ctx(&f, 5), end_request(TID, pid, e1, false)).await;
    assert_eq!((r.error_code, r.producer_epoch), (0, e1 + 1));
    wait_for("the abort marker", || p.last_stable_offset() == 5).await;
    wait_state(&f, "CompleteAbort").await;
    // Nothing open: v4 takes an abort for a retry (no bump), v5 aborts again with a bump
    // (and no markers); a commit is refused at both.
    let e2 = e1 + 1;
    let r = end_txn::respond(&ctx(&f, 4), end_request(TID, pid, e2, false)).await;
    assert_eq!((r.error_code, r.producer_epoch), (0, -1));
    assert_eq!(
        f.broker.txn().describe(TID).map(|d| d.producer_epoch),
        Ok(e2)
    );
    for v in [4, 5] {
        let r = end_txn::respond(&ctx(&f, v), end_request(TID, pid, e2, true)).await;
        assert_eq!(r.error_code, E::InvalidTxnState.code());
    }
    let r = end_txn::respond(&ctx(&f, 5), end_request(TID, pid, e2, false)).await;
    assert_eq!((r.error_code, r.producer_epoch), (0, e2 + 1));
    wait_state(&f, "CompleteAbort").await;
    assert_eq!(p.log_end_offset(), 5, "no marker for an empty abort");
    let d = f.broker.txn().describe(TID).expect("described");
    assert_eq!(d.producer_epoch, e2 + 1);
}
