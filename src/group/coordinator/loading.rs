//! Loading an offsets partition: reads it from log start to log end through the bounded
//! record walker and rebuilds its groups (later records win; null values are tombstones).

use super::*;

/// Reads a whole offsets partition and rebuilds its groups (later records win; null values
/// are tombstones).
pub(super) async fn load_partition(part: Arc<Partition>, cap: usize) -> Result<Vec<Group>, String> {
    let now = now_ms();
    let upper = part.log_end_offset();
    let mut offset = part.log_start_offset();
    let mut metas: HashMap<String, Option<(GroupMetadataValue, i64)>> = HashMap::new();
    let mut offsets: HashMap<String, BTreeMap<(String, i32), CommittedOffset>> = HashMap::new();
    while offset < upper {
        let p = part.clone();
        let data = tokio::task::spawn_blocking(move || p.read(offset, LOAD_READ_BYTES, upper))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if data.is_empty() {
            break;
        }
        let headers = batch::validate_record_set(&data).map_err(|e| e.to_string())?;
        let next = headers.last().map_or(upper, |h| h.last_offset() + 1);
        let mut pos = 0usize;
        for h in &headers {
            let raw = &data[pos..pos + h.total_len()];
            pos += h.total_len();
            if h.is_control() {
                continue;
            }
            let walked = crate::codec::kafka::records::walk_records(raw, cap, |_, r| {
                let at = h.base_offset + i64::from(r.offset_delta);
                if at >= offset {
                    apply_record(at, r.key, r.value, &mut metas, &mut offsets);
                }
                std::ops::ControlFlow::Continue(())
            });
            if let Err(e) = walked {
                // Skipped, not fatal: one unreadable batch must not keep every group of the
                // partition from loading. Reported with its offset and counted.
                crate::replication::report_undecodable(
                    &part.topic,
                    part.partition,
                    h.base_offset,
                    &e,
                );
            }
        }
        if next <= offset {
            return Err(format!("load made no progress at offset {offset}"));
        }
        offset = next;
    }
    let mut ids: Vec<String> = metas.keys().chain(offsets.keys()).cloned().collect();
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
        if g.offsets.is_empty() && g.members.is_empty() && g.generation_id == 0 {
            continue;
        }
        out.push(g);
    }
    Ok(out)
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
