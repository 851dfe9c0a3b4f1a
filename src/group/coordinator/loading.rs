//! Loading an offsets partition: reads it from log start to log end through the bounded
//! record walker and rebuilds its groups (later records win; null values are tombstones).
//! Transactional offsets (TxnOffsetCommit) wait for their producer's marker: a COMMIT makes
//! them committed, an ABORT drops them, and those still open stay pending.

use super::*;

/// Reads a whole offsets partition and rebuilds its groups (later records win; null values
/// are tombstones).
/// A group's offsets by partition.
type Offsets = BTreeMap<(String, i32), CommittedOffset>;

/// Returns the groups and the offset the read stopped at (markers from there on were not
/// seen and are applied from `completions_during_load`).
pub(super) async fn load_partition(
    part: Arc<Partition>,
    cap: usize,
) -> Result<(Vec<Group>, i64), String> {
    let now = now_ms();
    let mut metas: HashMap<String, Option<(GroupMetadataValue, i64)>> = HashMap::new();
    let mut offsets: HashMap<String, BTreeMap<(String, i32), CommittedOffset>> = HashMap::new();
    // TxnOffsetCommit records by producer until their marker: (group, offsets).
    let mut pending: HashMap<i64, HashMap<String, Offsets>> = HashMap::new();
    let upper = part
        .scan_records(cap, |h, at, key, value| {
            if h.is_control() {
                match crate::codec::kafka::control::decode(key, value) {
                    Ok(Some(marker)) => {
                        for (group, txn) in pending.remove(&h.producer_id).unwrap_or_default() {
                            if !marker.commit {
                                continue;
                            }
                            let committed = offsets.entry(group).or_default();
                            for (tp, c) in txn {
                                match committed.get(&tp) {
                                    Some(old) if old.log_offset > c.log_offset => {}
                                    _ => {
                                        committed.insert(tp, c);
                                    }
                                }
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(e) => debug!(offset = at, error = %e, "skipping unreadable control record"),
                }
                return;
            }
            if h.is_transactional() {
                let txn = pending.entry(h.producer_id).or_default();
                apply_record(at, key, value, &mut HashMap::new(), txn);
                return;
            }
            apply_record(at, key, value, &mut metas, &mut offsets);
        })
        .await?;
    let mut ids: Vec<String> = metas
        .keys()
        .chain(offsets.keys())
        .chain(pending.values().flat_map(|t| t.keys()))
        .cloned()
        .collect();
    ids.sort();
    ids.dedup();
    let mut out = Vec::new();
    for id in ids {
        let mut g = Group::new(id.clone(), now);
        if let Some(Some((m, _))) = metas.remove(&id) {
            let proto = m.protocol.clone();
            let members = m
                .members
                .into_iter()
                .map(|r| Member {
                    member_id: r.member_id,
                    group_instance_id: r.group_instance_id,
                    client_id: r.client_id,
                    client_host: r.client_host,
                    rebalance_timeout_ms: r.rebalance_timeout_ms,
                    session_timeout_ms: r.session_timeout_ms,
                    protocol_type: m.protocol_type.clone(),
                    protocols: vec![(proto.clone().unwrap_or_default(), r.subscription)],
                    assignment: r.assignment,
                    awaiting_join: false,
                    awaiting_sync: false,
                    last_heartbeat_ms: now,
                })
                .collect();
            let ts = if m.current_state_timestamp_ms >= 0 {
                m.current_state_timestamp_ms
            } else {
                now
            };
            let ptype = Some(m.protocol_type).filter(|t| !t.is_empty());
            g.restore(ptype, m.generation, proto, m.leader, members, ts, now);
        }
        g.offsets = offsets.remove(&id).unwrap_or_default();
        for (pid, txn) in &mut pending {
            if let Some(o) = txn.remove(&id) {
                g.pending_txn_offsets.insert(*pid, o);
            }
        }
        if g.is_unused() {
            continue;
        }
        out.push(g);
    }
    Ok((out, upper))
}

#[allow(clippy::type_complexity)]
fn apply_record(
    at: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    metas: &mut HashMap<String, Option<(GroupMetadataValue, i64)>>,
    offsets: &mut HashMap<String, BTreeMap<(String, i32), CommittedOffset>>,
) {
    let Some(key) = key else { return };
    let key = match records::decode_key(key) {
        Ok(k) => k,
        Err(e) => {
            debug!(offset = at, error = %e, "skipping unreadable offsets record key");
            return;
        }
    };
    match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => match value {
            None => {
                if let Some(m) = offsets.get_mut(&group) {
                    m.remove(&(topic, partition));
                }
            }
            Some(v) => match records::decode_offset_value(v) {
                Ok(v) => {
                    let c = CommittedOffset {
                        offset: v.offset,
                        leader_epoch: v.leader_epoch,
                        metadata: v.metadata,
                        commit_timestamp_ms: v.commit_timestamp_ms,
                        log_offset: at,
                    };
                    offsets
                        .entry(group)
                        .or_default()
                        .insert((topic, partition), c);
                }
                Err(e) => debug!(offset = at, error = %e, "skipping unreadable offset value"),
            },
        },
        RecordKey::GroupMetadata { group } => match value {
            None => {
                metas.insert(group, None);
            }
            Some(v) => match records::decode_group_value(v) {
                Ok(m) => {
                    metas.insert(group, Some((m, at)));
                }
                Err(e) => {
                    debug!(offset = at, error = %e, "skipping unreadable group metadata")
                }
            },
        },
    }
}
