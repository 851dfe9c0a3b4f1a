//! DescribeAcls (key 29), v0–v3: the ACL bindings one filter matches, grouped by resource
//! pattern. Needs DESCRIBE on the cluster; SECURITY_DISABLED without an authorizer. v0 has no
//! pattern-type field: its filter is LITERAL (the field's default), so only literal bindings
//! are answered at v0.

use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::{
    AclBinding, AclFilter, Operation, PatternFilter, Permission, ResourceType,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;

/// The versions of DescribeAcls this handler serves.
pub(crate) const VERSIONS: Versions = Versions::new(0, 3);

impl RequestShape for DescribeAclsRequest {
    fn shape(&self) -> Shape {
        Shape {
            entries: 1,
            partitions: 0,
        }
    }
}

/// A filter as the wire carries it (DescribeAcls' fields, DeleteAcls' per filter).
pub(crate) struct WireFilter<'a> {
    pub(crate) resource_type: i8,
    pub(crate) name: Option<&'a StrBytes>,
    pub(crate) pattern: i8,
    pub(crate) principal: Option<&'a StrBytes>,
    pub(crate) host: Option<&'a StrBytes>,
    pub(crate) operation: i8,
    pub(crate) permission: i8,
}

/// The filter, or why it cannot be used (a code that is UNKNOWN or not defined: Kafka's
/// INVALID_REQUEST).
pub(crate) fn filter(w: &WireFilter<'_>) -> Result<AclFilter, BrokerError> {
    let unknown = |what: &str, c: i8| {
        BrokerError::InvalidRequest(format!("The filter's {what} {c} is UNKNOWN or invalid"))
    };
    const ANY: i8 = 1;
    Ok(AclFilter {
        resource_type: match w.resource_type {
            ANY => None,
            c => Some(ResourceType::from_code(c).ok_or_else(|| unknown("resource type", c))?),
        },
        resource_name: w.name.map(ToString::to_string),
        pattern: PatternFilter::from_code(w.pattern)
            .ok_or_else(|| unknown("pattern type", w.pattern))?,
        principal: w.principal.map(ToString::to_string),
        host: w.host.map(ToString::to_string),
        operation: match w.operation {
            ANY => None,
            c => Some(Operation::from_code(c).ok_or_else(|| unknown("operation", c))?),
        },
        permission: match w.permission {
            ANY => None,
            c => Some(Permission::from_code(c).ok_or_else(|| unknown("permission type", c))?),
        },
    })
}

/// Answers one DescribeAcls request.
pub(crate) async fn handle(ctx: RequestContext, req: DescribeAclsRequest) -> Reply {
    Reply::now(respond(&ctx, &req))
}

pub(crate) fn respond(ctx: &RequestContext, req: &DescribeAclsRequest) -> DescribeAclsResponse {
    let authz = Authz::new(ctx);
    let mut r = DescribeAclsResponse::default();
    let parsed = if !authz.enabled() {
        Err(BrokerError::SecurityDisabled)
    } else if !authz.cluster(Operation::Describe) {
        Err(BrokerError::ClusterAuthorizationFailed)
    } else {
        filter(&WireFilter {
            resource_type: req.resource_type_filter,
            name: req.resource_name_filter.as_ref(),
            pattern: req.pattern_type_filter,
            principal: req.principal_filter.as_ref(),
            host: req.host_filter.as_ref(),
            operation: req.operation,
            permission: req.permission_type,
        })
    };
    match parsed {
        Err(e) => {
            r.error_code = code(&e);
            r.error_message = Some(StrBytes::from_string(e.to_string()));
        }
        Ok(f) => r.resources = group(ctx.broker.describe_acls(&f)),
    }
    r
}

