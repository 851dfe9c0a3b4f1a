//! The 2181 listener: accepts with a permit (at most `zk_sessions_max` connections) and runs
//! each connection in a `zk_conn{peer}` span. Also runs the node's session liveness: touching
//! the sessions connected here, and, on the controller leader's node only, expiring sessions
//! nobody touched within their timeout and carrying out topic delete markers (`janitor`).
//! With `zk.secure.listen` a second port speaks ZooKeeper over TLS (ZooKeeper's
//! `secureClientPort`; stores from `zk.ssl.*`, else `ssl.*`, reloaded when they change).

use super::four_letter::ServerInfo;
use super::session;
use crate::broker::Broker;
use crate::security::tls::ReloadingConfig;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, field, info, info_span, warn, Instrument};

/// How often connected sessions are touched through Raft (well below the 4 s minimum timeout).
const TOUCH_INTERVAL: Duration = Duration::from_millis(1_000);
/// How often the leader's node looks for expired sessions and delete markers.
const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// State shared by the connections of one node.
#[derive(Debug)]
pub(crate) struct Shared {
    pub broker: Broker,
    /// Sessions connected to this node → the token that kicks their connection.
    sessions: Mutex<HashMap<i64, (u64, CancellationToken)>>,
    next_conn: AtomicU64,
    pub received: AtomicU64,
    pub sent: AtomicU64,
    client_port: u16,
}

impl Shared {
    /// Registers a connected session, kicking an older connection of the same session.
    pub(crate) fn register(&self, session_id: i64) -> (u64, CancellationToken) {
        let token = CancellationToken::new();
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.sessions.lock() {
            if let Some((_, old)) = m.insert(session_id, (conn, token.clone())) {
                old.cancel();
            }
        }
        (conn, token)
    }

    /// Forgets the session's connection unless a newer connection took it over.
    pub(crate) fn unregister(&self, session_id: i64, conn: u64) {
        if let Ok(mut m) = self.sessions.lock() {
            if m.get(&session_id).is_some_and(|(c, _)| *c == conn) {
                m.remove(&session_id);
            }
        }
    }

    fn connected(&self) -> Vec<i64> {
        self.sessions
            .lock()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    pub(crate) fn server_info(&self) -> ServerInfo {
        let img = self.broker.metadata_view();
        let leader = self.broker.controller_id();
        let mode = if img.brokers.len() <= 1 {
            "standalone"
        } else if leader == Some(self.broker.node_id()) {
            "leader"
        } else {
            "follower"
        };
        ServerInfo {
            node_id: self.broker.node_id().0,
            mode,
            zxid: img.applied_index,
            node_count: img.zk.znodes.values().filter(|z| !z.implicit).count()
                + img.topics.len()
                + img.brokers.len()
                + 20,
            connections: self.connected().len(),
            sessions: img.zk.sessions.len(),
            ephemerals: img
                .zk
                .znodes
                .values()
                .filter(|z| z.ephemeral_owner != 0)
                .count(),
            watches: 0,
            received: self.received.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            client_port: self.client_port,
            packet_bytes_max: self.broker.config().limits.zk_packet_bytes_max,
        }
    }
}

/// The bound ZooKeeper listeners: the client port, and the secure (TLS) client port when
/// `zk.secure.listen` is set.
#[derive(Debug)]
pub struct ZkServer {
    listener: TcpListener,
    secure: Option<(TcpListener, Arc<ReloadingConfig>)>,
}

/// Deadline for a TLS handshake on the secure port.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn bind_one(addr: SocketAddr, what: &str) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {what} on {addr}: {e}")))
}

impl ZkServer {
    /// # Errors
    /// An address cannot be bound, or the secure port's key or trust stores do not load.
    pub async fn bind(config: &crate::config::Config) -> io::Result<Self> {
        let listener = bind_one(config.zk_listen, "ZooKeeper listener").await?;
        let secure = match (config.zk_secure_listen, &config.zk_tls) {
            (Some(addr), Some(tls)) => {
                let reloading = ReloadingConfig::new(tls.clone()).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("zk.ssl: {e}"))
                })?;
                let l = bind_one(addr, "ZooKeeper secure listener").await?;
                Some((l, Arc::new(reloading)))
            }
            _ => None,
        };
        Ok(Self { listener, secure })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts until `shutdown`; connections and liveness tasks go into `tracker`.
    pub fn spawn(self, broker: Broker, shutdown: CancellationToken, tracker: &TaskTracker) {
        let client_port = self.listener.local_addr().map_or(0, |a| a.port());
        info!(port = client_port, "ZooKeeper listener ready");
        let shared = Arc::new(Shared {
            broker: broker.clone(),
            sessions: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            client_port,
        });
        // One connection budget for both ports.
        let permits = Arc::new(Semaphore::new(broker.config().limits.zk_sessions_max));
        tracker.spawn(touch_loop(shared.clone(), shutdown.clone()));
        tracker.spawn(sweep_loop(broker, shutdown.clone()));
        if let Some((l, tls)) = self.secure {
            info!(
                port = l.local_addr().map_or(0, |a| a.port()),
                "ZooKeeper secure (TLS) listener ready"
            );
            accept_loop(
                l,
                Some(tls),
                shared.clone(),
                permits.clone(),
                shutdown.clone(),
                tracker,
            );
        }
        accept_loop(self.listener, None, shared, permits, shutdown, tracker);
    }
}

