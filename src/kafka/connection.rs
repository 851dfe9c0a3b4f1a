//! One client connection: read size-prefixed frames, decode, dispatch in order, and write the
//! responses in correlation order. Requests are processed one at a time (so appends keep the
//! client's order); responses that complete later (`acks=all`) let the next request proceed,
//! up to `kafka_inflight_per_conn` outstanding.
//!
//! Deadlines: the first complete request within `kafka_first_request_timeout` of accept; the
//! first byte of each later request within `kafka_idle_timeout`; the rest of a started request
//! within `kafka_request_read_timeout` ([`frame_reader`]). A request's bytes are charged to the
//! node's [`RequestBudget`] as they arrive and released once its handler returned: by then
//! Produce has appended its batches, and deferred replies hold no request bytes.
//!
//! Client quotas: after dispatch the request's produce bytes and handling time are recorded
//! (`Broker::record_quota`), a consumer fetch's response bytes in the writer; a throttle goes
//! into `throttle_time_ms` and mutes the connection — its next request waits it out (and a
//! pre-KIP-219 client gets the response only then).

use super::context::{Held, RequestContext};
use super::dispatch;
use super::frame_reader::{self, FrameDeadlines, FrameReadError};
use super::reply::Reply;
use super::request_budget::RequestBudget;
use super::sasl;
use super::throttling;
use crate::broker::fetch_memory::MemoryGrant;
use crate::broker::{Broker, QuotaKind, QuotaSubject};
use crate::codec::kafka::frame::{self, API_VERSIONS_KEY};
use crate::metrics::ProduceStage;
use crate::security::tls::PrincipalMapper;
use crate::security::Principal;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, warn, Instrument};

/// Deadline for each response write.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may keep writing parked responses once shutdown starts.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(1);

struct Outgoing {
    /// When the request frame was fully read (the start of its latency).
    received: Instant,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    reply: Reply,
    /// The client quota throttle the request earned (produce bytes, request time).
    throttle: Duration,
    /// Who sent a consumer fetch: its response bytes count toward `consumer_byte_rate`.
    fetch_quota: Option<QuotaSubject>,
    /// Memory the answer holds until written (a fetch's records, `fetch.response.memory.max.bytes`).
    held: Option<MemoryGrant>,
}

impl Outgoing {
    fn new(api_key: ApiKey, version: i16, correlation_id: i32, reply: Reply) -> Self {
        Self {
            received: Instant::now(),
            api_key,
            version,
            correlation_id,
            reply,
            throttle: Duration::ZERO,
            fetch_quota: None,
            held: None,
        }
    }
}

/// Until when the connection is muted (a client over its quota): shared by the reader, which
/// waits it out before handling the next request, and the writer, which sets it.
type Mute = Arc<std::sync::Mutex<Option<tokio::time::Instant>>>;

fn mute_for(mute: &Mute, d: Duration) {
    let until = tokio::time::Instant::now() + d;
    let mut m = mute.lock().unwrap_or_else(|p| p.into_inner());
    if m.is_none_or(|u| u < until) {
        *m = Some(until);
    }
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error(transparent)]
    Read(#[from] FrameReadError),
    #[error("unknown api key {0}")]
    UnknownApi(i16),
    #[error("unsupported version {1} of api {0:?}")]
    UnsupportedVersion(ApiKey, i16),
    #[error("malformed request: {0}")]
    Decode(String),
    #[error("refused: {0}")]
    Refused(dispatch::Refused),
    #[error("authentication: {0}")]
    Auth(String),
}

/// An authenticator's answer as an outgoing response.
fn answer(a: sasl::Answer) -> Outgoing {
    match a {
        sasl::Answer::Kafka {
            api_key,
            version,
            correlation_id,
            response,
        } => Outgoing::new(api_key, version, correlation_id, Reply::Now(*response)),
        sasl::Answer::Raw(raw) => Outgoing::new(
            ApiKey::SaslAuthenticate,
            0,
            0,
            Reply::Now(ResponseKind::ApiVersions(fallback_marker(raw))),
        ),
    }
}

/// A TLS listener's current server config and principal mapping.
pub(crate) type TlsContext = (Arc<rustls::ServerConfig>, Arc<PrincipalMapper>);

