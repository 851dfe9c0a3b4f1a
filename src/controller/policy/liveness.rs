//! Broker liveness (KRaft-style heartbeats, carried by `ReplicaService.Heartbeat`): every
//! broker heartbeats to the controller (Raft) leader every `broker.heartbeat.interval.ms`; the
//! leader keeps a last-seen map in memory and proposes `FenceBroker` for a registered broker
//! silent for `broker.session.timeout.ms` (which moves leadership off it and drops it from
//! ISRs). A fenced broker that is alive re-registers (`node::register_loop`). Nothing but
//! `FenceBroker` is proposed from here, so heartbeats cost no Raft writes.
//!
//! Fast crash detection: a broker that missed two heartbeats is probed with a TCP connect to
//! its node-to-node address. A refused connection means no process listens there (it crashed
//! or is restarting; the host answered), so it is fenced at once instead of after the whole
//! session timeout. A timeout proves nothing (the network may be cut) and waits for the
//! session to expire. Fencing early is always safe: it only moves leadership to in-sync
//! replicas and shrinks ISRs, and a live broker re-registers.
//!
//! A node that does not lead looks every `LEADERSHIP_POLL` (25 ms) whether it now does; a new
//! controller leader probes every broker at once, so a crash that took the previous controller
//! leader (and its partitions' leadership) is fenced right after the Raft election.
//!
//! Coordinator lease ([`Lease`]): a node cut off from the controller quorum keeps its last
//! image, so it still believes it leads the partitions it led and would answer OffsetFetch
//! from a coordinator state the new coordinator has moved past (a consume–transform–produce
//! client resuming from such offsets processes its input twice; Jepsen, partition seed 1000).
//! The heartbeat loop renews a lease after a heartbeat the leader took (sent at `S`), a read
//! barrier (the quorum confirmed; this node's image at least as new as the leader's commit)
//! and an image in which this node is registered and not fenced: valid until
//! `S + session timeout - heartbeat interval`. The leader fences a broker only after a whole
//! session without its heartbeats, each received after it was sent, so the lease ends before
//! another node can be made coordinator of what this one led; the controller leader itself
//! renews on the read barrier alone (a new leader needs an election plus a session to fence
//! it). Reads that must not be stale (OffsetFetch) need the lease.

use crate::controller::ControllerHandle;
use crate::metadata::MetadataCommand;
use crate::rpc::pb::replica::replica_service_client::ReplicaServiceClient;
use crate::rpc::pb::replica::HeartbeatRequest;
use crate::rpc::PeerPool;
use crate::types::NodeId;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

/// Heartbeat cadence while this node holds no coordinator lease.
const LEASE_RETRY: Duration = Duration::from_millis(200);
/// Deadline of the TCP probe of an overdue broker.
const PROBE_DEADLINE: Duration = Duration::from_millis(300);
/// Deadline of one `FenceBroker` proposal.
const PROPOSE_DEADLINE: Duration = Duration::from_secs(5);
/// How often a node that does not lead the controller looks whether it now does: a new
/// controller leader starts probing (and fencing a crashed previous leader) within this.
const LEADERSHIP_POLL: Duration = Duration::from_millis(25);

/// Liveness settings, read from the broker properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessConfig {
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
}

impl LivenessConfig {
    /// `broker.session.timeout.ms` and `broker.heartbeat.interval.ms`, as validated by
    /// `Config` (the interval is at most a third of the timeout, so one lost heartbeat never
    /// fences a broker).
    pub fn from_config(r: &crate::config::ReplicationConfig) -> Self {
        Self {
            session_timeout: r.broker_session_timeout,
            heartbeat_interval: r.broker_heartbeat_interval,
        }
    }
}

/// Until when this node may answer as coordinator from its own image (module docs).
#[derive(Debug)]
pub struct Lease {
    base: Instant,
    /// Ms after `base` until which the lease holds; 0: never renewed.
    until_ms: AtomicU64,
}

impl Default for Lease {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            until_ms: AtomicU64::new(0),
        }
    }
}

impl Lease {
    /// Extends the lease to `until` (never shortens it).
    pub fn renew(&self, until: Instant) {
        let ms = u64::try_from(until.saturating_duration_since(self.base).as_millis())
            .unwrap_or(u64::MAX);
        self.until_ms.fetch_max(ms, Ordering::AcqRel);
    }

