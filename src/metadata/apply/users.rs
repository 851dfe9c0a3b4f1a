//! Users: SCRAM credentials and the other per-user configs; client quotas.

use super::{ApplyOutcome, MetadataError};
use crate::metadata::image::{MetadataImage, UserImage};
use crate::metadata::quotas::{QuotaEntity, QuotaName, QuotaValue};
use crate::security::scram::{ScramCredential, ScramMechanism};
use std::collections::BTreeMap;

fn touch<'a>(next: &'a mut MetadataImage, user: &str, index: u64) -> &'a mut UserImage {
    let u = next
        .users
        .entry(user.to_owned())
        .or_insert_with(|| UserImage {
            created_index: index,
            ..UserImage::default()
        });
    u.modified_index = index;
    u
}

/// A user whose last credential AlterUserScramCredentials deleted, and who has no other
/// config, is removed (as KRaft forgets it). The ZooKeeper route keeps an emptied user, as
/// ZooKeeper-mode Kafka keeps the emptied `/config/users/<u>` znode.
fn drop_if_empty(next: &mut MetadataImage, user: &str) {
    if next
        .users
        .get(user)
        .is_some_and(|u| u.scram.is_empty() && u.other.is_empty())
    {
        next.users.remove(user);
    }
}

pub(super) fn alter_scram(
    next: &mut MetadataImage,
    deletions: &[(String, ScramMechanism)],
    upsertions: &[(String, ScramMechanism, ScramCredential)],
    index: u64,
) -> Result<ApplyOutcome, MetadataError> {
    for (user, mech) in deletions {
        if next
            .users
            .get(user)
            .is_some_and(|u| u.scram.contains_key(mech))
        {
            touch(next, user, index).scram.remove(mech);
            drop_if_empty(next, user);
        }
    }
    for (user, mech, cred) in upsertions {
        touch(next, user, index).scram.insert(*mech, cred.clone());
    }
    Ok(ApplyOutcome::Done)
}

pub(super) fn replace_configs(
    next: &mut MetadataImage,
    user: &str,
    scram: &BTreeMap<ScramMechanism, ScramCredential>,
    other: &BTreeMap<String, String>,
    quotas: &BTreeMap<String, QuotaValue>,
    index: u64,
) -> Result<ApplyOutcome, MetadataError> {
    let u = touch(next, user, index);
    u.scram = scram.clone();
    u.other = other.clone();
    if let Some(name) = QuotaName::from_zk(user) {
        let entity = QuotaEntity {
            user: Some(name),
            client_id: None,
        };
        replace_quotas(next, &entity, quotas);
    }
    Ok(ApplyOutcome::Done)
}

/// Sets or removes each quota key of `entity`; an entity left without quotas goes.
pub(super) fn alter_quotas(
    next: &mut MetadataImage,
    entity: &QuotaEntity,
    ops: &[(String, Option<QuotaValue>)],
) {
    let q = next.client_quotas.entry(entity.clone()).or_default();
    for (k, v) in ops {
        match v {
            Some(v) => {
                q.insert(k.clone(), *v);
            }
            None => {
                q.remove(k);
            }
        }
    }
    if q.is_empty() {
        next.client_quotas.remove(entity);
    }
}

/// Replaces all quotas of `entity` (none: the entity goes).
pub(super) fn replace_quotas(
    next: &mut MetadataImage,
    entity: &QuotaEntity,
    quotas: &BTreeMap<String, QuotaValue>,
) {
    if quotas.is_empty() {
        next.client_quotas.remove(entity);
    } else {
        next.client_quotas.insert(entity.clone(), quotas.clone());
    }
}
