//! Users: SCRAM credentials in the metadata Raft, managed by AlterUserScramCredentials /
//! DescribeUserScramCredentials (`kafka-configs.sh --bootstrap-server ... --entity-type
//! users`), by `/config/users/<u>` through the ZooKeeper facade (Kafka 2.x's
//! `kafka-configs.sh --zookeeper`), and by `raftka users`. The checks and their texts are
//! Kafka's (`ZkAdminManager.alterUserScramCredentials`, `describeUserScramCredentials`).
//! Protocol-free: the handlers map the per-user results to the wire.

use super::{Broker, BrokerError};
use crate::metadata::MetadataCommand;
use crate::security::scram::{CredentialError, ScramCredential, ScramMechanism};
use std::collections::{BTreeMap, BTreeSet};

/// One upsertion as AlterUserScramCredentials carries it (the client salted the password).
#[derive(Debug, Clone)]
pub struct ScramUpsertion {
    pub user: String,
    /// The protocol's mechanism byte (1 = SHA-256, 2 = SHA-512).
    pub mechanism: i8,
    pub iterations: i32,
    pub salt: Vec<u8>,
    pub salted_password: Vec<u8>,
}

/// One user's credentials as DescribeUserScramCredentials shows them: mechanism and
/// iterations, nothing secret.
pub type CredentialInfos = Vec<(ScramMechanism, i32)>;

/// Longest user name accepted (Kafka bounds it only by the request size).
pub(crate) const USER_NAME_MAX_BYTES: usize = 1024;

fn credential_error(e: CredentialError) -> BrokerError {
    BrokerError::UnacceptableCredential(e.to_string())
}

impl Broker {
    /// The credential of `user` for `mech`, if any (a SCRAM exchange's lookup).
    pub fn scram_credential(&self, user: &str, mech: ScramMechanism) -> Option<ScramCredential> {
        self.metadata_view()
            .users
            .get(user)
            .and_then(|u| u.scram.get(&mech))
            .cloned()
    }

    /// AlterUserScramCredentials: one result per user named in the request, in first-seen
    /// order. A user with any invalid alteration has none of its alterations applied.
    pub async fn alter_user_scram_credentials(
        &self,
        deletions: Vec<(String, i8)>,
        upsertions: Vec<ScramUpsertion>,
    ) -> Vec<(String, Result<(), BrokerError>)> {
        let image = self.metadata_view();
        let mut order: Vec<String> = Vec::new();
        let mut errors: BTreeMap<String, BrokerError> = BTreeMap::new();
        let mut seen: BTreeSet<(String, i8)> = BTreeSet::new();
        let fail = |errors: &mut BTreeMap<String, BrokerError>, user: &str, e: BrokerError| {
            errors.entry(user.to_owned()).or_insert(e);
        };
        let names = deletions
            .iter()
            .map(|(u, m)| (u.clone(), *m))
            .chain(upsertions.iter().map(|u| (u.user.clone(), u.mechanism)));
        for (user, mech) in names {
            if !order.contains(&user) {
                order.push(user.clone());
            }
            if !seen.insert((user.clone(), mech)) {
                fail(
                    &mut errors,
                    &user,
                    BrokerError::DuplicateResource(
                        "A user credential cannot be altered twice in the same request".into(),
                    ),
                );
            }
        }
        let mut dels = Vec::new();
        for (user, mech) in &deletions {
            if user.is_empty() || user.len() > USER_NAME_MAX_BYTES {
                fail(
                    &mut errors,
                    user,
                    BrokerError::UnacceptableCredential("Username must not be empty".into()),
                );
                continue;
            }
            let Some(m) = ScramMechanism::from_type_id(*mech) else {
                fail(
                    &mut errors,
                    user,
                    BrokerError::UnsupportedSaslMechanism("Unknown SCRAM mechanism".into()),
                );
                continue;
            };
            if !image
                .users
                .get(user)
                .is_some_and(|u| u.scram.contains_key(&m))
            {
                fail(
                    &mut errors,
                    user,
                    BrokerError::ResourceNotFound(
                        "Attempt to delete a user credential that does not exist".into(),
                    ),
                );
                continue;
            }
            dels.push((user.clone(), m));
        }
        let mut ups = Vec::new();
        for u in &upsertions {
            if u.user.is_empty() || u.user.len() > USER_NAME_MAX_BYTES {
                fail(
                    &mut errors,
                    &u.user,
                    BrokerError::UnacceptableCredential("Username must not be empty".into()),
                );
                continue;
            }
            let Some(m) = ScramMechanism::from_type_id(u.mechanism) else {
                fail(
                    &mut errors,
                    &u.user,
                    BrokerError::UnsupportedSaslMechanism("Unknown SCRAM mechanism".into()),
                );
                continue;
            };
            match ScramCredential::from_salted_password(
                m,
                &u.salt,
                &u.salted_password,
                u.iterations,
            ) {
                Ok(c) => ups.push((u.user.clone(), m, c)),
                Err(e) => fail(&mut errors, &u.user, credential_error(e)),
            }
        }
        dels.retain(|(u, _)| !errors.contains_key(u));
        ups.retain(|(u, _, _)| !errors.contains_key(u));
        let applied = if dels.is_empty() && ups.is_empty() {
            Ok(())
        } else {
            self.propose(MetadataCommand::AlterScramCredentials {
                deletions: dels,
                upsertions: ups,
            })
            .await
            .map(|_| ())
        };
        order
            .into_iter()
            .map(|user| {
                let r = match errors.remove(&user) {
                    Some(e) => Err(e),
                    None => applied.clone(),
                };
                (user, r)
            })
            .collect()
    }

