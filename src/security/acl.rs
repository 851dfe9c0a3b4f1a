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
//! Status: the model only (issue 15's ACL step); nothing stores or enforces ACLs yet.

use serde::{Deserialize, Serialize};

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

    fn applies_to(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == "User:*")
            && (self.host == host || self.host == "*")
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
pub fn authorize<'a>(
    acls: impl IntoIterator<Item = &'a AclBinding>,
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
    let matching: Vec<&AclBinding> = acls
        .into_iter()
        .filter(|a| a.resource_type == resource_type && a.covers(resource_name))
        .collect();
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

/// The pattern part of a DescribeAcls / DeleteAcls filter (`None` fields match anything).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
        authorize(acls, cfg, who, "10.0.0.1", op, rt, name)
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
            &[h],
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
}
