//! The Raft state machine: the only writer of metadata. Applying entries runs
//! `metadata::apply`, persists the new image together with the last applied log id and the last
//! membership in one batch, and then publishes the new `Arc<MetadataImage>` on a watch channel.
//!
//! The batch is written without fsync: the Raft log is the durable source, and after a crash
//! openraft re-applies from the persisted last applied log id. RocksDB's WAL is ordered, so a
//! later durable write (a log purge that depends on this state, a vote, an append) also makes
//! this one durable.
//!
//! Snapshots are the JSON of the applied state. The state machine is persistent, so the current
//! snapshot is kept in memory only and rebuilt on demand after a restart.

use super::image_store::{self, AppliedState};
use super::types::{
    Entry, LogId, RaftStorageError, Snapshot, SnapshotMeta, StoredMembership, TypeConfig,
};
use crate::metadata::{self, ApplyOutcome, MetadataImage};
use crate::storage::{self, blocking, Batch, Store};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Format of the snapshot payload.
const SNAPSHOT_FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct SnapshotPayload {
    format: u32,
    state: AppliedState,
}

/// The last built or installed snapshot.
#[derive(Debug, Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

impl StoredSnapshot {
    fn to_snapshot(&self) -> Snapshot {
        Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(self.data.clone())),
        }
    }
}

type SnapshotSlot = Arc<Mutex<Option<StoredSnapshot>>>;

fn lock(slot: &SnapshotSlot) -> std::sync::MutexGuard<'_, Option<StoredSnapshot>> {
    // A poisoned slot only means a panic elsewhere while it was held; the value is a complete
    // snapshot or None either way.
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

/// The state machine owned by openraft.
#[derive(Debug)]
pub(crate) struct StateMachine {
    store: Store,
    state: AppliedState,
    image_tx: watch::Sender<Arc<MetadataImage>>,
    snapshot: SnapshotSlot,
}

impl StateMachine {
    /// Loads the persisted state (a fresh store starts empty) and returns the state machine and
    /// a receiver that already holds the loaded image.
    ///
    /// # Errors
    /// RocksDB failure or corrupt persisted state.
    pub(crate) async fn open(
        store: Store,
    ) -> Result<(Self, watch::Receiver<Arc<MetadataImage>>), storage::StorageError> {
        let s = store.clone();
        let state = blocking(move || image_store::load(&s))
            .await?
            .unwrap_or_default();
        tracing::info!(last_applied = ?state.last_applied, topics = state.image.topics.len(), "metadata state loaded");
        let (image_tx, image_rx) = watch::channel(state.image.clone());
        Ok((
            Self {
                store,
                state,
                image_tx,
                snapshot: Arc::new(Mutex::new(None)),
            },
            image_rx,
        ))
    }

    /// Persists `state` (as a delta from the current one, or in full) and makes it current.
    async fn commit(
        &mut self,
        state: AppliedState,
        full: bool,
        sync: bool,
    ) -> Result<(), storage::StorageError> {
        let store = self.store.clone();
        let before = self.state.image.clone();
        let after = state.clone();
        let staged = blocking(move || {
            let mut batch = Batch::new();
            if full {
                image_store::stage_full(&store, &mut batch, &after)?;
            } else {
                image_store::stage_delta(&store, &mut batch, &before, &after)?;
            }
            Ok(batch)
        })
        .await?;
        // A full disk stalls the apply until space is freed instead of stopping Raft.
        self.store.write_retrying(staged, sync).await?;
        self.state = state;
        self.image_tx.send_replace(self.state.image.clone());
        Ok(())
    }
}

/// The image with only its applied index moved (blank and membership entries).
fn advance(image: &Arc<MetadataImage>, index: u64) -> Arc<MetadataImage> {
    let mut next = (**image).clone();
    next.applied_index = index;
    Arc::new(next)
}

