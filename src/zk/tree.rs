//! The pure mapping from the metadata image to ZooKeeper znodes: the Kafka projection
//! (`/brokers/...`, `/config/topics/...`, `/controller`, ...), the skeleton directories, and the
//! stored free-form znodes. Chroots: the projection also appears under any stored znode `P` for
//! paths `P/<kafka top-level name>/...` (a tool run with `host:2181/kafka` sends `/kafka/...`).
//! `/consumers/<group>/offsets/<topic>/<partition>` shows committed offsets (Kafka 2.2.1 kept
//! OffsetCommit v0's there), read-only, from what the caller fetched from the group
//! coordinators for the path ([`consumers_query`]); without it those nodes do not exist.

use crate::broker::ConsumerOffsets;
use crate::metadata::quotas::{QuotaEntity, QuotaName};
use crate::metadata::{name_of, MetadataImage, TopicImage, ZnodeStat, ZK_SKELETON};
use crate::security::acl::{
    AclEntry, Operation, PatternType, Permission, ResourceAcls, ResourcePattern, ResourceType,
    ACL_STRING_MAX_BYTES,
};
use crate::types::NodeId;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Top-level names of the Kafka tree (under `/` or a chroot).
const KAFKA_TOP: &[&str] = &[
    "admin",
    "brokers",
    "cluster",
    "config",
    "consumers",
    "controller",
    "controller_epoch",
    "isr_change_notification",
    "kafka-acl",
    "kafka-acl-changes",
    "kafka-acl-extended",
    "kafka-acl-extended-changes",
    "latest_producer_id_block",
    "log_dir_event_notification",
];

/// Ephemeral owner shown for broker-owned ephemerals (`/brokers/ids/<id>`, `/controller`).
const BROKER_SESSION_BASE: i64 = 0x7261_6674_6b61_0000; // "raftka\0\0"

/// What the facade needs besides the image.
#[derive(Debug, Clone, Copy)]
pub struct TreeView<'a> {
    pub image: &'a MetadataImage,
    pub controller_id: Option<NodeId>,
    /// Committed offsets for the `/consumers` projection, when the read needs them.
    pub consumers: Option<&'a ConsumerOffsets>,
}

impl<'a> TreeView<'a> {
    /// This view with committed offsets for the `/consumers` projection.
    #[must_use]
    pub fn with_consumers(self, consumers: Option<&'a ConsumerOffsets>) -> Self {
        Self { consumers, ..self }
    }
}

/// What a read needs from the group coordinators for the `/consumers` projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumersQuery {
    /// `/consumers`: the groups with committed offsets.
    Groups,
    /// `/consumers/<group>/...`: that group's offsets.
    Group(String),
}

/// A znode as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub data: Option<Vec<u8>>,
    pub stat: ZnodeStat,
    /// Sorted child names.
    pub children: Vec<String>,
    /// Derived from cluster metadata rather than stored (writes there are refused or mapped).
    pub projected: bool,
}

/// A write that Kafka tools use to administer the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaPath {
    /// `/brokers/topics/<t>`
    TopicAssignment(String),
    /// `/config/topics/<t>`
    TopicConfig(String),
    /// `/admin/delete_topics/<t>`
    DeleteMarker(String),
    /// `/config/brokers/<id>` or `/config/brokers/<default>` (dynamic broker configs)
    BrokerConfig(String),
    /// `/config/users/<user>` (SCRAM credentials, the user's quotas, other user configs)
    UserConfig(String),
    /// `/config/clients/<c>` or `/config/users/<u>/clients/<c>` (client quotas)
    QuotaConfig(QuotaEntity),
    /// `/kafka-acl/<Type>/<name>` or `/kafka-acl-extended/prefixed/<Type>/<name>`: the ACLs
    /// of one resource pattern (Kafka 2.x's `kafka-acls.sh --authorizer-properties
    /// zookeeper.connect=...`).
    Acl(ResourcePattern),
}

/// Splits `path` into (chroot, path relative to it) when it addresses the Kafka tree.
fn kafka_relative<'p>(view: &TreeView<'_>, path: &'p str) -> Option<(&'p str, &'p str)> {
    let first = |rel: &str| {
        rel[1..]
            .split('/')
            .next()
            .is_some_and(|s| KAFKA_TOP.contains(&s))
    };
    if path.len() > 1 && first(path) {
        return Some(("", path));
    }
    // The longest stored, non-implicit prefix followed by a Kafka top-level name.
    let mut best = None;
    for (i, _) in path.match_indices('/').skip(1) {
        let (chroot, rel) = path.split_at(i);
        if first(rel)
            && view
                .image
                .zk
                .znodes
                .get(chroot)
                .is_some_and(|z| !z.implicit)
        {
            best = Some((chroot, rel));
        }
    }
    best
}

