//! Offline checks of the controller's stored state (for `raftka check`): the Raft log's
//! entries decode and sit under their own index, consecutively; the vote, committed and
//! last-purged records decode; the persisted metadata image loads and keeps its invariants.

use super::codec::decode_disk;
use super::image_store;
use super::types::{Entry, LogId, Vote};
use crate::storage::walk::WalkEvent;
use crate::storage::{keys, Cf, Store, CF_RAFT_LOG, CF_RAFT_META};

/// What the controller's data holds.
#[derive(Debug, Clone, Default)]
pub struct ControllerSummary {
    pub raft_entries: u64,
    pub first_index: Option<u64>,
    pub last_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub topics: usize,
    pub znodes: usize,
    /// Topic id → name, for naming partitions in reports.
    pub topic_names: std::collections::HashMap<[u8; 16], String>,
}

/// Checks the Raft log, Raft metadata and the metadata image. Blocking. Problems are
/// appended to `problems`, one line each.
pub fn verify(store: &Store, problems: &mut Vec<String>) -> ControllerSummary {
    let mut sum = ControllerSummary::default();
    let mut prev: Option<u64> = None;
    let walked = store.walk(Cf::RaftLog, &[], None, |e| {
        match e {
            WalkEvent::Entry(k, v) => {
                sum.raft_entries += 1;
                let Some(index) = keys::read_u64(k).filter(|_| k.len() == 8) else {
                    problems.push(format!("raft_log: malformed key {k:02x?}"));
                    return true;
                };
                match decode_disk::<Entry>(CF_RAFT_LOG, v) {
                    Ok(entry) if entry.log_id.index != index => problems.push(format!(
                        "raft_log: entry {} stored under index {index}",
                        entry.log_id.index
                    )),
                    Ok(_) => {}
                    Err(e) => problems.push(format!("raft_log: index {index}: {e}")),
                }
                if let Some(p) = prev {
                    if index != p + 1 {
                        problems.push(format!("raft_log: gap between index {p} and {index}"));
                    }
                }
                sum.first_index.get_or_insert(index);
                sum.last_index = Some(index);
                prev = Some(index);
            }
            WalkEvent::Unreadable { error, .. } => {
                problems.push(format!("raft_log: unreadable entries: {error}"));
            }
        }
        true
    });
    if let Err(e) = walked {
        problems.push(format!("raft_log: {e}"));
    }
    for (key, what) in [
        (&b"vote"[..], "vote"),
        (&b"committed"[..], "committed"),
        (&b"last_purged"[..], "last_purged"),
    ] {
        let res = store.get(Cf::RaftMeta, key).and_then(|v| match v {
            None => Ok(()),
            Some(v) if what == "vote" => decode_disk::<Option<Vote>>(CF_RAFT_META, &v)
                .or_else(|_| decode_disk::<Vote>(CF_RAFT_META, &v).map(Some))
                .map(|_| ()),
            Some(v) => decode_disk::<Option<LogId>>(CF_RAFT_META, &v)
                .or_else(|_| decode_disk::<LogId>(CF_RAFT_META, &v).map(Some))
                .map(|_| ()),
        });
        if let Err(e) = res {
            problems.push(format!("raft_meta: {what}: {e}"));
        }
    }
    // Loading asserts the image's invariants: a broken one is a problem to report here.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| image_store::load(store))) {
        Ok(Ok(Some(state))) => {
            sum.applied_index = state.last_applied.map(|l| l.index);
            sum.topics = state.image.topics.len();
            sum.znodes = state.image.zk.znodes.len();
            sum.topic_names = state
                .image
                .topics
                .values()
                .map(|t| (*t.id.0.as_bytes(), t.name.to_string()))
                .collect();
        }
        Ok(Ok(None)) => {}
        Ok(Err(e)) => problems.push(format!(
            "meta_snapshot: the metadata image does not load: {e}"
        )),
        Err(_) => problems.push("meta_snapshot: the metadata image breaks its invariants".into()),
    }
    sum
}