fn accept_loop(
    listener: TcpListener,
    tls: Option<Arc<ReloadingConfig>>,
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) {
    let t2 = tracker.clone();
    tracker.spawn(async move {
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let span = info_span!("zk_conn", %peer, tls = tls.is_some(), session_id = field::Empty);
            let (sh, s) = (shared.clone(), shutdown.clone());
            let m = crate::metrics::global();
            crate::metrics::inc(&m.zk_connections_total, 1);
            let tls = tls.as_ref().map(|t| t.current());
            t2.spawn(
                async move {
                    let _active = crate::metrics::GaugeGuard::new(&m.zk_connections_active);
                    let _ = stream.set_nodelay(true);
                    match tls {
                        None => session::serve(stream, peer.ip(), sh, s).await,
                        Some((config, reload)) => {
                            if let crate::security::tls::Reload::Failed(e) = reload {
                                warn!(error = %e, "ZooKeeper TLS stores changed but do not load; the previous ones stay in use");
                            }
                            let acceptor = tokio_rustls::TlsAcceptor::from(config);
                            let handshake = tokio::select! {
                                _ = s.cancelled() => return,
                                r = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => r,
                            };
                            match handshake {
                                Ok(Ok(tls_stream)) => session::serve(tls_stream, peer.ip(), sh, s).await,
                                Ok(Err(e)) => debug!(error = %e, "ZooKeeper TLS handshake failed"),
                                Err(_) => debug!("ZooKeeper TLS handshake not done in time"),
                            }
                        }
                    }
                    drop(permit);
                }
                .instrument(span),
            );
        }
    });
}

/// Touches the sessions connected to this node, so the leader's node does not expire them.
async fn touch_loop(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(TOUCH_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let ids = shared.connected();
        if ids.is_empty() {
            continue;
        }
        if let Err(e) = shared.broker.zk_touch_sessions(ids).await {
            debug!(error = %e, "session touch failed");
        }
    }
}

/// On the controller leader's node: expires sessions past their timeout, and turns topic
/// delete markers into deletions.
async fn sweep_loop(broker: Broker, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    let mut clock = SessionClock::default();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if !broker.is_controller_leader() {
            clock.clear();
            continue;
        }
        let img = broker.metadata_view();
        let expired = clock.expired(&img.zk.sessions, Instant::now());
        if !expired.is_empty() {
            info!(count = expired.len(), "expiring ZooKeeper sessions");
            if let Err(e) = broker.zk_expire_sessions(expired).await {
                debug!(error = %e, "session expiry failed");
            }
        }
        super::janitor::sweep(&broker, &img).await;
    }
}

/// Session expiry on the controller leader's monotonic clock, like ZooKeeper's leader: a
/// session expires when no touch has been seen for its timeout. Touches are observed as
/// changes of the replicated `last_touch_ms` (which every touch moves), never compared with
/// this node's wall clock, so a skewed clock anywhere cannot expire a live session. A new
/// leader (an empty map) gives every session a full timeout, as ZooKeeper does after an
/// election.
#[derive(Debug, Default)]
struct SessionClock {
    /// session id -> (last_touch_ms seen, when it was seen)
    seen: HashMap<i64, (i64, Instant)>,
}

impl SessionClock {
    fn clear(&mut self) {
        self.seen.clear();
    }

    fn expired(
        &mut self,
        sessions: &std::collections::BTreeMap<i64, crate::metadata::ZkSession>,
        now: Instant,
    ) -> Vec<i64> {
        self.seen.retain(|id, _| sessions.contains_key(id));
        let mut out = Vec::new();
        for (id, s) in sessions {
            let e = self.seen.entry(*id).or_insert((s.last_touch_ms, now));
            if e.0 != s.last_touch_ms {
                *e = (s.last_touch_ms, now);
            }
            let timeout = Duration::from_millis(u64::try_from(s.timeout_ms).unwrap_or(0));
            if now.duration_since(e.1) > timeout {
                out.push(*id);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::ZkSession;
    use std::collections::BTreeMap;

    fn session(touch: i64) -> ZkSession {
        ZkSession {
            password: vec![0; 16],
            timeout_ms: 1000,
            last_touch_ms: touch,
        }
    }

    #[test]
    fn expiry_follows_observed_touches_not_wall_clock_values() {
        let mut c = SessionClock::default();
        let t0 = Instant::now();
        // A touch value far in the past (a node whose clock is behind) is not expired: only
        // time without an observed touch counts.
        let mut sessions = BTreeMap::from([(1, session(5)), (2, session(i64::MAX / 2))]);
        assert!(c.expired(&sessions, t0).is_empty());
        assert!(c
            .expired(&sessions, t0 + Duration::from_millis(900))
            .is_empty());
        // Session 1 is touched (its value moves, even to a lower wall time); 2 is not.
        sessions.insert(1, session(6));
        assert!(c
            .expired(&sessions, t0 + Duration::from_millis(950))
            .is_empty());
        assert_eq!(
            c.expired(&sessions, t0 + Duration::from_millis(1100)),
            vec![2]
        );
        // Session 2 stays expired until the expiry is applied; 1 has its full timeout again.
        assert_eq!(
            c.expired(&sessions, t0 + Duration::from_millis(1900)),
            vec![2]
        );
        assert_eq!(
            c.expired(&sessions, t0 + Duration::from_millis(2000)),
            vec![1, 2]
        );
        // A new leadership starts every session afresh.
        c.clear();
        assert!(c
            .expired(&sessions, t0 + Duration::from_millis(5000))
            .is_empty());
    }
}
