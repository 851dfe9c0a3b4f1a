use super::*;
use crate::metadata::image::BrokerRegistration;
use crate::types::{NodeId, TopicId, TopicName};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn reg(id: i32) -> MetadataCommand {
    MetadataCommand::RegisterBroker {
        registration: BrokerRegistration::for_test(NodeId(id), "h"),
    }
}

fn run(cmds: &[MetadataCommand]) -> (MetadataImage, Vec<ApplyOutcome>) {
    run_on(MetadataImage::default(), cmds)
}

/// Applies `cmds` to `img` (log indexes after the image's last).
fn run_on(mut img: MetadataImage, cmds: &[MetadataCommand]) -> (MetadataImage, Vec<ApplyOutcome>) {
    let mut outs = vec![];
    let first = img.applied_index + 1;
    for (i, c) in cmds.iter().enumerate() {
        let (n, o) = apply(&img, &MetadataRequest::new(c.clone()), first + i as u64);
        img = n;
        outs.push(o);
    }
    (img, outs)
}

fn create(name: &str, assignment: Vec<Vec<i32>>) -> MetadataCommand {
    MetadataCommand::CreateTopic {
        name: TopicName::new(name).expect("valid"),
        topic_id: TopicId::random(),
        assignment: assignment
            .into_iter()
            .map(|r| r.into_iter().map(NodeId).collect())
            .collect(),
        configs: BTreeMap::new(),
    }
}

#[test]
fn create_delete_and_reject_duplicates() {
    let (img, outs) = run(&[
        reg(1),
        create("a", vec![vec![1], vec![1]]),
        create("a", vec![vec![1]]),
    ]);
    assert_eq!(outs[1], ApplyOutcome::Done);
    assert_eq!(
        outs[2],
        ApplyOutcome::Rejected(MetadataError::TopicExists("a".into()))
    );
    let t = img.topic("a").expect("exists");
    assert_eq!(t.partitions.len(), 2);
    assert_eq!(t.partitions[0].leader, Some(NodeId(1)));
    assert_eq!(img.applied_index, 3);
    let (img, _) = run(&[
        reg(1),
        create("a", vec![vec![1]]),
        MetadataCommand::DeleteTopic {
            name: TopicName::new("a").expect("valid"),
        },
    ]);
    assert!(img.topics.is_empty() && img.topic_ids.is_empty());
}

#[test]
fn collisions_and_bad_assignments() {
    let (_, outs) = run(&[
        reg(1),
        create("a.b", vec![vec![1]]),
        create("a_b", vec![vec![1]]),
        create("c", vec![vec![2]]),
        create("d", vec![vec![1, 1]]),
    ]);
    assert!(matches!(
        outs[2],
        ApplyOutcome::Rejected(MetadataError::TopicCollision(..))
    ));
    assert_eq!(
        outs[3],
        ApplyOutcome::Rejected(MetadataError::UnknownBroker(2))
    );
    assert!(matches!(
        outs[4],
        ApplyOutcome::Rejected(MetadataError::InvalidReplicaAssignment(_))
    ));
}

#[test]
fn fencing_moves_leadership_and_stale_epochs_are_rejected() {
    let t = TopicName::new("t").expect("valid");
    let (img, outs) = run(&[
        reg(1),
        reg(2),
        reg(3),
        create("t", vec![vec![1, 2, 3]]),
        MetadataCommand::FenceBroker { node_id: NodeId(1) },
        MetadataCommand::ChangePartition {
            topic: t.clone(),
            partition: 0,
            partition_epoch: 0,
            leader: Some(NodeId(2)),
            isr: vec![NodeId(2)],
        },
    ]);
    let p = &img.topic("t").expect("exists").partitions[0];
    assert_eq!(p.leader, Some(NodeId(2)));
    assert_eq!(p.leader_epoch, 1);
    assert_eq!(p.isr, vec![NodeId(2), NodeId(3)]);
    assert!(matches!(
        outs[5],
        ApplyOutcome::Rejected(MetadataError::StalePartitionEpoch { .. })
    ));
}

