//! AlterUserScramCredentials (key 51), v0: deletes and upserts SCRAM credentials (the client
//! salts the password; the node stores salt, StoredKey, ServerKey and iterations). One result
//! per user; a user with any invalid alteration keeps its credentials unchanged.
//!
//! Authorization (Kafka's): ALTER on the cluster, else every user named gets
//! CLUSTER_AUTHORIZATION_FAILED.

use crate::broker::ScramUpsertion;
use crate::kafka::authz::Authz;
use crate::kafka::context::RequestContext;
use crate::kafka::error::code;
use crate::kafka::reply::{Reply, Versions};
use crate::kafka::shape::{RequestShape, Shape};
use crate::security::acl::Operation;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

/// The versions of AlterUserScramCredentials this handler serves (ApiVersions advertises them).
pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

impl RequestShape for AlterUserScramCredentialsRequest {
    fn shape(&self) -> Shape {
        Shape {
            entries: self.deletions.len().saturating_add(self.upsertions.len()),
            partitions: 0,
        }
    }
}

/// Answers one AlterUserScramCredentials request.
pub(crate) async fn handle(ctx: RequestContext, req: AlterUserScramCredentialsRequest) -> Reply {
    Reply::now(respond(&ctx, req).await)
}

pub(crate) async fn respond(
    ctx: &RequestContext,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    if !Authz::new(ctx).cluster(Operation::Alter) {
        let e = crate::broker::BrokerError::ClusterAuthorizationFailed;
        let mut r = AlterUserScramCredentialsResponse::default();
        let mut seen = std::collections::BTreeSet::new();
        let names = req.deletions.iter().map(|d| &d.name);
        for user in names.chain(req.upsertions.iter().map(|u| &u.name)) {
            if seen.insert(user.to_string()) {
                let mut x = AlterUserScramCredentialsResult::default();
                x.user = user.clone();
                x.error_code = code(&e);
                x.error_message = Some(StrBytes::from_string(e.to_string()));
                r.results.push(x);
            }
        }
        return r;
    }
    let deletions = req
        .deletions
        .into_iter()
        .map(|d| (d.name.to_string(), d.mechanism))
        .collect();
    let upsertions = req
        .upsertions
        .into_iter()
        .map(|u| ScramUpsertion {
            user: u.name.to_string(),
            mechanism: u.mechanism,
            iterations: u.iterations,
            salt: u.salt.to_vec(),
            salted_password: u.salted_password.to_vec(),
        })
        .collect();
    let mut r = AlterUserScramCredentialsResponse::default();
    for (user, res) in ctx
        .broker
        .alter_user_scram_credentials(deletions, upsertions)
        .await
    {
        let mut x = AlterUserScramCredentialsResult::default();
        x.user = StrBytes::from_string(user);
        if let Err(e) = res {
            x.error_code = code(&e);
            x.error_message = Some(StrBytes::from_string(e.to_string()));
        }
        r.results.push(x);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::Fixture;
    use crate::kafka::handlers::sb;
    use crate::kafka::handlers::test_util::{assert_encodes, ctx};
    use crate::security::scram::ScramMechanism;
    use kafka_protocol::messages::alter_user_scram_credentials_request::{
        ScramCredentialDeletion, ScramCredentialUpsertion,
    };
    use kafka_protocol::ResponseError as E;

    fn up(user: &str, mech: i8, iterations: i32) -> ScramCredentialUpsertion {
        let m = ScramMechanism::from_type_id(mech).unwrap_or(ScramMechanism::Sha256);
        let mut u = ScramCredentialUpsertion::default();
        u.name = sb(user);
        u.mechanism = mech;
        u.iterations = iterations;
        u.salt = bytes::Bytes::from_static(b"0123456789abcdef");
        u.salted_password = m.salted_password(b"pw", b"0123456789abcdef", 4096).into();
        u
    }

    fn del(user: &str, mech: i8) -> ScramCredentialDeletion {
        let mut d = ScramCredentialDeletion::default();
        d.name = sb(user);
        d.mechanism = mech;
        d
    }

    fn results(r: &AlterUserScramCredentialsResponse) -> Vec<(&str, i16)> {
        r.results
            .iter()
            .map(|x| (x.user.as_str(), x.error_code))
            .collect()
    }

    #[tokio::test]
    async fn upsert_describe_delete_with_kafkas_errors() {
        let f = Fixture::new().await;
        let mut req = AlterUserScramCredentialsRequest::default();
        req.upsertions = vec![
            up("alice", 1, 8192),
            up("alice", 2, 4096),
            up("bob", 1, 100),
            up("carol", 3, 4096),
            up("", 1, 4096),
            up("dave", 1, 4096),
            up("dave", 1, 4096),
        ];
        let r = respond(&ctx(&f, 0), req).await;
        assert_encodes(&r, 0);
        assert_eq!(
            results(&r),
            vec![
                ("alice", 0),
                ("bob", E::UnacceptableCredential.code()),
                ("carol", E::UnsupportedSaslMechanism.code()),
                ("", E::UnacceptableCredential.code()),
                ("dave", E::DuplicateResource.code()),
            ]
        );
        assert_eq!(
            r.results[1].error_message.as_deref(),
            Some("Too few iterations")
        );
        let c = f
            .broker
            .scram_credential("alice", ScramMechanism::Sha256)
            .expect("stored");
        assert_eq!(c.iterations, 8192);
        assert!(f
            .broker
            .scram_credential("dave", ScramMechanism::Sha256)
            .is_none());

        let mut req = AlterUserScramCredentialsRequest::default();
        req.deletions = vec![del("alice", 2), del("nobody", 1)];
        let r = respond(&ctx(&f, 0), req).await;
        assert_eq!(
            results(&r),
            vec![("alice", 0), ("nobody", E::ResourceNotFound.code())]
        );
        assert!(f
            .broker
            .scram_credential("alice", ScramMechanism::Sha512)
            .is_none());
        assert!(f
            .broker
            .scram_credential("alice", ScramMechanism::Sha256)
            .is_some());
    }
}
