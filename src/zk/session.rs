//! One client connection: the connect handshake (new session or resume on any node), then
//! frames in order, replies with the image's zxid, pings, watch events after each image change,
//! and closeSession. Malformed input closes the connection; nothing here panics on it.

use super::dispatch::dispatch;
use super::four_letter;
use super::ops::{view, OpCtx};
use super::server::Shared;
use super::watch::Watches;
use crate::codec::jute::{
    xid, ConnectRequest, ConnectResponse, ReplyHeader, Request, WatcherEvent, Writer,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, Span};

/// ZooKeeper's defaults with tickTime 2000: sessions negotiate 2x..20x tickTime.
pub const SESSION_TIMEOUT_MIN_MS: i32 = 4_000;
pub const SESSION_TIMEOUT_MAX_MS: i32 = 40_000;
/// How long the handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline for one write to the client.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames read ahead of processing (per connection).
const READ_AHEAD: usize = 16;
/// How long a resuming client waits for this node to catch up with the zxid it has seen.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads one length-prefixed frame, bounded by `max`.
async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    head: Option<[u8; 4]>,
    max: usize,
) -> Option<Vec<u8>> {
    let head = match head {
        Some(h) => h,
        None => {
            let mut h = [0u8; 4];
            r.read_exact(&mut h).await.ok()?;
            h
        }
    };
    let len = usize::try_from(i32::from_be_bytes(head))
        .ok()
        .filter(|n| *n > 0 && *n <= max)?;
    // Grown as bytes arrive (never sized from the declared length up front), so a client that
    // declares a large packet and trickles it holds only what it sent.
    let mut buf = Vec::new();
    (&mut *r)
        .take(len as u64)
        .read_to_end(&mut buf)
        .await
        .ok()?;
    (buf.len() == len).then_some(buf)
}

/// Writes and flushes (a TLS stream holds what the socket did not take in its own buffer
/// until flushed).
async fn write<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> bool {
    let send = async {
        w.write_all(bytes).await?;
        w.flush().await
    };
    matches!(timeout(WRITE_TIMEOUT, send).await, Ok(Ok(())))
}

fn event_frame(e: &WatcherEvent) -> Vec<u8> {
    let mut w = Writer::new();
    ReplyHeader {
        xid: xid::NOTIFICATION,
        zxid: -1,
        err: 0,
    }
    .write(&mut w);
    e.write(&mut w);
    w.into_frame()
}

/// A negotiated session.
struct Session {
    id: i64,
    timeout_ms: i32,
}

/// Creates or resumes the session; `None` after answering an expired session (or failing).
async fn handshake<W: AsyncWrite + Unpin>(
    shared: &Shared,
    req: &ConnectRequest,
    w: &mut W,
) -> Option<Session> {
    let timeout_ms = req
        .timeout_ms
        .clamp(SESSION_TIMEOUT_MIN_MS, SESSION_TIMEOUT_MAX_MS);
    let broker = &shared.broker;
    let mut images = broker.subscribe_images();
    if req.last_zxid_seen > 0 {
        // The client saw a newer state elsewhere: wait (bounded) until this node has it.
        let need = u64::try_from(req.last_zxid_seen).unwrap_or(u64::MAX);
        let caught_up = timeout(
            CATCH_UP_TIMEOUT,
            images.wait_for(|i| i.applied_index >= need),
        )
        .await;
        if !matches!(caught_up, Ok(Ok(_))) {
            debug!(
                zxid = req.last_zxid_seen,
                "client is ahead of this node; refusing"
            );
            return None;
        }
    }
    let (id, password) = if req.session_id == 0 {
        if broker.metadata_view().zk.sessions.len() >= broker.config().limits.zk_sessions_max {
            debug!("session limit reached");
            return None;
        }
        let id = (i64::from(broker.node_id().0 & 0xff) << 56)
            | (rand::random::<i64>() & 0x00ff_ffff_ffff_ffff);
        let password: Vec<u8> = (0..16).map(|_| rand::random::<u8>()).collect();
        if let Err(e) = broker
            .zk_create_session(id, password.clone(), timeout_ms)
            .await
        {
            debug!(error = %e, "cannot create session");
            return None;
        }
        (id, password)
    } else {
        let image = broker.metadata_view();
        match image.zk.sessions.get(&req.session_id) {
            Some(s) if s.password == req.password => (req.session_id, s.password.clone()),
            _ => {
                // Expired (or wrong password): ZooKeeper answers timeout 0, session 0, and closes.
                let resp = ConnectResponse {
                    protocol_version: 0,
                    timeout_ms: 0,
                    session_id: 0,
                    password: vec![0; 16],
                    read_only: req.read_only.map(|_| false),
                };
                write(w, &resp.encode()).await;
                return None;
            }
        }
    };
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout_ms,
        session_id: id,
        password,
        read_only: req.read_only.map(|_| false),
    };
    if !write(w, &resp.encode()).await {
        return None;
    }
    Some(Session { id, timeout_ms })
}

