//! Unit tests of the pure group state machine.

use super::*;

fn lim() -> GroupLimits {
    GroupLimits::default()
}

fn params(member_id: &str, protocols: &[&str]) -> JoinParams {
    JoinParams {
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| ((*p).to_owned(), Bytes::from(format!("meta-{p}"))))
            .collect(),
        require_known_member_id: true,
    }
}

fn join_ok(fx: &Effects, id: &str) -> JoinResult {
    fx.joins
        .iter()
        .find(|(m, _)| m == id)
        .and_then(|(_, r)| r.clone().ok())
        .unwrap_or_else(|| panic!("no join answer for {id}: {fx:?}"))
}

/// Joins a new dynamic member through the MEMBER_ID_REQUIRED round trip.
fn join_new(
    g: &mut Group,
    id: &str,
    protocols: &[&str],
    now: i64,
    fx: &mut Effects,
) -> Reply<JoinResult> {
    let first = g.join(params("", protocols), id.into(), now, &lim(), fx);
    assert_eq!(
        first,
        Reply::Now(Err(GroupError::MemberIdRequired(id.into())))
    );
    g.join(params(id, protocols), "unused".into(), now, &lim(), fx)
}

fn sync(
    g: &mut Group,
    id: &str,
    generation: i32,
    assignments: Vec<(String, Bytes)>,
    now: i64,
    fx: &mut Effects,
) -> Reply<SyncResult> {
    g.sync(
        SyncParams {
            member_id: id.into(),
            generation_id: generation,
            assignments,
            ..Default::default()
        },
        now,
        fx,
    )
}

/// Two members in a Stable generation 1 (`a` leads).
fn stable_pair() -> Group {
    let mut g = Group::new("g".into(), 0);
    let mut fx = Effects::default();
    assert_eq!(join_new(&mut g, "a", &["range"], 0, &mut fx), Reply::Held);
    // One member, all joined, no delay: generation 1 completes at once.
    assert_eq!(join_ok(&fx, "a").generation_id, 1);
    let mut fx = Effects::default();
    assert_eq!(join_new(&mut g, "b", &["range"], 1, &mut fx), Reply::Held);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(
        g.join(params("a", &["range"]), String::new(), 2, &lim(), &mut fx),
        Reply::Held
    );
    let ra = join_ok(&fx, "a");
    let rb = join_ok(&fx, "b");
    assert_eq!(
        (ra.generation_id, rb.generation_id, ra.leader_id.as_str()),
        (2, 2, "a")
    );
    assert_eq!(ra.members.len(), 2);
    assert!(rb.members.is_empty());
    let mut fx = Effects::default();
    assert_eq!(sync(&mut g, "b", 2, vec![], 3, &mut fx), Reply::Held);
    let assign = vec![
        ("a".to_owned(), Bytes::from_static(b"A")),
        ("b".to_owned(), Bytes::from_static(b"B")),
    ];
    assert_eq!(sync(&mut g, "a", 2, assign, 3, &mut fx), Reply::Held);
    assert!(fx.persist);
    assert_eq!(g.state, GroupState::Stable);
    let got: Vec<_> = fx
        .syncs
        .iter()
        .map(|(m, r)| (m.clone(), r.clone().map(|s| s.assignment)))
        .collect();
    assert!(got.contains(&("a".into(), Ok(Bytes::from_static(b"A")))));
    assert!(got.contains(&("b".into(), Ok(Bytes::from_static(b"B")))));
    g
}

#[test]
fn join_sync_and_heartbeat() {
    let mut g = stable_pair();
    assert_eq!(g.heartbeat("a", None, 2, 10), Ok(()));
    assert_eq!(
        g.heartbeat("a", None, 1, 10),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        g.heartbeat("zz", None, 2, 10),
        Err(GroupError::UnknownMemberId)
    );
    let mut fx = Effects::default();
    assert_eq!(
        sync(&mut g, "b", 2, vec![], 11, &mut fx),
        Reply::Now(Ok(SyncResult {
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignment: Bytes::from_static(b"B")
        }))
    );
    assert_eq!(
        sync(&mut g, "b", 7, vec![], 11, &mut fx),
        Reply::Now(Err(GroupError::IllegalGeneration))
    );
    // A follower rejoining with the same protocols gets the current generation, no rebalance.
    let r = g.join(params("b", &["range"]), String::new(), 12, &lim(), &mut fx);
    assert!(matches!(r, Reply::Now(Ok(ref j)) if j.generation_id == 2));
    assert_eq!(g.state, GroupState::Stable);
}