/// KIP-841: a fenced (or unregistered) broker cannot join the ISR, even through an expansion
/// decided while it was live; one already in the ISR may stay in a change that keeps it.
#[test]
fn only_live_brokers_join_the_isr() {
    let (img, _) = run(&[reg(1), reg(2), reg(3), create("t", vec![vec![1, 2, 3]])]);
    let shrink = isr_change(&img, "t", 1, &[1, 2]);
    let (img, outs) = run_on(img, &[shrink]);
    assert!(matches!(outs[0], ApplyOutcome::Done));
    let expand = isr_change(&img, "t", 1, &[1, 2, 3]);
    let (fenced, outs) = run_on(
        img.clone(),
        &[
            MetadataCommand::FenceBroker { node_id: NodeId(3) },
            expand.clone(),
        ],
    );
    assert!(
        matches!(
            &outs[1],
            ApplyOutcome::Rejected(MetadataError::InvalidPartitionChange(m)) if m.contains("broker 3")
        ),
        "{:?}",
        outs[1]
    );
    assert_eq!(
        ids(&fenced.partition("t", 0).expect("exists").isr),
        vec![1, 2]
    );
    // Live, the same expansion commits.
    let (img, outs) = run_on(img, &[expand]);
    assert!(matches!(outs[0], ApplyOutcome::Done));
    assert_eq!(
        ids(&img.partition("t", 0).expect("exists").isr),
        vec![1, 2, 3]
    );
}

fn reassign(topic: &str, target: Option<&[i32]>) -> MetadataCommand {
    MetadataCommand::ReassignPartition {
        topic: TopicName::new(topic).expect("valid"),
        partition: 0,
        target: target.map(|r| r.iter().copied().map(NodeId).collect()),
    }
}

fn isr_change(img: &MetadataImage, topic: &str, leader: i32, isr: &[i32]) -> MetadataCommand {
    MetadataCommand::ChangePartition {
        topic: TopicName::new(topic).expect("valid"),
        partition: 0,
        partition_epoch: img.partition(topic, 0).expect("exists").partition_epoch,
        leader: Some(NodeId(leader)),
        isr: isr.iter().copied().map(NodeId).collect(),
    }
}

fn ids(v: &[NodeId]) -> Vec<i32> {
    v.iter().map(|n| n.0).collect()
}

/// {1,2,3} → {2,3,4}: 4 is added, catches up (the leader's ISR expansion), and the same
/// change completes the move: 1 leaves replicas and ISR, and as it led, 2 leads.
#[test]
fn a_reassignment_adds_then_completes_when_the_target_is_in_sync() {
    let base = [
        reg(1),
        reg(2),
        reg(3),
        reg(4),
        create("t", vec![vec![1, 2, 3]]),
    ];
    let mut cmds = base.to_vec();
    cmds.push(reassign("t", Some(&[2, 3, 4])));
    let (img, outs) = run(&cmds);
    assert_eq!(outs[5], ApplyOutcome::Done);
    let p = img.partition("t", 0).expect("exists");
    assert_eq!(ids(&p.replicas), vec![2, 3, 4, 1]);
    assert_eq!((ids(&p.adding), ids(&p.removing)), (vec![4], vec![1]));
    assert_eq!(p.leader, Some(NodeId(1)));
    assert_eq!(ids(&p.target_replicas()), vec![2, 3, 4]);
    assert_eq!(ids(&p.original_replicas()), vec![2, 3, 1]);
    let epoch = p.leader_epoch;
    // Not yet in sync: an ISR change without 4 completes nothing.
    let (img2, o) = apply(
        &img,
        &MetadataRequest::new(isr_change(&img, "t", 1, &[1, 2])),
        100,
    );
    assert_eq!(o, ApplyOutcome::Done);
    assert!(img2.partition("t", 0).expect("exists").reassigning());
    // 4 joins: complete.
    let (img3, o) = apply(
        &img2,
        &MetadataRequest::new(isr_change(&img2, "t", 1, &[1, 2, 3, 4])),
        101,
    );
    assert_eq!(o, ApplyOutcome::Done);
    let p = img3.partition("t", 0).expect("exists");
    assert!(!p.reassigning());
    assert_eq!(ids(&p.replicas), vec![2, 3, 4]);
    assert_eq!(ids(&p.isr), vec![2, 3, 4]);
    assert_eq!(p.leader, Some(NodeId(2)));
    assert_eq!(p.leader_epoch, epoch + 1);
}