/// Bindings grouped by resource pattern (they come sorted by it).
fn group(bindings: Vec<AclBinding>) -> Vec<DescribeAclsResource> {
    let mut out: Vec<DescribeAclsResource> = Vec::new();
    for b in bindings {
        let same = out.last().is_some_and(|r| {
            r.resource_type == b.resource_type.code()
                && r.pattern_type == b.pattern.code()
                && r.resource_name.as_str() == b.resource_name
        });
        if !same {
            let mut r = DescribeAclsResource::default();
            r.resource_type = b.resource_type.code();
            r.resource_name = StrBytes::from_string(b.resource_name.clone());
            r.pattern_type = b.pattern.code();
            out.push(r);
        }
        let mut d = AclDescription::default();
        d.principal = StrBytes::from_string(b.principal);
        d.host = StrBytes::from_string(b.host);
        d.operation = b.operation.code();
        d.permission_type = b.permission.code();
        if let Some(r) = out.last_mut() {
            r.acls.push(d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::sb;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx, ctx_as, grant};
    use kafka_protocol::ResponseError as E;

    fn any() -> DescribeAclsRequest {
        let mut q = DescribeAclsRequest::default();
        q.resource_name_filter = None;
        q.principal_filter = None;
        q.host_filter = None;
        q.resource_type_filter = 1;
        q.pattern_type_filter = 1;
        q.operation = 1;
        q.permission_type = 1;
        q
    }

    #[tokio::test]
    async fn filters_and_groups_by_pattern() {
        let f = Fixture::authorized(&["User:admin"]).await;
        grant(
            &f,
            &[
                (2, "t", 3, "User:a", 3, 3),
                (2, "t", 3, "User:b", 4, 3),
                (2, "t", 4, "User:a", 3, 3),
                (3, "g", 3, "User:a", 3, 3),
            ],
        )
        .await;
        let admin = ctx_as(&f, 1, "admin");
        let r = respond(&admin, &any());
        assert_encodes(&r, 1);
        assert_eq!(r.error_code, 0);
        let shape: Vec<(i8, &str, i8, usize)> = r
            .resources
            .iter()
            .map(|x| {
                (
                    x.resource_type,
                    x.resource_name.as_str(),
                    x.pattern_type,
                    x.acls.len(),
                )
            })
            .collect();
        assert_eq!(shape, vec![(2, "t", 3, 2), (3, "g", 3, 1), (2, "t", 4, 1)]);
        // MATCH: what would apply to topic "tx" (the prefixed "t").
        let mut q = any();
        q.resource_type_filter = 2;
        q.resource_name_filter = Some(sb("tx"));
        q.pattern_type_filter = 2;
        let r = respond(&admin, &q);
        assert_eq!(r.resources.len(), 1);
        assert_eq!(r.resources[0].pattern_type, 4);
        // By principal and operation.
        let mut q = any();
        q.principal_filter = Some(sb("User:b"));
        q.operation = 4;
        assert_eq!(respond(&admin, &q).resources.len(), 1);
        // v0: LITERAL only (the default of the field v0 lacks).
        let mut q = any();
        q.pattern_type_filter = 3;
        let r = respond(&ctx_as(&f, 0, "admin"), &q);
        assert_encodes(&r, 0);
        assert!(r.resources.iter().all(|x| x.pattern_type == 3));
        assert_eq!(r.resources.len(), 2);
        // UNKNOWN elements.
        let mut q = any();
        q.operation = 0;
        assert_eq!(respond(&admin, &q).error_code, E::InvalidRequest.code());
    }

    #[tokio::test]
    async fn errors_without_authorizer_or_permission() {
        let f = Fixture::new().await;
        let r = respond(&ctx(&f, 1), &any());
        assert_eq!(r.error_code, E::SecurityDisabled.code());
        let f = Fixture::authorized(&["User:admin"]).await;
        let r = respond(&ctx_as(&f, 1, "bob"), &any());
        assert_eq!(r.error_code, E::ClusterAuthorizationFailed.code());
        grant(&f, &[(4, "kafka-cluster", 3, "User:bob", 8, 3)]).await;
        assert_eq!(respond(&ctx_as(&f, 1, "bob"), &any()).error_code, 0);
    }
}
