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
//! `unclean.leader.election.enable`, ...). Kafka's per-broker SASL Kerberos keys
//! ([`PER_BROKER_SASL_KEYS`]) are accepted, validated, stored and shown as Kafka does, and have
//! no effect (raftka has no GSSAPI). Other keys this node knows are read-only.

use super::topic::{ConfigType, TopicConfigDef, TOPIC_CONFIGS};
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

/// Kafka's SASL Kerberos keys, which Kafka reconfigures per broker only
/// (`DynamicListenerConfig.ReconfigurableConfigs`, 2.2.1 and later): name, type, Kafka's
/// default. raftka has no Kerberos (GSSAPI) mechanism: a value set here is validated, stored in
/// the metadata Raft and described, and changes nothing else (what `kafka-configs.sh` and
/// librdkafka's admin tests expect of a Kafka broker without GSSAPI enabled).
pub const PER_BROKER_SASL_KEYS: &[(&str, ConfigType, Option<&str>)] = &[
    (
        "sasl.kerberos.kinit.cmd",
        ConfigType::String,
        Some("/usr/bin/kinit"),
    ),
    (
        "sasl.kerberos.min.time.before.relogin",
        ConfigType::Long,
        Some("60000"),
    ),
    (
        "sasl.kerberos.principal.to.local.rules",
        ConfigType::List,
        Some("DEFAULT"),
    ),
    ("sasl.kerberos.service.name", ConfigType::String, None),
    (
        "sasl.kerberos.ticket.renew.jitter",
        ConfigType::Double,
        Some("0.05"),
    ),
    (
        "sasl.kerberos.ticket.renew.window.factor",
        ConfigType::Double,
        Some("0.8"),
    ),
];

/// Kafka's replication quota keys (`DynamicConfig.Broker`, KIP-73), per broker or at the
/// cluster default: bytes/s for the replicas the topics' `*.replication.throttled.replicas`
/// list (`replication::throttle`). Kafka's default, `Long.MAX_VALUE`, is no throttle.
pub const REPLICATION_THROTTLE_KEYS: &[(&str, ConfigType, Option<&str>)] = &[
    (
        "follower.replication.throttled.rate",
        ConfigType::Long,
        Some("9223372036854775807"),
    ),
    (
        "leader.replication.throttled.rate",
        ConfigType::Long,
        Some("9223372036854775807"),
    ),
];

/// The type and Kafka default of a replication quota key ([`REPLICATION_THROTTLE_KEYS`]).
pub fn throttle_key(key: &str) -> Option<(ConfigType, Option<&'static str>)> {
    REPLICATION_THROTTLE_KEYS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, t, d)| (*t, *d))
}

/// The type and Kafka default of a per-broker-only key ([`PER_BROKER_SASL_KEYS`]).
pub fn per_broker_only(key: &str) -> Option<(ConfigType, Option<&'static str>)> {
    PER_BROKER_SASL_KEYS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, t, d)| (*t, *d))
}

/// Whether `key` may be set dynamically (at some level).
pub fn is_dynamic(key: &str) -> bool {
    reconfigurable(key).is_some() || per_broker_only(key).is_some() || throttle_key(key).is_some()
}

/// The config type of a dynamic key.
pub fn dynamic_type(key: &str) -> Option<ConfigType> {
    reconfigurable(key)
        .map(|(d, _)| d.kind)
        .or_else(|| per_broker_only(key).map(|(t, _)| t))
        .or_else(|| throttle_key(key).map(|(t, _)| t))
}

/// Whether this node knows `key` at all (reconfigurable or read-only).
pub fn known_broker_key(key: &str) -> bool {
    KNOWN_BROKER_KEYS.contains(&key) || is_dynamic(key)
}

/// Why a dynamic broker config change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DynamicConfigError {
    /// Kafka's `DynamicBrokerConfig.validate` message (INVALID_REQUEST).
    #[error("Cannot update these configs dynamically: Set({})", .0.join(", "))]
    NotDynamic(Vec<String>),
    /// Kafka's message for per-broker keys at the cluster default (INVALID_REQUEST).
    #[error("Cannot update these configs at default cluster level, broker id must be specified: Set({})", .0.join(", "))]
    PerBrokerOnly(Vec<String>),
    #[error("Unknown broker config: {0}")]
    Unknown(String),
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

