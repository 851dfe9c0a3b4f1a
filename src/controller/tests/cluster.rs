//! Three-node quorums: forwarding with read-your-writes, failover, snapshot catch-up.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_forward_and_fail_over() {
    init_tracing();
    let root = tempfile::tempdir().expect("tempdir");
    let mut nodes = cluster(3, RaftTuning::default(), root.path()).await;
    let leader = agreed_leader(&nodes.iter().collect::<Vec<_>>()).await;
    // Only the lowest id bootstraps, and it wins the first election.
    assert_eq!(leader, NodeId(1));

    let follower = nodes
        .iter()
        .find(|n| n.handle().node_id() != leader)
        .expect("a follower");
    let fh = follower.handle();
    assert!(!fh.is_leader());
    for id in 1..=3 {
        assert_eq!(fh.propose(register(id)).await, Ok(ApplyOutcome::Done));
    }
    assert_eq!(
        fh.propose(create_topic("forwarded", &[1, 2, 3])).await,
        Ok(ApplyOutcome::Done)
    );
    // Read-your-writes on the follower that took the write.
    assert!(
        fh.image().topic("forwarded").is_some(),
        "follower sees its forwarded write at once"
    );

    // A read barrier on the other follower makes the write visible there too.
    let other = nodes
        .iter()
        .find(|n| n.handle().node_id() != leader && n.handle().node_id() != fh.node_id())
        .expect("third node");
    other
        .handle()
        .read_barrier()
        .await
        .expect("barrier through the leader");
    assert!(other.handle().image().topic("forwarded").is_some());

    // Kill the leader: the other two elect a new one and keep accepting proposals.
    let leader_idx = nodes
        .iter()
        .position(|n| n.handle().node_id() == leader)
        .expect("leader node");
    nodes[leader_idx].stop().await;
    let survivors: Vec<&TestNode> = nodes.iter().filter(|n| n.controller.is_some()).collect();
    let new_leader = agreed_leader(&survivors).await;
    assert_ne!(new_leader, leader);
    for n in &survivors {
        let h = n.handle();
        let name = format!("after-failover-{}", h.node_id());
        assert_eq!(
            h.propose(create_topic(&name, &[2, 3])).await,
            Ok(ApplyOutcome::Done)
        );
        assert!(h.image().topic(&name).is_some());
    }

    // The old leader rejoins as a follower and catches up.
    nodes[leader_idx].restart().await;
    let back = nodes[leader_idx].handle();
    back.read_barrier().await.expect("barrier after rejoining");
    assert!(
        back.image().topic("after-failover-2").is_some()
            || back.image().topic("after-failover-3").is_some()
    );
    for n in &mut nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lagging_follower_catches_up_from_a_snapshot() {
    init_tracing();
    let root = tempfile::tempdir().expect("tempdir");
    let tuning = RaftTuning {
        snapshot_logs_since_last: 20,
        logs_to_keep: 5,
        ..RaftTuning::default()
    };
    let mut nodes = cluster(3, tuning, root.path()).await;
    let leader = agreed_leader(&nodes.iter().collect::<Vec<_>>()).await;
    let lh = nodes
        .iter()
        .find(|n| n.handle().node_id() == leader)
        .expect("leader")
        .handle();
    let lag_idx = nodes
        .iter()
        .position(|n| n.handle().node_id() != leader)
        .expect("a follower");
    let applied_before = nodes[lag_idx].handle().image().applied_index;
    nodes[lag_idx].stop().await;

    lh.propose(register(1)).await.expect("register");
    for i in 0..60 {
        lh.propose(create_topic(&format!("t{i}"), &[1]))
            .await
            .expect("create");
    }
    let leader_node = nodes
        .iter()
        .find(|n| n.controller.is_some() && n.handle().node_id() == leader)
        .expect("leader");
    wait_until(
        "the leader to purge past the lagging follower",
        WAIT,
        || async {
            leader_node
                .ctl()
                .metrics()
                .await
                .purged_index
                .is_some_and(|p| p > 40)
        },
    )
    .await;

    nodes[lag_idx].restart().await;
    let fh = nodes[lag_idx].handle();
    let target = lh.image();
    wait_until("the follower to catch up", WAIT, || async {
        fh.image().applied_index >= target.applied_index
    })
    .await;
    assert_eq!(fh.image().topics, target.topics);
    // The entries it missed were purged on the leader, so it must have installed a snapshot.
    let m = nodes[lag_idx].ctl().metrics().await;
    assert!(
        m.snapshot_index.is_some_and(|s| s > applied_before + 40),
        "caught up through a snapshot: {m:?}"
    );
    for n in &mut nodes {
        n.stop().await;
    }
}
