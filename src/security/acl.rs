//! Kafka's ACL model and the authorizer's decision (`AclAuthorizer` / `StandardAuthorizer`),
//! without storage or I/O: resource types, pattern types, operations and permissions with their
//! wire codes, ACL bindings, the filters of DescribeAcls / DeleteAcls, and `authorize`.
//!
//! The decision, as Kafka makes it: a super user may do everything; otherwise the ACLs that
//! match the resource (LITERAL with its name or `*`, PREFIXED with a prefix of its name) are
//! taken; if there are none, `allow.everyone.if.no.acl.found` decides; a DENY that matches the
//! principal (or `User:*`), the host (or `*`) and the operation (or ALL) refuses; else an ALLOW
//! that matches them, where ALLOW of READ, WRITE, DELETE or ALTER implies DESCRIBE and ALLOW of
//! ALTER_CONFIGS implies DESCRIBE_CONFIGS, grants.
//!
//! [`AclStore`] keeps the ACLs as Kafka's ZooKeeper store does, one entry set per resource
//! pattern with a version that moves on every change (the facade shows it as the znode's
//! version); the metadata image holds one, the state machine is its one writer.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The resource types ACLs name (the protocol's `resource_type` byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
    DelegationToken,
    User,
}

impl ResourceType {
    pub const ALL: [ResourceType; 6] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
        ResourceType::DelegationToken,
        ResourceType::User,
    ];

    /// The wire code (0 UNKNOWN and 1 ANY are not resource types).
    pub fn code(self) -> i8 {
        match self {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
            ResourceType::DelegationToken => 6,
            ResourceType::User => 7,
        }
    }

    pub fn from_code(c: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == c)
    }

    /// Parses the ZooKeeper store's name (Kafka reads them case-insensitively).
    pub fn from_zk_name(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.zk_name().eq_ignore_ascii_case(s))
    }

    /// The name Kafka's ZooKeeper ACL store uses (`/kafka-acl/Topic/...`).
    pub fn zk_name(self) -> &'static str {
        match self {
            ResourceType::Topic => "Topic",
            ResourceType::Group => "Group",
            ResourceType::Cluster => "Cluster",
            ResourceType::TransactionalId => "TransactionalId",
            ResourceType::DelegationToken => "DelegationToken",
            ResourceType::User => "User",
        }
    }
}

/// The one cluster resource's name.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// How an ACL's resource name matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatternType {
    Literal,
    Prefixed,
}

impl PatternType {
    pub fn code(self) -> i8 {
        match self {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    pub fn from_code(c: i8) -> Option<Self> {
        match c {
            3 => Some(PatternType::Literal),
            4 => Some(PatternType::Prefixed),
            _ => None,
        }
    }
}

/// Operations (the protocol's `operation` byte; 0 UNKNOWN and 1 ANY are filters only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Operation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens,
}

impl Operation {
    pub const EVERY: [Operation; 13] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
        Operation::CreateTokens,
        Operation::DescribeTokens,
    ];

    pub fn code(self) -> i8 {
        match self {
            Operation::All => 2,
            Operation::Read => 3,
            Operation::Write => 4,
            Operation::Create => 5,
            Operation::Delete => 6,
            Operation::Alter => 7,
            Operation::Describe => 8,
            Operation::ClusterAction => 9,
            Operation::DescribeConfigs => 10,
            Operation::AlterConfigs => 11,
            Operation::IdempotentWrite => 12,
            Operation::CreateTokens => 13,
            Operation::DescribeTokens => 14,
        }
    }

    pub fn from_code(c: i8) -> Option<Self> {
        Self::EVERY.into_iter().find(|o| o.code() == c)
    }