/// The first segment of `path` relative to its chroot when it is in the Kafka tree
/// (`brokers` for `/brokers/ids/1`), else `None`.
pub fn kafka_top_segment<'p>(view: &TreeView<'_>, path: &'p str) -> Option<&'p str> {
    let (_, rel) = kafka_relative(view, path)?;
    rel[1..].split('/').next()
}

/// The Kafka-administration meaning of a write to `path`, if any.
pub fn kafka_path(view: &TreeView<'_>, path: &str) -> Option<KafkaPath> {
    let (_, rel) = kafka_relative(view, path)?;
    let segs: Vec<&str> = rel[1..].split('/').collect();
    match segs.as_slice() {
        ["brokers", "topics", t] => Some(KafkaPath::TopicAssignment((*t).to_owned())),
        ["config", "topics", t] => Some(KafkaPath::TopicConfig((*t).to_owned())),
        ["admin", "delete_topics", t] => Some(KafkaPath::DeleteMarker((*t).to_owned())),
        ["config", "brokers", e] => Some(KafkaPath::BrokerConfig((*e).to_owned())),
        ["config", "users", u] => Some(KafkaPath::UserConfig((*u).to_owned())),
        ["config", "clients", c] => Some(KafkaPath::QuotaConfig(QuotaEntity {
            user: None,
            client_id: Some(QuotaName::from_zk(c)?),
        })),
        ["config", "users", u, "clients", c] => Some(KafkaPath::QuotaConfig(QuotaEntity {
            user: Some(QuotaName::from_zk(u)?),
            client_id: Some(QuotaName::from_zk(c)?),
        })),
        ["kafka-acl", t, name] => acl_pattern(t, PatternType::Literal, name).map(KafkaPath::Acl),
        ["kafka-acl-extended", "prefixed", t, name] => {
            acl_pattern(t, PatternType::Prefixed, name).map(KafkaPath::Acl)
        }
        _ => None,
    }
}

/// The resource pattern of an ACL znode (the type as Kafka's store names it, exactly).
fn acl_pattern(type_name: &str, pattern: PatternType, name: &str) -> Option<ResourcePattern> {
    let resource_type = ResourceType::ALL
        .into_iter()
        .find(|t| t.zk_name() == type_name)?;
    Some(ResourcePattern {
        resource_type,
        pattern,
        name: name.to_owned(),
    })
}

/// The resource types listed under `/kafka-acl` and `/kafka-acl-extended/prefixed`: the five
/// Kafka 2.2.1 knows (its `kafka-acls.sh` refuses any other name it finds there), and any
/// other type that has ACLs of that pattern type.
fn acl_types(view: &TreeView<'_>, pattern: PatternType) -> Vec<String> {
    ResourceType::ALL
        .into_iter()
        .filter(|t| *t != ResourceType::User || view.image.acls.names(pattern, *t).is_some())
        .map(|t| t.zk_name().to_owned())
        .collect()
}

/// Kafka's ACL znode data: `{"version":1,"acls":[{"principal":"User:alice",
/// "permissionType":"Allow","operation":"Read","host":"*"},...]}`.
pub fn acls_json(acls: &ResourceAcls) -> String {
    let entries: Vec<String> = acls
        .entries
        .iter()
        .map(|e| {
            format!(
                "{{\"principal\":{},\"permissionType\":{},\"operation\":{},\"host\":{}}}",
                json_str(&e.principal),
                json_str(e.permission.zk_name()),
                json_str(e.operation.zk_name()),
                json_str(&e.host)
            )
        })
        .collect();
    format!("{{\"version\":1,\"acls\":[{}]}}", entries.join(","))
}

/// Parses Kafka's ACL znode data (as `AclEntry.fromBytes`: names case-insensitive).
///
/// # Errors
/// What is wrong with the data.
pub fn parse_acls_json(data: &[u8]) -> Result<BTreeSet<AclEntry>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("version").and_then(serde_json::Value::as_i64) != Some(1) {
        return Err("expected \"version\":1".into());
    }
    let acls = v
        .get("acls")
        .and_then(serde_json::Value::as_array)
        .ok_or("expected an \"acls\" array")?;
    let field = |a: &serde_json::Value, k: &str| -> Result<String, String> {
        a.get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("an ACL without \"{k}\""))
    };
    let mut out = BTreeSet::new();
    for a in acls {
        let principal = field(a, "principal")?;
        let host = field(a, "host")?;
        let op = field(a, "operation")?;
        let perm = field(a, "permissionType")?;
        let entry = AclEntry {
            operation: Operation::from_zk_name(&op).ok_or_else(|| format!("operation {op:?}"))?,
            permission: Permission::from_zk_name(&perm)
                .ok_or_else(|| format!("permissionType {perm:?}"))?,
            principal,
            host,
        };
        if !entry.principal.contains(':') {
            return Err(format!("principal {:?} is not Type:name", entry.principal));
        }
        if entry.principal.len() > ACL_STRING_MAX_BYTES || entry.host.len() > ACL_STRING_MAX_BYTES {
            return Err("principal or host too long".into());
        }
        out.insert(entry);
    }
    Ok(out)
}