/// Serves one connection (plain TCP, or TLS on the secure port) until the client leaves, the
/// session ends, or shutdown.
pub(crate) async fn serve<S>(
    stream: S,
    peer_ip: std::net::IpAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(stream);
    let max = shared.broker.config().limits.zk_packet_bytes_max;
    let mut head = [0u8; 4];
    if !matches!(
        timeout(HANDSHAKE_TIMEOUT, r.read_exact(&mut head)).await,
        Ok(Ok(_))
    ) {
        return;
    }
    if four_letter::is_word(head) {
        if let Some(text) = four_letter::answer(head, &shared.server_info()) {
            write(&mut w, text.as_bytes()).await;
        }
        let _ = w.shutdown().await;
        return;
    }
    let Ok(Some(frame)) = timeout(HANDSHAKE_TIMEOUT, read_frame(&mut r, Some(head), max)).await
    else {
        return;
    };
    let Ok(req) = ConnectRequest::decode(&frame) else {
        debug!("malformed connect request");
        return;
    };
    let Some(session) = handshake(&shared, &req, &mut w).await else {
        return;
    };
    Span::current().record("session_id", format!("{:#x}", session.id));
    debug!(timeout_ms = session.timeout_ms, "session established");
    let (conn, kicked) = shared.register(session.id);
    run(&shared, &session, peer_ip, r, w, kicked, shutdown).await;
    shared.unregister(session.id, conn);
}

/// Aborts the reader task when the connection ends (it owns the socket's read half).
struct ReaderGuard(tokio::task::JoinHandle<()>);

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads frames into a bounded channel so the main loop can also watch images and timers.
fn spawn_reader<R: AsyncRead + Unpin + Send + 'static>(
    mut r: R,
    max: usize,
) -> (mpsc::Receiver<Vec<u8>>, ReaderGuard) {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    let handle = tokio::spawn(async move {
        while let Some(frame) = read_frame(&mut r, None, max).await {
            if tx.send(frame).await.is_err() {
                break;
            }
        }
    });
    (rx, ReaderGuard(handle))
}

async fn run<R, W>(
    shared: &Shared,
    session: &Session,
    peer_ip: std::net::IpAddr,
    r: R,
    mut w: W,
    kicked: CancellationToken,
    shutdown: CancellationToken,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let broker = &shared.broker;
    let limits = &broker.config().limits;
    let (mut frames, _reader) = spawn_reader(r, limits.zk_packet_bytes_max);
    let mut images = broker.subscribe_images();
    let mut watches = Watches::new(limits.zk_watches_per_session_max);
    let mut auth = crate::zk::acl::AuthInfo::new(peer_ip);
    let acl_settings = crate::zk::acl::AclSettings::of(broker.config());
    let idle = Duration::from_millis(u64::try_from(session.timeout_ms).unwrap_or(40_000));
    let mut deadline = Instant::now() + idle;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = kicked.cancelled() => return,
            _ = tokio::time::sleep_until(deadline) => {
                debug!("client silent for the session timeout; closing");
                return;
            }
            changed = images.changed() => {
                if changed.is_err() {
                    return;
                }
                let img = images.borrow_and_update().clone();
                if !img.zk.sessions.contains_key(&session.id) {
                    debug!("session expired");
                    return;
                }
                for e in watches.fire(&view(&img, broker.controller_id())) {
                    if !write(&mut w, &event_frame(&e)).await {
                        return;
                    }
                }
            }
            frame = frames.recv() => {
                let Some(frame) = frame else { return };
                deadline = Instant::now() + idle;
                shared.received.fetch_add(1, Ordering::Relaxed);
                let Ok((header, req)) = Request::decode(&frame) else {
                    debug!("malformed request; closing");
                    return;
                };
                let mut ctx = OpCtx { broker, session_id: session.id, watches: &mut watches, path_bytes_max: limits.zk_path_bytes_max, auth: &mut auth, acl: &acl_settings };
                let done = dispatch(&mut ctx, req).await;
                let img = broker.metadata_view();
                // Events caused by this op (or anything before it) precede its reply.
                let mut out = Vec::new();
                for e in done.events.iter().chain(watches.fire(&view(&img, broker.controller_id())).iter()) {
                    out.extend_from_slice(&event_frame(e));
                }
                let mut wr = Writer::new();
                let zxid = i64::try_from(img.applied_index).unwrap_or(i64::MAX);
                ReplyHeader { xid: header.xid, zxid, err: done.reply.err }.write(&mut wr);
                wr.buf.extend_from_slice(&done.reply.body);
                out.extend_from_slice(&wr.into_frame());
                if !write(&mut w, &out).await {
                    return;
                }
                shared.sent.fetch_add(1, Ordering::Relaxed);
                if done.close {
                    let _ = w.shutdown().await;
                    return;
                }
            }
        }
    }
}
