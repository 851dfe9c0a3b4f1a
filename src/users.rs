//! `raftka users`: SCRAM credential management over the Kafka protocol
//! (AlterUserScramCredentials / DescribeUserScramCredentials), what `kafka-configs.sh
//! --bootstrap-server ... --entity-type users` does. The password is salted here (PBKDF2) and
//! only the salted password travels. Connects to any node's Kafka listener, authenticating with
//! SASL PLAIN or SCRAM when the listener needs it. Every read and write has a deadline.
//!
//! Sits beside `admin`; imports `cli`, `client` and `security`, nothing of the node.

use crate::cli::{UsersAction, UsersArgs};
use crate::client::{mechanism_of, ClientAuth, Conn};
use crate::security::scram::ScramMechanism;
use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::fmt::Write as _;
use std::time::Duration;

/// Runs one `raftka users` command; the text to print, or why it failed.
///
/// # Errors
/// Connection, authentication or protocol failures, and any per-user error the node answers.
pub async fn run_users(args: &UsersArgs) -> Result<String, String> {
    let deadline = Duration::from_millis(args.connect.timeout_ms);
    let mut conn = ClientAuth::from_args(&args.connect)
        .connect(&args.connect.bootstrap_server, deadline, "raftka-users")
        .await?;
    match &args.action {
        UsersAction::List { user } => {
            let mut req = DescribeUserScramCredentialsRequest::default();
            if !user.is_empty() {
                req.users = Some(
                    user.iter()
                        .map(|u| {
                            let mut n = UserName::default();
                            n.name = StrBytes::from_string(u.clone());
                            n
                        })
                        .collect(),
                );
            }
            let r: DescribeUserScramCredentialsResponse = conn
                .call(ApiKey::DescribeUserScramCredentials, 0, &req)
                .await?;
            if r.error_code != 0 {
                return Err(format!(
                    "error {}: {}",
                    r.error_code,
                    r.error_message.as_deref().unwrap_or("")
                ));
            }
            let mut out = String::new();
            let mut failed = Vec::new();
            for u in &r.results {
                if u.error_code != 0 {
                    failed.push(format!(
                        "{}: {}",
                        u.user,
                        u.error_message.as_deref().unwrap_or("error")
                    ));
                    continue;
                }
                let creds: Vec<String> = u
                    .credential_infos
                    .iter()
                    .map(|c| {
                        let name = ScramMechanism::from_type_id(c.mechanism)
                            .map_or("UNKNOWN", ScramMechanism::name);
                        format!("{name}=[iterations={}]", c.iterations)
                    })
                    .collect();
                let _ = writeln!(out, "{} {}", u.user, creds.join(","));
            }
            if failed.is_empty() {
                Ok(out)
            } else {
                Err(format!("{out}{}", failed.join("\n")))
            }
        }
        UsersAction::Set {
            user,
            mechanism,
            password,
            iterations,
        } => {
            let mech = mechanism_of(mechanism)?;
            let salt: [u8; 32] = rand::random();
            let iterations_u =
                u32::try_from(*iterations).map_err(|_| "iterations must be positive")?;
            let mut up = ScramCredentialUpsertion::default();
            up.name = StrBytes::from_string(user.clone());
            up.mechanism = mech.type_id();
            up.iterations = *iterations;
            up.salt = Bytes::copy_from_slice(&salt);
            up.salted_password = mech
                .salted_password(password.as_bytes(), &salt, iterations_u)
                .into();
            let mut req = AlterUserScramCredentialsRequest::default();
            req.upsertions.push(up);
            alter(&mut conn, req)
                .await
                .map(|()| format!("{user}: {} set ({iterations} iterations)\n", mech.name()))
        }
        UsersAction::Delete { user, mechanism } => {
            let mech = mechanism_of(mechanism)?;
            let mut d = ScramCredentialDeletion::default();
            d.name = StrBytes::from_string(user.clone());
            d.mechanism = mech.type_id();
            let mut req = AlterUserScramCredentialsRequest::default();
            req.deletions.push(d);
            alter(&mut conn, req)
                .await
                .map(|()| format!("{user}: {} deleted\n", mech.name()))
        }
    }
}

async fn alter(conn: &mut Conn, req: AlterUserScramCredentialsRequest) -> Result<(), String> {
    let r: AlterUserScramCredentialsResponse = conn
        .call(ApiKey::AlterUserScramCredentials, 0, &req)
        .await?;
    match r.results.iter().find(|x| x.error_code != 0) {
        Some(x) => Err(format!(
            "{}: error {}: {}",
            x.user,
            x.error_code,
            x.error_message.as_deref().unwrap_or("")
        )),
        None => Ok(()),
    }
}
