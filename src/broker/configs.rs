//! DescribeConfigs / AlterConfigs / IncrementalAlterConfigs for topics and brokers.

use super::{Broker, BrokerError};
use crate::config::dynamic::Layer;
use crate::config::topic::{topic_config_def, ConfigType, TOPIC_CONFIGS};
use crate::config::validate_topic_config;
use crate::metadata::{ConfigOp, MetadataCommand, TopicImage};
use std::collections::BTreeMap;

/// Where a config value comes from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic,
    DynamicBroker,
    DynamicDefaultBroker,
    StaticBroker,
    Default,
}

impl ConfigSource {
    /// Kafka's wire id (DescribeConfigs v1+).
    pub fn wire_id(self) -> i8 {
        match self {
            ConfigSource::DynamicTopic => 1,
            ConfigSource::DynamicBroker => 2,
            ConfigSource::DynamicDefaultBroker => 3,
            ConfigSource::StaticBroker => 4,
            ConfigSource::Default => 5,
        }
    }
}

impl From<Layer> for ConfigSource {
    fn from(l: Layer) -> Self {
        match l {
            Layer::DynamicBroker => ConfigSource::DynamicBroker,
            Layer::DynamicDefault => ConfigSource::DynamicDefaultBroker,
            Layer::Static => ConfigSource::StaticBroker,
        }
    }
}

/// The values `key` has in this broker's layers (dynamic, cluster default, static), most
/// specific first.
pub(super) fn broker_layers(config: &crate::config::Config, key: &str) -> Vec<ConfigSynonymView> {
    let dynamic = config.dynamic.get();
    let mut out = Vec::new();
    for (map, source) in [
        (&dynamic.broker, ConfigSource::DynamicBroker),
        (&dynamic.cluster_default, ConfigSource::DynamicDefaultBroker),
        (&config.properties, ConfigSource::StaticBroker),
    ] {
        if let Some(v) = map.get(key) {
            out.push(ConfigSynonymView {
                name: key.into(),
                value: Some(v.trim().to_owned()),
                source,
            });
        }
    }
    out
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
                synonyms.extend(broker_layers(self.config(), syn));
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
                None => match self.config().topic_default_layered(def) {
                    (v, Some((_, layer))) => (v, ConfigSource::from(layer)),
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
