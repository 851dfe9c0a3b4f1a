//! `raftka users`: SCRAM credential management over the Kafka protocol
//! (AlterUserScramCredentials / DescribeUserScramCredentials), what `kafka-configs.sh
//! --bootstrap-server ... --entity-type users` does. The password is salted here (PBKDF2) and
//! only the salted password travels. Connects to any node's Kafka listener, authenticating with
//! SASL PLAIN or SCRAM when the listener needs it. Every read and write has a deadline.
//!
//! Sits beside `admin`; imports `cli` and `security`, nothing of the node.

use crate::cli::{UsersAction, UsersArgs};
use crate::security::scram::{ScramClient, ScramMechanism};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse, RequestHeader,
    ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use std::fmt::Write as _;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response accepted (these answers are small).
const RESPONSE_MAX_BYTES: usize = 16 << 20;

/// Runs one `raftka users` command; the text to print, or why it failed.
///
/// # Errors
/// Connection, authentication or protocol failures, and any per-user error the node answers.
pub async fn run_users(args: &UsersArgs) -> Result<String, String> {
    let deadline = Duration::from_millis(args.timeout_ms);
    let mut conn = Conn::connect(&args.bootstrap_server, deadline).await?;
    if let Some(mech) = &args.sasl_mechanism {
        let user = args
            .sasl_username
            .as_deref()
            .ok_or("--sasl-username is required with --sasl-mechanism")?;
        let password = args
            .sasl_password
            .as_deref()
            .ok_or("--sasl-password (or RAFTKA_SASL_PASSWORD) is required with --sasl-mechanism")?;
        conn.authenticate(mech, user, password).await?;
    }
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

fn mechanism_of(name: &str) -> Result<ScramMechanism, String> {
    ScramMechanism::from_name(&name.to_ascii_uppercase())
        .ok_or_else(|| format!("unknown mechanism {name:?} (SCRAM-SHA-256 or SCRAM-SHA-512)"))
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

struct Conn {
    stream: TcpStream,
    deadline: Duration,
    correlation: i32,
    addr: String,
}

impl Conn {
    async fn connect(addr: &str, deadline: Duration) -> Result<Self, String> {
        let stream = tokio::time::timeout(deadline, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("{addr}: no connection within {} ms", deadline.as_millis()))?
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        Ok(Self {
            stream,
            deadline,
            correlation: 0,
            addr: addr.to_owned(),
        })
    }

    async fn call<Q, R>(&mut self, key: ApiKey, version: i16, req: &Q) -> Result<R, String>
    where
        Q: Encodable + HeaderVersion + Request,
        R: Decodable + HeaderVersion,
    {
        self.correlation += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(StrBytes::from_static_str("raftka-users"));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, Q::header_version(version))
            .and_then(|()| req.encode(&mut buf, version))
            .map_err(|e| format!("cannot encode {key:?}: {e}"))?;
        let len = i32::try_from(buf.len() - 4).map_err(|_| "request too large")?;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        let io = async {
            self.stream.write_all(&buf).await?;
            let n = self.stream.read_i32().await?;
            let n = usize::try_from(n)
                .ok()
                .filter(|n| *n <= RESPONSE_MAX_BYTES)
                .ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "bad response size")
                })?;
            let mut body = vec![0u8; n];
            self.stream.read_exact(&mut body).await?;
            Ok::<_, std::io::Error>(Bytes::from(body))
        };
        let mut body = tokio::time::timeout(self.deadline, io)
            .await
            .map_err(|_| {
                format!(
                    "{}: no answer within {} ms",
                    self.addr,
                    self.deadline.as_millis()
                )
            })?
            .map_err(|e| {
                format!(
                    "{}: {e} (closed: authentication needed or refused?)",
                    self.addr
                )
            })?;
        let h = ResponseHeader::decode(&mut body, R::header_version(version))
            .map_err(|e| e.to_string())?;
        if h.correlation_id != self.correlation {
            return Err("response out of order".into());
        }
        let r = R::decode(&mut body, version)
            .map_err(|e| format!("malformed {key:?} response: {e}"))?;
        let _ = body.remaining();
        Ok(r)
    }

    async fn authenticate(
        &mut self,
        mechanism: &str,
        user: &str,
        password: &str,
    ) -> Result<(), String> {
        let mechanism = mechanism.to_ascii_uppercase();
        let mut hs = SaslHandshakeRequest::default();
        hs.mechanism = StrBytes::from_string(mechanism.clone());
        let r: SaslHandshakeResponse = self.call(ApiKey::SaslHandshake, 1, &hs).await?;
        if r.error_code != 0 {
            return Err(format!(
                "mechanism {mechanism} refused (error {}); the listener offers {:?}",
                r.error_code,
                r.mechanisms
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
            ));
        }
        let send = |token: Vec<u8>| {
            let mut a = SaslAuthenticateRequest::default();
            a.auth_bytes = token.into();
            a
        };
        let check = |r: &SaslAuthenticateResponse| -> Result<(), String> {
            if r.error_code == 0 {
                Ok(())
            } else {
                Err(format!(
                    "authentication failed: {}",
                    r.error_message.as_deref().unwrap_or("")
                ))
            }
        };
        if mechanism == "PLAIN" {
            let token = format!("\0{user}\0{password}").into_bytes();
            let req = send(token);
            let r: SaslAuthenticateResponse = self.call(ApiKey::SaslAuthenticate, 2, &req).await?;
            return check(&r);
        }
        let mech = mechanism_of(&mechanism)?;
        let mut client = ScramClient::new(mech, user, password);
        let req = send(client.first());
        let r: SaslAuthenticateResponse = self.call(ApiKey::SaslAuthenticate, 2, &req).await?;
        check(&r)?;
        let fin = client
            .final_message(&r.auth_bytes)
            .map_err(|e| format!("SCRAM: {e}"))?;
        let req = send(fin);
        let r: SaslAuthenticateResponse = self.call(ApiKey::SaslAuthenticate, 2, &req).await?;
        check(&r)?;
        if !client.verify(&r.auth_bytes) {
            return Err("SCRAM: the server's signature does not match (not the server holding the credential)".into());
        }
        Ok(())
    }
}
