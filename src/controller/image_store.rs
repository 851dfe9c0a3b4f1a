//! How the state machine's applied state lives in the `meta_snapshot` column family.
//!
//! - `sm/header`: the last applied log id, the last membership, the image with its large maps
//!   emptied, and the row count of each large map (checked on load).
//! - `sm/topic/<name>`: one row per topic.
//! - `sm/znode/<path>`: one row per stored ZooKeeper znode.
//!
//! Topics and znodes are `Arc`s that `metadata::apply` replaces only when it changes them, so
//! the delta of an apply is found by pointer comparison, and a batch rewrites only the header
//! and the rows that changed: applying one command costs one small write, whatever the size of
//! the cluster.

use super::codec::{decode_disk, encode_disk};
use super::types::{LogId, StoredMembership};
use crate::metadata::{MetadataImage, TopicImage};
use crate::storage::{Batch, Cf, StorageError, Store, CF_META_SNAPSHOT};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Arc;

const HEADER_KEY: &[u8] = b"sm/header";
const TOPIC_PREFIX: &[u8] = b"sm/topic/";
/// The first key after every `sm/topic/...` key (`'0'` follows `'/'`).
const TOPIC_END: &[u8] = b"sm/topic0";
const ZNODE_PREFIX: &[u8] = b"sm/znode/";
const ZNODE_END: &[u8] = b"sm/znode0";

/// The state machine's state: what has been applied, and the resulting image.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct AppliedState {
    pub(crate) last_applied: Option<LogId>,
    pub(crate) last_membership: StoredMembership,
    pub(crate) image: Arc<MetadataImage>,
}