#[test]
fn reassignments_cancel_replace_shrink_and_reject_bad_targets() {
    let base = vec![
        reg(1),
        reg(2),
        reg(3),
        reg(4),
        create("t", vec![vec![1, 2, 3]]),
    ];
    let rejected = |target: Option<&[i32]>| {
        let mut cmds = base.clone();
        cmds.push(reassign("t", target));
        let (img, outs) = run(&cmds);
        assert!(!img.partition("t", 0).expect("exists").reassigning());
        outs[5].clone()
    };
    assert!(matches!(
        rejected(None),
        ApplyOutcome::Rejected(MetadataError::NoReassignmentInProgress(_))
    ));
    assert!(matches!(
        rejected(Some(&[])),
        ApplyOutcome::Rejected(MetadataError::InvalidReplicaAssignment(_))
    ));
    assert!(matches!(
        rejected(Some(&[2, 2])),
        ApplyOutcome::Rejected(MetadataError::InvalidReplicaAssignment(_))
    ));
    assert_eq!(
        rejected(Some(&[2, 9])),
        ApplyOutcome::Rejected(MetadataError::UnknownBroker(9))
    );
    let mut fenced = base.clone();
    fenced.push(MetadataCommand::FenceBroker { node_id: NodeId(4) });
    fenced.push(reassign("t", Some(&[2, 3, 4])));
    let (_, outs) = run(&fenced);
    assert!(matches!(
        outs[6],
        ApplyOutcome::Rejected(MetadataError::InvalidReplicaAssignment(_))
    ));
    // Unknown partition.
    let mut unknown = base.clone();
    unknown.push(MetadataCommand::ReassignPartition {
        topic: TopicName::new("t").expect("valid"),
        partition: 3,
        target: Some(vec![NodeId(1)]),
    });
    assert!(matches!(
        run(&unknown).1[5],
        ApplyOutcome::Rejected(MetadataError::UnknownTopic(_))
    ));
    // Cancel restores the original replicas (in the order Kafka's revert leaves them: the
    // replica list without the added ones).
    let mut cancel = base.clone();
    cancel.push(reassign("t", Some(&[4, 2, 3])));
    cancel.push(reassign("t", None));
    let (img, outs) = run(&cancel);
    assert_eq!(outs[6], ApplyOutcome::Done);
    let p = img.partition("t", 0).expect("exists");
    assert!(!p.reassigning());
    assert_eq!(ids(&p.replicas), vec![2, 3, 1]);
    assert_eq!(p.leader, Some(NodeId(1)));
    // Replace: relative to the original replicas, not the ongoing target.
    let mut replace = base.clone();
    replace.push(reassign("t", Some(&[4, 2, 3])));
    replace.push(reassign("t", Some(&[1, 2, 4])));
    let (img, _) = run(&replace);
    let p = img.partition("t", 0).expect("exists");
    assert_eq!(ids(&p.replicas), vec![1, 2, 4, 3]);
    assert_eq!((ids(&p.adding), ids(&p.removing)), (vec![4], vec![3]));
    // A shrink whose target is already in sync completes at once; a reorder too.
    let mut shrink = base.clone();
    shrink.push(reassign("t", Some(&[3, 2])));
    let (img, _) = run(&shrink);
    let p = img.partition("t", 0).expect("exists");
    assert!(!p.reassigning());
    assert_eq!((ids(&p.replicas), ids(&p.isr)), (vec![3, 2], vec![2, 3]));
    assert_eq!(p.leader, Some(NodeId(3)));
    let mut reorder = base;
    reorder.push(reassign("t", Some(&[3, 1, 2])));
    let (img, _) = run(&reorder);
    let p = img.partition("t", 0).expect("exists");
    assert!(!p.reassigning());
    assert_eq!(ids(&p.replicas), vec![3, 1, 2]);
    assert_eq!(p.leader, Some(NodeId(1)));
}

#[test]
fn producer_ids_are_unique() {
    let (img, outs) = run(&[
        MetadataCommand::AllocateProducerIds { count: 1000 },
        MetadataCommand::AllocateProducerIds { count: 1000 },
    ]);
    assert_eq!(outs[0], ApplyOutcome::ProducerIds { first: 0 });
    assert_eq!(outs[1], ApplyOutcome::ProducerIds { first: 1000 });
    assert_eq!(img.next_producer_id, 2000);
}