/// The committed offsets a read of `path` needs, if it is under `/consumers`.
pub fn consumers_query(view: &TreeView<'_>, path: &str) -> Option<ConsumersQuery> {
    let (_, rel) = kafka_relative(view, path)?;
    let segs: Vec<&str> = rel[1..].split('/').collect();
    match segs.as_slice() {
        ["consumers"] => Some(ConsumersQuery::Groups),
        ["consumers", g, ..] => Some(ConsumersQuery::Group((*g).to_owned())),
        _ => None,
    }
}

/// Whether `path` is in the read-only `/consumers/<g>/offsets` subtree (writes there are
/// refused whether or not the offset exists, without asking the group coordinators).
pub fn consumers_owned(view: &TreeView<'_>, path: &str) -> bool {
    consumers_query(view, path).is_some() && broker_owned(view, path)
}

/// Whether `path` is owned by the projection (so a generic write there must be refused): every
/// projected node, and the children of projected directories whose members come from metadata.
/// A child of `/brokers/topics` is a topic: the one write allowed there, a plain create of a
/// missing topic, is mapped to a topic creation before this check.
pub fn broker_owned(view: &TreeView<'_>, path: &str) -> bool {
    let Some((_, rel)) = kafka_relative(view, path) else {
        return false;
    };
    let segs: Vec<&str> = rel[1..].split('/').collect();
    matches!(
        segs.as_slice(),
        ["brokers", "ids", _, ..]
            | ["brokers", "topics", _, ..]
            | ["cluster", _, ..]
            | ["controller", ..]
            | ["controller_epoch", ..]
            | ["consumers", _, "offsets", ..]
            | ["kafka-acl", _, _, _, ..]
            | ["kafka-acl-extended", "prefixed", _, _, _, ..]
    )
}

