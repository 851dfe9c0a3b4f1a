//! DescribeConfigs / AlterConfigs / IncrementalAlterConfigs for topics and brokers.

use super::{Broker, BrokerError};
use crate::config::topic::{topic_config_def, ConfigType, TOPIC_CONFIGS};
use crate::config::validate_topic_config;
use crate::metadata::{ConfigOp, MetadataCommand, TopicImage};
use std::collections::BTreeMap;

/// Where a config value comes from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic,
    DynamicBroker,
    StaticBroker,
    Default,
}

impl ConfigSource {
    /// Kafka's wire id (DescribeConfigs v1+).
    pub fn wire_id(self) -> i8 {
        match self {
            ConfigSource::DynamicTopic => 1,
            ConfigSource::DynamicBroker => 2,
            ConfigSource::StaticBroker => 4,
            ConfigSource::Default => 5,
        }
    }
}

/// One synonym in precedence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonymView {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

/// One described config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntryView {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    pub source: ConfigSource,
    pub sensitive: bool,
    pub synonyms: Vec<ConfigSynonymView>,
    pub config_type: i8,
    pub documentation: Option<String>,
}

/// IncrementalAlterConfigs operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncrementalOp {
    Set(String, String),
    Delete(String),
    Append(String, String),
    Subtract(String, String),
}

impl Broker {
    /// The effective value of one topic config (override, else broker static, else default).
    pub fn topic_config_value(&self, topic: &TopicImage, name: &str) -> Option<String> {
        if let Some(v) = topic.configs.get(name) {
            return Some(v.clone());
        }
        topic_config_def(name).map(|d| self.config().topic_default(d).0)
    }

    /// Describes a topic's configs (all of them, or only `keys`).
    pub fn describe_topic_configs(
        &self,
        topic: &str,
        keys: Option<&[String]>,
    ) -> Result<Vec<ConfigEntryView>, BrokerError> {
        let image = self.metadata_view();
        let t = image
            .topic(topic)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        if let Some(keys) = keys {
            if let Some(unknown) = keys.iter().find(|k| topic_config_def(k).is_none()) {
                return Err(BrokerError::InvalidConfig(format!(
                    "Unknown topic config name: {unknown}"
                )));
            }
        }
        Ok(self.describe_topic_overrides(&t.configs, keys))
    }

    /// Describes the configs of a topic with these overrides (all of them, or only `keys`):
    /// an existing topic's, or one about to be created.
    pub fn describe_topic_overrides(
        &self,
        overrides: &BTreeMap<String, String>,
        keys: Option<&[String]>,
    ) -> Vec<ConfigEntryView> {
        let mut out = Vec::new();
        for def in TOPIC_CONFIGS {
            if keys.is_some_and(|k| !k.iter().any(|x| x == def.name)) {
                continue;
            }
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(def.name) {
                synonyms.push(ConfigSynonymView {
                    name: def.name.into(),
                    value: Some(v.clone()),
                    source: ConfigSource::DynamicTopic,
                });
            }
            for (syn, _) in def.synonyms {
                if let Some(v) = self.config().properties.get(*syn) {
                    synonyms.push(ConfigSynonymView {
                        name: (*syn).into(),
                        value: Some(v.trim().to_owned()),
                        source: ConfigSource::StaticBroker,
                    });
                }
            }
            if let Some((syn, _)) = def.synonyms.first() {
                synonyms.push(ConfigSynonymView {
                    name: (*syn).into(),
                    value: Some(def.default.into()),
                    source: ConfigSource::Default,
                });
            }
            let (value, source) = match overrides.get(def.name) {
                Some(v) => (v.clone(), ConfigSource::DynamicTopic),
                None => match self.config().topic_default(def) {
                    (v, Some(_)) => (v, ConfigSource::StaticBroker),
                    (v, None) => (v, ConfigSource::Default),
                },
            };
            out.push(ConfigEntryView {
                name: def.name.into(),
                value: Some(value),
                read_only: false,
                source,
                sensitive: false,
                synonyms,
                config_type: def.kind.wire_id(),
                documentation: None,
            });
        }
        out
    }

