//! CreateAcls (key 30), v0–v3: stores ACL bindings in the metadata Raft. Needs ALTER on the
//! cluster; SECURITY_DISABLED without an authorizer (Kafka's `AclApis.handleCreateAcls`).
//! Each creation is validated on its own (INVALID_REQUEST with Kafka's text); the valid ones
//! are stored in one command, so they all land or none does.

use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::{AclBinding, Operation, PatternType, Permission, ResourceType};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;

/// The versions of CreateAcls this handler serves.
pub(crate) const VERSIONS: Versions = Versions::new(0, 3);

impl RequestShape for CreateAclsRequest {
    fn shape(&self) -> Shape {
        Shape {
            entries: self.creations.len(),
            partitions: 0,
        }
    }
}

/// Answers one CreateAcls request.
pub(crate) async fn handle(ctx: RequestContext, req: CreateAclsRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

fn result(e: Option<&BrokerError>) -> AclCreationResult {
    let mut r = AclCreationResult::default();
    if let Some(e) = e {
        r.error_code = code(e);
        r.error_message = Some(StrBytes::from_string(e.to_string()));
    }
    r
}

/// The binding a creation asks for, or Kafka's reason to refuse it.
fn binding(c: &AclCreation) -> Result<AclBinding, String> {
    let b = AclBinding {
        resource_type: ResourceType::from_code(c.resource_type)
            .ok_or_else(|| format!("Invalid resourceType {}", c.resource_type))?,
        resource_name: c.resource_name.to_string(),
        pattern: PatternType::from_code(c.resource_pattern_type)
            .ok_or_else(|| format!("Invalid patternType {}", c.resource_pattern_type))?,
        principal: c.principal.to_string(),
        host: c.host.to_string(),
        operation: Operation::from_code(c.operation)
            .ok_or_else(|| format!("Invalid operation {}", c.operation))?,
        permission: Permission::from_code(c.permission_type)
            .ok_or_else(|| format!("Invalid permissionType {}", c.permission_type))?,
    };
    b.validate()?;
    Ok(b)
}

pub(crate) async fn respond(ctx: &RequestContext, req: CreateAclsRequest) -> CreateAclsResponse {
    let authz = Authz::new(ctx);
    let mut r = CreateAclsResponse::default();
    let refuse_all = if !authz.enabled() {
        Some(BrokerError::SecurityDisabled)
    } else if !authz.cluster(Operation::Alter) {
        Some(BrokerError::ClusterAuthorizationFailed)
    } else {
        None
    };
    if let Some(e) = refuse_all {
        r.results = req.creations.iter().map(|_| result(Some(&e))).collect();
        return r;
    }
    let parsed: Vec<Result<AclBinding, BrokerError>> = req
        .creations
        .iter()
        .map(|c| binding(c).map_err(BrokerError::InvalidRequest))
        .collect();
    let valid: Vec<AclBinding> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
    let stored = ctx.broker.create_acls(valid).await;
    r.results = parsed
        .iter()
        .map(|p| match (p, &stored) {
            (Err(e), _) | (Ok(_), Err(e)) => result(Some(e)),
            (Ok(_), Ok(())) => result(None),
        })
        .collect();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::sb;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx, ctx_as};
    use kafka_protocol::ResponseError as E;

    pub(crate) fn creation(
        rt: i8,
        name: &str,
        pattern: i8,
        who: &str,
        op: i8,
        perm: i8,
    ) -> AclCreation {
        let mut c = AclCreation::default();
        c.resource_type = rt;
        c.resource_name = sb(name);
        c.resource_pattern_type = pattern;
        c.principal = sb(who);
        c.host = sb("*");
        c.operation = op;
        c.permission_type = perm;
        c
    }

    fn codes(r: &CreateAclsResponse) -> Vec<i16> {
        r.results.iter().map(|x| x.error_code).collect()
    }

    #[tokio::test]
    async fn security_disabled_without_an_authorizer() {
        let f = Fixture::new().await;
        let mut req = CreateAclsRequest::default();
        req.creations = vec![creation(2, "t", 3, "User:a", 3, 3)];
        let r = respond(&ctx(&f, 1), req).await;
        assert_encodes(&r, 1);
        assert_eq!(codes(&r), vec![E::SecurityDisabled.code()]);
        assert!(f.broker.metadata_view().acls.is_empty());
    }

    #[tokio::test]
    async fn stores_valid_creations_and_refuses_bad_ones() {
        let f = Fixture::authorized(&["User:admin"]).await;
        let mut req = CreateAclsRequest::default();
        req.creations = vec![
            creation(2, "t", 3, "User:a", 3, 3),
            creation(2, "logs-", 4, "User:a", 4, 2),
            creation(4, "not-the-cluster", 3, "User:a", 7, 3),
            creation(2, "", 3, "User:a", 3, 3),
            creation(2, "t", 3, "no-colon", 3, 3),
            creation(1, "t", 3, "User:a", 3, 3),
            creation(2, "t", 2, "User:a", 3, 3),
            creation(2, "t", 3, "User:a", 1, 3),
            creation(2, "t", 3, "User:a", 3, 1),
        ];
        let r = respond(&ctx_as(&f, 3, "admin"), req).await;
        assert_encodes(&r, 3);
        let bad = E::InvalidRequest.code();
        assert_eq!(codes(&r), vec![0, 0, bad, bad, bad, bad, bad, bad, bad]);
        assert!(r.results[2]
            .error_message
            .as_ref()
            .is_some_and(|m| m.contains("kafka-cluster")));
        assert_eq!(f.broker.metadata_view().acls.len(), 2);
    }

    #[tokio::test]
    async fn needs_alter_on_the_cluster() {
        let f = Fixture::authorized(&["User:admin"]).await;
        let mut req = CreateAclsRequest::default();
        req.creations = vec![creation(2, "t", 3, "User:bob", 3, 3)];
        let r = respond(&ctx_as(&f, 2, "bob"), req.clone()).await;
        assert_eq!(codes(&r), vec![E::ClusterAuthorizationFailed.code()]);
        // Granted ALTER on the cluster, bob may.
        let mut grant = CreateAclsRequest::default();
        grant.creations = vec![creation(4, "kafka-cluster", 3, "User:bob", 7, 3)];
        assert_eq!(
            codes(&respond(&ctx_as(&f, 2, "admin"), grant).await),
            vec![0]
        );
        assert_eq!(codes(&respond(&ctx_as(&f, 2, "bob"), req).await), vec![0]);
    }

    #[tokio::test]
    async fn the_cluster_wide_limit_refuses_the_whole_request() {
        let f = Fixture::with(&[
            (
                "authorizer.class.name",
                "kafka.security.authorizer.AclAuthorizer",
            ),
            ("super.users", "User:admin"),
            ("acls.max", "2"),
        ])
        .await;
        let mut req = CreateAclsRequest::default();
        req.creations = (0..3)
            .map(|i| creation(2, &format!("t{i}"), 3, "User:a", 3, 3))
            .collect();
        let r = respond(&ctx_as(&f, 1, "admin"), req).await;
        assert_eq!(codes(&r), vec![E::InvalidRequest.code(); 3]);
        assert!(f.broker.metadata_view().acls.is_empty());
    }
}
