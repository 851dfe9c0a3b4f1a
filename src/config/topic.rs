//! The topic-level configs Kafka defines, their types, validation, and broker synonyms.
//!
//! A topic's effective value is its override if set, else the broker's value for the synonym
//! (from `server.properties`), else the Kafka default. `DescribeConfigs` reports which.

use std::collections::BTreeMap;

/// Value type of a config, as reported by DescribeConfigs v3+ (`config_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Long,
    Double,
    List,
}

impl ConfigType {
    /// Kafka's `ConfigType` wire id.
    pub fn wire_id(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
        }
    }
}

/// A topic config definition.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub kind: ConfigType,
    pub default: &'static str,
    /// Broker keys that set the default, most specific first (e.g. `log.retention.ms` before
    /// `log.retention.minutes` before `log.retention.hours`), with a multiplier to milliseconds.
    pub synonyms: &'static [(&'static str, i64)],
    /// Smallest legal numeric value, where one applies.
    pub min: Option<i64>,
    /// For enumerated strings / lists: the legal values.
    pub allowed: &'static [&'static str],
}

const NO: &[&str] = &[];

macro_rules! def {
    ($name:expr, $kind:ident, $default:expr, [$($syn:expr),*], $min:expr, $allowed:expr) => {
        TopicConfigDef { name: $name, kind: ConfigType::$kind, default: $default,
            synonyms: &[$($syn),*], min: $min, allowed: $allowed }
    };
}

/// Every topic config Kafka 3.x knows (tiered-storage ones omitted), sorted by name.
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def!(
        "cleanup.policy",
        List,
        "delete",
        [("log.cleanup.policy", 1)],
        None,
        &["delete", "compact"]
    ),
    def!(
        "compression.type",
        String,
        "producer",
        [("compression.type", 1)],
        None,
        &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]
    ),
    def!(
        "delete.retention.ms",
        Long,
        "86400000",
        [("log.cleaner.delete.retention.ms", 1)],
        Some(0),
        NO
    ),
    def!(
        "file.delete.delay.ms",
        Long,
        "60000",
        [("log.segment.delete.delay.ms", 1)],
        Some(0),
        NO
    ),
    def!(
        "flush.messages",
        Long,
        "9223372036854775807",
        [("log.flush.interval.messages", 1)],
        Some(1),
        NO
    ),
    def!(
        "flush.ms",
        Long,
        "9223372036854775807",
        [("log.flush.interval.ms", 1)],
        Some(0),
        NO
    ),
    def!(
        "follower.replication.throttled.replicas",
        List,
        "",
        [],
        None,
        NO
    ),
    def!(
        "index.interval.bytes",
        Int,
        "4096",
        [("log.index.interval.bytes", 1)],
        Some(0),
        NO
    ),
    def!(
        "leader.replication.throttled.replicas",
        List,
        "",
        [],
        None,
        NO
    ),
    def!(
        "max.compaction.lag.ms",
        Long,
        "9223372036854775807",
        [("log.cleaner.max.compaction.lag.ms", 1)],
        Some(1),
        NO
    ),
    def!(
        "max.message.bytes",
        Int,
        "1048588",
        [("message.max.bytes", 1)],
        Some(0),
        NO
    ),
    def!(
        "message.downconversion.enable",
        Boolean,
        "true",
        [("log.message.downconversion.enable", 1)],
        None,
        NO
    ),
    // Kafka 2.2.1's message format of a topic (deprecated in 3.0, gone in 4.0). raftka, like
    // Kafka ≥ 3.0 with its inter-broker protocol at 3.0 or later, always stores v2 batches and
    // converts for old clients on the way out: the value is validated, stored and shown, and
    // changes nothing (librdkafka 0092_mixed_msgver sets it mid-stream).
    def!(
        "message.format.version",
        String,
        "3.0-IV1",
        [("log.message.format.version", 1)],
        None,
        NO
    ),
    def!(
        "message.timestamp.after.max.ms",
        Long,
        "9223372036854775807",
        [("log.message.timestamp.after.max.ms", 1)],
        Some(0),
        NO
    ),
    def!(
        "message.timestamp.before.max.ms",
        Long,
        "9223372036854775807",
        [("log.message.timestamp.before.max.ms", 1)],
        Some(0),
        NO
    ),
    def!(
        "message.timestamp.difference.max.ms",
        Long,
        "9223372036854775807",
        [("log.message.timestamp.difference.max.ms", 1)],
        Some(0),
        NO
    ),
    def!(
        "message.timestamp.type",
        String,
        "CreateTime",
        [("log.message.timestamp.type", 1)],
        None,
        &["CreateTime", "LogAppendTime"]
    ),
    def!(
        "min.cleanable.dirty.ratio",
        Double,
        "0.5",
        [("log.cleaner.min.cleanable.ratio", 1)],
        None,
        NO
    ),
    def!(
        "min.compaction.lag.ms",
        Long,
        "0",
        [("log.cleaner.min.compaction.lag.ms", 1)],
        Some(0),
        NO
    ),
    def!(
        "min.insync.replicas",
        Int,
        "1",
        [("min.insync.replicas", 1)],
        Some(1),
        NO
    ),
    def!(
        "preallocate",
        Boolean,
        "false",
        [("log.preallocate", 1)],
        None,
        NO
    ),
    def!(
        "retention.bytes",
        Long,
        "-1",
        [("log.retention.bytes", 1)],
        None,
        NO
    ),
    def!(
        "retention.ms",
        Long,
        "604800000",
        [
            ("log.retention.ms", 1),
            ("log.retention.minutes", 60_000),
            ("log.retention.hours", 3_600_000)
        ],
        Some(-1),
        NO
    ),
    def!(
        "segment.bytes",
        Int,
        "1073741824",
        [("log.segment.bytes", 1)],
        Some(14),
        NO
    ),
    def!(
        "segment.index.bytes",
        Int,
        "10485760",
        [("log.index.size.max.bytes", 1)],
        Some(4),
        NO
    ),
    def!(
        "segment.jitter.ms",
        Long,
        "0",
        [
            ("log.roll.jitter.ms", 1),
            ("log.roll.jitter.hours", 3_600_000)
        ],
        Some(0),
        NO
    ),
    def!(
        "segment.ms",
        Long,
        "604800000",
        [("log.roll.ms", 1), ("log.roll.hours", 3_600_000)],
        Some(1),
        NO
    ),
    def!(
        "unclean.leader.election.enable",
        Boolean,
        "false",
        [("unclean.leader.election.enable", 1)],
        None,
        NO
    ),
];