#[test]
fn leave_rebalances_and_the_rest_get_everything() {
    let mut g = stable_pair();
    let mut fx = Effects::default();
    assert_eq!(g.leave("b", None, 20, &lim(), &mut fx), Ok(()));
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat("a", None, 2, 21),
        Err(GroupError::RebalanceInProgress)
    );
    assert_eq!(
        g.join(params("a", &["range"]), String::new(), 22, &lim(), &mut fx),
        Reply::Held
    );
    let r = join_ok(&fx, "a");
    assert_eq!((r.generation_id, r.members.len()), (3, 1));
    assert_eq!(
        g.leave("b", None, 23, &lim(), &mut fx),
        Err(GroupError::UnknownMemberId)
    );
    let mut fx = Effects::default();
    assert_eq!(g.leave("a", None, 24, &lim(), &mut fx), Ok(()));
    assert_eq!(g.state, GroupState::Empty);
    assert!(fx.persist);
}

#[test]
fn sessions_expire_and_rebalance_times_out() {
    let mut g = stable_pair();
    let mut fx = Effects::default();
    // a heartbeats, b does not: b expires after its 10s session.
    assert_eq!(g.heartbeat("a", None, 2, 9_000), Ok(()));
    g.tick(10_500, &lim(), &mut fx);
    assert!(!g.members.contains_key("b"));
    assert_eq!(g.state, GroupState::PreparingRebalance);
    // a never rejoins: the rebalance times out after 30s and a is dropped too.
    g.tick(10_500 + 30_000, &lim(), &mut fx);
    assert_eq!(g.state, GroupState::Empty);
    assert!(g.members.is_empty());
}

#[test]
fn pending_member_ids_expire_and_unknown_ids_are_rejected() {
    let mut g = Group::new("g".into(), 0);
    let mut fx = Effects::default();
    assert_eq!(
        g.join(params("", &["range"]), "x".into(), 0, &lim(), &mut fx),
        Reply::Now(Err(GroupError::MemberIdRequired("x".into())))
    );
    g.tick(20_000, &lim(), &mut fx);
    assert!(g.is_empty());
    assert_eq!(
        g.join(
            params("x", &["range"]),
            String::new(),
            20_001,
            &lim(),
            &mut fx
        ),
        Reply::Now(Err(GroupError::UnknownMemberId))
    );
}

#[test]
fn concurrent_joins_converge_in_one_generation() {
    let l = GroupLimits {
        initial_rebalance_delay_ms: 3_000,
        ..lim()
    };
    let mut g = Group::new("g".into(), 0);
    let mut fx = Effects::default();
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        let mut p = params("", &["range"]);
        p.require_known_member_id = false;
        assert_eq!(
            g.join(p, (*id).into(), i as i64 * 100, &l, &mut fx),
            Reply::Held
        );
    }
    assert!(fx.joins.is_empty(), "the initial delay holds every join");
    g.tick(3_000, &l, &mut fx); // extended once: members arrived during the delay
    assert!(fx.joins.is_empty());
    g.tick(6_100, &l, &mut fx);
    let gens: Vec<i32> = fx
        .joins
        .iter()
        .map(|(_, r)| r.as_ref().map(|j| j.generation_id).unwrap_or(-1))
        .collect();
    assert_eq!(gens, vec![1, 1, 1]);
}

#[test]
fn protocol_selection_and_inconsistency() {
    let mut g = Group::new("g".into(), 0);
    let mut fx = Effects::default();
    let mut p = params("", &["roundrobin", "range"]);
    p.require_known_member_id = false;
    g.join(p, "a".into(), 0, &lim(), &mut fx);
    let mut p = params("", &["range", "roundrobin"]);
    p.require_known_member_id = false;
    g.join(p.clone(), "b".into(), 0, &lim(), &mut fx);
    let mut p3 = params("", &["range"]);
    p3.require_known_member_id = false;
    g.join(p3, "c".into(), 0, &lim(), &mut fx);
    // Only range is common to all.
    assert_eq!(g.select_protocol().as_deref(), Some("range"));
    let mut bad = params("", &["sticky"]);
    bad.require_known_member_id = false;
    assert_eq!(
        g.join(bad, "d".into(), 0, &lim(), &mut fx),
        Reply::Now(Err(GroupError::InconsistentGroupProtocol))
    );
    let mut other_type = params("", &["range"]);
    other_type.protocol_type = "connect".into();
    assert_eq!(
        g.join(other_type, "e".into(), 0, &lim(), &mut fx),
        Reply::Now(Err(GroupError::InconsistentGroupProtocol))
    );

    // Votes: two prefer roundrobin, one range; both common → roundrobin.
    let mut g = Group::new("h".into(), 0);
    for (id, prefs) in [
        ("a", ["roundrobin", "range"]),
        ("b", ["roundrobin", "range"]),
        ("c", ["range", "roundrobin"]),
    ] {
        let mut p = params("", &prefs);
        p.require_known_member_id = false;
        g.join(p, id.into(), 0, &lim(), &mut fx);
    }
    assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
}

