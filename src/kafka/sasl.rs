//! The SASL authenticator of one connection, as Kafka's `SaslServerAuthenticator` runs it.
//!
//! On a SASL listener a connection starts unauthenticated: it may send ApiVersions and must
//! send SaslHandshake (v0: raw SASL tokens follow, each a size-prefixed frame without a Kafka
//! header, as clients before KIP-152 send them; v1: SaslAuthenticate requests follow). Any
//! other request, a mechanism the listener does not enable, or failed credentials end the
//! connection; a failed authentication's answer and close are held back by
//! `connection.failed.authentication.delay.ms`, logged at WARN (rate-limited per address,
//! never with a secret) and counted. Until authentication completes, frames are bounded by
//! `sasl.server.max.receive.size`.
//!
//! With `connections.max.reauth.ms` set, SaslAuthenticate v1+ tells the client its session
//! lifetime; a client re-authenticates (KIP-368) with a new SaslHandshake on the same
//! connection, with the same mechanism and principal. A request other than re-authentication
//! after the session expired closes the connection.
//!
//! On an SSL listener the principal is the client certificate's (`security::tls`), else
//! `User:ANONYMOUS`; on SASL_SSL, the SASL identity. On a PLAINTEXT listener every connection
//! is `User:ANONYMOUS`, and SaslHandshake /
//! SaslAuthenticate go to their handlers (ILLEGAL_SASL_STATE), as in Kafka.

use crate::broker::Broker;
use crate::codec::kafka::frame::{self, API_VERSIONS_KEY};
use crate::config::security::ListenerSasl;
use crate::config::Listener;
use crate::security::scram::{ScramMechanism, ScramServer, ScramStep};
use crate::security::{plain, Principal};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseKind, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};

const SASL_HANDSHAKE_KEY: i16 = 17;
const SASL_AUTHENTICATE_KEY: i16 = 36;

/// A response the authenticator sends.
pub(crate) enum Answer {
    /// A Kafka response to the request with this key, version and correlation id.
    Kafka {
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
        response: Box<ResponseKind>,
    },
    /// A raw SASL token (after SaslHandshake v0), already size-prefixed.
    Raw(Bytes),
}

/// What to do with one frame.
pub(crate) enum Step {
    /// An ordinary request: decode and dispatch it.
    Dispatch,
    /// Send this and read on.
    Reply(Answer),
    /// Authentication failed: after the failure delay, send the answer (if any), then close.
    Fail(Option<Answer>),
    /// Close at once (the reason is for the debug log).
    Close(String),
}

enum Mechanism {
    Plain,
    Scram(Box<ScramServer>),
}

/// The identity a re-authentication must keep.
#[derive(Clone)]
struct Previous {
    mechanism: String,
    principal: Arc<Principal>,
}

enum State {
    Authenticated {
        /// The mechanism used (`None` on a listener without SASL).
        mechanism: Option<String>,
        /// When the session ends (`connections.max.reauth.ms`).
        expires: Option<Instant>,
    },
    /// Waiting for SaslHandshake (ApiVersions allowed unless re-authenticating).
    Handshake { reauth: Option<Previous> },
    /// Exchanging tokens for `name`; `raw` after SaslHandshake v0.
    Exchange {
        name: String,
        mech: Mechanism,
        raw: bool,
        reauth: Option<Previous>,
    },
}

/// One connection's authentication state and principal.
pub(crate) struct Session {
    principal: Arc<Principal>,
    sasl: Option<Arc<ListenerSasl>>,
    state: State,
    peer: SocketAddr,
    listener: String,
}

