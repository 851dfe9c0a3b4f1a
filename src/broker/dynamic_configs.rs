//! Broker configs: DescribeConfigs on a BROKER resource, and dynamic broker configs
//! (AlterConfigs / IncrementalAlterConfigs, `kafka-configs.sh --entity-type brokers`) for this
//! broker or the cluster default (an empty resource name). They are stored in the metadata
//! Raft (`AlterBrokerConfigs` / `ReplaceBrokerConfigs`) and copied into `Config::dynamic`
//! whenever the image changes, which is how they apply live. Which keys may change is
//! `config::dynamic`'s business.

use super::configs::{broker_layers, ConfigEntryView, ConfigSource, ConfigSynonymView};
use super::{Broker, BrokerError, IncrementalOp};
use crate::config::dynamic::{self, DynamicConfigError, DynamicValues};
use crate::config::topic::{ConfigType, TOPIC_CONFIGS};
use crate::config::Config;
use crate::metadata::{ConfigOp, MetadataCommand, MetadataImage};
use crate::types::NodeId;
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Copies this node's dynamic broker configs from `image` into `config` (live values).
pub fn sync_dynamic_configs(config: &Config, image: &MetadataImage) {
    let values = DynamicValues {
        broker: image.broker_configs(Some(config.node_id)),
        cluster_default: image.broker_configs(None),
    };
    if config.dynamic.set(values.clone()) {
        info!(
            broker = ?values.broker,
            cluster_default = ?values.cluster_default,
            "dynamic broker configs changed"
        );
    }
}

fn refused(e: DynamicConfigError) -> BrokerError {
    match e {
        DynamicConfigError::NotDynamic(_) | DynamicConfigError::PerBrokerOnly(_) => {
            BrokerError::InvalidRequest(e.to_string())
        }
        DynamicConfigError::Unknown(_) | DynamicConfigError::Invalid { .. } => {
            BrokerError::InvalidConfig(e.to_string())
        }
    }
}