/// Serves one connection until the peer closes, an error occurs, or shutdown. On a TLS
/// listener the handshake comes first, within the first-request deadline.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Broker,
    listener: String,
    budget: RequestBudget,
    shutdown: CancellationToken,
    tls: Option<TlsContext>,
) {
    let _ = stream.set_nodelay(true);
    let m = crate::metrics::global();
    crate::metrics::inc(&m.kafka_connections_total, 1);
    let _active = crate::metrics::GaugeGuard::new(&m.kafka_connections_active);
    let Some((config, mapper)) = tls else {
        let (rd, wr) = stream.into_split();
        serve_io(rd, wr, None, peer, broker, listener, budget, shutdown).await;
        return;
    };
    let deadline = broker.config().limits.kafka_first_request_timeout;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let handshake = tokio::select! {
        _ = shutdown.cancelled() => return,
        r = tokio::time::timeout(deadline, acceptor.accept(stream)) => r,
    };
    let tls_stream = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            crate::metrics::inc(&m.kafka_tls_handshake_failures, 1);
            if sasl::warn_allowed(peer.ip()) {
                warn!(%peer, listener = %listener, error = %e, "TLS handshake failed");
            }
            return;
        }
        Err(_) => {
            crate::metrics::inc(&m.kafka_tls_handshake_failures, 1);
            debug!(%peer, "TLS handshake not done within the first-request deadline");
            return;
        }
    };
    let principal = match crate::security::tls::principal(
        tls_stream.get_ref().1.peer_certificates(),
        &mapper,
    ) {
        Ok(p) => p,
        Err(reason) => {
            crate::metrics::inc(&m.kafka_authentication_failures, 1);
            if sasl::warn_allowed(peer.ip()) {
                warn!(%peer, listener = %listener, reason = %reason, "failed authentication (TLS client certificate)");
            }
            return;
        }
    };
    debug!(%peer, principal = %principal, "TLS connection established");
    let (rd, wr) = tokio::io::split(tls_stream);
    serve_io(
        rd,
        wr,
        Some(principal),
        peer,
        broker,
        listener,
        budget,
        shutdown,
    )
    .await;
}

