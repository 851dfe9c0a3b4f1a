//! ZooKeeper sessions and znode writes (the store itself is `metadata::znode`).

use super::{ApplyOutcome, MetadataError};
use crate::metadata::image::MetadataImage;
use crate::metadata::znode::{ZkOp, ZkSession};

pub(super) fn create_session(
    next: &mut MetadataImage,
    session_id: i64,
    password: &[u8],
    timeout_ms: i32,
    now_ms: i64,
) -> Result<ApplyOutcome, MetadataError> {
    if next.zk.sessions.contains_key(&session_id) {
        return Err(MetadataError::ZkSessionExists(session_id));
    }
    let session = ZkSession {
        password: password.to_vec(),
        timeout_ms: timeout_ms.max(1),
        last_touch_ms: now_ms,
    };
    next.zk.sessions.insert(session_id, session);
    Ok(ApplyOutcome::Done)
}

pub(super) fn touch_sessions(
    next: &mut MetadataImage,
    session_ids: &[i64],
    now_ms: i64,
) -> Result<ApplyOutcome, MetadataError> {
    for id in session_ids {
        if let Some(s) = next.zk.sessions.get_mut(id) {
            // Always moves (by at least 1) so the expiry sweep sees every touch, even
            // from a node whose wall clock is behind; expiry itself runs on the
            // leader's monotonic clock (`zk::server::sweep_loop`).
            s.last_touch_ms = s.last_touch_ms.max(now_ms).max(s.last_touch_ms + 1);
        }
    }
    Ok(ApplyOutcome::Done)
}

pub(super) fn expire_sessions(
    next: &mut MetadataImage,
    session_ids: &[i64],
    index: u64,
) -> Result<ApplyOutcome, MetadataError> {
    next.zk.expire(session_ids, zxid(index));
    Ok(ApplyOutcome::Done)
}

pub(super) fn multi(
    next: &mut MetadataImage,
    session_id: i64,
    now_ms: i64,
    ops: &[ZkOp],
    data_bytes_max: Option<u64>,
    index: u64,
) -> Result<ApplyOutcome, MetadataError> {
    Ok(ApplyOutcome::Zk(next.zk.multi(
        ops,
        session_id,
        zxid(index),
        now_ms,
        data_bytes_max,
    )))
}

/// ZooKeeper zxids are the Raft log index.
fn zxid(index: u64) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}