    /// DescribeUserScramCredentials: `None` or an empty list = every user with a credential.
    ///
    /// # Errors
    /// Per user: RESOURCE_NOT_FOUND for a user without credentials, DUPLICATE_RESOURCE for a
    /// user named twice.
    pub fn describe_user_scram_credentials(
        &self,
        users: Option<Vec<String>>,
    ) -> Vec<(String, Result<CredentialInfos, BrokerError>)> {
        let image = self.metadata_view();
        let infos = |user: &str| -> Option<CredentialInfos> {
            image
                .users
                .get(user)
                .filter(|u| !u.scram.is_empty())
                .map(|u| u.scram.iter().map(|(m, c)| (*m, c.iterations)).collect())
        };
        match users.filter(|u| !u.is_empty()) {
            None => image
                .users
                .keys()
                .filter_map(|u| infos(u).map(|i| (u.clone(), Ok(i))))
                .collect(),
            Some(names) => {
                let mut count: BTreeMap<&str, usize> = BTreeMap::new();
                for n in &names {
                    *count.entry(n.as_str()).or_default() += 1;
                }
                let mut out = Vec::new();
                let mut done = BTreeSet::new();
                for n in &names {
                    if !done.insert(n.clone()) {
                        continue;
                    }
                    let r = if count[n.as_str()] > 1 {
                        Err(BrokerError::DuplicateResource(
                            "Cannot describe SCRAM credentials for the same user twice in a single request".into(),
                        ))
                    } else {
                        infos(n).ok_or_else(|| {
                            BrokerError::ResourceNotFound(
                                "Attempt to describe a user credential that does not exist".into(),
                            )
                        })
                    };
                    out.push((n.clone(), r));
                }
                out
            }
        }
    }

    /// The ZooKeeper route: create or setData `/config/users/<user>` with Kafka's
    /// `{"version":1,"config":{"SCRAM-SHA-256":"salt=...,stored_key=...,server_key=...,
    /// iterations=8192", ...}}` replaces that user's configs. SCRAM keys must parse; quota
    /// keys (`producer_byte_rate`, ...) become the user's client quotas and must be valid;
    /// other keys are kept as written.
    ///
    /// # Errors
    /// `InvalidConfig` for a SCRAM value that is not a valid credential.
    pub async fn zk_replace_user_configs(
        &self,
        user: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), BrokerError> {
        if user.is_empty() || user.len() > USER_NAME_MAX_BYTES {
            return Err(BrokerError::InvalidConfig("bad user name".into()));
        }
        let mut scram = BTreeMap::new();
        let mut other = BTreeMap::new();
        let mut quota_configs = BTreeMap::new();
        let quota_user = crate::metadata::quotas::QuotaName::from_zk(user).is_some();
        for (k, v) in configs {
            if quota_user && crate::metadata::quotas::is_quota_key(&k) {
                quota_configs.insert(k, v);
                continue;
            }
            match ScramMechanism::from_name(&k) {
                Some(m) => {
                    let c = ScramCredential::from_zk_string(m, &v).ok_or_else(|| {
                        BrokerError::InvalidConfig(format!("{k}: not a valid SCRAM credential"))
                    })?;
                    scram.insert(m, c);
                }
                None => {
                    other.insert(k, v);
                }
            }
        }
        let quotas = super::quotas::parse_zk_quotas(quota_configs)?;
        self.propose(MetadataCommand::ReplaceUserConfigs {
            user: user.to_owned(),
            scram,
            other,
            quotas,
        })
        .await
        .map(|_| ())
    }
}
