//! ACLs in the metadata Raft: CreateAcls / DescribeAcls / DeleteAcls and the facade's
//! per-pattern writes (`/kafka-acl/<Type>/<name>`, written by Kafka 2.x's `kafka-acls.sh
//! --authorizer-properties zookeeper.connect=...`), and the authorizer's decision over the
//! current image. The model and the decision are `security::acl`'s; this module only carries
//! them to the state machine and back. Protocol-free.

use super::{Broker, BrokerError};
use crate::metadata::{AclExpect, ApplyOutcome, MetadataCommand, ZkOpResult};
use crate::security::acl::{
    self, AclBinding, AclEntry, AclFilter, AuthorizerConfig, Operation, ResourcePattern,
    ResourceType,
};
use std::collections::BTreeSet;
use std::sync::Arc;

impl Broker {
    /// The authorizer, when `authorizer.class.name` configures one.
    pub fn authorizer(&self) -> Option<&Arc<AuthorizerConfig>> {
        self.config().authorizer.as_ref()
    }

    /// Whether `principal` (`User:alice`) from `host` may do `op` on the resource: always
    /// without an authorizer.
    pub fn authorize(
        &self,
        principal: &str,
        host: &str,
        op: Operation,
        rt: ResourceType,
        name: &str,
    ) -> bool {
        match self.authorizer() {
            None => true,
            Some(cfg) => acl::authorize(
                &self.metadata_view().acls,
                cfg,
                principal,
                host,
                op,
                rt,
                name,
            ),
        }
    }

    /// CreateAcls: stores the (already validated) bindings in one command.
    ///
    /// # Errors
    /// `InvalidRequest` past `acls.max`; the proposal's errors.
    pub async fn create_acls(&self, bindings: Vec<AclBinding>) -> Result<(), BrokerError> {
        if bindings.is_empty() {
            return Ok(());
        }
        self.propose(MetadataCommand::CreateAcls {
            bindings,
            max_total: self.config().limits.acls_max,
        })
        .await
        .map(|_| ())
    }

    /// DescribeAcls: every binding the filter matches.
    pub fn describe_acls(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.metadata_view()
            .acls
            .bindings()
            .filter(|b| filter.matches(b))
            .collect()
    }

    /// DeleteAcls: removes what the filters match, atomically; the bindings removed per filter.
    ///
    /// # Errors
    /// The proposal's errors.
    pub async fn delete_acls(
        &self,
        filters: Vec<AclFilter>,
    ) -> Result<Vec<Vec<AclBinding>>, BrokerError> {
        if filters.is_empty() {
            return Ok(Vec::new());
        }
        match self
            .propose(MetadataCommand::DeleteAcls { filters })
            .await?
        {
            ApplyOutcome::AclsDeleted(r) => Ok(r),
            other => Err(BrokerError::Internal(format!(
                "unexpected outcome {other:?}"
            ))),
        }
    }

    /// The facade's write of one ACL znode: replaces the pattern's entries (none deletes it)
    /// if its version is as `expect` says; the ZooKeeper result (an error, or `Deleted` for
    /// success).
    ///
    /// # Errors
    /// The proposal's errors.
    pub async fn zk_set_resource_acls(
        &self,
        pattern: ResourcePattern,
        entries: BTreeSet<AclEntry>,
        expect: AclExpect,
    ) -> Result<ZkOpResult, BrokerError> {
        match self
            .propose(MetadataCommand::SetResourceAcls {
                pattern,
                entries,
                expect,
                max_total: self.config().limits.acls_max,
            })
            .await?
        {
            ApplyOutcome::Zk(mut r) if r.len() == 1 => Ok(r.remove(0)),
            other => Err(BrokerError::Internal(format!(
                "unexpected outcome {other:?}"
            ))),
        }
    }
}
