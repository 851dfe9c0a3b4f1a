//! Authorization of one request: who the connection is (principal and address), the
//! authorizer's configuration and the ACLs of the metadata image, taken once per request
//! ([`Authz`]). Without an authorizer every check passes and no image is read. Handlers check
//! exactly where Kafka's `KafkaApis` does and answer with Kafka's error codes.
//!
//! Also the authorized operations of KIP-430: the bitfield that Metadata (topics, and the
//! cluster in v8–v10), DescribeCluster and DescribeGroups return when the request asks for it.
//! Bit `n` is set when the operation whose `AclOperation` code is `n` is allowed; without an
//! authorizer every operation that applies to the resource type is (Kafka's
//! `AuthHelper.authorizedOperations` over `AclEntry.supportedOperations`). When not asked
//! for, the field is `i32::MIN` ("omitted").

use super::context::RequestContext;
use crate::metadata::MetadataImage;
use crate::security::acl::{self, AuthorizerConfig, Operation, ResourceType, CLUSTER_NAME};
use std::sync::Arc;

/// The value when the request did not ask for authorized operations.
pub(crate) const OMITTED: i32 = i32::MIN;

use Operation::{
    Alter as ALTER, AlterConfigs as ALTER_CONFIGS, ClusterAction as CLUSTER_ACTION,
    Create as CREATE, Delete as DELETE, Describe as DESCRIBE, DescribeConfigs as DESCRIBE_CONFIGS,
    IdempotentWrite as IDEMPOTENT_WRITE, Read as READ, Write as WRITE,
};

/// The resource types whose operations a response can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Topic,
    Group,
    Cluster,
}

impl Resource {
    /// The operations that apply to this resource type (Kafka's `AclEntry.supportedOperations`).
    fn supported(self) -> &'static [Operation] {
        match self {
            Resource::Topic => &[
                READ,
                WRITE,
                CREATE,
                DESCRIBE,
                DELETE,
                ALTER,
                DESCRIBE_CONFIGS,
                ALTER_CONFIGS,
            ],
            Resource::Group => &[READ, DESCRIBE, DELETE],
            Resource::Cluster => &[
                CREATE,
                CLUSTER_ACTION,
                DESCRIBE_CONFIGS,
                ALTER_CONFIGS,
                IDEMPOTENT_WRITE,
                ALTER,
                DESCRIBE,
            ],
        }
    }

    fn acl_type(self) -> ResourceType {
        match self {
            Resource::Topic => ResourceType::Topic,
            Resource::Group => ResourceType::Group,
            Resource::Cluster => ResourceType::Cluster,
        }
    }
}

/// The field's value for `resource` without an authorizer: every operation that applies to
/// it when `requested`, else [`OMITTED`].
#[cfg(test)]
fn authorized_operations(resource: Resource, requested: bool) -> i32 {
    if !requested {
        return OMITTED;
    }
    bits(resource.supported().iter().copied())
}

fn bits(ops: impl Iterator<Item = Operation>) -> i32 {
    ops.fold(0i32, |bits, op| bits | (1i32 << op.code()))
}

/// One request's authorization checks.
pub(crate) struct Authz {
    /// `None` without an authorizer.
    acls: Option<(Arc<AuthorizerConfig>, Arc<MetadataImage>)>,
    principal: String,
    host: String,
}

impl Authz {
    pub(crate) fn new(ctx: &RequestContext) -> Self {
        match ctx.broker.authorizer() {
            None => Self {
                acls: None,
                principal: String::new(),
                host: String::new(),
            },
            Some(cfg) => Self {
                acls: Some((cfg.clone(), ctx.broker.metadata_view())),
                principal: ctx.principal.to_string(),
                host: ctx
                    .client_host
                    .strip_prefix('/')
                    .unwrap_or(&ctx.client_host)
                    .to_owned(),
            },
        }
    }

    /// Whether an authorizer is configured (the ACL APIs answer SECURITY_DISABLED otherwise).
    pub(crate) fn enabled(&self) -> bool {
        self.acls.is_some()
    }

    pub(crate) fn allows(&self, op: Operation, rt: ResourceType, name: &str) -> bool {
        match &self.acls {
            None => true,
            Some((cfg, img)) => {
                acl::authorize(&img.acls, cfg, &self.principal, &self.host, op, rt, name)
            }
        }
    }

    pub(crate) fn topic(&self, op: Operation, name: &str) -> bool {
        self.allows(op, ResourceType::Topic, name)
    }

    pub(crate) fn group(&self, op: Operation, name: &str) -> bool {
        self.allows(op, ResourceType::Group, name)
    }

    pub(crate) fn cluster(&self, op: Operation) -> bool {
        self.allows(op, ResourceType::Cluster, CLUSTER_NAME)
    }

    pub(crate) fn transactional_id(&self, op: Operation, id: &str) -> bool {
        self.allows(op, ResourceType::TransactionalId, id)
    }

    /// Whether `op` is allowed on some resource of type `rt` (KIP-679).
    pub(crate) fn any(&self, op: Operation, rt: ResourceType) -> bool {
        match &self.acls {
            None => true,
            Some((cfg, img)) => {
                acl::authorize_any(&img.acls, cfg, &self.principal, &self.host, op, rt)
            }
        }
    }

    /// The KIP-430 field for the resource `name` of type `resource`: the operations allowed
    /// on it when `requested`, else [`OMITTED`].
    pub(crate) fn operations(&self, resource: Resource, name: &str, requested: bool) -> i32 {
        if !requested {
            return OMITTED;
        }
        bits(
            resource
                .supported()
                .iter()
                .copied()
                .filter(|&op| self.allows(op, resource.acl_type(), name)),
        )
    }

    /// Kafka's cluster field (Metadata v8–v10, DescribeCluster): the cluster's operations if
    /// DESCRIBE on it is allowed, else 0.
    pub(crate) fn cluster_operations(&self, requested: bool) -> i32 {
        if !requested {
            return OMITTED;
        }
        if !self.cluster(DESCRIBE) {
            return 0;
        }
        self.operations(Resource::Cluster, CLUSTER_NAME, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitfields_match_kafka_without_an_authorizer() {
        // Utils.to32BitField(AclEntry.supportedOperations(...)) as Kafka 3.9 returns them.
        assert_eq!(authorized_operations(Resource::Topic, true), 3576);
        assert_eq!(authorized_operations(Resource::Group, true), 328);
        assert_eq!(authorized_operations(Resource::Cluster, true), 8096);
        for r in [Resource::Topic, Resource::Group, Resource::Cluster] {
            assert_eq!(authorized_operations(r, false), i32::MIN);
        }
    }
}