/// The request loop over any byte stream (plain TCP halves, or TLS).
#[allow(clippy::too_many_arguments)]
async fn serve_io<R, W>(
    mut rd: R,
    wr: W,
    tls_principal: Option<Principal>,
    peer: SocketAddr,
    broker: Broker,
    listener: String,
    budget: RequestBudget,
    shutdown: CancellationToken,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let m = crate::metrics::global();
    let limits = broker.config().limits.clone();
    let (tx, rx) = mpsc::channel::<Outgoing>(limits.kafka_inflight_per_conn);
    let mute: Mute = Arc::default();
    let held = Held::default();
    let writer = tokio::spawn(write_loop(wr, rx, broker.clone(), mute.clone()).in_current_span());
    let accepted = tokio::time::Instant::now();
    let mut first = true;
    let listener_config = broker
        .config()
        .listeners
        .iter()
        .find(|l| l.name == listener);
    let mut session = sasl::Session::new(listener_config, &listener, peer, tls_principal);
    let failed_auth_delay = broker.config().auth.failed_delay;
    let result: Result<(), ConnError> = async {
        loop {
            let deadlines = if first {
                let by = accepted + limits.kafka_first_request_timeout;
                FrameDeadlines {
                    wait_until: by,
                    complete_by: Some(by),
                    read_timeout: limits.kafka_request_read_timeout,
                }
            } else {
                FrameDeadlines {
                    wait_until: tokio::time::Instant::now() + limits.kafka_idle_timeout,
                    complete_by: None,
                    read_timeout: limits.kafka_request_read_timeout,
                }
            };
            // Until it authenticates, a client may send only small frames.
            let frame_max = if session.authenticated() {
                limits.kafka_request_bytes_max
            } else {
                limits
                    .kafka_request_bytes_max
                    .min(broker.config().auth.receive_max)
            };
            let read = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                r = frame_reader::read_frame(&mut rd, &budget, frame_max, deadlines) => r,
            };
            let frame = match read {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(e) => {
                    let counter = match (&e, first) {
                        (FrameReadError::Idle | FrameReadError::Incomplete, true) => {
                            Some(&m.kafka_first_request_timeouts)
                        }
                        (FrameReadError::Idle, false) => Some(&m.kafka_idle_timeouts),
                        (FrameReadError::Incomplete, false) => Some(&m.kafka_request_read_timeouts),
                        _ => None,
                    };
                    if let Some(c) = counter {
                        crate::metrics::inc(c, 1);
                    }
                    return Err(e.into());
                }
            };
            first = false;
            let read_at = Instant::now();
            // A client over its quota is muted: its next request waits out the throttle.
            let muted = mute.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(until) = muted {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep_until(until) => {}
                }
            }
            let size = frame.bytes.len();
            crate::metrics::inc(&m.kafka_bytes_in, 4 + size as u64);
            let out = match session.on_frame(&frame.bytes, &broker) {
                sasl::Step::Dispatch => {
                    let principal = session.principal();
                    let from = Origin {
                        listener: &listener,
                        peer,
                        principal,
                        held: &held,
                    };
                    handle_frame(frame.bytes, &broker, &from, read_at).await?
                }
                sasl::Step::Reply(a) => answer(a),
                sasl::Step::Close(reason) => return Err(ConnError::Auth(reason)),
                sasl::Step::Fail(a) => {
                    // Kafka holds back a failed authentication's answer and close.
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(failed_auth_delay) => {}
                    }
                    if let Some(a) = a {
                        let _ = tx.send(answer(a)).await;
                    }
                    return Err(ConnError::Auth("authentication failed".into()));
                }
            };
            // The handler has returned: its request bytes go back to the budget.
            drop(frame.charge);
            if tx.send(out).await.is_err() {
                return Ok(()); // writer failed; it logged why
            }
        }
    }
    .await;
    drop(tx);
    if let Err(e) = result {
        crate::metrics::inc(&m.kafka_connection_errors, 1);
        debug!(%peer, error = %e, "closing connection");
    }
    if shutdown.is_cancelled() {
        // Answered requests are flushed; a response still parked (a JoinGroup waiting for its
        // rebalance, a long-poll fetch) is dropped after a moment with the connection, so the
        // client retries elsewhere instead of waiting for the node's whole grace period.
        let mut writer = writer;
        if tokio::time::timeout(SHUTDOWN_DRAIN, &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    } else {
        let _ = writer.await;
    }
}

/// Where a request came from: the connection's listener, peer and principal, and its slot
/// for memory an answer holds.
struct Origin<'a> {
    listener: &'a str,
    peer: SocketAddr,
    principal: &'a Arc<Principal>,
    held: &'a Held,
}