fn zxid(index: u64) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn projected(
    data: Option<String>,
    czxid: i64,
    mzxid: i64,
    version: i32,
    children: Vec<String>,
) -> NodeView {
    let data = data.map(String::into_bytes);
    NodeView {
        stat: ZnodeStat {
            czxid,
            mzxid: mzxid.max(czxid),
            ctime_ms: 0,
            mtime_ms: 0,
            version,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            data_length: data.as_ref().map_or(0, |d| len_i32(d.len())),
            num_children: len_i32(children.len()),
            pzxid: czxid,
        },
        data,
        children,
        projected: true,
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn int_list(ids: &[NodeId]) -> String {
    let v: Vec<String> = ids.iter().map(|n| n.0.to_string()).collect();
    format!("[{}]", v.join(","))
}

/// `{"version":1,"partitions":{"0":[1,2],...}}`
pub fn assignment_json(t: &TopicImage) -> String {
    let parts: Vec<String> = t
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| format!("\"{i}\":{}", int_list(&p.replicas)))
        .collect();
    format!("{{\"version\":1,\"partitions\":{{{}}}}}", parts.join(","))
}

/// `{"version":1,"config":{"k":"v",...}}`
pub fn config_json(t: &TopicImage) -> String {
    configs_json(&t.configs)
}

/// `{"version":1,"config":{"k":"v",...}}` for any config map.
pub fn configs_json(configs: &std::collections::BTreeMap<String, String>) -> String {
    let kv: Vec<String> = configs
        .iter()
        .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
        .collect();
    format!("{{\"version\":1,\"config\":{{{}}}}}", kv.join(","))
}

fn broker_json(view: &TreeView<'_>, id: NodeId) -> Option<String> {
    let b = view.image.brokers.get(&id).filter(|b| !b.fenced)?;
    let protocols: Vec<String> = b
        .endpoints
        .iter()
        .map(|e| {
            let protocol = e.security_protocol.as_deref().unwrap_or("PLAINTEXT");
            format!("{}:{}", json_str(&e.listener), json_str(protocol))
        })
        .collect();
    let endpoints: Vec<String> = b
        .endpoints
        .iter()
        .map(|e| json_str(&format!("{}://{}:{}", e.listener, e.host, e.port)))
        .collect();
    let first = b.endpoints.first();
    let mut out = format!(
        "{{\"listener_security_protocol_map\":{{{}}},\"endpoints\":[{}]",
        protocols.join(","),
        endpoints.join(",")
    );
    if let Some(rack) = &b.rack {
        let _ = write!(out, ",\"rack\":{}", json_str(rack));
    }
    let _ = write!(
        out,
        ",\"jmx_port\":-1,\"host\":{},\"timestamp\":\"{}\",\"port\":{},\"version\":4}}",
        first.map_or_else(|| "null".into(), |e| json_str(&e.host)),
        b.registered_index,
        first.map_or(-1, |e| i32::from(e.port))
    );
    Some(out)
}

fn state_json(leader: Option<NodeId>, leader_epoch: i32, isr: &[NodeId]) -> String {
    format!(
        "{{\"controller_epoch\":1,\"leader\":{},\"version\":1,\"leader_epoch\":{leader_epoch},\"isr\":{}}}",
        leader.map_or(-1, |l| l.0),
        int_list(isr)
    )
}

/// Children of a projected directory that come from metadata (not from the store).
fn projected_children(view: &TreeView<'_>, rel: &str, at_root: bool) -> Vec<String> {
    let img = view.image;
    match rel {
        "/" => {
            let mut c: Vec<String> = KAFKA_TOP.iter().map(|s| (*s).to_owned()).collect();
            if at_root {
                c.push("zookeeper".into());
            }
            c.retain(|n| n != "controller" || view.controller_id.is_some());
            c
        }
        "/brokers" => vec!["ids".into(), "seqid".into(), "topics".into()],
        "/brokers/ids" => img
            .live_brokers()
            .map(|b| b.node_id.0.to_string())
            .collect(),
        "/brokers/topics" | "/config/topics" => img.topics.keys().map(|t| t.to_string()).collect(),
        "/config/brokers" => img.broker_configs.keys().cloned().collect(),
        "/config/users" => {
            let mut all: BTreeSet<String> = img.users.keys().cloned().collect();
            all.extend(
                img.client_quotas
                    .keys()
                    .filter_map(|e| e.user.as_ref().map(QuotaName::zk_name)),
            );
            all.into_iter().collect()
        }
        "/config/clients" => img
            .client_quotas
            .keys()
            .filter(|e| e.user.is_none())
            .filter_map(|e| e.client_id.as_ref().map(QuotaName::zk_name))
            .collect(),
        "/kafka-acl" => acl_types(view, PatternType::Literal),
        "/kafka-acl-extended" => vec!["prefixed".into()],
        "/kafka-acl-extended/prefixed" => acl_types(view, PatternType::Prefixed),
        r if r.starts_with("/kafka-acl/") => acl_names(view, PatternType::Literal, &r[11..]),
        r if r.starts_with("/kafka-acl-extended/prefixed/") => {
            acl_names(view, PatternType::Prefixed, &r[29..])
        }
        "/config" => ["brokers", "changes", "clients", "topics", "users"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        "/admin" => vec!["delete_topics".into()],
        "/consumers" => view
            .consumers
            .map(|c| c.groups.iter().cloned().collect())
            .unwrap_or_default(),
        "/cluster" => img.cluster_id.iter().map(|_| "id".to_owned()).collect(),
        "/zookeeper" => vec!["quota".into()],
        _ => Vec::new(),
    }
}

/// The names with ACLs of one pattern type and resource type (by the store's type name).
fn acl_names(view: &TreeView<'_>, pattern: PatternType, type_name: &str) -> Vec<String> {
    ResourceType::ALL
        .into_iter()
        .find(|t| t.zk_name() == type_name)
        .and_then(|t| view.image.acls.names(pattern, t))
        .map(|names| names.keys().cloned().collect())
        .unwrap_or_default()
}

/// The znode of one resource pattern's ACLs.
fn acl_node(view: &TreeView<'_>, p: &ResourcePattern) -> Option<NodeView> {
    let a = view.image.acls.get(p)?;
    Some(projected(
        Some(acls_json(a)),
        zxid(a.created_index),
        zxid(a.modified_index),
        a.version,
        Vec::new(),
    ))
}

/// A quota entity's values as Kafka's config map (`"1024"`).
fn quota_configs(view: &TreeView<'_>, e: &QuotaEntity) -> Option<BTreeMap<String, String>> {
    let q = view.image.client_quotas.get(e)?;
    Some(
        q.iter()
            .map(|(k, v)| (k.clone(), crate::metadata::quotas::format_value(v.0)))
            .collect(),
    )
}

/// `/config/clients/<c>` or `/config/users/<u>/clients/<c>`: the entity's quotas.
fn quota_node(view: &TreeView<'_>, e: &QuotaEntity) -> Option<NodeView> {
    let configs = quota_configs(view, e)?;
    Some(projected(Some(configs_json(&configs)), 0, 0, 0, Vec::new()))
}

/// The client ids with quotas under user `u` (as named in the path).
fn user_clients(view: &TreeView<'_>, u: &str) -> Vec<String> {
    let Some(user) = QuotaName::from_zk(u) else {
        return Vec::new();
    };
    view.image
        .client_quotas
        .keys()
        .filter(|e| e.user.as_ref() == Some(&user))
        .filter_map(|e| e.client_id.as_ref().map(QuotaName::zk_name))
        .collect()
}

/// `/config/users/<u>`: the user's SCRAM credentials, other configs and own quotas; there
/// if any of them is, or a quota of the user with a client id.
fn user_node(view: &TreeView<'_>, u: &str) -> Option<NodeView> {
    let stored = view.image.users.get(u);
    let own = QuotaName::from_zk(u).and_then(|n| {
        quota_configs(
            view,
            &QuotaEntity {
                user: Some(n),
                client_id: None,
            },
        )
    });
    let clients = user_clients(view, u);
    if stored.is_none() && own.is_none() && clients.is_empty() {
        return None;
    }
    let mut configs = stored.map(|s| s.zk_configs()).unwrap_or_default();
    configs.extend(own.unwrap_or_default());
    let (c, m) = stored.map_or((0, 0), |s| (s.created_index, s.modified_index));
    let kids = if clients.is_empty() {
        Vec::new()
    } else {
        vec!["clients".to_owned()]
    };
    Some(projected(
        Some(configs_json(&configs)),
        zxid(c),
        zxid(m),
        i32::from(m != c),
        kids,
    ))
}

/// A projected node that is not a skeleton directory, by path relative to the chroot.
fn projected_leaf(view: &TreeView<'_>, rel: &str) -> Option<NodeView> {
    let img = view.image;
    let segs: Vec<&str> = rel[1..].split('/').collect();
    match segs.as_slice() {
        ["brokers", "ids", id] => {
            let id = NodeId(id.parse().ok()?);
            let data = broker_json(view, id)?;
            let idx = zxid(img.brokers.get(&id)?.registered_index);
            let mut n = projected(Some(data), idx, idx, 0, Vec::new());
            n.stat.ephemeral_owner = BROKER_SESSION_BASE + i64::from(id.0);
            Some(n)
        }
        ["brokers", "topics", t] => {
            let t = img.topic(t)?;
            Some(projected(
                Some(assignment_json(t)),
                zxid(t.created_index),
                zxid(t.created_index),
                0,
                vec!["partitions".into()],
            ))
        }
        ["brokers", "topics", t, "partitions"] => {
            let t = img.topic(t)?;
            let kids = (0..t.partitions.len()).map(|i| i.to_string()).collect();
            Some(projected(
                None,
                zxid(t.created_index),
                zxid(t.created_index),
                0,
                kids,
            ))
        }
        ["brokers", "topics", t, "partitions", p] => {
            let t = img.topic(t)?;
            let _ = t.partitions.get(p.parse::<usize>().ok()?)?;
            Some(projected(
                None,
                zxid(t.created_index),
                zxid(t.created_index),
                0,
                vec!["state".into()],
            ))
        }
        ["brokers", "topics", t, "partitions", p, "state"] => {
            let t = img.topic(t)?;
            let part = t.partitions.get(p.parse::<usize>().ok()?)?;
            let data = state_json(part.leader, part.leader_epoch, &part.isr);
            Some(projected(
                Some(data),
                zxid(t.created_index),
                zxid(t.modified_index),
                part.partition_epoch,
                Vec::new(),
            ))
        }
        ["config", "topics", t] => {
            let t = img.topic(t)?;
            let version = i32::from(t.configs_modified_index != t.created_index);
            Some(projected(
                Some(config_json(t)),
                zxid(t.created_index),
                zxid(t.configs_modified_index),
                version,
                Vec::new(),
            ))
        }
        ["config", "brokers", e] => {
            let b = img.broker_configs.get(*e)?;
            let version = i32::from(b.modified_index != b.created_index);
            Some(projected(
                Some(configs_json(&b.configs)),
                zxid(b.created_index),
                zxid(b.modified_index),
                version,
                Vec::new(),
            ))
        }
        ["config", "users", u] => user_node(view, u),
        ["config", "users", u, "clients"] => {
            let _ = user_node(view, u)?;
            Some(projected(None, 0, 0, 0, user_clients(view, u)))
        }
        ["config", "users", u, "clients", c] => quota_node(
            view,
            &QuotaEntity {
                user: Some(QuotaName::from_zk(u)?),
                client_id: Some(QuotaName::from_zk(c)?),
            },
        ),
        ["config", "clients", c] => quota_node(
            view,
            &QuotaEntity {
                user: None,
                client_id: Some(QuotaName::from_zk(c)?),
            },
        ),
        ["controller"] => {
            let id = view.controller_id?;
            let mut n = projected(
                Some(format!(
                    "{{\"version\":1,\"brokerid\":{},\"timestamp\":\"0\"}}",
                    id.0
                )),
                1,
                1,
                0,
                Vec::new(),
            );
            n.stat.ephemeral_owner = BROKER_SESSION_BASE + i64::from(id.0);
            Some(n)
        }
        ["controller_epoch"] => Some(projected(Some("1".into()), 1, 1, 1, Vec::new())),
        ["kafka-acl", t, name] => acl_node(view, &acl_pattern(t, PatternType::Literal, name)?),
        ["kafka-acl-extended", "prefixed", t, name] => {
            acl_node(view, &acl_pattern(t, PatternType::Prefixed, name)?)
        }
        // `User` exists only while it has ACLs (Kafka 2.2.1's tool refuses the name).
        ["kafka-acl", "User"] | ["kafka-acl-extended", "prefixed", "User"] => {
            let pattern = if segs[0] == "kafka-acl" {
                PatternType::Literal
            } else {
                PatternType::Prefixed
            };
            let names = acl_names(view, pattern, "User");
            (!names.is_empty()).then(|| projected(None, 0, 0, 0, names))
        }
        ["cluster", "id"] => {
            let id = img.cluster_id.as_ref()?;
            Some(projected(
                Some(format!("{{\"version\":\"1\",\"id\":{}}}", json_str(id))),
                1,
                1,
                0,
                Vec::new(),
            ))
        }
        _ => None,
    }
}

/// `/consumers/<g>` (stored or not) and its `offsets` subtree, from the fetched offsets.
fn consumers_node(view: &TreeView<'_>, path: &str, rel: &str) -> Option<NodeView> {
    let (group, offsets) = view.consumers?.group.as_ref()?;
    if offsets.is_empty() {
        return None;
    }
    let segs: Vec<&str> = rel[1..].split('/').collect();
    let dir = |children: Vec<String>| projected(None, 0, 0, 0, children);
    match segs.as_slice() {
        ["consumers", g] if g == group => {
            let mut node = match view.image.zk.znodes.get(path).filter(|z| !z.implicit) {
                Some(z) => {
                    let mut n = dir(z.children.iter().cloned().collect());
                    n.stat = z.stat();
                    n.data = z.data.clone();
                    n.projected = false;
                    n
                }
                None => dir(Vec::new()),
            };
            let mut kids: BTreeSet<String> = node.children.drain(..).collect();
            kids.insert("offsets".into());
            node.children = kids.into_iter().collect();
            node.stat.num_children = len_i32(node.children.len());
            Some(node)
        }
        ["consumers", g, "offsets"] if g == group => Some(dir(offsets.keys().cloned().collect())),
        ["consumers", g, "offsets", t] if g == group => {
            let parts = offsets.get(*t)?;
            Some(dir(parts.keys().map(ToString::to_string).collect()))
        }
        ["consumers", g, "offsets", t, p] if g == group => {
            // Canonical partition numbers only: "01" is not partition 1's node.
            let n: i32 = p.parse().ok().filter(|n: &i32| n.to_string() == *p)?;
            let c = offsets.get(*t)?.get(&n)?;
            let mut node = projected(Some(c.offset.to_string()), 0, 0, 0, Vec::new());
            // Burrow's ZooKeeper consumer module takes the commit time from the mtime.
            node.stat.ctime_ms = c.timestamp_ms;
            node.stat.mtime_ms = c.timestamp_ms;
            Some(node)
        }
        _ => None,
    }
}

/// Merges a stored node's children and stat into a projected directory.
fn directory(view: &TreeView<'_>, path: &str, rel: &str, at_root: bool) -> NodeView {
    let mut kids: BTreeSet<String> = projected_children(view, rel, at_root).into_iter().collect();
    let mut node = projected(None, 0, 0, 0, Vec::new());
    if let Some(z) = view.image.zk.znodes.get(path) {
        kids.extend(z.children.iter().cloned());
        node.stat = z.stat();
        node.data = z.data.clone();
    }
    node.children = kids.into_iter().collect();
    node.stat.num_children = len_i32(node.children.len());
    node
}

/// The znode at `path`, or `None` if it does not exist.
pub fn lookup(view: &TreeView<'_>, path: &str) -> Option<NodeView> {
    if path == "/" {
        return Some(directory(view, "/", "/", true));
    }
    if path == "/zookeeper" || path == "/zookeeper/quota" {
        return Some(directory(view, path, path, true));
    }
    if let Some((chroot, rel)) = kafka_relative(view, path) {
        if let Some(n) = consumers_node(view, path, rel) {
            return Some(n);
        }
        if let Some(n) = projected_leaf(view, rel) {
            return Some(n);
        }
        if ZK_SKELETON.contains(&rel) {
            return Some(directory(view, path, rel, chroot.is_empty()));
        }
    }
    let z = view.image.zk.znodes.get(path)?;
    let mut children: Vec<String> = z.children.iter().cloned().collect();
    // A chroot that has been written through lists the Kafka tree like the root does.
    if z.implicit
        || z.children.iter().any(|c| {
            view.image
                .zk
                .znodes
                .get(&format!("{path}/{c}"))
                .is_some_and(|k| k.implicit)
        })
    {
        let mut all: BTreeSet<String> = children.into_iter().collect();
        all.extend(projected_children(view, "/", false));
        children = all.into_iter().collect();
    }
    let mut stat = z.stat();
    stat.num_children = len_i32(children.len());
    Some(NodeView {
        data: z.data.clone(),
        stat,
        children,
        projected: false,
    })
}

/// Whether `path` is stored (a generic znode, or a pending Kafka node not yet projected).
pub fn is_stored(view: &TreeView<'_>, path: &str) -> bool {
    view.image.zk.znodes.get(path).is_some_and(|z| !z.implicit)
        && lookup(view, path).is_some_and(|n| !n.projected)
}

/// The last segment of a path (re-exported for ops).
pub fn last_segment(path: &str) -> &str {
    name_of(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{apply, BrokerRegistration, MetadataCommand, MetadataRequest, ZkOp};
    use crate::types::{TopicId, TopicName};

    fn image() -> MetadataImage {
        let cmds = vec![
            MetadataCommand::InitCluster {
                cluster_id: "abc".into(),
            },
            MetadataCommand::RegisterBroker {
                registration: BrokerRegistration::for_test(NodeId(1), "127.0.0.1"),
            },
            MetadataCommand::CreateTopic {
                name: TopicName::new("t").expect("valid"),
                topic_id: TopicId::random(),
                assignment: vec![vec![NodeId(1)], vec![NodeId(1)]],
                configs: [("retention.ms".to_owned(), "1000".to_owned())]
                    .into_iter()
                    .collect(),
            },
            MetadataCommand::ZkMulti {
                session_id: 0,
                now_ms: 5,
                data_bytes_max: None,
                ops: vec![ZkOp::Create {
                    path: "/kafka".into(),
                    data: None,
                    ephemeral: false,
                    sequential: false,
                    acl: crate::metadata::open_acls(),
                }],
            },
        ];
        let mut img = MetadataImage::default();
        for (i, c) in cmds.into_iter().enumerate() {
            img = apply(&img, &MetadataRequest::new(c), i as u64 + 1).0;
        }
        img
    }

    fn data(view: &TreeView<'_>, path: &str) -> String {
        String::from_utf8(lookup(view, path).and_then(|n| n.data).unwrap_or_default())
            .expect("utf8")
    }

    #[test]
    fn kafka_projection_formats() {
        let img = image();
        let view = TreeView {
            image: &img,
            controller_id: Some(NodeId(1)),
            consumers: None,
        };
        assert_eq!(
            data(&view, "/brokers/topics/t"),
            r#"{"version":1,"partitions":{"0":[1],"1":[1]}}"#
        );
        assert_eq!(
            data(&view, "/config/topics/t"),
            r#"{"version":1,"config":{"retention.ms":"1000"}}"#
        );
        assert_eq!(
            data(&view, "/brokers/topics/t/partitions/1/state"),
            r#"{"controller_epoch":1,"leader":1,"version":1,"leader_epoch":0,"isr":[1]}"#
        );
        assert_eq!(data(&view, "/cluster/id"), r#"{"version":"1","id":"abc"}"#);
        assert!(data(&view, "/brokers/ids/1").starts_with(r#"{"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},"endpoints":["PLAINTEXT://127.0.0.1:9092"]"#));
        assert_eq!(
            lookup(&view, "/brokers/ids").map(|n| n.children),
            Some(vec!["1".to_owned()])
        );
        assert_eq!(
            lookup(&view, "/brokers/topics/t/partitions").map(|n| n.children),
            Some(vec!["0".to_owned(), "1".to_owned()])
        );
        assert!(lookup(&view, "/brokers/topics/u").is_none());
        assert!(lookup(&view, "/admin/delete_topics").is_some_and(|n| n.children.is_empty()));
        // Under a chroot that exists as a stored znode.
        assert_eq!(
            data(&view, "/kafka/brokers/topics/t"),
            data(&view, "/brokers/topics/t")
        );
        assert!(lookup(&view, "/nope/brokers/topics/t").is_none());
        assert_eq!(
            kafka_path(&view, "/kafka/config/topics/x"),
            Some(KafkaPath::TopicConfig("x".into()))
        );
        assert_eq!(
            kafka_path(&view, "/admin/delete_topics/t"),
            Some(KafkaPath::DeleteMarker("t".into()))
        );
        assert!(broker_owned(&view, "/brokers/ids/7"));
        assert!(!broker_owned(&view, "/config/changes/x"));
        let root = lookup(&view, "/").expect("root");
        assert!(
            root.children.contains(&"kafka".to_owned())
                && root.children.contains(&"zookeeper".to_owned())
        );
    }

    #[test]
    fn consumers_projection_from_fetched_offsets() {
        use crate::broker::{Committed, ConsumerOffsets, GroupOffsets};
        let mut img = image();
        // A stored registration of an old ZooKeeper consumer in the same group.
        img = apply(
            &img,
            &MetadataRequest::new(MetadataCommand::ZkMulti {
                session_id: 0,
                now_ms: 5,
                data_bytes_max: None,
                ops: ["/consumers/g", "/consumers/g/ids"]
                    .into_iter()
                    .map(|p| ZkOp::Create {
                        path: p.into(),
                        data: None,
                        ephemeral: false,
                        sequential: false,
                        acl: crate::metadata::open_acls(),
                    })
                    .collect(),
            }),
            10,
        )
        .0;
        let c = |offset| Committed {
            offset,
            timestamp_ms: 1_700_000_000_000,
        };
        let offsets: GroupOffsets = [
            (
                "t".to_owned(),
                [(0, c(5)), (1, c(70))].into_iter().collect(),
            ),
            ("u".to_owned(), [(10, c(0))].into_iter().collect()),
        ]
        .into_iter()
        .collect();
        let fetched = ConsumerOffsets {
            groups: ["g".to_owned(), "h".to_owned()].into_iter().collect(),
            group: Some(("g".to_owned(), offsets)),
        };
        let plain = TreeView {
            image: &img,
            controller_id: Some(NodeId(1)),
            consumers: None,
        };
        let view = plain.with_consumers(Some(&fetched));
        let kids = |v: &TreeView<'_>, p: &str| lookup(v, p).map(|n| n.children);
        // Without fetched offsets the projection is absent; stored nodes stay.
        assert!(lookup(&plain, "/consumers/g/offsets").is_none());
        assert_eq!(kids(&plain, "/consumers/g"), Some(vec!["ids".to_owned()]));
        assert_eq!(
            kids(&view, "/consumers"),
            Some(vec!["g".to_owned(), "h".to_owned()])
        );
        assert_eq!(
            kids(&view, "/consumers/g"),
            Some(vec!["ids".to_owned(), "offsets".to_owned()])
        );
        assert_eq!(
            kids(&view, "/consumers/g/offsets"),
            Some(vec!["t".to_owned(), "u".to_owned()])
        );
        assert_eq!(
            kids(&view, "/consumers/g/offsets/t"),
            Some(vec!["0".to_owned(), "1".to_owned()])
        );
        assert_eq!(data(&view, "/consumers/g/offsets/t/1"), "70");
        assert_eq!(data(&view, "/consumers/g/offsets/u/10"), "0");
        let leaf = lookup(&view, "/consumers/g/offsets/t/1").expect("leaf");
        assert!(leaf.projected && leaf.children.is_empty());
        assert_eq!(leaf.stat.mtime_ms, 1_700_000_000_000);
        assert_eq!(leaf.stat.data_length, 2);
        for missing in [
            "/consumers/g/offsets/t/2",
            "/consumers/g/offsets/t/01",
            "/consumers/g/offsets/t/x",
            "/consumers/g/offsets/v",
            "/consumers/g/offsets/t/1/x",
            // Offsets of another group than the one fetched are not shown.
            "/consumers/h/offsets",
        ] {
            assert!(lookup(&view, missing).is_none(), "{missing}");
        }
        // Under a chroot too.
        assert_eq!(data(&view, "/kafka/consumers/g/offsets/t/0"), "5");
        // Which reads need offsets, and which writes are refused.
        assert_eq!(
            consumers_query(&plain, "/consumers"),
            Some(ConsumersQuery::Groups)
        );
        assert_eq!(
            consumers_query(&plain, "/kafka/consumers/g/offsets"),
            Some(ConsumersQuery::Group("g".into()))
        );
        assert_eq!(consumers_query(&plain, "/brokers/ids"), None);
        assert_eq!(consumers_query(&plain, "/consumersx"), None);
        assert!(broker_owned(&plain, "/consumers/g/offsets/t/0"));
        assert!(broker_owned(&plain, "/consumers/g/offsets"));
        assert!(!broker_owned(&plain, "/consumers/g/ids/c1"));
    }
}