impl Broker {
    /// Keeps `Config::dynamic` (and whether any client quota is set) in step with the
    /// metadata image until shutdown.
    pub async fn follow_dynamic_configs(self, shutdown: CancellationToken) {
        let mut images = self.inner.controller.subscribe();
        loop {
            let image = images.borrow_and_update().clone();
            sync_dynamic_configs(self.config(), &image);
            self.note_quotas(&image);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = images.changed() => if r.is_err() { return },
            }
        }
    }

    /// A BROKER resource name: empty = the cluster default, else this broker's id (a broker
    /// answers for itself only, as Kafka does).
    fn broker_entity(&self, name: &str) -> Result<Option<NodeId>, BrokerError> {
        if name.is_empty() {
            return Ok(None);
        }
        match name.parse::<i32>() {
            Ok(id) if id == self.node_id().0 => Ok(Some(self.node_id())),
            _ => Err(BrokerError::InvalidRequest(format!(
                "Unexpected broker id, expected {} or empty string, but received {name}",
                self.node_id()
            ))),
        }
    }

    /// Describes this broker's configs (its effective values, with their source), or with an
    /// empty name the cluster-default dynamic configs.
    pub fn describe_broker_configs(
        &self,
        broker_id: &str,
        keys: Option<&[String]>,
    ) -> Result<Vec<ConfigEntryView>, BrokerError> {
        let wanted = |k: &str| keys.is_none_or(|ks| ks.iter().any(|x| x == k));
        let c = self.config();
        if self.broker_entity(broker_id)?.is_none() {
            let defaults = c.dynamic.get();
            return Ok(defaults
                .cluster_default
                .iter()
                .filter(|(k, _)| wanted(k))
                .map(|(k, v)| ConfigEntryView {
                    name: k.clone(),
                    value: Some(v.clone()),
                    read_only: false,
                    source: ConfigSource::DynamicDefaultBroker,
                    sensitive: false,
                    synonyms: vec![ConfigSynonymView {
                        name: k.clone(),
                        value: Some(v.clone()),
                        source: ConfigSource::DynamicDefaultBroker,
                    }],
                    config_type: type_of(k),
                    documentation: None,
                })
                .collect());
        }
        // Key → (Kafka default, type).
        let mut known: BTreeMap<String, (Option<String>, i8)> = BTreeMap::new();
        for (k, v, ty) in static_defaults(c) {
            known.insert(k.to_owned(), (Some(v), ty.wire_id()));
        }
        for def in TOPIC_CONFIGS {
            for (i, (syn, _)) in def.synonyms.iter().enumerate() {
                // The most specific synonym carries the default; the others have none.
                let default = (i == 0).then(|| def.default.to_owned());
                known
                    .entry((*syn).to_owned())
                    .or_insert((default, def.kind.wire_id()));
            }
        }
        for (k, ty, default) in dynamic::PER_BROKER_SASL_KEYS
            .iter()
            .chain(dynamic::REPLICATION_THROTTLE_KEYS)
        {
            known.insert((*k).to_owned(), (default.map(str::to_owned), ty.wire_id()));
        }
        let dynamic = c.dynamic.get();
        let set_keys = c
            .properties
            .keys()
            .chain(dynamic.broker.keys())
            .chain(dynamic.cluster_default.keys());
        for k in set_keys {
            known
                .entry(k.clone())
                .or_insert((None, ConfigType::String.wire_id()));
        }
        let mut out = Vec::new();
        for (name, (default, ty)) in known {
            if !wanted(&name) {
                continue;
            }
            let mut synonyms = broker_layers(c, &name);
            let (value, source) = match synonyms.first() {
                Some(s) => (s.value.clone(), s.source),
                None => (default.clone(), ConfigSource::Default),
            };
            if let Some(d) = default {
                synonyms.push(ConfigSynonymView {
                    name: name.clone(),
                    value: Some(d),
                    source: ConfigSource::Default,
                });
            }
            if value.is_none() && synonyms.is_empty() {
                continue;
            }
            let sensitive = crate::config::security::is_sensitive(&name);
            let (value, synonyms) = if sensitive {
                let hidden = synonyms
                    .into_iter()
                    .map(|s| ConfigSynonymView { value: None, ..s })
                    .collect();
                (None, hidden)
            } else {
                (value, synonyms)
            };
            out.push(ConfigEntryView {
                read_only: !dynamic::is_dynamic(&name),
                name,
                value,
                source,
                sensitive,
                synonyms,
                config_type: ty,
                documentation: None,
            });
        }
        Ok(out)
    }

    /// Legacy AlterConfigs on a BROKER resource: replaces its dynamic configs.
    pub async fn replace_broker_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        let broker = self.broker_entity(name)?;
        let configs = dynamic::validate_dynamic(&configs, broker.is_some()).map_err(refused)?;
        if validate_only {
            return Ok(());
        }
        self.propose(MetadataCommand::ReplaceBrokerConfigs { broker, configs })
            .await?;
        sync_dynamic_configs(self.config(), &self.metadata_view());
        Ok(())
    }

    /// The ZooKeeper route (`/config/brokers/<id>` or `<default>`, written by Kafka 2.x's
    /// `kafka-configs.sh --zookeeper`): replaces any broker's or the default's dynamic configs.
    pub async fn zk_replace_broker_configs(
        &self,
        broker: Option<NodeId>,
        configs: BTreeMap<String, String>,
    ) -> Result<(), BrokerError> {
        let configs = dynamic::validate_dynamic(&configs, broker.is_some()).map_err(refused)?;
        self.propose(MetadataCommand::ReplaceBrokerConfigs { broker, configs })
            .await?;
        sync_dynamic_configs(self.config(), &self.metadata_view());
        Ok(())
    }

    /// IncrementalAlterConfigs on a BROKER resource. All ops are validated first.
    pub async fn incremental_alter_broker_configs(
        &self,
        name: &str,
        ops: Vec<IncrementalOp>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        let broker = self.broker_entity(name)?;
        let image = self.metadata_view();
        let mut current = image.broker_configs(broker);
        // Every key that needs a restart is named at once, as Kafka does.
        let mut fixed: Vec<String> = ops
            .iter()
            .filter_map(|op| match op {
                IncrementalOp::Delete(_) => None,
                IncrementalOp::Set(k, _)
                | IncrementalOp::Append(k, _)
                | IncrementalOp::Subtract(k, _) => Some(k),
            })
            .filter(|k| dynamic::known_broker_key(k) && !dynamic::is_dynamic(k))
            .cloned()
            .collect();
        fixed.sort();
        fixed.dedup();
        if !fixed.is_empty() {
            return Err(refused(DynamicConfigError::NotDynamic(fixed)));
        }
        let mut out = Vec::new();
        let list_of = |current: &BTreeMap<String, String>, k: &str| -> Vec<String> {
            current
                .get(k)
                .cloned()
                .or_else(|| self.config().broker_value(k).map(|(v, _)| v))
                .or_else(|| dynamic::reconfigurable(k).map(|(d, _)| d.default.to_owned()))
                .or_else(|| dynamic::per_broker_only(k).and_then(|(_, d)| d.map(str::to_owned)))
                .or_else(|| dynamic::throttle_key(k).and_then(|(_, d)| d.map(str::to_owned)))
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        for op in ops {
            let (k, v) = match op {
                IncrementalOp::Delete(k) => {
                    if !dynamic::known_broker_key(&k) {
                        return Err(refused(DynamicConfigError::Unknown(k)));
                    }
                    current.remove(&k);
                    out.push(ConfigOp::Delete { key: k });
                    continue;
                }
                IncrementalOp::Set(k, v) => (k, v),
                IncrementalOp::Append(k, v) | IncrementalOp::Subtract(k, v)
                    if dynamic::dynamic_type(&k).is_some_and(|t| t != ConfigType::List) =>
                {
                    let _ = v;
                    return Err(BrokerError::InvalidConfig(format!(
                        "Config value append/subtract is not allowed for config key {k}"
                    )));
                }
                IncrementalOp::Append(k, v) => {
                    let mut items = list_of(&current, &k);
                    for add in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        if !items.iter().any(|i| i == add) {
                            items.push(add.to_owned());
                        }
                    }
                    let joined = items.join(",");
                    (k, joined)
                }
                IncrementalOp::Subtract(k, v) => {
                    let remove: Vec<&str> = v.split(',').map(str::trim).collect();
                    let items: Vec<String> = list_of(&current, &k)
                        .into_iter()
                        .filter(|i| !remove.contains(&i.as_str()))
                        .collect();
                    let joined = items.join(",");
                    (k, joined)
                }
            };
            let checked =
                dynamic::validate_dynamic(&BTreeMap::from([(k.clone(), v)]), broker.is_some())
                    .map_err(refused)?;
            for (key, value) in checked {
                current.insert(key.clone(), value.clone());
                out.push(ConfigOp::Set { key, value });
            }
        }
        if validate_only || out.is_empty() {
            return Ok(());
        }
        self.propose(MetadataCommand::AlterBrokerConfigs { broker, ops: out })
            .await?;
        sync_dynamic_configs(self.config(), &self.metadata_view());
        Ok(())
    }
}

fn type_of(key: &str) -> i8 {
    dynamic::dynamic_type(key).map_or(ConfigType::String.wire_id(), ConfigType::wire_id)
}

/// Broker keys that are not topic synonyms, with the value this node runs with.
fn static_defaults(c: &Config) -> Vec<(&'static str, String, ConfigType)> {
    let d = &c.defaults;
    vec![
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
    ]
}