#[test]
fn dynamic_broker_configs_per_broker_and_default() {
    let set = |k: &str, v: &str| crate::metadata::ConfigOp::Set {
        key: k.into(),
        value: v.into(),
    };
    let (img, outs) = run(&[
        MetadataCommand::AlterBrokerConfigs {
            broker: Some(NodeId(1)),
            ops: vec![
                set("log.retention.ms", "1000"),
                set("message.max.bytes", "5"),
            ],
        },
        MetadataCommand::AlterBrokerConfigs {
            broker: None,
            ops: vec![set("log.retention.ms", "2000")],
        },
        MetadataCommand::AlterBrokerConfigs {
            broker: Some(NodeId(1)),
            ops: vec![crate::metadata::ConfigOp::Delete {
                key: "message.max.bytes".into(),
            }],
        },
    ]);
    assert!(outs.iter().all(|o| *o == ApplyOutcome::Done));
    assert_eq!(
        img.broker_configs(Some(NodeId(1))),
        BTreeMap::from([("log.retention.ms".to_owned(), "1000".to_owned())])
    );
    assert_eq!(
        img.broker_configs(None),
        BTreeMap::from([("log.retention.ms".to_owned(), "2000".to_owned())])
    );
    assert!(img.broker_configs(Some(NodeId(2))).is_empty());
    let e = &img.broker_configs["1"];
    assert_eq!((e.created_index, e.modified_index), (1, 3));
    // Replacing with nothing removes the entity.
    let (img, _) = run(&[
        MetadataCommand::AlterBrokerConfigs {
            broker: None,
            ops: vec![set("log.retention.ms", "2000")],
        },
        MetadataCommand::ReplaceBrokerConfigs {
            broker: None,
            configs: BTreeMap::new(),
        },
    ]);
    assert!(img.broker_configs.is_empty());
}

fn arb_command() -> impl Strategy<Value = MetadataCommand> {
    let names = prop::sample::select(vec!["a", "b", "c.d", "c_d"]);
    prop_oneof![
        (1i32..5).prop_map(reg),
        (
            names.clone(),
            prop::collection::vec(prop::collection::vec(1i32..5, 1..3), 1..4)
        )
            .prop_map(|(n, a)| create(n, a)),
        names.clone().prop_map(|n| MetadataCommand::DeleteTopic {
            name: TopicName::new(n).expect("valid")
        }),
        (1i32..5).prop_map(|n| MetadataCommand::FenceBroker { node_id: NodeId(n) }),
        (
            names.clone(),
            0i32..3,
            0i32..4,
            prop::option::of(1i32..5),
            prop::collection::vec(1i32..5, 0..4)
        )
            .prop_map(|(t, p, e, l, isr)| MetadataCommand::ChangePartition {
                topic: TopicName::new(t).expect("valid"),
                partition: p,
                partition_epoch: e,
                leader: l.map(NodeId),
                isr: isr.into_iter().map(NodeId).collect()
            }),
        (
            names,
            prop::collection::vec(prop::collection::vec(1i32..5, 1..3), 1..3)
        )
            .prop_map(|(n, a)| MetadataCommand::CreatePartitions {
                name: TopicName::new(n).expect("valid"),
                assignment: a
                    .into_iter()
                    .map(|r| r.into_iter().map(NodeId).collect())
                    .collect()
            }),
        arb_zk_command(),
        (
            prop::sample::select(vec!["a", "b", "c.d", "c_d"]),
            0i32..3,
            prop::option::of(prop::collection::vec(1i32..5, 0..4))
        )
            .prop_map(|(t, p, target)| MetadataCommand::ReassignPartition {
                topic: TopicName::new(t).expect("valid"),
                partition: p,
                target: target.map(|r| r.into_iter().map(NodeId).collect())
            }),
        (
            prop::option::of(1i32..3),
            prop::collection::vec((0u8..3, prop::bool::ANY), 0..3)
        )
            .prop_map(|(b, ops)| MetadataCommand::AlterBrokerConfigs {
                broker: b.map(NodeId),
                ops: ops
                    .into_iter()
                    .map(|(k, set)| {
                        let key = format!("log.retention.ms.{k}");
                        if set {
                            crate::metadata::ConfigOp::Set {
                                key,
                                value: "1".into(),
                            }
                        } else {
                            crate::metadata::ConfigOp::Delete { key }
                        }
                    })
                    .collect()
            }),
    ]
}

