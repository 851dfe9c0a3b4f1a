//! DeleteAcls (key 31), v0–v3: removes the bindings each filter matches, atomically, and
//! answers them per filter. Needs ALTER on the cluster; SECURITY_DISABLED without an
//! authorizer. A filter with UNKNOWN elements gets INVALID_REQUEST and removes nothing.

use super::describe_acls::{filter, WireFilter};
use crate::broker::BrokerError;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::{AclBinding, AclFilter, Operation};
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;

/// The versions of DeleteAcls this handler serves.
pub(crate) const VERSIONS: Versions = Versions::new(0, 3);

impl RequestShape for DeleteAclsRequest {
    fn shape(&self) -> Shape {
        Shape {
            entries: self.filters.len(),
            partitions: 0,
        }
    }
}

/// Answers one DeleteAcls request.
pub(crate) async fn handle(ctx: RequestContext, req: DeleteAclsRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

fn failed(e: &BrokerError) -> DeleteAclsFilterResult {
    let mut r = DeleteAclsFilterResult::default();
    r.error_code = code(e);
    r.error_message = Some(StrBytes::from_string(e.to_string()));
    r
}

fn matching(b: AclBinding) -> DeleteAclsMatchingAcl {
    let mut m = DeleteAclsMatchingAcl::default();
    m.resource_type = b.resource_type.code();
    m.resource_name = StrBytes::from_string(b.resource_name);
    m.pattern_type = b.pattern.code();
    m.principal = StrBytes::from_string(b.principal);
    m.host = StrBytes::from_string(b.host);
    m.operation = b.operation.code();
    m.permission_type = b.permission.code();
    m
}

pub(crate) async fn respond(ctx: &RequestContext, req: DeleteAclsRequest) -> DeleteAclsResponse {
    let authz = Authz::new(ctx);
    let mut r = DeleteAclsResponse::default();
    let refuse_all = if !authz.enabled() {
        Some(BrokerError::SecurityDisabled)
    } else if !authz.cluster(Operation::Alter) {
        Some(BrokerError::ClusterAuthorizationFailed)
    } else {
        None
    };
    if let Some(e) = refuse_all {
        r.filter_results = req.filters.iter().map(|_| failed(&e)).collect();
        return r;
    }
    let parsed: Vec<Result<AclFilter, BrokerError>> = req
        .filters
        .iter()
        .map(|f| {
            filter(&WireFilter {
                resource_type: f.resource_type_filter,
                name: f.resource_name_filter.as_ref(),
                pattern: f.pattern_type_filter,
                principal: f.principal_filter.as_ref(),
                host: f.host_filter.as_ref(),
                operation: f.operation,
                permission: f.permission_type,
            })
        })
        .collect();
    let valid: Vec<AclFilter> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
    let deleted = ctx.broker.delete_acls(valid).await;
    let (mut per_filter, stored) = match deleted {
        Ok(d) => (d.into_iter(), None),
        Err(e) => (Vec::new().into_iter(), Some(e)),
    };
    r.filter_results = parsed
        .iter()
        .map(|p| match (p, &stored) {
            (Err(e), _) | (Ok(_), Some(e)) => failed(e),
            (Ok(_), None) => {
                let it = &mut per_filter;
                let mut x = DeleteAclsFilterResult::default();
                x.matching_acls = it
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .map(matching)
                    .collect();
                x
            }
        })
        .collect();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::sb;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx, ctx_as, grant};
    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
    use kafka_protocol::ResponseError as E;

    fn by_principal(p: &str) -> DeleteAclsFilter {
        let mut f = DeleteAclsFilter::default();
        f.resource_name_filter = None;
        f.host_filter = None;
        f.resource_type_filter = 1;
        f.pattern_type_filter = 1;
        f.operation = 1;
        f.permission_type = 1;
        f.principal_filter = Some(sb(p));
        f
    }

    #[tokio::test]
    async fn deletes_per_filter() {
        let f = Fixture::authorized(&["User:admin"]).await;
        grant(
            &f,
            &[
                (2, "t", 3, "User:a", 3, 3),
                (2, "t", 4, "User:a", 3, 3),
                (2, "t", 3, "User:b", 3, 3),
            ],
        )
        .await;
        let mut bad = by_principal("User:b");
        bad.operation = 0;
        let mut req = DeleteAclsRequest::default();
        req.filters = vec![by_principal("User:a"), bad, by_principal("User:nobody")];
        let r = respond(&ctx_as(&f, 1, "admin"), req).await;
        assert_encodes(&r, 1);
        let got: Vec<(i16, usize)> = r
            .filter_results
            .iter()
            .map(|x| (x.error_code, x.matching_acls.len()))
            .collect();
        assert_eq!(got, vec![(0, 2), (E::InvalidRequest.code(), 0), (0, 0)]);
        let left: Vec<String> = f
            .broker
            .metadata_view()
            .acls
            .bindings()
            .map(|b| b.principal)
            .collect();
        assert_eq!(left, vec!["User:b".to_owned()]);
        // v0 filters are LITERAL.
        let mut lit = by_principal("User:b");
        lit.pattern_type_filter = 3;
        let mut req = DeleteAclsRequest::default();
        req.filters = vec![lit];
        let r = respond(&ctx_as(&f, 0, "admin"), req).await;
        assert_encodes(&r, 0);
        assert_eq!(r.filter_results[0].matching_acls.len(), 1);
        assert!(f.broker.metadata_view().acls.is_empty());
    }

    #[tokio::test]
    async fn refused_without_authorizer_or_alter() {
        let f = Fixture::new().await;
        let mut req = DeleteAclsRequest::default();
        req.filters = vec![by_principal("User:a")];
        let r = respond(&ctx(&f, 1), req.clone()).await;
        assert_eq!(r.filter_results[0].error_code, E::SecurityDisabled.code());
        let f = Fixture::authorized(&[]).await;
        let r = respond(&ctx_as(&f, 1, "a"), req).await;
        assert_eq!(
            r.filter_results[0].error_code,
            E::ClusterAuthorizationFailed.code()
        );
    }
}