    /// The name in Kafka's ZooKeeper ACL JSON (`"operation":"Read"`).
    pub fn zk_name(self) -> &'static str {
        match self {
            Operation::All => "All",
            Operation::Read => "Read",
            Operation::Write => "Write",
            Operation::Create => "Create",
            Operation::Delete => "Delete",
            Operation::Alter => "Alter",
            Operation::Describe => "Describe",
            Operation::ClusterAction => "ClusterAction",
            Operation::DescribeConfigs => "DescribeConfigs",
            Operation::AlterConfigs => "AlterConfigs",
            Operation::IdempotentWrite => "IdempotentWrite",
            Operation::CreateTokens => "CreateTokens",
            Operation::DescribeTokens => "DescribeTokens",
        }
    }

    /// Parses a ZooKeeper ACL JSON name (Kafka reads them case-insensitively).
    pub fn from_zk_name(s: &str) -> Option<Self> {
        Self::EVERY
            .into_iter()
            .find(|o| o.zk_name().eq_ignore_ascii_case(s))
    }

    /// The operations whose ALLOW grants `self` (Kafka's implied operations).
    fn granted_by(self) -> &'static [Operation] {
        match self {
            Operation::Describe => &[
                Operation::Describe,
                Operation::Read,
                Operation::Write,
                Operation::Delete,
                Operation::Alter,
            ],
            Operation::DescribeConfigs => &[Operation::DescribeConfigs, Operation::AlterConfigs],
            Operation::Read => &[Operation::Read],
            Operation::Write => &[Operation::Write],
            Operation::Create => &[Operation::Create],
            Operation::Delete => &[Operation::Delete],
            Operation::Alter => &[Operation::Alter],
            Operation::ClusterAction => &[Operation::ClusterAction],
            Operation::AlterConfigs => &[Operation::AlterConfigs],
            Operation::IdempotentWrite => &[Operation::IdempotentWrite],
            Operation::CreateTokens => &[Operation::CreateTokens],
            Operation::DescribeTokens => &[Operation::DescribeTokens],
            Operation::All => &[Operation::All],
        }
    }
}

/// ALLOW or DENY (wire codes 3 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    Deny,
    Allow,
}

impl Permission {
    pub fn code(self) -> i8 {
        match self {
            Permission::Deny => 2,
            Permission::Allow => 3,
        }
    }

    pub fn from_code(c: i8) -> Option<Self> {
        match c {
            2 => Some(Permission::Deny),
            3 => Some(Permission::Allow),
            _ => None,
        }
    }

    /// The name in Kafka's ZooKeeper ACL JSON (`"permissionType":"Allow"`).
    pub fn zk_name(self) -> &'static str {
        match self {
            Permission::Deny => "Deny",
            Permission::Allow => "Allow",
        }
    }

    pub fn from_zk_name(s: &str) -> Option<Self> {
        [Permission::Deny, Permission::Allow]
            .into_iter()
            .find(|p| p.zk_name().eq_ignore_ascii_case(s))
    }
}

/// One ACL: a resource pattern and an entry (principal, host, operation, permission).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern: PatternType,
    /// `User:alice`, or `User:*` for every principal.
    pub principal: String,
    /// An IP address, or `*`.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclBinding {
    /// Whether this ACL's pattern covers the resource `name` of its type.
    fn covers(&self, name: &str) -> bool {
        match self.pattern {
            PatternType::Literal => self.resource_name == name || self.resource_name == "*",
            PatternType::Prefixed => name.starts_with(&self.resource_name),
        }
    }

    /// The binding's resource pattern and entry.
    pub fn split(&self) -> (ResourcePattern, AclEntry) {
        (
            ResourcePattern {
                resource_type: self.resource_type,
                pattern: self.pattern,
                name: self.resource_name.clone(),
            },
            AclEntry {
                principal: self.principal.clone(),
                host: self.host.clone(),
                operation: self.operation,
                permission: self.permission,
            },
        )
    }

    pub fn join(p: &ResourcePattern, e: &AclEntry) -> Self {
        Self {
            resource_type: p.resource_type,
            resource_name: p.name.clone(),
            pattern: p.pattern,
            principal: e.principal.clone(),
            host: e.host.clone(),
            operation: e.operation,
            permission: e.permission,
        }
    }

    /// Kafka's checks of a new ACL (`AclControlManager.validateNewAcl` and the request
    /// handler's): the text is the INVALID_REQUEST message.
    ///
    /// # Errors
    /// Why the binding cannot be stored.
    pub fn validate(&self) -> Result<(), String> {
        if self.resource_name.is_empty() {
            return Err("Resource name should not be empty".into());
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        if !self.principal.contains(':') {
            return Err(format!(
                "Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)",
                self.principal
            ));
        }
        for (what, s) in [
            ("resource name", &self.resource_name),
            ("principal", &self.principal),
            ("host", &self.host),
        ] {
            if s.len() > ACL_STRING_MAX_BYTES {
                return Err(format!(
                    "The {what} is longer than {ACL_STRING_MAX_BYTES} bytes"
                ));
            }
        }
        Ok(())
    }
}

