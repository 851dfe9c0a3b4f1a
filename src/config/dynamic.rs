//! Dynamic broker configs (KIP-226, `kafka-configs.sh --entity-type brokers`): the values
//! stored in the metadata Raft for this broker and for the cluster default, kept here so every
//! reader of a broker-level default sees them at once. The metadata image is the source of
//! truth; the broker copies its two maps in whenever the image changes.
//!
//! A departure from "`Config` is built once": this one field changes at run time, behind a
//! lock, because the defaults it feeds (`Config::topic_default`) are read from places that do
//! not hold the image (retention, compaction, produce checks, elections).
//!
//! Reconfigurable keys are the broker synonyms of topic configs (Kafka's `DynamicLogConfig`:
//! `log.retention.*`, `log.segment.bytes`, `log.cleaner.*` that raftka implements,
//! `message.max.bytes`, `min.insync.replicas`, `compression.type`,
//! `unclean.leader.election.enable`, ...). Other keys this node knows are read-only.

use super::topic::{TopicConfigDef, TOPIC_CONFIGS};
use super::KNOWN_BROKER_KEYS;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// The dynamic layers that apply to this broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicValues {
    /// This broker's own dynamic configs (`--entity-name <id>`).
    pub broker: BTreeMap<String, String>,
    /// The cluster default (`--entity-default`).
    pub cluster_default: BTreeMap<String, String>,
}

/// Which layer a broker-level value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    DynamicBroker,
    DynamicDefault,
    Static,
}

/// Shared, swappable [`DynamicValues`].
#[derive(Debug, Clone, Default)]
pub struct DynamicBrokerConfigs {
    current: Arc<RwLock<Arc<DynamicValues>>>,
}

impl DynamicBrokerConfigs {
    /// The layers now in force.
    pub fn get(&self) -> Arc<DynamicValues> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Installs new layers; returns whether anything changed.
    pub fn set(&self, values: DynamicValues) -> bool {
        let mut cur = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if **cur == values {
            return false;
        }
        *cur = Arc::new(values);
        true
    }
}

/// Whether `key` may be changed without a restart; `Some` with the topic config it feeds
/// and its multiplier to the topic unit.
pub fn reconfigurable(key: &str) -> Option<(&'static TopicConfigDef, i64)> {
    TOPIC_CONFIGS.iter().find_map(|d| {
        d.synonyms
            .iter()
            .find(|(s, _)| *s == key)
            .map(|(_, mult)| (d, *mult))
    })
}

/// Whether this node knows `key` at all (reconfigurable or read-only).
pub fn known_broker_key(key: &str) -> bool {
    KNOWN_BROKER_KEYS.contains(&key) || reconfigurable(key).is_some()
}

/// Why a dynamic broker config change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DynamicConfigError {
    /// Kafka's `DynamicBrokerConfig.validate` message (INVALID_REQUEST).
    #[error("Cannot update these configs dynamically: Set({})", .0.join(", "))]
    NotDynamic(Vec<String>),
    #[error("Unknown broker config: {0}")]
    Unknown(String),
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

/// Validates dynamic broker config keys and values; returns the trimmed values.
///
/// # Errors
/// Unknown keys, keys that need a restart (all of them named), invalid values.
pub fn validate_dynamic(
    configs: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, DynamicConfigError> {
    if let Some(unknown) = configs.keys().find(|k| !known_broker_key(k)) {
        return Err(DynamicConfigError::Unknown(unknown.clone()));
    }
    let fixed: Vec<String> = configs
        .keys()
        .filter(|k| reconfigurable(k).is_none())
        .cloned()
        .collect();
    if !fixed.is_empty() {
        return Err(DynamicConfigError::NotDynamic(fixed));
    }
    let mut out = BTreeMap::new();
    for (k, v) in configs {
        out.insert(k.clone(), validate_value(k, v)?);
    }
    Ok(out)
}

fn validate_value(key: &str, value: &str) -> Result<String, DynamicConfigError> {
    let Some((def, mult)) = reconfigurable(key) else {
        return Err(DynamicConfigError::NotDynamic(vec![key.to_owned()]));
    };
    let invalid = |reason: String| DynamicConfigError::Invalid {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    };
    let v = value.trim();
    let as_topic = if mult == 1 {
        v.to_owned()
    } else {
        v.parse::<i64>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .ok_or_else(|| invalid("not a number".into()))?
            .to_string()
    };
    super::validate_topic_config(def.name, &as_topic).map_err(|e| invalid(e.to_string()))?;
    Ok(v.to_owned())
}

impl super::Config {
    /// A broker-level key's value through the layers: this broker's dynamic config, the
    /// cluster default, then the properties the node started with.
    pub fn broker_value(&self, key: &str) -> Option<(String, Layer)> {
        let dynamic = self.dynamic.get();
        if let Some(v) = dynamic.broker.get(key) {
            return Some((v.clone(), Layer::DynamicBroker));
        }
        if let Some(v) = dynamic.cluster_default.get(key) {
            return Some((v.clone(), Layer::DynamicDefault));
        }
        self.properties
            .get(key)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|v| (v.to_owned(), Layer::Static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconfigurable_read_only_and_unknown_keys() {
        assert!(reconfigurable("log.retention.ms").is_some());
        assert!(reconfigurable("log.retention.hours").is_some_and(|(_, m)| m == 3_600_000));
        assert!(reconfigurable("message.max.bytes").is_some());
        assert!(reconfigurable("log.cleaner.min.cleanable.ratio").is_some());
        assert!(reconfigurable("broker.id").is_none());
        assert!(known_broker_key("log.dirs"));
        assert!(!known_broker_key("no.such.key"));
        let m = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            validate_dynamic(&m(&[("log.retention.ms", " 5000 ")])),
            Ok(m(&[("log.retention.ms", "5000")]))
        );
        let e =
            validate_dynamic(&m(&[("log.dirs", "/x"), ("broker.id", "3")])).expect_err("read-only");
        assert_eq!(
            e.to_string(),
            "Cannot update these configs dynamically: Set(broker.id, log.dirs)"
        );
        assert_eq!(
            validate_dynamic(&m(&[("nope", "1")])),
            Err(DynamicConfigError::Unknown("nope".into()))
        );
        assert!(validate_dynamic(&m(&[("log.retention.hours", "x")])).is_err());
        assert!(validate_dynamic(&m(&[("log.cleanup.policy", "bogus")])).is_err());
    }
}
