//! One-node quorums: bootstrap, proposals, restart, log purge, a learner joining.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_node_bootstraps_proposes_and_restarts() {
    init_tracing();
    let root = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let quorum = BTreeMap::from([(1, listener.local_addr().expect("addr").to_string())]);
    let cfg = config(1, &dir_of(&root, "n1"), &quorum);
    let mut node = TestNode::start(cfg, RaftTuning::default(), Some(listener)).await;
    let h = node.handle();

    assert_eq!(
        h.propose(MetadataCommand::InitCluster {
            cluster_id: "c1".into()
        })
        .await,
        Ok(ApplyOutcome::Done)
    );
    assert!(h.is_leader(), "a single voter leads once it has committed");
    assert_eq!(h.propose(register(1)).await, Ok(ApplyOutcome::Done));
    assert_eq!(
        h.propose(create_topic("t1", &[1])).await,
        Ok(ApplyOutcome::Done)
    );
    // Read-your-writes: the image already shows the topic when propose returns.
    assert!(h.image().topic("t1").is_some());
    assert_eq!(
        h.propose(create_topic("t1", &[1])).await,
        Ok(ApplyOutcome::Rejected(MetadataError::TopicExists(
            "t1".into()
        )))
    );
    assert_eq!(
        h.propose(MetadataCommand::AllocateProducerIds { count: 10 })
            .await,
        Ok(ApplyOutcome::ProducerIds { first: 0 })
    );
    h.read_barrier().await.expect("barrier on the leader");
    let before = h.image();
    // openraft's metrics follow the state machine's watch channel shortly after.
    let ctl = node.ctl();
    wait_until("metrics to show the last apply", WAIT, || async {
        let m = ctl.metrics().await;
        m.last_applied_index == Some(before.applied_index)
            && m.committed_index == Some(before.applied_index)
    })
    .await;

    node.restart().await;
    let h = node.handle();
    // The persisted image is there before any election.
    assert_eq!(*h.image(), *before);
    assert_eq!(
        h.propose(MetadataCommand::AllocateProducerIds { count: 1 })
            .await,
        Ok(ApplyOutcome::ProducerIds { first: 10 })
    );
    assert!(h.image().applied_index > before.applied_index);
    node.stop().await;
    assert_eq!(h.propose(register(2)).await, Err(ProposeError::Shutdown));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn log_is_purged_after_the_snapshot_threshold() {
    init_tracing();
    let root = tempfile::tempdir().expect("tempdir");
    let tuning = RaftTuning {
        snapshot_logs_since_last: 50,
        logs_to_keep: 10,
        ..RaftTuning::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let quorum = BTreeMap::from([(1, listener.local_addr().expect("addr").to_string())]);
    let cfg = config(1, &dir_of(&root, "n1"), &quorum);
    let mut node = TestNode::start(cfg.clone(), tuning, Some(listener)).await;
    let h = node.handle();
    for i in 0..130 {
        assert_eq!(
            h.propose(MetadataCommand::AllocateProducerIds { count: 1 })
                .await,
            Ok(ApplyOutcome::ProducerIds { first: i })
        );
    }
    let ctl = node.ctl();
    wait_until("a snapshot and a purge", WAIT, || async {
        let m = ctl.metrics().await;
        m.snapshot_index.is_some() && m.purged_index.is_some_and(|p| p > 50)
    })
    .await;
    let m = ctl.metrics().await;
    let purged = m.purged_index.expect("purged");
    let last = m.last_log_index.expect("log not empty");
    assert!(
        last - purged <= 60,
        "log bounded: purged {purged}, last {last}"
    );

    node.restart().await;
    let h = node.handle();
    assert_eq!(h.image().next_producer_id, 130);
    assert_eq!(
        h.propose(MetadataCommand::AllocateProducerIds { count: 1 })
            .await,
        Ok(ApplyOutcome::ProducerIds { first: 130 })
    );
    node.stop().await;
    // On disk: no entry at or below the purge point survives.
    let store = open_store(&cfg.data_dir).await;
    let first = store
        .scan(
            Cf::RaftLog,
            &keys::u64_key(0),
            &keys::u64_key(u64::MAX),
            1,
            |_, _| true,
        )
        .expect("scan");
    let first_index = keys::read_u64(&first[0].0).expect("key");
    assert!(
        first_index > purged,
        "first entry {first_index} after purge point {purged}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_learner_joins_and_becomes_a_voter() {
    init_tracing();
    let root = tempfile::tempdir().expect("tempdir");
    let l1 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let l2 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a1 = l1.local_addr().expect("addr").to_string();
    let a2 = l2.local_addr().expect("addr").to_string();
    // Node 1 starts alone; node 2 knows of node 1 but, not being the lowest id, never bootstraps.
    let c1 = config(1, &dir_of(&root, "n1"), &BTreeMap::from([(1, a1.clone())]));
    let c2 = config(
        2,
        &dir_of(&root, "n2"),
        &BTreeMap::from([(1, a1), (2, a2.clone())]),
    );
    let mut n1 = TestNode::start(c1, RaftTuning::default(), Some(l1)).await;
    let mut n2 = TestNode::start(c2, RaftTuning::default(), Some(l2)).await;
    n1.handle()
        .propose(register(1))
        .await
        .expect("single voter commits");
    assert_eq!(
        n2.ctl().metrics().await.leader,
        None,
        "node 2 waits to be contacted"
    );

    assert!(matches!(
        n2.ctl().add_learner(NodeId(3), "127.0.0.1:1".into()).await,
        Err(crate::controller::ControllerError::NotLeader { .. })
    ));
    n1.ctl()
        .add_learner(NodeId(2), a2)
        .await
        .expect("add learner");
    n1.ctl()
        .change_membership([NodeId(1), NodeId(2)].into())
        .await
        .expect("change membership");
    let m = n1.ctl().metrics().await;
    assert_eq!(m.voters, [NodeId(1), NodeId(2)].into());

    // Node 2 now forwards to node 1 and reads its own write.
    let h2 = n2.handle();
    assert_eq!(
        h2.propose(create_topic("joined", &[1])).await,
        Ok(ApplyOutcome::Done)
    );
    assert!(h2.image().topic("joined").is_some());
    assert!(
        h2.image().brokers.contains_key(&NodeId(1)),
        "the learner received the earlier log"
    );
    n2.stop().await;
    n1.stop().await;
}