/// Applies `entries` to `state` in memory, returning one outcome per entry. Pure.
fn apply_entries(
    state: &mut AppliedState,
    entries: impl IntoIterator<Item = Entry>,
) -> Vec<ApplyOutcome> {
    let mut outcomes = Vec::new();
    for entry in entries {
        let log_id = entry.log_id;
        assert!(
            Some(log_id) > state.last_applied,
            "applied log id went backwards: {log_id} after {:?}",
            state.last_applied
        );
        let outcome = match entry.payload {
            EntryPayload::Blank => {
                state.image = advance(&state.image, log_id.index);
                ApplyOutcome::Done
            }
            EntryPayload::Normal(req) => {
                let (next, outcome) = metadata::apply(&state.image, &req, log_id.index);
                tracing::debug!(index = log_id.index, command = %req, ?outcome, "applied");
                state.image = Arc::new(next);
                outcome
            }
            EntryPayload::Membership(m) => {
                state.last_membership = StoredMembership::new(Some(log_id), m);
                state.image = advance(&state.image, log_id.index);
                ApplyOutcome::Done
            }
        };
        state.last_applied = Some(log_id);
        outcomes.push(outcome);
    }
    state.check();
    outcomes
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership), RaftStorageError> {
        Ok((self.state.last_applied, self.state.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyOutcome>, RaftStorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut next = self.state.clone();
        let outcomes = apply_entries(&mut next, entries);
        if outcomes.is_empty() {
            return Ok(outcomes);
        }
        self.commit(next, false, false)
            .await
            .map_err(|e| StorageIOError::write_state_machine(&e))?;
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            state: self.state.clone(),
            slot: self.snapshot.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, RaftStorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), RaftStorageError> {
        let data = snapshot.into_inner();
        let bytes = data.len();
        let (state, data) = decode_snapshot(meta, data).await?;
        assert!(
            state.last_applied > self.state.last_applied,
            "installing an older snapshot than the applied state"
        );
        // fsync: installs are rare and replace everything; keep the reasoning simple.
        self.commit(state, true, true)
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        *lock(&self.snapshot) = Some(StoredSnapshot {
            meta: meta.clone(),
            data,
        });
        tracing::info!(last_log_id = ?meta.last_log_id, bytes, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, RaftStorageError> {
        if let Some(s) = lock(&self.snapshot).as_ref() {
            return Ok(Some(s.to_snapshot()));
        }
        if self.state.last_applied.is_none() {
            return Ok(None);
        }
        // After a restart: the persistent state machine is itself a valid snapshot.
        let mut builder = self.get_snapshot_builder().await;
        builder.build_snapshot().await.map(Some)
    }
}

/// Decodes and validates a received snapshot off the runtime. A snapshot whose image breaks
/// its invariants is refused (the check panics inside the blocking task, which becomes an
/// error here rather than a crash of the process).
async fn decode_snapshot(
    meta: &SnapshotMeta,
    data: Vec<u8>,
) -> Result<(AppliedState, Vec<u8>), RaftStorageError> {
    let signature = meta.signature();
    let expected = meta.last_log_id;
    let err = move |reason: String| -> RaftStorageError {
        StorageIOError::read_snapshot(Some(signature.clone()), &std::io::Error::other(reason))
            .into()
    };
    let decoded =
        tokio::task::spawn_blocking(move || -> Result<(AppliedState, Vec<u8>), String> {
            let payload: SnapshotPayload =
                serde_json::from_slice(&data).map_err(|e| format!("undecodable snapshot: {e}"))?;
            if payload.format != SNAPSHOT_FORMAT {
                return Err(format!("unknown snapshot format {}", payload.format));
            }
            if payload.state.last_applied != expected {
                return Err(format!(
                    "snapshot holds {:?}, meta says {expected:?}",
                    payload.state.last_applied
                ));
            }
            payload.state.image.check_invariants();
            payload.state.check();
            Ok((payload.state, data))
        })
        .await;
    match decoded {
        Ok(Ok(decoded)) => Ok(decoded),
        Ok(Err(reason)) => Err(err(reason)),
        Err(join) => Err(err(format!("snapshot validation failed: {join}"))),
    }
}

/// Builds a snapshot of the state as of `get_snapshot_builder`.
#[derive(Debug)]
pub(crate) struct SnapshotBuilder {
    state: AppliedState,
    slot: SnapshotSlot,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, RaftStorageError> {
        let state = self.state.clone();
        let last_applied = state.last_applied;
        let last_membership = state.last_membership.clone();
        let encoded = tokio::task::spawn_blocking(move || {
            serde_json::to_vec(&SnapshotPayload {
                format: SNAPSHOT_FORMAT,
                state,
            })
            .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        let data = encoded.map_err(|reason| {
            StorageIOError::write_snapshot(None, &std::io::Error::other(reason))
        })?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let snapshot_id = match last_applied {
            Some(l) => format!("{}-{}-{nanos}", l.leader_id, l.index),
            None => format!("none-{nanos}"),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership,
            snapshot_id,
        };
        let stored = StoredSnapshot { meta, data };
        tracing::info!(last_log_id = ?last_applied, bytes = stored.data.len(), "snapshot built");
        let snapshot = stored.to_snapshot();
        let mut slot = lock(&self.slot);
        // An install may have raced this build; never replace a newer snapshot.
        if slot
            .as_ref()
            .is_none_or(|s| s.meta.last_log_id <= stored.meta.last_log_id)
        {
            *slot = Some(stored);
        }
        Ok(snapshot)
    }
}