#[test]
fn session_timeout_bounds_and_metadata_size() {
    let mut g = Group::new("g".into(), 0);
    let mut fx = Effects::default();
    let mut p = params("", &["range"]);
    p.session_timeout_ms = 1;
    assert_eq!(
        g.join(p, "a".into(), 0, &lim(), &mut fx),
        Reply::Now(Err(GroupError::InvalidSessionTimeout))
    );
    let mut p = params("", &["range"]);
    p.protocols[0].1 = Bytes::from(vec![0u8; 2 << 20]);
    assert!(matches!(
        g.join(p, "a".into(), 0, &lim(), &mut fx),
        Reply::Now(Err(GroupError::InvalidRequest(_)))
    ));
    let small = GroupLimits {
        max_size: 1,
        ..lim()
    };
    let mut p = params("", &["range"]);
    p.require_known_member_id = false;
    g.join(p.clone(), "a".into(), 0, &small, &mut fx);
    assert_eq!(
        g.join(p, "b".into(), 0, &small, &mut fx),
        Reply::Now(Err(GroupError::GroupMaxSizeReached))
    );
}

#[test]
fn static_member_rejoin_keeps_generation_and_fences_old_id() {
    let mut g = Group::new("g".into(), 0);
    let mut fx = Effects::default();
    let mut p = params("", &["range"]);
    p.group_instance_id = Some("i1".into());
    // Static members skip MEMBER_ID_REQUIRED.
    assert_eq!(
        g.join(p.clone(), "s1".into(), 0, &lim(), &mut fx),
        Reply::Held
    );
    assert_eq!(join_ok(&fx, "s1").generation_id, 1);
    let mut fx = Effects::default();
    sync(
        &mut g,
        "s1",
        1,
        vec![("s1".into(), Bytes::from_static(b"A1"))],
        1,
        &mut fx,
    );
    assert_eq!(g.state, GroupState::Stable);
    // Restart: same instance id, new member id, same protocols → no rebalance.
    let mut fx = Effects::default();
    let r = g.join(p.clone(), "s2".into(), 5, &lim(), &mut fx);
    let Reply::Now(Ok(j)) = r else {
        panic!("expected an immediate answer, got {r:?}")
    };
    assert_eq!(
        (j.generation_id, j.member_id.as_str(), j.leader_id.as_str()),
        (1, "s2", "s1")
    );
    assert_eq!(g.leader_id.as_deref(), Some("s2"));
    assert_eq!(g.state, GroupState::Stable);
    assert!(fx.persist);
    // The new id gets the old assignment; the old id is fenced.
    assert_eq!(
        sync(&mut g, "s2", 1, vec![], 6, &mut fx),
        Reply::Now(Ok(SyncResult {
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignment: Bytes::from_static(b"A1")
        }))
    );
    assert_eq!(
        g.heartbeat("s1", Some("i1"), 1, 7),
        Err(GroupError::FencedInstanceId)
    );
    assert_eq!(
        g.leave("s1", Some("i1"), 7, &lim(), &mut fx),
        Err(GroupError::FencedInstanceId)
    );
    let mut stale = p.clone();
    stale.member_id = "s1".into();
    assert_eq!(
        g.join(stale, String::new(), 8, &lim(), &mut fx),
        Reply::Now(Err(GroupError::FencedInstanceId))
    );
    // Changed protocols trigger a rebalance.
    let mut changed = p;
    changed.protocols = vec![("roundrobin".into(), Bytes::new())];
    assert_eq!(
        g.join(changed, "s3".into(), 9, &lim(), &mut fx),
        Reply::Held
    );
    assert_eq!(join_ok(&fx, "s3").generation_id, 2);
}

#[test]
fn commits_check_generation_and_allow_standalone() {
    let mut g = Group::new("g".into(), 0);
    assert_eq!(g.check_commit("", None, -1, 0), Ok(()));
    let mut g = stable_pair();
    assert_eq!(g.check_commit("a", None, 2, 0), Ok(()));
    assert_eq!(
        g.check_commit("a", None, 1, 0),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        g.check_commit("", None, -1, 0),
        Err(GroupError::UnknownMemberId)
    );
    let mut fx = Effects::default();
    g.leave("b", None, 1, &lim(), &mut fx).expect("leave");
    // Commits of the current generation are allowed while preparing (onPartitionsRevoked).
    assert_eq!(g.check_commit("a", None, 2, 0), Ok(()));
}