/// Decodes one request frame and runs it.
async fn handle_frame(
    mut frame_bytes: Bytes,
    broker: &Broker,
    from: &Origin<'_>,
    read_at: Instant,
) -> Result<Outgoing, ConnError> {
    let Origin {
        listener,
        peer,
        principal,
        held,
    } = *from;
    let received = Instant::now();
    let frame_size = frame_bytes.len();
    let prefix =
        frame::peek_header(&frame_bytes).ok_or(ConnError::Decode("short header".into()))?;
    let Some((api_key, entry)) = dispatch::supported(prefix.api_key) else {
        refusal_seen(peer, &frame_bytes, prefix.api_key, prefix.api_version);
        return Err(ConnError::UnknownApi(prefix.api_key));
    };
    let version = prefix.api_version;
    if version < entry.min || version > entry.max {
        if prefix.api_key == API_VERSIONS_KEY && version > entry.max {
            // KIP-511: answer with a v0 error body so the client can retry lower.
            let raw = frame::api_versions_fallback(prefix.correlation_id, entry.min, entry.max);
            return Ok(Outgoing::new(
                api_key,
                0,
                prefix.correlation_id,
                Reply::Now(ResponseKind::ApiVersions(fallback_marker(raw))),
            ));
        }
        refusal_seen(peer, &frame_bytes, prefix.api_key, version);
        return Err(ConnError::UnsupportedVersion(api_key, version));
    }
    let header = RequestHeader::decode(&mut frame_bytes, api_key.request_header_version(version))
        .map_err(|e| ConnError::Decode(e.to_string()))?;
    let request = RequestKind::decode(api_key, &mut frame_bytes, version)
        .map_err(|e| ConnError::Decode(format!("{api_key:?} v{version}: {e}")))?;
    let client_id = header.client_id.as_ref().map(|c| c.to_string());
    if api_key == ApiKey::Produce {
        crate::metrics::global()
            .produce_stage(ProduceStage::Queue)
            .observe(read_at.elapsed());
    }
    let span = info_span!("kafka_req", api = ?api_key, version, correlation_id = header.correlation_id, client_id = client_id.as_deref().unwrap_or(""));
    let ctx = RequestContext {
        broker: broker.clone(),
        api_version: version,
        listener: listener.to_owned(),
        client_id: client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", peer.ip()),
        principal: principal.clone(),
        held: held.clone(),
    };
    let subject = QuotaSubject {
        user: principal.name.clone(),
        client_id: client_id.unwrap_or_default(),
    };
    let (reply, busy) =
        crate::broker::timed(dispatch::dispatch(ctx, request).instrument(span)).await;
    let reply = reply.map_err(ConnError::Refused)?;
    let mut throttle = Duration::ZERO;
    if api_key == ApiKey::Produce {
        let bytes = 4.0 + frame_size as f64;
        throttle = broker.record_quota(QuotaKind::Produce, &subject, bytes);
    }
    if throttling::request_time_counted(api_key) {
        // Percent of one thread: busy nanoseconds × 100 / 1e9 per second of window.
        let pct = busy.as_secs_f64() * 100.0;
        throttle = throttle.max(broker.record_quota(QuotaKind::Request, &subject, pct));
    }
    Ok(Outgoing {
        received,
        api_key,
        version,
        correlation_id: header.correlation_id,
        reply,
        throttle,
        fetch_quota: (api_key == ApiKey::Fetch).then_some(subject),
        held: held.take(),
    })
}

/// One WARN per client (address and client id) a minute about an unsupported request.
static REFUSAL_WARNINGS: crate::telemetry::WarnLimiter<(std::net::IpAddr, String)> =
    crate::telemetry::WarnLimiter::new(Duration::from_secs(60), 4096);

/// Counts a request of an API or version this node does not serve and says so at WARN, once
/// a minute per client, with what an operator needs to find the client (Kafka closes the
/// connection too, but logs nothing at its default level; the client only sees EOF).
fn refusal_seen(peer: SocketAddr, frame: &[u8], api_key: i16, version: i16) {
    let m = crate::metrics::global();
    crate::metrics::inc(&m.kafka_unsupported_requests, 1);
    let client_id = frame::peek_client_id(frame).unwrap_or_default();
    if REFUSAL_WARNINGS.allow((peer.ip(), client_id.clone())) {
        let (api, supported) = match dispatch::supported(api_key) {
            Some((k, e)) => (format!("{k:?}"), format!("{}..={}", e.min, e.max)),
            None => (
                ApiKey::try_from(api_key)
                    .map(|k| format!("{k:?}"))
                    .unwrap_or_else(|_| "unknown".to_owned()),
                "not served".to_owned(),
            ),
        };
        warn!(
            %peer,
            client_id = %client_id,
            api_key,
            api = %api,
            version,
            supported = %supported,
            "closing the connection: request of an API or version this node does not serve"
        );
    }
}

/// The KIP-511 fallback is pre-encoded; it travels as an ApiVersions response whose
/// `unknown_tagged_fields` carry the raw frame under a key no real response uses.
const RAW_FRAME_TAG: i32 = i32::MIN;

fn fallback_marker(raw: Bytes) -> kafka_protocol::messages::ApiVersionsResponse {
    let mut r = kafka_protocol::messages::ApiVersionsResponse::default();
    r.unknown_tagged_fields.insert(RAW_FRAME_TAG, raw);
    r
}

fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    resp: &ResponseKind,
) -> Result<Bytes, String> {
    if let ResponseKind::ApiVersions(r) = resp {
        if let Some(raw) = r.unknown_tagged_fields.get(&RAW_FRAME_TAG) {
            return Ok(raw.clone());
        }
    }
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header
        .encode(&mut buf, api_key.response_header_version(version))
        .map_err(|e| e.to_string())?;
    resp.encode(&mut buf, version).map_err(|e| e.to_string())?;
    let len = i32::try_from(buf.len() - 4).map_err(|_| "response too large".to_owned())?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Outgoing>,
    broker: Broker,
    mute: Mute,
) {
    let m = crate::metrics::global();
    while let Some(Outgoing {
        received,
        api_key,
        version,
        correlation_id,
        reply,
        mut throttle,
        fetch_quota,
        // Released once the answer is written (the end of this iteration).
        held: _held,
    }) = rx.recv().await
    {
        let mut resp = match reply {
            Reply::None => {
                m.api(api_key as i16).observe(received.elapsed());
                continue;
            }
            Reply::Now(r) => r,
            Reply::Later(h) => match h.await {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    warn!(error = %e, "deferred handler failed; closing connection");
                    return;
                }
            },
        };
        let ready = Instant::now();
        if let Some(subject) = &fetch_quota {
            let bytes = throttling::fetch_bytes(&resp) as f64;
            let t = broker.record_quota(QuotaKind::Fetch, subject, bytes);
            if !t.is_zero() || !throttle.is_zero() {
                // Throttled: no data (what was recorded is taken back, as Kafka does).
                broker.unrecord_quota(QuotaKind::Fetch, subject, bytes);
                throttling::empty_fetch(&mut resp, version, broker.fetch_sessions());
                throttle = throttle.max(t);
            }
        }
        // A handler's own throttle (the controller mutation quota) mutes the connection too.
        let own = throttling::throttle_of(&mut resp, version);
        throttle = throttle.max(Duration::from_millis(u64::try_from(own).unwrap_or(0)));
        if !throttle.is_zero() {
            let ms = i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX);
            throttling::set_throttle(&mut resp, version, ms);
            mute_for(&mute, throttle);
            if !throttling::client_throttles(api_key, version) {
                // A client too old to back off by itself gets its answer after the throttle.
                tokio::time::sleep(throttle).await;
            }
        }
        let bytes = match encode_response(api_key, version, correlation_id, &resp) {
            Ok(b) => b,
            Err(e) => {
                warn!(api = ?api_key, version, error = %e, "cannot encode response; closing connection");
                return;
            }
        };
        // Recorded before the write: a client that has its answer must find it counted.
        m.api(api_key as i16).observe(received.elapsed());
        // Flushed after each response: a TLS stream keeps records it could not send yet in its
        // own buffer, and nothing else would push them out while this task waits for the next
        // response (the client would wait for the rest of this one until its request timeout).
        // For a plain TCP stream the flush is a no-op.
        let write = async {
            wr.write_all(&bytes).await?;
            wr.flush().await
        };
        match tokio::time::timeout(IO_TIMEOUT, write).await {
            Ok(Ok(())) => {
                crate::metrics::inc(&m.kafka_bytes_out, bytes.len() as u64);
                if api_key == ApiKey::Produce {
                    m.produce_stage(ProduceStage::Response)
                        .observe(ready.elapsed());
                }
            }
            _ => return,
        }
    }
    let _ = wr.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A writer that holds bytes until flushed (as a TLS stream holds records it could not
    /// send yet): every response must still reach the peer without a later write.
    #[tokio::test]
    async fn each_response_is_flushed_through_a_buffering_writer() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let buffered = tokio::io::BufWriter::with_capacity(1 << 20, server);
        let (tx, rx) = mpsc::channel::<Outgoing>(4);
        let f = crate::broker::testing::Fixture::new().await;
        let writer = tokio::spawn(write_loop(buffered, rx, f.broker.clone(), Mute::default()));
        let raw = frame::api_versions_fallback(42, 0, 4);
        tx.send(Outgoing::new(
            ApiKey::ApiVersions,
            0,
            42,
            Reply::Now(ResponseKind::ApiVersions(fallback_marker(raw.clone()))),
        ))
        .await
        .expect("writer running");
        let mut client = client;
        let mut got = vec![0u8; raw.len()];
        tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut got))
            .await
            .expect("the response arrives while the writer waits for the next one")
            .expect("read");
        assert_eq!(got, raw.to_vec());
        drop(tx);
        writer.await.expect("writer ends");
    }
}