impl Session {
    /// `tls_principal`: the client certificate's principal on a TLS listener (used when the
    /// listener has no SASL; with SASL, the SASL identity is the principal, as in Kafka).
    pub(crate) fn new(
        listener: Option<&Listener>,
        name: &str,
        peer: SocketAddr,
        tls_principal: Option<Principal>,
    ) -> Self {
        let sasl = listener.and_then(|l| l.sasl.clone());
        let state = if sasl.is_some() {
            State::Handshake { reauth: None }
        } else {
            State::Authenticated {
                mechanism: None,
                expires: None,
            }
        };
        let principal = match (&sasl, tls_principal) {
            (None, Some(p)) => p,
            _ => Principal::anonymous(),
        };
        Self {
            principal: Arc::new(principal),
            sasl,
            state,
            peer,
            listener: name.to_owned(),
        }
    }

    /// Who the connection is (for requests and, later, ACLs).
    pub(crate) fn principal(&self) -> &Arc<Principal> {
        &self.principal
    }

    /// Whether the connection has authenticated (always, on a listener without SASL).
    pub(crate) fn authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated { .. })
    }

    /// Decides what to do with one frame, running the SASL exchange if it is one.
    pub(crate) fn on_frame(&mut self, frame: &Bytes, broker: &Broker) -> Step {
        let Some(sasl) = self.sasl.clone() else {
            return Step::Dispatch;
        };
        let reauth_max = broker.config().auth.reauth_max;
        match std::mem::replace(&mut self.state, State::Handshake { reauth: None }) {
            State::Authenticated { mechanism, expires } => {
                let prefix = frame::peek_header(frame);
                let is_handshake = prefix.is_some_and(|p| p.api_key == SASL_HANDSHAKE_KEY);
                if is_handshake && expires.is_some() {
                    let previous = Previous {
                        mechanism: mechanism.clone().unwrap_or_default(),
                        principal: self.principal.clone(),
                    };
                    return self.handshake(frame, &sasl, Some(previous));
                }
                let expired = expires.is_some_and(|e| Instant::now() >= e);
                self.state = State::Authenticated { mechanism, expires };
                if expired {
                    crate::metrics::inc(&crate::metrics::global().kafka_expired_sessions, 1);
                    info!(peer = %self.peer, principal = %self.principal, "closing connection: authenticated session expired without re-authentication");
                    return Step::Close("session expired".into());
                }
                Step::Dispatch
            }
            State::Handshake { reauth } => {
                let Some(p) = frame::peek_header(frame) else {
                    return self.fail_closed("malformed request during SASL handshake");
                };
                match p.api_key {
                    API_VERSIONS_KEY if reauth.is_none() => {
                        self.state = State::Handshake { reauth };
                        Step::Dispatch
                    }
                    SASL_HANDSHAKE_KEY => self.handshake(frame, &sasl, reauth),
                    k => self.fail_closed(&format!(
                        "unexpected Kafka request of type {} during SASL handshake",
                        api_name(k)
                    )),
                }
            }
            State::Exchange {
                name,
                mech,
                raw: true,
                reauth,
            } => {
                let out =
                    self.exchange(frame, &name, mech, true, reauth, &sasl, broker, reauth_max);
                match out {
                    Ok((token, _)) => Step::Reply(Answer::Raw(size_prefixed(&token))),
                    Err(_) => Step::Fail(None),
                }
            }
            State::Exchange {
                name,
                mech,
                raw: false,
                reauth,
            } => {
                let Some(p) = frame::peek_header(frame) else {
                    return self.fail_closed("malformed request during SASL authentication");
                };
                if p.api_key != SASL_AUTHENTICATE_KEY {
                    return self.fail_closed(&format!(
                        "unexpected Kafka request of type {} during SASL authentication",
                        api_name(p.api_key)
                    ));
                }
                if !(0..=2).contains(&p.api_version) {
                    return self.fail_closed("unsupported SaslAuthenticate version");
                }
                let mut body = frame.clone();
                let key = ApiKey::SaslAuthenticate;
                let req =
                    RequestHeader::decode(&mut body, key.request_header_version(p.api_version))
                        .ok()
                        .and_then(|_| {
                            SaslAuthenticateRequest::decode(&mut body, p.api_version).ok()
                        });
                let Some(req) = req else {
                    return self.fail_closed("malformed SaslAuthenticate request");
                };
                let mut r = SaslAuthenticateResponse::default();
                let out = self.exchange(
                    &req.auth_bytes,
                    &name,
                    mech,
                    false,
                    reauth,
                    &sasl,
                    broker,
                    reauth_max,
                );
                let failed = out.is_err();
                match out {
                    Ok((token, lifetime)) => {
                        r.auth_bytes = token.into();
                        r.session_lifetime_ms = lifetime;
                    }
                    Err(message) => {
                        r.error_code = ResponseError::SaslAuthenticationFailed.code();
                        r.error_message = Some(StrBytes::from_string(message));
                    }
                }
                let answer = Answer::Kafka {
                    api_key: key,
                    version: p.api_version,
                    correlation_id: p.correlation_id,
                    response: Box::new(ResponseKind::SaslAuthenticate(r)),
                };
                if failed {
                    Step::Fail(Some(answer))
                } else {
                    Step::Reply(answer)
                }
            }
        }
    }

    /// SaslHandshake: picks the mechanism (and, for v0, raw tokens from now on).
    fn handshake(&mut self, frame: &Bytes, sasl: &ListenerSasl, reauth: Option<Previous>) -> Step {
        let p = frame::peek_header(frame).expect("checked by the caller");
        if !(0..=1).contains(&p.api_version) {
            return self.fail_closed("unsupported SaslHandshake version");
        }
        let mut body = frame.clone();
        let key = ApiKey::SaslHandshake;
        let req = RequestHeader::decode(&mut body, key.request_header_version(p.api_version))
            .ok()
            .and_then(|_| SaslHandshakeRequest::decode(&mut body, p.api_version).ok());
        let Some(req) = req else {
            return self.fail_closed("malformed SaslHandshake request");
        };
        let wanted = req.mechanism.to_string();
        let mut r = SaslHandshakeResponse::default();
        r.mechanisms = sasl
            .mechanisms
            .iter()
            .map(|m| StrBytes::from_string(m.clone()))
            .collect();
        let answer = |r: SaslHandshakeResponse| Answer::Kafka {
            api_key: key,
            version: p.api_version,
            correlation_id: p.correlation_id,
            response: Box::new(ResponseKind::SaslHandshake(r)),
        };
        let refusal = if !sasl.mechanisms.contains(&wanted) {
            // The mechanism itself is logged (clipped) as the `mechanism` field.
            Some("mechanism not enabled on this listener".to_owned())
        } else if let Some(prev) = reauth.as_ref().filter(|p| p.mechanism != wanted) {
            Some(format!(
                "re-authentication changed the mechanism (was {})",
                prev.mechanism
            ))
        } else if reauth.is_some() && p.api_version == 0 {
            Some("re-authentication needs SaslHandshake v1".to_owned())
        } else {
            None
        };
        if let Some(reason) = refusal {
            r.error_code = ResponseError::UnsupportedSaslMechanism.code();
            self.failed(Some(&wanted), None, &reason);
            return Step::Fail(Some(answer(r)));
        }
        let mech = match ScramMechanism::from_name(&wanted) {
            Some(m) => Mechanism::Scram(Box::new(ScramServer::new(m))),
            None => Mechanism::Plain,
        };
        self.state = State::Exchange {
            name: wanted,
            mech,
            raw: p.api_version == 0,
            reauth,
        };
        Step::Reply(answer(r))
    }

    /// One token of the exchange: `Ok((token to send, session lifetime ms))`, or the message
    /// the client is told (Kafka's text; the log gets the precise reason).
    #[allow(clippy::too_many_arguments)]
    fn exchange(
        &mut self,
        token: &[u8],
        name: &str,
        mech: Mechanism,
        raw: bool,
        reauth: Option<Previous>,
        sasl: &ListenerSasl,
        broker: &Broker,
        reauth_max: Option<Duration>,
    ) -> Result<(Vec<u8>, i64), String> {
        let (user, reply) = match mech {
            Mechanism::Plain => {
                match plain::authenticate(token, |u| sasl.plain_users.get(u).map(String::as_str)) {
                    Ok(user) => (user, Vec::new()),
                    Err(e) => {
                        let user = plain_user(token);
                        self.failed(Some(name), user.as_deref(), &e.to_string());
                        return Err(e.to_string());
                    }
                }
            }
            Mechanism::Scram(mut server) => {
                let m = server.mechanism();
                let mut user_seen = None;
                let step = server.step(token, |u| {
                    user_seen = Some(u.to_owned());
                    broker.scram_credential(u, m)
                });
                match step {
                    Ok(ScramStep::Continue(challenge)) => {
                        self.state = State::Exchange {
                            name: name.to_owned(),
                            mech: Mechanism::Scram(server),
                            raw,
                            reauth,
                        };
                        return Ok((challenge, 0));
                    }
                    Ok(ScramStep::Done { user, server_final }) => (user, server_final),
                    Err(e) => {
                        self.failed(Some(name), user_seen.as_deref(), &e.to_string());
                        return Err(format!(
                            "Authentication failed during authentication due to invalid credentials with SASL mechanism {name}"
                        ));
                    }
                }
            }
        };
        let principal = Arc::new(Principal::user(user));
        let m = crate::metrics::global();
        if let Some(prev) = &reauth {
            if prev.principal != principal {
                let msg = format!(
                    "Cannot change principals during re-authentication from {}: {}",
                    prev.principal, principal
                );
                self.failed(Some(name), Some(&principal.name), &msg);
                return Err(msg);
            }
            crate::metrics::inc(&m.kafka_reauthentications, 1);
        }
        crate::metrics::inc(&m.kafka_authentications, 1);
        self.principal = principal;
        self.state = State::Authenticated {
            mechanism: Some(name.to_owned()),
            expires: reauth_max.map(|d| Instant::now() + d),
        };
        let lifetime = reauth_max.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Ok((reply, lifetime))
    }

    /// A request out of order: counted and logged as a failed authentication, closed at once.
    fn fail_closed(&mut self, reason: &str) -> Step {
        self.failed(None, None, reason);
        Step::Close(reason.to_owned())
    }

    /// Counts and logs (rate-limited per address) one failed authentication. The client's
    /// mechanism and user name are cut to a printable 128 characters for the log.
    fn failed(&self, mechanism: Option<&str>, user: Option<&str>, reason: &str) {
        let clip = |s: &str| -> String {
            s.chars()
                .take(128)
                .map(|c| if c.is_control() { '?' } else { c })
                .collect()
        };
        let mechanism = mechanism.map(clip);
        let user = user.map(clip);
        let m = crate::metrics::global();
        crate::metrics::inc(&m.kafka_authentication_failures, 1);
        if warn_allowed(self.peer.ip()) {
            warn!(
                peer = %self.peer,
                listener = %self.listener,
                mechanism = mechanism.as_deref().unwrap_or(""),
                user = user.as_deref().unwrap_or(""),
                reason,
                "failed authentication"
            );
        }
    }
}

/// The user name of a PLAIN message, for the log (never the password).
fn plain_user(token: &[u8]) -> Option<String> {
    let mut parts = token.split(|b| *b == 0);
    let _authzid = parts.next()?;
    let user = parts.next()?;
    let user = std::str::from_utf8(user).ok()?;
    Some(user.chars().take(256).collect())
}

fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|_| format!("unknown ({key})"), |k| format!("{k:?}"))
}

fn size_prefixed(token: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + token.len());
    b.put_u32(u32::try_from(token.len()).expect("tokens are small"));
    b.put_slice(token);
    b.freeze()
}

/// At most one failed-authentication WARN per address per second: a client hammering wrong
/// passwords over many connections cannot flood the log (the metric still counts each).
pub(crate) fn warn_allowed(ip: IpAddr) -> bool {
    static LIMIT: crate::telemetry::WarnLimiter<IpAddr> =
        crate::telemetry::WarnLimiter::new(Duration::from_secs(1), 4096);
    LIMIT.allow(ip)
}
