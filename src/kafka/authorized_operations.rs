//! Authorized operations (KIP-430): the bitfield that Metadata (topics, and the cluster in
//! v8–v10), DescribeCluster and DescribeGroups return when the request asks for it.
//!
//! Bit `n` is set when the operation whose `AclOperation` code is `n` is allowed. raftka has
//! no authorizer yet (issue 15), and Kafka without an authorizer reports every operation that
//! applies to the resource type (`AuthHelper.authorizedOperations` over
//! `AclEntry.supportedOperations`). When not asked for, the field is `i32::MIN` ("omitted").

/// The value when the request did not ask for authorized operations.
pub(crate) const OMITTED: i32 = i32::MIN;

/// Kafka's `AclOperation` codes (org.apache.kafka.common.acl.AclOperation).
const READ: u8 = 3;
const WRITE: u8 = 4;
const CREATE: u8 = 5;
const DELETE: u8 = 6;
const ALTER: u8 = 7;
const DESCRIBE: u8 = 8;
const CLUSTER_ACTION: u8 = 9;
const DESCRIBE_CONFIGS: u8 = 10;
const ALTER_CONFIGS: u8 = 11;
const IDEMPOTENT_WRITE: u8 = 12;

/// The resource types whose operations a response can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Topic,
    Group,
    Cluster,
}

impl Resource {
    /// The operations that apply to this resource type (Kafka's `AclEntry.supportedOperations`).
    fn supported(self) -> &'static [u8] {
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
}

/// The field's value for `resource`: every operation that applies to it when `requested`
/// (no authorizer), else [`OMITTED`].
pub(crate) fn authorized_operations(resource: Resource, requested: bool) -> i32 {
    if !requested {
        return OMITTED;
    }
    resource
        .supported()
        .iter()
        .fold(0i32, |bits, &op| bits | (1i32 << op))
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