#[test]
fn a_rebalance_cancels_held_syncs() {
    let mut g = Group::new("g".into(), 0);
    let mut fx = Effects::default();
    let mut p = params("", &["range"]);
    p.require_known_member_id = false;
    g.join(p.clone(), "a".into(), 0, &lim(), &mut fx);
    let mut fx = Effects::default();
    g.join(p.clone(), "b".into(), 0, &lim(), &mut fx);
    g.join(params("a", &["range"]), String::new(), 0, &lim(), &mut fx);
    assert_eq!(g.state, GroupState::CompletingRebalance);
    let mut fx = Effects::default();
    assert_eq!(sync(&mut g, "b", 2, vec![], 1, &mut fx), Reply::Held);
    g.join(p, "c".into(), 2, &lim(), &mut fx);
    assert_eq!(
        fx.syncs,
        vec![("b".to_owned(), Err(GroupError::RebalanceInProgress))]
    );
}

/// librdkafka 0084: a member that got its JoinGroup answer and vanished before SyncGroup is
/// expired after its session timeout even though the group is CompletingRebalance; the member
/// waiting in SyncGroup is told to rejoin and the next generation completes without it.
#[test]
fn a_member_that_never_syncs_expires_in_completing_rebalance() {
    let mut g = Group::new("g".into(), 0);
    let mut fx = Effects::default();
    let mut p = params("", &["range"]);
    p.require_known_member_id = false;
    g.join(p.clone(), "a".into(), 0, &lim(), &mut fx);
    let mut fx = Effects::default();
    g.join(p, "b".into(), 0, &lim(), &mut fx);
    g.join(params("a", &["range"]), String::new(), 0, &lim(), &mut fx);
    assert_eq!(g.state, GroupState::CompletingRebalance);
    assert_eq!(g.leader_id.as_deref(), Some("a"));
    // b syncs and waits for the leader; the leader a is gone (no SyncGroup, no heartbeat).
    let mut fx = Effects::default();
    assert_eq!(sync(&mut g, "b", 2, vec![], 100, &mut fx), Reply::Held);
    g.tick(9_000, &lim(), &mut fx);
    assert_eq!(g.state, GroupState::CompletingRebalance);
    // Session 10 s from the JoinGroup answer (t=0): a expires well before the 30 s sync
    // deadline (the rebalance timeout).
    let mut fx = Effects::default();
    g.tick(10_100, &lim(), &mut fx);
    assert!(!g.members.contains_key("a"));
    assert_eq!(
        fx.syncs,
        vec![("b".to_owned(), Err(GroupError::RebalanceInProgress))]
    );
    assert_eq!(g.state, GroupState::PreparingRebalance);
    // b rejoins and is alone in generation 3, as leader.
    let mut fx = Effects::default();
    assert_eq!(
        g.join(
            params("b", &["range"]),
            String::new(),
            10_200,
            &lim(),
            &mut fx
        ),
        Reply::Held
    );
    let r = join_ok(&fx, "b");
    assert_eq!(
        (r.generation_id, r.leader_id.as_str(), r.members.len()),
        (3, "b", 1)
    );
}

/// librdkafka 0081: a lone static member closed without LeaveGroup (KIP-345) — here after a
/// rejoin left the group CompletingRebalance — expires after its session timeout, so the group
/// is Empty and can be deleted.
#[test]
fn a_closed_static_member_expires_and_the_group_empties() {
    for sync_first in [true, false] {
        let mut g = Group::new("g".into(), 0);
        let mut fx = Effects::default();
        let mut p = params("", &["range"]);
        p.group_instance_id = Some("i1".into());
        p.session_timeout_ms = 6_000;
        g.join(p, "s1".into(), 0, &lim(), &mut fx);
        assert_eq!(g.state, GroupState::CompletingRebalance);
        if sync_first {
            let mut fx = Effects::default();
            sync(&mut g, "s1", 1, vec![], 10, &mut fx);
            assert_eq!(g.state, GroupState::Stable);
            assert_eq!(g.heartbeat("s1", Some("i1"), 1, 1_000), Ok(()));
        }
        let last = if sync_first { 1_000 } else { 0 };
        let mut fx = Effects::default();
        g.tick(last + 5_900, &lim(), &mut fx);
        assert!(!g.is_empty());
        g.tick(last + 6_000, &lim(), &mut fx);
        assert!(g.is_empty(), "sync_first={sync_first}");
        assert_eq!(g.state, GroupState::Empty);
        assert!(fx.persist);
        // The instance id is free again.
        let mut p = params("", &["range"]);
        p.group_instance_id = Some("i1".into());
        let mut fx = Effects::default();
        assert_eq!(g.join(p, "s2".into(), 8_000, &lim(), &mut fx), Reply::Held);
    }
}