    pub fn holds(&self) -> bool {
        self.holds_at(Instant::now())
    }

    fn holds_at(&self, now: Instant) -> bool {
        let now_ms =
            u64::try_from(now.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX);
        now_ms < self.until_ms.load(Ordering::Acquire)
    }
}

/// The last-seen map (meaningful only while this node leads the controller).
#[derive(Debug)]
pub struct Liveness {
    local: NodeId,
    config: LivenessConfig,
    is_controller_leader: AtomicBool,
    last_seen: Mutex<HashMap<NodeId, Instant>>,
    lease: std::sync::Arc<Lease>,
}

impl Liveness {
    pub fn new(local: NodeId, config: LivenessConfig) -> Self {
        Self {
            local,
            config,
            is_controller_leader: AtomicBool::new(false),
            last_seen: Mutex::new(HashMap::new()),
            lease: std::sync::Arc::new(Lease::default()),
        }
    }

    /// This node's coordinator lease (renewed by [`run_heartbeats`]).
    pub fn lease(&self) -> std::sync::Arc<Lease> {
        self.lease.clone()
    }

    /// Wall-clock ms of `node`'s last heartbeat seen here (meaningful on the leader).
    pub fn last_seen_ms(&self, node: NodeId) -> Option<i64> {
        let seen = *self.last_seen.lock().ok()?.get(&node)?;
        let ago = i64::try_from(seen.elapsed().as_millis()).unwrap_or(i64::MAX);
        Some(crate::types::now_ms().saturating_sub(ago))
    }

    pub fn config(&self) -> LivenessConfig {
        self.config
    }

    /// Records a heartbeat; false if this node is not the controller leader.
    pub fn record(&self, node: NodeId) -> bool {
        self.record_at(node, Instant::now())
    }

    fn record_at(&self, node: NodeId, at: Instant) -> bool {
        if !self.is_controller_leader.load(Ordering::Acquire) {
            return false;
        }
        if let Ok(mut m) = self.last_seen.lock() {
            m.insert(node, at);
        }
        true
    }

    /// Unfenced brokers (other than this node) silent for longer than the session timeout.
    /// A broker seen for the first time (just registered or unfenced) gets a full session;
    /// fenced brokers are forgotten, so a re-registration starts a fresh session.
    fn expired(&self, unfenced: impl Iterator<Item = NodeId>, now: Instant) -> Vec<NodeId> {
        let Ok(mut m) = self.last_seen.lock() else {
            return Vec::new();
        };
        let unfenced: Vec<NodeId> = unfenced.filter(|n| *n != self.local).collect();
        m.retain(|n, _| unfenced.contains(n));
        let mut out = Vec::new();
        for n in unfenced {
            let seen = *m.entry(n).or_insert(now);
            if now.duration_since(seen) > self.config.session_timeout {
                out.push(n);
            }
        }
        out
    }

    /// Unfenced brokers silent for more than two heartbeat intervals (a subset of what
    /// `expired` will return once the session runs out). Call after `expired`.
    fn overdue(&self, now: Instant) -> Vec<NodeId> {
        let Ok(m) = self.last_seen.lock() else {
            return Vec::new();
        };
        let late = self.config.heartbeat_interval * 2;
        m.iter()
            .filter(|(n, seen)| **n != self.local && now.duration_since(**seen) > late)
            .map(|(n, _)| *n)
            .collect()
    }
}