/// Validates dynamic broker config keys and values for one broker (`per_broker`) or the
/// cluster default; returns the trimmed values.
///
/// # Errors
/// Unknown keys, keys that need a restart (all of them named), per-broker keys at the cluster
/// default, invalid values.
pub fn validate_dynamic(
    configs: &BTreeMap<String, String>,
    per_broker: bool,
) -> Result<BTreeMap<String, String>, DynamicConfigError> {
    if let Some(unknown) = configs.keys().find(|k| !known_broker_key(k)) {
        return Err(DynamicConfigError::Unknown(unknown.clone()));
    }
    let fixed: Vec<String> = configs.keys().filter(|k| !is_dynamic(k)).cloned().collect();
    if !fixed.is_empty() {
        return Err(DynamicConfigError::NotDynamic(fixed));
    }
    if !per_broker {
        let only: Vec<String> = configs
            .keys()
            .filter(|k| per_broker_only(k).is_some())
            .cloned()
            .collect();
        if !only.is_empty() {
            return Err(DynamicConfigError::PerBrokerOnly(only));
        }
    }
    let mut out = BTreeMap::new();
    for (k, v) in configs {
        out.insert(k.clone(), validate_value(k, v)?);
    }
    Ok(out)
}

fn validate_value(key: &str, value: &str) -> Result<String, DynamicConfigError> {
    let invalid = |reason: String| DynamicConfigError::Invalid {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    };
    let v = value.trim();
    if throttle_key(key).is_some() {
        return match v.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(v.to_owned()),
            Ok(_) => Err(invalid("Value must be at least 0".into())),
            Err(_) => Err(invalid("Expected value of type Long".into())),
        };
    }
    if let Some((kind, _)) = per_broker_only(key) {
        let ok = match kind {
            ConfigType::Long => v.parse::<i64>().is_ok(),
            ConfigType::Int => v.parse::<i32>().is_ok(),
            ConfigType::Double => v.parse::<f64>().is_ok_and(f64::is_finite),
            ConfigType::Boolean => {
                v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")
            }
            ConfigType::String | ConfigType::List => true,
        };
        if !ok {
            return Err(invalid(format!("Expected value of type {kind:?}")));
        }
        return Ok(v.to_owned());
    }
    let Some((def, mult)) = reconfigurable(key) else {
        return Err(DynamicConfigError::NotDynamic(vec![key.to_owned()]));
    };
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
            validate_dynamic(
                &m(&[("leader.replication.throttled.rate", " 1000 ")]),
                false
            ),
            Ok(m(&[("leader.replication.throttled.rate", "1000")]))
        );
        assert!(
            validate_dynamic(&m(&[("follower.replication.throttled.rate", "-1")]), true).is_err()
        );
        assert!(
            validate_dynamic(&m(&[("follower.replication.throttled.rate", "x")]), true).is_err()
        );
        let sasl = m(&[("sasl.kerberos.min.time.before.relogin", "58000")]);
        assert_eq!(validate_dynamic(&sasl, true), Ok(sasl.clone()));
        assert!(matches!(
            validate_dynamic(&sasl, false),
            Err(DynamicConfigError::PerBrokerOnly(_))
        ));
        assert!(validate_dynamic(
            &m(&[("sasl.kerberos.min.time.before.relogin", "soon")]),
            true
        )
        .is_err());
        assert_eq!(
            validate_dynamic(&m(&[("log.retention.ms", " 5000 ")]), false),
            Ok(m(&[("log.retention.ms", "5000")]))
        );
        let e = validate_dynamic(&m(&[("log.dirs", "/x"), ("broker.id", "3")]), true)
            .expect_err("read-only");
        assert_eq!(
            e.to_string(),
            "Cannot update these configs dynamically: Set(broker.id, log.dirs)"
        );
        assert_eq!(
            validate_dynamic(&m(&[("nope", "1")]), true),
            Err(DynamicConfigError::Unknown("nope".into()))
        );
        assert!(validate_dynamic(&m(&[("log.retention.hours", "x")]), true).is_err());
        assert!(validate_dynamic(&m(&[("log.cleanup.policy", "bogus")]), true).is_err());
    }
}
