//! DescribeUserScramCredentials (key 50), v0: each user's mechanisms and iteration counts
//! (never salts or keys). No user list = every user with a credential.
//!
//! Authorization (Kafka's): DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED.

use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::Operation;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

/// The versions of DescribeUserScramCredentials this handler serves.
pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

impl RequestShape for DescribeUserScramCredentialsRequest {
    fn shape(&self) -> Shape {
        Shape {
            entries: self.users.as_ref().map_or(0, Vec::len),
            partitions: 0,
        }
    }
}

/// Answers one DescribeUserScramCredentials request.
pub(crate) async fn handle(ctx: RequestContext, req: DescribeUserScramCredentialsRequest) -> Reply {
    Reply::now(respond(&ctx, req))
}

pub(crate) fn respond(
    ctx: &RequestContext,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    if !Authz::new(ctx).cluster(Operation::Describe) {
        let e = crate::broker::BrokerError::ClusterAuthorizationFailed;
        let mut r = DescribeUserScramCredentialsResponse::default();
        r.error_code = code(&e);
        r.error_message = Some(StrBytes::from_string(e.to_string()));
        return r;
    }
    let users = req
        .users
        .map(|us| us.into_iter().map(|u| u.name.to_string()).collect());
    let mut r = DescribeUserScramCredentialsResponse::default();
    for (user, res) in ctx.broker.describe_user_scram_credentials(users) {
        let mut x = DescribeUserScramCredentialsResult::default();
        x.user = StrBytes::from_string(user);
        match res {
            Ok(infos) => {
                x.credential_infos = infos
                    .into_iter()
                    .map(|(m, iterations)| {
                        let mut c = CredentialInfo::default();
                        c.mechanism = m.type_id();
                        c.iterations = iterations;
                        c
                    })
                    .collect();
            }
            Err(e) => {
                x.error_code = code(&e);
                x.error_message = Some(StrBytes::from_string(e.to_string()));
            }
        }
        r.results.push(x);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::broker::ScramUpsertion;
    use crate::kafka::handlers::sb;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use crate::security::scram::ScramMechanism;
    use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
    use kafka_protocol::ResponseError as E;

    fn name(n: &str) -> UserName {
        let mut u = UserName::default();
        u.name = sb(n);
        u
    }

    #[tokio::test]
    async fn lists_mechanisms_and_iterations_only() {
        let f = Fixture::new().await;
        let m = ScramMechanism::Sha512;
        let up = ScramUpsertion {
            user: "alice".into(),
            mechanism: m.type_id(),
            iterations: 4096,
            salt: b"salt".to_vec(),
            salted_password: m.salted_password(b"pw", b"salt", 4096),
        };
        let res = f
            .broker
            .alter_user_scram_credentials(vec![], vec![up])
            .await;
        assert!(res[0].1.is_ok());

        let r = respond(&ctx(&f, 0), DescribeUserScramCredentialsRequest::default());
        assert_encodes(&r, 0);
        assert_eq!(r.results.len(), 1);
        assert_eq!(r.results[0].user.as_str(), "alice");
        assert_eq!(r.results[0].credential_infos[0].mechanism, 2);
        assert_eq!(r.results[0].credential_infos[0].iterations, 4096);

        let mut req = DescribeUserScramCredentialsRequest::default();
        req.users = Some(vec![
            name("alice"),
            name("bob"),
            name("carol"),
            name("carol"),
        ]);
        let r = respond(&ctx(&f, 0), req);
        let codes: Vec<_> = r
            .results
            .iter()
            .map(|x| (x.user.as_str(), x.error_code))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("alice", 0),
                ("bob", E::ResourceNotFound.code()),
                ("carol", E::DuplicateResource.code())
            ]
        );
    }
}