/// True if a TCP connect to `addr` is refused (nothing listens: the process is gone). Timeouts
/// and other errors are not proof of anything and give false.
async fn connection_refused(addr: &str) -> bool {
    matches!(
        tokio::time::timeout(PROBE_DEADLINE, tokio::net::TcpStream::connect(addr)).await,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// Sends heartbeats to the controller leader until shutdown.
pub async fn run_heartbeats(
    liveness: std::sync::Arc<Liveness>,
    handle: ControllerHandle,
    addrs: BTreeMap<NodeId, String>,
    peers: PeerPool,
    shutdown: CancellationToken,
) {
    let interval = liveness.config.heartbeat_interval;
    let span = tracing::info_span!("heartbeat", node = %liveness.local);
    async move {
        loop {
            let jitter = Duration::from_millis(
                rand::random::<u64>() % (interval.as_millis() as u64 / 5 + 1),
            );
            // Without a lease (starting, or back from a partition) look again soon.
            let pause = if liveness.lease.holds() {
                interval - interval / 10 + jitter
            } else {
                LEASE_RETRY.min(interval)
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            let Some(leader) = handle.leader_id() else {
                continue;
            };
            let sent = Instant::now();
            if leader == liveness.local {
                renew_lease(&liveness, &handle, sent).await;
                continue;
            }
            // A leader outside the configured voters (added later) is found in the Raft
            // membership, else in its broker registration.
            let addr = addrs
                .get(&leader)
                .cloned()
                .or_else(|| handle.leader_addr())
                .or_else(|| handle.image().broker_raft_addr(leader).map(str::to_owned));
            let Some(addr) = addr else {
                continue;
            };
            let Ok(channel) = peers.channel(&addr) else {
                continue;
            };
            let mut client = ReplicaServiceClient::new(channel);
            let mut req = tonic::Request::new(HeartbeatRequest {
                node_id: liveness.local.0,
            });
            req.set_timeout(interval);
            match tokio::time::timeout(interval, client.heartbeat(req)).await {
                Ok(Ok(_)) => renew_lease(&liveness, &handle, sent).await,
                Ok(Err(s)) => debug!(%leader, code = ?s.code(), "heartbeat refused"),
                Err(_) => debug!(%leader, "heartbeat timed out"),
            }
        }
    }
    .instrument(span)
    .await;
}

/// Renews the coordinator lease from a heartbeat sent at `sent` that the leader took (or, on
/// the leader, from `sent` itself): once a read barrier confirms the quorum and brings this
/// node's image up to the leader's commit, and that image has this broker registered and
/// not fenced (module docs).
async fn renew_lease(liveness: &Liveness, handle: &ControllerHandle, sent: Instant) {
    let config = liveness.config;
    match tokio::time::timeout(config.heartbeat_interval, handle.read_barrier()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return debug!(error = %e, "lease not renewed: read barrier failed"),
        Err(_) => return debug!("lease not renewed: read barrier timed out"),
    }
    let live = handle
        .image()
        .brokers
        .get(&liveness.local)
        .is_some_and(|b| !b.fenced);
    if live {
        liveness
            .lease
            .renew(sent + config.session_timeout - config.heartbeat_interval);
    }
}

/// On the controller leader: fences brokers whose heartbeats stopped. Runs until shutdown.
pub async fn run_monitor(
    liveness: std::sync::Arc<Liveness>,
    handle: ControllerHandle,
    addrs: BTreeMap<NodeId, String>,
    shutdown: CancellationToken,
) {
    let period = liveness.config.heartbeat_interval / 2;
    let span = tracing::info_span!("liveness", node = %liveness.local);
    async move {
        loop {
            let wait = if liveness.is_controller_leader.load(Ordering::Acquire) {
                period
            } else {
                LEADERSHIP_POLL.min(period)
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let leading = handle.leader_id() == Some(liveness.local);
            let was = liveness
                .is_controller_leader
                .swap(leading, Ordering::AcqRel);
            if !leading {
                continue;
            }
            let mut probe_all = false;
            if !was {
                // A new controller leader knows nothing yet: everyone gets a full session,
                // but every broker is probed at once (a crash that also took the previous
                // controller leader is confirmed now rather than two heartbeats later).
                let now = Instant::now();
                let image = handle.image();
                if let Ok(mut m) = liveness.last_seen.lock() {
                    m.clear();
                    m.extend(image.brokers.keys().map(|n| (*n, now)));
                }
                probe_all = true;
            }
            let image = handle.image();
            let live = image
                .brokers
                .values()
                .filter(|b| !b.fenced)
                .map(|b| b.node_id);
            let now = Instant::now();
            let mut dead: Vec<(NodeId, &str)> = liveness
                .expired(live, now)
                .into_iter()
                .map(|n| {
                    (
                        n,
                        "broker missed its heartbeats for the session timeout; fencing it",
                    )
                })
                .collect();
            let suspects: Vec<NodeId> = if probe_all {
                image
                    .brokers
                    .values()
                    .filter(|b| !b.fenced && b.node_id != liveness.local)
                    .map(|b| b.node_id)
                    .collect()
            } else {
                liveness.overdue(now)
            };
            for n in suspects {
                if dead.iter().any(|(d, _)| *d == n) {
                    continue;
                }
                let addr = addrs
                    .get(&n)
                    .cloned()
                    .or_else(|| image.broker_raft_addr(n).map(str::to_owned));
                if let Some(addr) = addr {
                    if connection_refused(&addr).await {
                        dead.push((
                            n,
                            "broker is late and its port refuses connections; fencing it",
                        ));
                    }
                }
            }
            for (node_id, why) in dead {
                // The last-seen map is only evidence while this node leads: a deposed leader
                // (e.g. cut off, so it heard nobody) must not fence healthy brokers.
                if !handle.is_leader() {
                    break;
                }
                warn!(%node_id, "{why}");
                match tokio::time::timeout(
                    PROPOSE_DEADLINE,
                    handle.propose_as_leader(MetadataCommand::FenceBroker { node_id }),
                )
                .await
                {
                    Ok(Ok(_)) => info!(%node_id, "broker fenced"),
                    Ok(Err(e)) => debug!(%node_id, error = %e, "fencing not proposed"),
                    Err(_) => debug!(%node_id, "fencing proposal timed out"),
                }
            }
        }
    }
    .instrument(span)
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_holds_until_renewed_time_and_never_shrinks() {
        let lease = Lease::default();
        let t0 = lease.base;
        assert!(!lease.holds_at(t0), "a lease never renewed does not hold");
        lease.renew(t0 + Duration::from_millis(500));
        assert!(lease.holds_at(t0 + Duration::from_millis(499)));
        assert!(!lease.holds_at(t0 + Duration::from_millis(500)));
        // A renewal from an older heartbeat does not shorten it.
        lease.renew(t0 + Duration::from_millis(100));
        assert!(lease.holds_at(t0 + Duration::from_millis(499)));
        lease.renew(t0 + Duration::from_millis(900));
        assert!(lease.holds_at(t0 + Duration::from_millis(899)));
    }

    #[test]
    fn expiry_and_config() {
        let cfg = LivenessConfig {
            session_timeout: Duration::from_millis(100),
            heartbeat_interval: Duration::from_millis(30),
        };
        let l = Liveness::new(NodeId(1), cfg);
        assert!(!l.record(NodeId(2)), "not the controller leader");
        l.is_controller_leader.store(true, Ordering::Release);
        let now = Instant::now();
        assert!(l.record_at(NodeId(2), now));
        // Node 3 is new: it gets a full session.
        assert!(l
            .expired([NodeId(1), NodeId(2), NodeId(3)].into_iter(), now)
            .is_empty());
        let later = now + Duration::from_millis(200);
        assert!(l.record_at(NodeId(3), later));
        assert_eq!(
            l.expired([NodeId(1), NodeId(2), NodeId(3)].into_iter(), later),
            vec![NodeId(2)]
        );
        // Fenced (absent) brokers are forgotten; back, they get a fresh session.
        assert!(l.expired([NodeId(3)].into_iter(), later).is_empty());
        assert!(l
            .expired([NodeId(2), NodeId(3)].into_iter(), later)
            .is_empty());
    }

    #[test]
    fn overdue_after_two_intervals_only() {
        let cfg = LivenessConfig {
            session_timeout: Duration::from_millis(1000),
            heartbeat_interval: Duration::from_millis(50),
        };
        let l = Liveness::new(NodeId(1), cfg);
        l.is_controller_leader.store(true, Ordering::Release);
        let now = Instant::now();
        assert!(l.record_at(NodeId(2), now));
        assert!(l.record_at(NodeId(3), now + Duration::from_millis(90)));
        let at = now + Duration::from_millis(120);
        assert!(l.expired([NodeId(2), NodeId(3)].into_iter(), at).is_empty());
        assert_eq!(l.overdue(at), vec![NodeId(2)]);
    }

    #[tokio::test]
    async fn refused_connection_is_detected_and_a_listener_is_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let open = listener.local_addr().expect("addr").to_string();
        assert!(!connection_refused(&open).await);
        drop(listener);
        assert!(connection_refused(&open).await);
    }
}