/// Looks up a topic config definition by name.
pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Why a topic config was rejected (becomes INVALID_CONFIG with this message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicConfigError {
    #[error("Unknown topic config name: {0}")]
    Unknown(String),
    #[error("Invalid value {value} for configuration {name}: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
}

/// Validates one topic config value; returns it normalised (trimmed).
///
/// # Errors
/// Unknown names and values of the wrong type or out of range.
pub fn validate_topic_config(name: &str, value: &str) -> Result<String, TopicConfigError> {
    let def = topic_config_def(name).ok_or_else(|| TopicConfigError::Unknown(name.to_owned()))?;
    let v = value.trim();
    let invalid = |reason: &str| TopicConfigError::Invalid {
        name: name.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    match def.kind {
        ConfigType::Boolean => {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                return Err(invalid("Expected value to be either true or false"));
            }
            return Ok(v.to_ascii_lowercase());
        }
        ConfigType::Int | ConfigType::Long => {
            let n: i64 = v
                .parse()
                .map_err(|_| invalid("Not a number of type LONG/INT"))?;
            if def.kind == ConfigType::Int && i32::try_from(n).is_err() {
                return Err(invalid("Not a number of type INT"));
            }
            if let Some(min) = def.min {
                if n < min {
                    return Err(invalid(&format!("Value must be at least {min}")));
                }
            }
        }
        ConfigType::Double => {
            let d: f64 = v
                .parse()
                .map_err(|_| invalid("Not a number of type DOUBLE"))?;
            if name == "min.cleanable.dirty.ratio" && !(0.0..=1.0).contains(&d) {
                return Err(invalid("Value must be between 0 and 1"));
            }
        }
        ConfigType::List
            if name == "leader.replication.throttled.replicas"
                || name == "follower.replication.throttled.replicas" =>
        {
            // Kafka's ThrottledReplicaListValidator.
            let ok = v == "*"
                || v.is_empty()
                || v.split(',').all(|e| {
                    e.trim().split_once(':').is_some_and(|(p, b)| {
                        p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
                    })
                });
            if !ok {
                return Err(invalid(
                    "must be the literal '*' or a list of replicas in the following format: \
                     [partitionId]:[brokerId],[partitionId]:[brokerId],...",
                ));
            }
        }
        ConfigType::String if name == "message.format.version" => {
            if !is_kafka_version(v) {
                return Err(invalid(
                    "Version must be a Kafka release such as 0.10.0, 2.2 or 3.0-IV1",
                ));
            }
        }
        ConfigType::String => {
            if !def.allowed.is_empty() && !def.allowed.contains(&v) {
                return Err(invalid(&format!(
                    "String must be one of: {}",
                    def.allowed.join(", ")
                )));
            }
        }
        ConfigType::List => {
            if !def.allowed.is_empty() {
                for item in v.split(',').map(str::trim) {
                    if !def.allowed.contains(&item) {
                        return Err(invalid(&format!(
                            "Invalid value; must be one of {:?}",
                            def.allowed
                        )));
                    }
                }
            }
        }
    }
    Ok(v.to_owned())
}

/// Kafka's `MetadataVersion` strings: `0.10.0`, `0.10.0.1`, `2.2`, `2.2-IV1`, `3.0-IV1`.
fn is_kafka_version(v: &str) -> bool {
    let (release, iv) = match v.split_once("-IV") {
        Some((r, iv)) => (r, Some(iv)),
        None => (v, None),
    };
    let parts: Vec<&str> = release.split('.').collect();
    (2..=4).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        && iv.is_none_or(|i| !i.is_empty() && i.len() <= 2 && i.bytes().all(|b| b.is_ascii_digit()))
}

/// Validates a whole override map.
///
/// # Errors
/// The first invalid entry.
pub fn validate_topic_configs(
    configs: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, TopicConfigError> {
    configs
        .iter()
        .map(|(k, v)| Ok((k.clone(), validate_topic_config(k, v)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_replica_lists_are_validated_as_kafka_does() {
        for ok in ["*", "", "0:1,0:2", " 1 : 3 "] {
            assert!(
                validate_topic_config("leader.replication.throttled.replicas", ok).is_ok(),
                "{ok}"
            );
        }
        for bad in ["0", "a:1", "0:1,", "*,0:1", "-1:2"] {
            assert!(
                validate_topic_config("follower.replication.throttled.replicas", bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn message_format_version_takes_kafka_versions() {
        for ok in ["0.10.0", "0.10.0.0", "2.2", "2.2-IV1", "3.0-IV1", "0.8.2.2"] {
            assert!(
                validate_topic_config("message.format.version", ok).is_ok(),
                "{ok}"
            );
        }
        for bad in ["", "x", "2", "2.", "1.2.3.4.5", "2.2-IV", "2.2-IVx", "v2.2"] {
            assert!(
                validate_topic_config("message.format.version", bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn validation() {
        assert_eq!(
            validate_topic_config("retention.ms", " 8640000 ").as_deref(),
            Ok("8640000")
        );
        assert!(matches!(
            validate_topic_config("retention.ms", "abc"),
            Err(TopicConfigError::Invalid { .. })
        ));
        assert!(matches!(
            validate_topic_config("no.such", "1"),
            Err(TopicConfigError::Unknown(_))
        ));
        assert!(validate_topic_config("cleanup.policy", "compact,delete").is_ok());
        assert!(validate_topic_config("cleanup.policy", "compactt").is_err());
        assert!(validate_topic_config("max.message.bytes", "99999999999").is_err());
        assert!(validate_topic_config("min.insync.replicas", "0").is_err());
        assert!(validate_topic_config("message.timestamp.type", "LogAppendTime").is_ok());
    }

    #[test]
    fn table_is_sorted_and_unique() {
        for w in TOPIC_CONFIGS.windows(2) {
            assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
        }
    }
}
