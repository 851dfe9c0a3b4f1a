//! A minimal Kafka protocol client for raftka's own command-line tools (`raftka users`,
//! `raftka groups`): one connection per broker, one request at a time, SASL PLAIN or SCRAM
//! when the listener needs it. Every read and write has a deadline; responses are bounded.
//!
//! Imports `cli` (the connection flags) and `security`, nothing of the node.

use crate::security::scram::{ScramClient, ScramMechanism};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response accepted.
const RESPONSE_MAX_BYTES: usize = 64 << 20;

/// SASL credentials for the listener, if it needs them.
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    pub mechanism: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl ClientAuth {
    /// The credentials the tool's flags name.
    pub(crate) fn from_args(a: &crate::cli::KafkaConnectArgs) -> Self {
        Self {
            mechanism: a.sasl_mechanism.clone(),
            username: a.sasl_username.clone(),
            password: a.sasl_password.clone(),
        }
    }

    /// Connects to `addr` and authenticates when a mechanism is set.
    ///
    /// # Errors
    /// Connection or authentication failures, missing credentials.
    pub(crate) async fn connect(
        &self,
        addr: &str,
        deadline: Duration,
        client_id: &'static str,
    ) -> Result<Conn, String> {
        let mut conn = Conn::connect(addr, deadline, client_id).await?;
        if let Some(mech) = &self.mechanism {
            let user = self
                .username
                .as_deref()
                .ok_or("--sasl-username is required with --sasl-mechanism")?;
            let password = self.password.as_deref().ok_or(
                "--sasl-password (or RAFTKA_SASL_PASSWORD) is required with --sasl-mechanism",
            )?;
            conn.authenticate(mech, user, password).await?;
        }
        Ok(conn)
    }
}

/// A SCRAM mechanism by name (either case).
///
/// # Errors
/// Not SCRAM-SHA-256 or SCRAM-SHA-512.
pub(crate) fn mechanism_of(name: &str) -> Result<ScramMechanism, String> {
    ScramMechanism::from_name(&name.to_ascii_uppercase())
        .ok_or_else(|| format!("unknown mechanism {name:?} (SCRAM-SHA-256 or SCRAM-SHA-512)"))
}

/// One connection to one broker.
pub(crate) struct Conn {
    stream: TcpStream,
    deadline: Duration,
    correlation: i32,
    addr: String,
    client_id: &'static str,
}

impl Conn {
    async fn connect(
        addr: &str,
        deadline: Duration,
        client_id: &'static str,
    ) -> Result<Self, String> {
        let stream = tokio::time::timeout(deadline, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("{addr}: no connection within {} ms", deadline.as_millis()))?
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        Ok(Self {
            stream,
            deadline,
            correlation: 0,
            addr: addr.to_owned(),
            client_id,
        })
    }

    /// Sends `req` at `version` and reads the answer.
    ///
    /// # Errors
    /// Encoding, I/O, deadline and decoding failures.
    pub(crate) async fn call<Q, R>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Q,
    ) -> Result<R, String>
    where
        Q: Encodable + HeaderVersion + Request,
        R: Decodable + HeaderVersion,
    {
        self.correlation += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(StrBytes::from_static_str(self.client_id));
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