/// The longest resource name, principal or host an ACL may carry (raftka's bound; Kafka's
/// is the request size).
pub const ACL_STRING_MAX_BYTES: usize = 4096;

/// A resource pattern: what one ZooKeeper ACL znode names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourcePattern {
    pub resource_type: ResourceType,
    pub pattern: PatternType,
    pub name: String,
}

/// The part of an ACL below its resource pattern.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclEntry {
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclEntry {
    /// Whether the entry names `principal` (or every principal) and `host` (or every host).
    /// Hosts compare as addresses where both parse, so `::1` matches `0:0:0:0:0:0:0:1`.
    fn applies_to(&self, principal: &str, host: &str) -> bool {
        let host_ok = self.host == "*"
            || self.host == host
            || matches!(
                (self.host.parse::<std::net::IpAddr>(), host.parse::<std::net::IpAddr>()),
                (Ok(a), Ok(b)) if a == b
            );
        (self.principal == principal || self.principal == "User:*") && host_ok
    }
}

/// The ACLs of one resource pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceAcls {
    pub entries: BTreeSet<AclEntry>,
    /// 0 when created, +1 on every change (the facade's znode version).
    pub version: i32,
    pub created_index: u64,
    pub modified_index: u64,
}

/// Every ACL, by pattern type, resource type and resource name (Kafka's ZooKeeper layout:
/// `/kafka-acl/<Type>/<name>`, `/kafka-acl-extended/prefixed/<Type>/<name>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclStore {
    resources: BTreeMap<PatternType, BTreeMap<ResourceType, BTreeMap<String, Arc<ResourceAcls>>>>,
    /// The number of bindings (entries over all patterns).
    #[serde(default)]
    count: usize,
}

impl AclStore {
    /// The number of ACL bindings.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The ACLs of one resource pattern.
    pub fn get(&self, p: &ResourcePattern) -> Option<&Arc<ResourceAcls>> {
        self.resources
            .get(&p.pattern)?
            .get(&p.resource_type)?
            .get(&p.name)
    }

    /// The resource patterns of one pattern type and resource type, by name.
    pub fn names(
        &self,
        pattern: PatternType,
        rt: ResourceType,
    ) -> Option<&BTreeMap<String, Arc<ResourceAcls>>> {
        self.resources.get(&pattern)?.get(&rt)
    }