fn arb_zk_op() -> impl Strategy<Value = crate::metadata::ZkOp> {
    use crate::metadata::ZkOp;
    let paths = prop::sample::select(vec![
        "/a",
        "/a/b",
        "/a/b/c",
        "/k",
        "/k/config/changes/n-",
        "/config/changes/c-",
        "/brokers",
        "/",
        "/a/",
        "bad",
    ]);
    let data = prop::option::of(prop::collection::vec(any::<u8>(), 0..4));
    prop_oneof![
        (paths.clone(), data.clone(), any::<bool>(), any::<bool>()).prop_map(|(p, d, e, s)| {
            ZkOp::Create {
                path: p.into(),
                data: d,
                ephemeral: e,
                sequential: s,
                acl: crate::metadata::open_acls(),
            }
        }),
        (paths.clone(), -1i32..2).prop_map(|(p, v)| ZkOp::Delete {
            path: p.into(),
            version: v
        }),
        (paths.clone(), data, -1i32..2).prop_map(|(p, d, v)| ZkOp::SetData {
            path: p.into(),
            data: d,
            version: v
        }),
        (paths, -1i32..2).prop_map(|(p, v)| ZkOp::Check {
            path: p.into(),
            version: v
        }),
    ]
}

fn arb_zk_command() -> impl Strategy<Value = MetadataCommand> {
    prop_oneof![
        (1i64..4).prop_map(|id| MetadataCommand::ZkCreateSession {
            session_id: id,
            password: vec![0; 16],
            timeout_ms: 4000,
            now_ms: 1
        }),
        prop::collection::vec(1i64..4, 0..3)
            .prop_map(|ids| MetadataCommand::ZkExpireSessions { session_ids: ids }),
        prop::collection::vec(1i64..4, 0..3).prop_map(|ids| MetadataCommand::ZkTouchSessions {
            session_ids: ids,
            now_ms: 2
        }),
        (0i64..4, prop::collection::vec(arb_zk_op(), 1..4)).prop_map(|(sid, ops)| {
            MetadataCommand::ZkMulti {
                session_id: sid,
                now_ms: 3,
                ops,
                data_bytes_max: Some(1 << 20),
            }
        }),
    ]
}

proptest! {
    /// A ZkMulti either applies fully (every result a success) or leaves the znodes untouched.
    #[test]
    fn zk_multi_is_all_or_nothing(cmds in prop::collection::vec(arb_zk_command(), 0..40)) {
        let mut img = MetadataImage::default();
        for (i, c) in cmds.iter().enumerate() {
            let (n, out) = apply(&img, &MetadataRequest::new(c.clone()), i as u64 + 1);
            n.check_invariants();
            if let ApplyOutcome::Zk(results) = &out {
                let failed = results.iter().any(|r| matches!(r, crate::metadata::ZkOpResult::Error(_)));
                if failed {
                    prop_assert_eq!(&n.zk.znodes, &img.zk.znodes);
                }
                prop_assert!(!failed || results.iter().all(|r| matches!(r, crate::metadata::ZkOpResult::Error(_))));
            }
            for z in n.zk.znodes.values() {
                prop_assert!(z.czxid <= i as i64 + 1);
            }
            img = n;
        }
    }
}

proptest! {
    #[test]
    fn apply_keeps_invariants(cmds in prop::collection::vec(arb_command(), 0..40)) {
        let (img, _) = run(&cmds);
        img.check_invariants();
        // Epochs never go backwards between consecutive images.
        let mut prev = MetadataImage::default();
        for (i, c) in cmds.iter().enumerate() {
            let (n, _) = apply(&prev, &MetadataRequest::new(c.clone()), i as u64 + 1);
            for (name, t) in &n.topics {
                if let Some(old) = prev.topics.get(name) {
                    if old.id == t.id {
                        for (a, b) in old.partitions.iter().zip(&t.partitions) {
                            prop_assert!(b.leader_epoch >= a.leader_epoch);
                            prop_assert!(b.partition_epoch >= a.partition_epoch);
                        }
                    }
                }
            }
            prev = n;
        }
    }
}