impl AppliedState {
    /// The image is always exactly as new as the last applied entry.
    pub(crate) fn check(&self) {
        let index = self.last_applied.map_or(0, |l| l.index);
        assert_eq!(
            self.image.applied_index, index,
            "image applied index differs from last applied log id"
        );
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    /// The image with `topics`, `topic_ids` and `zk.znodes` emptied (they have their own rows).
    image: MetadataImage,
    topic_count: usize,
    znode_count: usize,
}

fn row_key(prefix: &[u8], name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + name.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(name.as_bytes());
    k
}

fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, StorageError> {
    encode_disk(value).map_err(|e| StorageError::Corrupt {
        cf: CF_META_SNAPSHOT,
        reason: format!("cannot encode {what}: {e}"),
    })
}

fn corrupt(reason: String) -> StorageError {
    StorageError::Corrupt {
        cf: CF_META_SNAPSHOT,
        reason,
    }
}

fn stage_header(
    store: &Store,
    batch: &mut Batch,
    state: &AppliedState,
) -> Result<(), StorageError> {
    let mut image = (*state.image).clone();
    image.topics = BTreeMap::new();
    image.topic_ids = BTreeMap::new();
    image.zk.znodes = BTreeMap::new();
    let header = Header {
        last_applied: state.last_applied,
        last_membership: state.last_membership.clone(),
        image,
        topic_count: state.image.topics.len(),
        znode_count: state.image.zk.znodes.len(),
    };
    batch.put(
        store,
        Cf::MetaSnapshot,
        HEADER_KEY,
        &encode("header", &header)?,
    );
    Ok(())
}

/// Stages the rows of `after` that differ from `before` (by pointer) and deletes the rows of
/// keys `after` no longer has.
fn stage_rows<K: Borrow<str> + Ord, V: Serialize>(
    store: &Store,
    batch: &mut Batch,
    prefix: &[u8],
    before: &BTreeMap<K, Arc<V>>,
    after: &BTreeMap<K, Arc<V>>,
) -> Result<(), StorageError> {
    for (key, value) in after {
        if before
            .get::<K>(key)
            .is_none_or(|old| !Arc::ptr_eq(old, value))
        {
            batch.put(
                store,
                Cf::MetaSnapshot,
                &row_key(prefix, key.borrow()),
                &encode("row", &**value)?,
            );
        }
    }
    for key in before.keys() {
        if !after.contains_key::<K>(key) {
            batch.delete(store, Cf::MetaSnapshot, &row_key(prefix, key.borrow()));
        }
    }
    Ok(())
}

/// Stages the change from `before` to `after` into `batch`.
///
/// # Errors
/// A value cannot be encoded.
pub(crate) fn stage_delta(
    store: &Store,
    batch: &mut Batch,
    before: &MetadataImage,
    after: &AppliedState,
) -> Result<(), StorageError> {
    stage_header(store, batch, after)?;
    stage_rows(
        store,
        batch,
        TOPIC_PREFIX,
        &before.topics,
        &after.image.topics,
    )?;
    stage_rows(
        store,
        batch,
        ZNODE_PREFIX,
        &before.zk.znodes,
        &after.image.zk.znodes,
    )
}

/// Stages a complete replacement of the persisted state (snapshot install).
///
/// # Errors
/// A value cannot be encoded.
pub(crate) fn stage_full(
    store: &Store,
    batch: &mut Batch,
    state: &AppliedState,
) -> Result<(), StorageError> {
    batch.delete_range(store, Cf::MetaSnapshot, TOPIC_PREFIX, TOPIC_END);
    batch.delete_range(store, Cf::MetaSnapshot, ZNODE_PREFIX, ZNODE_END);
    stage_header(store, batch, state)?;
    let empty = MetadataImage::default();
    stage_rows(
        store,
        batch,
        TOPIC_PREFIX,
        &empty.topics,
        &state.image.topics,
    )?;
    stage_rows(
        store,
        batch,
        ZNODE_PREFIX,
        &empty.zk.znodes,
        &state.image.zk.znodes,
    )
}

/// Every row under `prefix` as (key suffix, value).
fn load_rows<V: DeserializeOwned>(
    store: &Store,
    prefix: &[u8],
    end: &[u8],
) -> Result<Vec<(String, V)>, StorageError> {
    let rows = store.scan(Cf::MetaSnapshot, prefix, end, usize::MAX, |_, _| true)?;
    let mut out = Vec::with_capacity(rows.len());
    for (k, v) in rows {
        let name = k
            .strip_prefix(prefix)
            .and_then(|n| std::str::from_utf8(n).ok())
            .ok_or_else(|| corrupt(format!("bad row key {k:?}")))?;
        out.push((name.to_owned(), decode_disk(CF_META_SNAPSHOT, &v)?));
    }
    Ok(out)
}

/// Loads the persisted state; `None` on a fresh store. Blocking: call through
/// `storage::blocking`.
///
/// # Errors
/// RocksDB failure or corrupt rows.
///
/// # Panics
/// If the loaded image breaks its invariants (the node must not serve corrupt metadata).
pub(crate) fn load(store: &Store) -> Result<Option<AppliedState>, StorageError> {
    let Some(raw) = store.get(Cf::MetaSnapshot, HEADER_KEY)? else {
        return Ok(None);
    };
    let header: Header = decode_disk(CF_META_SNAPSHOT, &raw)?;
    let mut image = header.image;
    for (name, topic) in load_rows::<TopicImage>(store, TOPIC_PREFIX, TOPIC_END)? {
        if topic.name.as_str() != name {
            return Err(corrupt(format!("topic {} stored under {name}", topic.name)));
        }
        image.topic_ids.insert(topic.id, topic.name.clone());
        image.topics.insert(topic.name.clone(), Arc::new(topic));
    }
    for (path, znode) in load_rows(store, ZNODE_PREFIX, ZNODE_END)? {
        image.zk.znodes.insert(path, Arc::new(znode));
    }
    if image.topics.len() != header.topic_count || image.zk.znodes.len() != header.znode_count {
        return Err(corrupt(format!(
            "{} topic and {} znode rows, header says {} and {}",
            image.topics.len(),
            image.zk.znodes.len(),
            header.topic_count,
            header.znode_count
        )));
    }
    image.check_invariants();
    let state = AppliedState {
        last_applied: header.last_applied,
        last_membership: header.last_membership,
        image: Arc::new(image),
    };
    state.check();
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{apply, BrokerRegistration, MetadataCommand, MetadataRequest};
    use crate::types::{NodeId, TopicId, TopicName};

    fn run(state: &mut AppliedState, cmd: MetadataCommand) {
        let index = state.image.applied_index + 1;
        let (next, _) = apply(&state.image, &MetadataRequest::new(cmd), index);
        state.image = Arc::new(next);
        state.last_applied = Some(LogId::new(openraft::CommittedLeaderId::new(1, 1), index));
    }

    fn persist(store: &Store, before: &MetadataImage, after: &AppliedState) {
        let mut batch = Batch::new();
        stage_delta(store, &mut batch, before, after).expect("stage");
        store.write(batch, false).expect("write");
    }

    #[test]
    fn deltas_rewrite_only_changed_rows_and_reload_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        assert!(load(&store).expect("load").is_none());
        let mut state = AppliedState::default();
        let before = state.image.clone();
        let reg = BrokerRegistration {
            node_id: NodeId(1),
            endpoints: vec![],
            rack: None,
            fenced: false,
            registered_index: 0,
            raft_addr: None,
        };
        run(
            &mut state,
            MetadataCommand::RegisterBroker { registration: reg },
        );
        for name in ["a", "b", "c"] {
            run(
                &mut state,
                MetadataCommand::CreateTopic {
                    name: TopicName::new(name).expect("name"),
                    topic_id: TopicId::random(),
                    assignment: vec![vec![NodeId(1)]],
                    configs: BTreeMap::new(),
                },
            );
        }
        persist(&store, &before, &state);
        let loaded = load(&store).expect("load").expect("present");
        assert_eq!(*loaded.image, *state.image);

        // Deleting one topic stages the header and one delete, nothing else.
        let before = state.image.clone();
        run(
            &mut state,
            MetadataCommand::DeleteTopic {
                name: TopicName::new("b").expect("name"),
            },
        );
        let mut batch = Batch::new();
        stage_delta(&store, &mut batch, &before, &state).expect("stage");
        assert_eq!(format!("{batch:?}"), "Batch { ops: 2 }");
        store.write(batch, false).expect("write");
        let loaded = load(&store).expect("load").expect("present");
        assert_eq!(*loaded.image, *state.image);
        assert_eq!(loaded.last_applied, state.last_applied);

        // A full rewrite (snapshot install) drops rows the new state does not have.
        let small = AppliedState {
            image: Arc::new(MetadataImage {
                applied_index: 9,
                ..MetadataImage::default()
            }),
            last_applied: Some(LogId::new(openraft::CommittedLeaderId::new(2, 1), 9)),
            ..AppliedState::default()
        };
        let mut batch = Batch::new();
        stage_full(&store, &mut batch, &small).expect("stage");
        store.write(batch, false).expect("write");
        let loaded = load(&store).expect("load").expect("present");
        assert!(loaded.image.topics.is_empty());
        assert_eq!(loaded.image.applied_index, 9);
    }
}