    /// Every binding, in (pattern type, resource type, name, entry) order.
    pub fn bindings(&self) -> impl Iterator<Item = AclBinding> + '_ {
        self.resources.iter().flat_map(|(pt, types)| {
            types.iter().flat_map(move |(rt, names)| {
                names.iter().flat_map(move |(name, acls)| {
                    let p = ResourcePattern {
                        resource_type: *rt,
                        pattern: *pt,
                        name: name.clone(),
                    };
                    acls.entries.iter().map(move |e| AclBinding::join(&p, e))
                })
            })
        })
    }

    /// The entries of every pattern that covers the resource `name` of type `rt`: the
    /// literal name, the literal `*`, and each prefixed pattern that is a prefix of `name`.
    pub fn matching(&self, rt: ResourceType, name: &str) -> Vec<&AclEntry> {
        let mut out = Vec::new();
        if let Some(lit) = self.names(PatternType::Literal, rt) {
            for n in [name, "*"] {
                if let Some(a) = lit.get(n) {
                    out.extend(a.entries.iter());
                }
                if name == "*" {
                    break;
                }
            }
        }
        if let Some(pre) = self.names(PatternType::Prefixed, rt) {
            for (i, _) in name.char_indices().skip(1).chain([(name.len(), ' ')]) {
                if let Some(a) = pre.get(&name[..i]) {
                    out.extend(a.entries.iter());
                }
            }
        }
        out
    }

    /// Replaces the entries of `p` (none removes the pattern) at Raft `index`; whether that
    /// changed anything.
    pub fn replace(
        &mut self,
        p: &ResourcePattern,
        entries: BTreeSet<AclEntry>,
        index: u64,
    ) -> bool {
        let names = self
            .resources
            .entry(p.pattern)
            .or_default()
            .entry(p.resource_type)
            .or_default();
        let old = names.get(&p.name).map(|a| a.entries.len());
        let changed = match names.get(&p.name) {
            Some(a) => a.entries != entries,
            None => !entries.is_empty(),
        };
        if !changed {
            return false;
        }
        self.count = self.count - old.unwrap_or(0) + entries.len();
        if entries.is_empty() {
            names.remove(&p.name);
        } else {
            let (version, created_index) = names.get(&p.name).map_or((0, index), |a| {
                (a.version.saturating_add(1), a.created_index)
            });
            names.insert(
                p.name.clone(),
                Arc::new(ResourceAcls {
                    entries,
                    version,
                    created_index,
                    modified_index: index,
                }),
            );
        }
        self.prune();
        true
    }

    /// Adds one binding; whether it was new.
    pub fn add(&mut self, b: &AclBinding, index: u64) -> bool {
        let (p, e) = b.split();
        let mut entries = self.get(&p).map(|a| a.entries.clone()).unwrap_or_default();
        entries.insert(e) && self.replace(&p, entries, index)
    }

    /// Removes one binding; whether it was there.
    pub fn remove(&mut self, b: &AclBinding, index: u64) -> bool {
        let (p, e) = b.split();
        let Some(mut entries) = self.get(&p).map(|a| a.entries.clone()) else {
            return false;
        };
        entries.remove(&e) && self.replace(&p, entries, index)
    }

    fn prune(&mut self) {
        for types in self.resources.values_mut() {
            types.retain(|_, names| !names.is_empty());
        }
        self.resources.retain(|_, types| !types.is_empty());
    }

    /// Asserts the binding count matches the entries and no empty set is kept.
    pub fn check_invariants(&self) {
        let mut n = 0;
        for types in self.resources.values() {
            assert!(!types.is_empty(), "empty pattern-type map kept");
            for names in types.values() {
                assert!(!names.is_empty(), "empty resource-type map kept");
                for (name, a) in names {
                    assert!(
                        !a.entries.is_empty(),
                        "ACL resource {name} kept without entries"
                    );
                    n += a.entries.len();
                }
            }
        }
        assert_eq!(n, self.count, "ACL count out of sync");
    }
}

