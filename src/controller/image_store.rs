//! How the state machine's applied state lives in the `meta_snapshot` column family.
//!
//! - `sm/header`: everything but the topics: the last applied log id, the last membership,
//!   the image with its topic maps emptied, and the topic count (checked on load).
//! - `sm/topic/<name>`: one row per topic.
//!
//! Topics are `Arc`s that `metadata::apply` replaces only when it changes them, so the delta of
//! an apply is found by pointer comparison and a batch rewrites only the header and the topics
//! that changed: applying one command costs one small write, whatever the cluster's size.

use super::codec::{decode_disk, encode_disk};
use super::types::{LogId, StoredMembership};
use crate::metadata::{MetadataImage, TopicImage};
use crate::storage::{Batch, Cf, Store, StorageError, CF_META_SNAPSHOT};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

const HEADER_KEY: &[u8] = b"sm/header";
const TOPIC_PREFIX: &[u8] = b"sm/topic/";
/// The first key after every `sm/topic/...` key (`'0'` follows `'/'`).
const TOPIC_END: &[u8] = b"sm/topic0";

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
        assert_eq!(self.image.applied_index, index, "image applied index differs from last applied log id");
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    /// The image with `topics` and `topic_ids` emptied (topics have their own rows).
    image: MetadataImage,
    topic_count: usize,
}

fn topic_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(TOPIC_PREFIX.len() + name.len());
    k.extend_from_slice(TOPIC_PREFIX);
    k.extend_from_slice(name.as_bytes());
    k
}

fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, StorageError> {
    encode_disk(value)
        .map_err(|e| StorageError::Corrupt { cf: CF_META_SNAPSHOT, reason: format!("cannot encode {what}: {e}") })
}

fn stage_header(store: &Store, batch: &mut Batch, state: &AppliedState) -> Result<(), StorageError> {
    let mut image = (*state.image).clone();
    image.topics = BTreeMap::new();
    image.topic_ids = BTreeMap::new();
    let header = Header {
        last_applied: state.last_applied,
        last_membership: state.last_membership.clone(),
        image,
        topic_count: state.image.topics.len(),
    };
    batch.put(store, Cf::MetaSnapshot, HEADER_KEY, &encode("header", &header)?);
    Ok(())
}

/// Stages the change from `before` to `after` into `batch`: the header and each topic that was
/// added, replaced or removed.
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
    for (name, topic) in &after.image.topics {
        if before.topics.get(name).is_none_or(|old| !Arc::ptr_eq(old, topic)) {
            batch.put(store, Cf::MetaSnapshot, &topic_key(name.as_str()), &encode("topic", &**topic)?);
        }
    }
    for name in before.topics.keys() {
        if !after.image.topics.contains_key(name) {
            batch.delete(store, Cf::MetaSnapshot, &topic_key(name.as_str()));
        }
    }
    Ok(())
}

/// Stages a complete replacement of the persisted state (snapshot install).
///
/// # Errors
/// A value cannot be encoded.
pub(crate) fn stage_full(store: &Store, batch: &mut Batch, state: &AppliedState) -> Result<(), StorageError> {
    batch.delete_range(store, Cf::MetaSnapshot, TOPIC_PREFIX, TOPIC_END);
    stage_header(store, batch, state)?;
    for (name, topic) in &state.image.topics {
        batch.put(store, Cf::MetaSnapshot, &topic_key(name.as_str()), &encode("topic", &**topic)?);
    }
    Ok(())
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
    let rows = store.scan(Cf::MetaSnapshot, TOPIC_PREFIX, TOPIC_END, usize::MAX, |_, _| true)?;
    for (k, v) in rows {
        let topic: TopicImage = decode_disk(CF_META_SNAPSHOT, &v)?;
        if k[TOPIC_PREFIX.len()..] != *topic.name.as_str().as_bytes() {
            return Err(StorageError::Corrupt { cf: CF_META_SNAPSHOT, reason: format!("topic {} under another key", topic.name) });
        }
        image.topic_ids.insert(topic.id, topic.name.clone());
        image.topics.insert(topic.name.clone(), Arc::new(topic));
    }
    if image.topics.len() != header.topic_count {
        return Err(StorageError::Corrupt {
            cf: CF_META_SNAPSHOT,
            reason: format!("{} topic rows, header says {}", image.topics.len(), header.topic_count),
        });
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