    /// Describes this broker's configs: the properties it was started with plus defaults of
    /// the keys it knows (read-only: dynamic broker configs are not supported).
    pub fn describe_broker_configs(
        &self,
        broker_id: &str,
        keys: Option<&[String]>,
    ) -> Result<Vec<ConfigEntryView>, BrokerError> {
        if broker_id.parse::<i32>().ok() != Some(self.node_id().0) && !broker_id.is_empty() {
            return Err(BrokerError::InvalidRequest(format!(
                "Unexpected broker id, expected {} but received {broker_id}",
                self.node_id()
            )));
        }
        let c = self.config();
        let mut entries: BTreeMap<String, (String, ConfigSource, i8)> = BTreeMap::new();
        let d = &c.defaults;
        let known: [(&str, String, ConfigType); 14] = [
            ("broker.id", c.node_id.to_string(), ConfigType::Int),
            ("node.id", c.node_id.to_string(), ConfigType::Int),
            (
                "num.partitions",
                d.num_partitions.to_string(),
                ConfigType::Int,
            ),
            (
                "default.replication.factor",
                d.default_replication_factor.to_string(),
                ConfigType::Int,
            ),
            (
                "auto.create.topics.enable",
                d.auto_create_topics_enable.to_string(),
                ConfigType::Boolean,
            ),
            (
                "delete.topic.enable",
                d.delete_topic_enable.to_string(),
                ConfigType::Boolean,
            ),
            (
                "min.insync.replicas",
                d.min_insync_replicas.to_string(),
                ConfigType::Int,
            ),
            (
                "message.max.bytes",
                d.message_max_bytes.to_string(),
                ConfigType::Int,
            ),
            (
                "log.dirs",
                c.data_dir.display().to_string(),
                ConfigType::String,
            ),
            (
                "socket.request.max.bytes",
                c.limits.kafka_request_bytes_max.to_string(),
                ConfigType::Int,
            ),
            (
                "max.connections",
                c.limits.kafka_connections_max.to_string(),
                ConfigType::Int,
            ),
            (
                "max.connections.per.ip",
                c.limits.kafka_connections_per_ip_max.to_string(),
                ConfigType::Int,
            ),
            (
                "connections.max.idle.ms",
                c.limits.kafka_idle_timeout.as_millis().to_string(),
                ConfigType::Long,
            ),
            (
                "queued.max.request.bytes",
                match c.limits.kafka_queued_request_bytes_max {
                    usize::MAX => "-1".to_owned(),
                    n => n.to_string(),
                },
                ConfigType::Long,
            ),
        ];
        for (k, v, ty) in known {
            entries.insert(k.to_owned(), (v, ConfigSource::Default, ty.wire_id()));
        }
        for def in TOPIC_CONFIGS {
            if let Some((syn, _)) = def.synonyms.first() {
                entries.entry((*syn).to_owned()).or_insert((
                    c.topic_default(def).0,
                    ConfigSource::Default,
                    def.kind.wire_id(),
                ));
            }
        }
        for (k, v) in &c.properties {
            let ty = entries.get(k).map_or(ConfigType::String.wire_id(), |e| e.2);
            entries.insert(
                k.clone(),
                (v.trim().to_owned(), ConfigSource::StaticBroker, ty),
            );
        }
        Ok(entries
            .into_iter()
            .filter(|(k, _)| keys.is_none_or(|ks| ks.iter().any(|x| x == k)))
            .map(|(name, (value, source, ty))| ConfigEntryView {
                synonyms: vec![ConfigSynonymView {
                    name: name.clone(),
                    value: Some(value.clone()),
                    source,
                }],
                name,
                value: Some(value),
                read_only: true,
                source,
                sensitive: false,
                config_type: ty,
                documentation: None,
            })
            .collect())
    }

    /// Legacy AlterConfigs: replaces all of a topic's overrides.
    pub async fn replace_topic_configs(
        &self,
        topic: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        let image = self.metadata_view();
        let t = image
            .topic(topic)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let configs = crate::config::validate_topic_configs(&configs)?;
        if validate_only {
            return Ok(());
        }
        self.propose(MetadataCommand::ReplaceTopicConfigs {
            name: t.name.clone(),
            configs,
        })
        .await?;
        Ok(())
    }

    /// IncrementalAlterConfigs on a topic. All ops are validated before anything changes.
    pub async fn incremental_alter_topic_configs(
        &self,
        topic: &str,
        ops: Vec<IncrementalOp>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        let image = self.metadata_view();
        let t = image
            .topic(topic)
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        let mut current = t.configs.clone();
        let mut out = Vec::new();
        for op in ops {
            match op {
                IncrementalOp::Set(k, v) => {
                    let v = validate_topic_config(&k, &v)?;
                    current.insert(k.clone(), v.clone());
                    out.push(ConfigOp::Set { key: k, value: v });
                }
                IncrementalOp::Delete(k) => {
                    if topic_config_def(&k).is_none() {
                        return Err(BrokerError::InvalidConfig(format!(
                            "Unknown topic config name: {k}"
                        )));
                    }
                    current.remove(&k);
                    out.push(ConfigOp::Delete { key: k });
                }
                IncrementalOp::Append(k, v) | IncrementalOp::Subtract(k, v)
                    if topic_config_def(&k).is_some_and(|d| d.kind != ConfigType::List) =>
                {
                    let _ = v;
                    return Err(BrokerError::InvalidConfig(format!(
                        "Config value append/subtract is not allowed for config key {k}"
                    )));
                }
                IncrementalOp::Append(k, v) => {
                    let base = current
                        .get(&k)
                        .cloned()
                        .or_else(|| self.topic_config_value(t, &k))
                        .unwrap_or_default();
                    let mut items: Vec<String> = base
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect();
                    for add in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        if !items.iter().any(|i| i == add) {
                            items.push(add.to_owned());
                        }
                    }
                    let joined = validate_topic_config(&k, &items.join(","))?;
                    current.insert(k.clone(), joined.clone());
                    out.push(ConfigOp::Set {
                        key: k,
                        value: joined,
                    });
                }
                IncrementalOp::Subtract(k, v) => {
                    let base = current
                        .get(&k)
                        .cloned()
                        .or_else(|| self.topic_config_value(t, &k))
                        .unwrap_or_default();
                    let remove: Vec<&str> = v.split(',').map(str::trim).collect();
                    let items: Vec<&str> = base
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty() && !remove.contains(s))
                        .collect();
                    let joined = validate_topic_config(&k, &items.join(","))?;
                    current.insert(k.clone(), joined.clone());
                    out.push(ConfigOp::Set {
                        key: k,
                        value: joined,
                    });
                }
            }
        }
        if validate_only || out.is_empty() {
            return Ok(());
        }
        self.propose(MetadataCommand::AlterTopicConfigs {
            name: t.name.clone(),
            ops: out,
        })
        .await?;
        Ok(())
    }
}