/// What the authorizer is configured with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// `super.users`: principals allowed everything (`User:admin;User:ops`).
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found` (false).
    pub allow_if_no_acl: bool,
}

/// Kafka's decision for `principal` (e.g. `User:alice`) from `host` doing `op` on a resource.
pub fn authorize(
    store: &AclStore,
    config: &AuthorizerConfig,
    principal: &str,
    host: &str,
    op: Operation,
    resource_type: ResourceType,
    resource_name: &str,
) -> bool {
    if config.super_users.iter().any(|s| s == principal) {
        return true;
    }
    let matching = store.matching(resource_type, resource_name);
    if matching.is_empty() {
        return config.allow_if_no_acl;
    }
    let denied = matching.iter().any(|a| {
        a.permission == Permission::Deny
            && a.applies_to(principal, host)
            && (a.operation == op || a.operation == Operation::All)
    });
    if denied {
        return false;
    }
    let granted = op.granted_by();
    matching.iter().any(|a| {
        a.permission == Permission::Allow
            && a.applies_to(principal, host)
            && (a.operation == Operation::All || granted.contains(&a.operation))
    })
}

/// Whether `principal` may do `op` on some resource of type `rt` (Kafka's
/// `Authorizer.authorizeByResourceType`, KIP-679: InitProducerId without a transactional id
/// is allowed to a principal that may WRITE some topic). As Kafka: allowed if a resource no
/// ACL names would be (super users, `allow.everyone.if.no.acl.found`); denied by a literal
/// DENY of `*`; allowed by a literal ALLOW of `*`, or by an ALLOW pattern that no DENY
/// dominates (the same literal name, or a prefixed DENY that is a prefix of it). Only entries
/// for exactly `op` or ALL count.
pub fn authorize_any(
    store: &AclStore,
    config: &AuthorizerConfig,
    principal: &str,
    host: &str,
    op: Operation,
    rt: ResourceType,
) -> bool {
    if authorize(store, config, principal, host, op, rt, "hardcode") {
        return true;
    }
    let mut allows: Vec<(PatternType, &str)> = Vec::new();
    let mut deny_prefixes: BTreeSet<&str> = BTreeSet::new();
    let mut deny_literals: BTreeSet<&str> = BTreeSet::new();
    let mut wildcard_allow = false;
    for pt in [PatternType::Literal, PatternType::Prefixed] {
        let Some(names) = store.names(pt, rt) else {
            continue;
        };
        for (name, acls) in names {
            for e in &acls.entries {
                if !e.applies_to(principal, host)
                    || (e.operation != op && e.operation != Operation::All)
                {
                    continue;
                }
                match (e.permission, pt) {
                    (Permission::Deny, PatternType::Literal) if name == "*" => return false,
                    (Permission::Deny, PatternType::Literal) => {
                        deny_literals.insert(name.as_str());
                    }
                    (Permission::Deny, PatternType::Prefixed) => {
                        deny_prefixes.insert(name.as_str());
                    }
                    (Permission::Allow, PatternType::Literal) if name == "*" => {
                        wildcard_allow = true;
                    }
                    (Permission::Allow, _) => allows.push((pt, name.as_str())),
                }
            }
        }
    }
    if wildcard_allow {
        return true;
    }
    allows.into_iter().any(|(pt, name)| {
        if pt == PatternType::Literal && deny_literals.contains(name) {
            return false;
        }
        !name
            .char_indices()
            .map(|(i, c)| &name[..i + c.len_utf8()])
            .any(|prefix| deny_prefixes.contains(prefix))
    })
}

/// The pattern part of a DescribeAcls / DeleteAcls filter (`None` fields match anything).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AclFilter {
    /// `None` = ANY.
    pub resource_type: Option<ResourceType>,
    /// `None` = any name.
    pub resource_name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    /// `None` = ANY.
    pub operation: Option<Operation>,
    /// `None` = ANY.
    pub permission: Option<Permission>,
}

/// The pattern type of a filter (wire codes: 1 ANY, 2 MATCH, 3 LITERAL, 4 PREFIXED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PatternFilter {
    /// Any pattern type; with a name, only ACLs with exactly that name.
    Any,
    /// ACLs that would apply to a resource of that name: the literal name, `*`, and every
    /// prefix of it.
    Match,
    #[default]
    Literal,
    Prefixed,
}

impl PatternFilter {
    pub fn from_code(c: i8) -> Option<Self> {
        match c {
            1 => Some(PatternFilter::Any),
            2 => Some(PatternFilter::Match),
            3 => Some(PatternFilter::Literal),
            4 => Some(PatternFilter::Prefixed),
            _ => None,
        }
    }
}

impl AclFilter {
    /// Whether `b` is selected (Kafka's `AclBindingFilter.matches`).
    pub fn matches(&self, b: &AclBinding) -> bool {
        if self.resource_type.is_some_and(|t| t != b.resource_type) {
            return false;
        }
        let name_ok = match (self.pattern, &self.resource_name) {
            (PatternFilter::Any, None) | (PatternFilter::Match, None) => true,
            (PatternFilter::Any, Some(n)) => b.resource_name == *n,
            (PatternFilter::Match, Some(n)) => b.covers(n),
            (PatternFilter::Literal, n) => {
                b.pattern == PatternType::Literal
                    && n.as_ref().is_none_or(|n| b.resource_name == *n)
            }
            (PatternFilter::Prefixed, n) => {
                b.pattern == PatternType::Prefixed
                    && n.as_ref().is_none_or(|n| b.resource_name == *n)
            }
        };
        name_ok
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && self.operation.is_none_or(|o| o == b.operation)
            && self.permission.is_none_or(|p| p == b.permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        rt: ResourceType,
        name: &str,
        pattern: PatternType,
        who: &str,
        op: Operation,
        perm: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern,
            principal: who.into(),
            host: "*".into(),
            operation: op,
            permission: perm,
        }
    }

    fn can(
        acls: &[AclBinding],
        cfg: &AuthorizerConfig,
        who: &str,
        op: Operation,
        rt: ResourceType,
        name: &str,
    ) -> bool {
        authorize(&store(acls), cfg, who, "10.0.0.1", op, rt, name)
    }

    fn store(acls: &[AclBinding]) -> AclStore {
        let mut s = AclStore::default();
        for (i, a) in acls.iter().enumerate() {
            s.add(a, i as u64 + 1);
        }
        s.check_invariants();
        s
    }

    #[test]
    fn kafkas_decision_rules() {
        use Operation::*;
        use PatternType::*;
        use Permission::*;
        use ResourceType::*;
        let cfg = AuthorizerConfig::default();
        let acls = vec![
            acl(Topic, "orders", Literal, "User:alice", Read, Allow),
            acl(Topic, "logs-", Prefixed, "User:bob", Write, Allow),
            acl(Topic, "*", Literal, "User:carol", Describe, Allow),
            acl(Topic, "logs-secret", Literal, "User:bob", Write, Deny),
            acl(Group, "g", Literal, "User:*", All, Allow),
            acl(
                Cluster,
                CLUSTER_NAME,
                Literal,
                "User:ops",
                AlterConfigs,
                Allow,
            ),
        ];
        // Literal, and READ implies DESCRIBE (not WRITE).
        assert!(can(&acls, &cfg, "User:alice", Read, Topic, "orders"));
        assert!(can(&acls, &cfg, "User:alice", Describe, Topic, "orders"));
        assert!(!can(&acls, &cfg, "User:alice", Write, Topic, "orders"));
        // Prefixed, and DENY wins over ALLOW.
        assert!(can(&acls, &cfg, "User:bob", Write, Topic, "logs-app"));
        assert!(!can(&acls, &cfg, "User:bob", Write, Topic, "logs-secret"));
        assert!(
            can(&acls, &cfg, "User:bob", Describe, Topic, "logs-secret"),
            "DENY WRITE does not deny DESCRIBE"
        );
        // The wildcard name, and the wildcard principal with ALL.
        assert!(can(&acls, &cfg, "User:carol", Describe, Topic, "anything"));
        assert!(!can(&acls, &cfg, "User:carol", Read, Topic, "anything"));
        assert!(can(&acls, &cfg, "User:zed", Read, Group, "g"));
        // ALTER_CONFIGS implies DESCRIBE_CONFIGS.
        assert!(can(
            &acls,
            &cfg,
            "User:ops",
            DescribeConfigs,
            Cluster,
            CLUSTER_NAME
        ));
        assert!(!can(&acls, &cfg, "User:ops", Alter, Cluster, CLUSTER_NAME));
        // No ACL on the resource: allow.everyone.if.no.acl.found decides.
        assert!(!can(&acls, &cfg, "User:alice", Read, Group, "other"));
        let open = AuthorizerConfig {
            allow_if_no_acl: true,
            ..AuthorizerConfig::default()
        };
        assert!(can(&acls, &open, "User:alice", Read, Group, "other"));
        assert!(
            !can(&acls, &open, "User:zed", Read, Topic, "orders"),
            "ACLs exist for it"
        );
        // Super users may do everything.
        let sup = AuthorizerConfig {
            super_users: vec!["User:root".into()],
            ..AuthorizerConfig::default()
        };
        assert!(can(&acls, &sup, "User:root", Write, Topic, "logs-secret"));
        // Hosts.
        let mut h = acl(Topic, "h", Literal, "User:alice", Read, Allow);
        h.host = "10.0.0.2".into();
        assert!(!can(&[h.clone()], &cfg, "User:alice", Read, Topic, "h"));
        assert!(authorize(
            &store(&[h]),
            &cfg,
            "User:alice",
            "10.0.0.2",
            Read,
            Topic,
            "h"
        ));
    }

    #[test]
    fn filters_as_describe_and_delete_acls_use_them() {
        use PatternType::*;
        let lit = acl(
            ResourceType::Topic,
            "logs-app",
            Literal,
            "User:a",
            Operation::Read,
            Permission::Allow,
        );
        let pre = acl(
            ResourceType::Topic,
            "logs-",
            Prefixed,
            "User:a",
            Operation::Read,
            Permission::Allow,
        );
        let star = acl(
            ResourceType::Topic,
            "*",
            Literal,
            "User:a",
            Operation::Read,
            Permission::Allow,
        );
        let f = |pattern, name: Option<&str>| AclFilter {
            resource_type: Some(ResourceType::Topic),
            resource_name: name.map(Into::into),
            pattern,
            ..AclFilter::default()
        };
        let sel = |flt: &AclFilter| {
            [&lit, &pre, &star]
                .iter()
                .filter(|b| flt.matches(b))
                .count()
        };
        assert_eq!(sel(&f(PatternFilter::Match, Some("logs-app"))), 3);
        assert_eq!(sel(&f(PatternFilter::Any, Some("logs-app"))), 1);
        assert_eq!(sel(&f(PatternFilter::Any, None)), 3);
        assert_eq!(sel(&f(PatternFilter::Literal, None)), 2);
        assert_eq!(sel(&f(PatternFilter::Prefixed, Some("logs-"))), 1);
        let by_op = AclFilter {
            operation: Some(Operation::Write),
            pattern: PatternFilter::Any,
            ..AclFilter::default()
        };
        assert_eq!(sel(&by_op), 0);
        assert_eq!(Operation::from_code(8), Some(Operation::Describe));
        assert_eq!(ResourceType::from_code(4), Some(ResourceType::Cluster));
        assert_eq!(ResourceType::from_code(1), None);
        assert_eq!(PatternFilter::from_code(2), Some(PatternFilter::Match));
    }

    #[test]
    fn the_store_keeps_kafkas_layout_and_versions() {
        use PatternType::*;
        let a = acl(
            ResourceType::Topic,
            "t",
            Literal,
            "User:a",
            Operation::Read,
            Permission::Allow,
        );
        let b = acl(
            ResourceType::Topic,
            "t",
            Literal,
            "User:b",
            Operation::Write,
            Permission::Allow,
        );
        let p = acl(
            ResourceType::Topic,
            "t",
            Prefixed,
            "User:a",
            Operation::Read,
            Permission::Allow,
        );
        let mut s = AclStore::default();
        assert!(s.add(&a, 5));
        assert!(!s.add(&a, 6), "adding twice changes nothing");
        assert!(s.add(&b, 7));
        assert!(s.add(&p, 8));
        s.check_invariants();
        assert_eq!(s.len(), 3);
        let (pat, _) = a.split();
        let r = s.get(&pat).expect("stored");
        assert_eq!(
            (
                r.version,
                r.created_index,
                r.modified_index,
                r.entries.len()
            ),
            (1, 5, 7, 2)
        );
        assert_eq!(s.bindings().count(), 3);
        assert_eq!(s.matching(ResourceType::Topic, "t").len(), 3);
        assert_eq!(
            s.matching(ResourceType::Topic, "tx").len(),
            1,
            "the prefixed one"
        );
        assert_eq!(s.matching(ResourceType::Group, "t").len(), 0);
        assert!(s.remove(&a, 9));
        assert!(!s.remove(&a, 10));
        assert!(s.remove(&b, 11));
        assert!(s.get(&pat).is_none(), "an emptied pattern is removed");
        assert!(s.remove(&p, 12));
        assert!(s.is_empty());
        s.check_invariants();
        assert_eq!(s, AclStore::default(), "nothing left behind");
        // Multi-byte names: prefixes are taken at character boundaries.
        let u = acl(
            ResourceType::Topic,
            "é",
            Prefixed,
            "User:a",
            Operation::Read,
            Permission::Allow,
        );
        s.add(&u, 13);
        assert_eq!(s.matching(ResourceType::Topic, "éa").len(), 1);
        assert_eq!(s.matching(ResourceType::Topic, "e").len(), 0);
    }

    #[test]
    fn authorize_by_resource_type_as_kip_679() {
        use Operation::*;
        use PatternType::*;
        use Permission::*;
        use ResourceType::*;
        let cfg = AuthorizerConfig::default();
        let any = |acls: &[AclBinding]| {
            authorize_any(&store(acls), &cfg, "User:a", "1.2.3.4", Write, Topic)
        };
        assert!(!any(&[]));
        assert!(any(&[acl(Topic, "t", Literal, "User:a", Write, Allow)]));
        assert!(!any(&[acl(Topic, "t", Literal, "User:a", Read, Allow)]));
        assert!(!any(&[
            acl(Topic, "t", Literal, "User:a", Write, Allow),
            acl(Topic, "t", Literal, "User:a", Write, Deny),
        ]));
        assert!(!any(&[
            acl(Topic, "tx", Prefixed, "User:a", Write, Allow),
            acl(Topic, "t", Prefixed, "User:*", All, Deny),
        ]));
        assert!(any(&[
            acl(Topic, "tx", Prefixed, "User:a", Write, Allow),
            acl(Topic, "u", Prefixed, "User:*", All, Deny),
        ]));
        assert!(!any(&[
            acl(Topic, "t", Literal, "User:a", Write, Allow),
            acl(Topic, "*", Literal, "User:a", Write, Deny),
        ]));
        let open = AuthorizerConfig {
            allow_if_no_acl: true,
            ..AuthorizerConfig::default()
        };
        assert!(authorize_any(
            &store(&[]),
            &open,
            "User:a",
            "h",
            Write,
            Topic
        ));
    }

    #[test]
    fn validation_as_kafka() {
        let mut b = acl(
            ResourceType::Cluster,
            "kafka-cluster",
            PatternType::Literal,
            "User:a",
            Operation::Alter,
            Permission::Allow,
        );
        assert_eq!(b.validate(), Ok(()));
        b.resource_name = "other".into();
        assert!(b.validate().is_err_and(|e| e.contains("kafka-cluster")));
        b.resource_name = String::new();
        assert!(b.validate().is_err());
        let mut t = acl(
            ResourceType::Topic,
            "t",
            PatternType::Literal,
            "alice",
            Operation::Read,
            Permission::Allow,
        );
        assert!(t.validate().is_err_and(|e| e.contains("no colon")));
        t.principal = "User:alice".into();
        t.host = "h".repeat(ACL_STRING_MAX_BYTES + 1);
        assert!(t.validate().is_err());
        assert_eq!(
            Operation::from_zk_name("idempotentwrite"),
            Some(Operation::IdempotentWrite)
        );
        assert_eq!(Permission::from_zk_name("Deny"), Some(Permission::Deny));
        assert_eq!(
            ResourceType::from_zk_name("TransactionalId"),
            Some(ResourceType::TransactionalId)
        );
    }

    #[test]
    fn ipv6_hosts_compare_as_addresses() {
        let mut h = acl(
            ResourceType::Topic,
            "t",
            PatternType::Literal,
            "User:a",
            Operation::Read,
            Permission::Allow,
        );
        h.host = "0:0:0:0:0:0:0:1".into();
        let cfg = AuthorizerConfig::default();
        assert!(authorize(
            &store(&[h]),
            &cfg,
            "User:a",
            "::1",
            Operation::Read,
            ResourceType::Topic,
            "t"
        ));
    }
}
