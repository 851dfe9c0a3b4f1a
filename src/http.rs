//! The operations HTTP listener (`http.listen`, default 0.0.0.0:9644): `GET /metrics`
//! (Prometheus text format 0.0.4) and `GET /health` (200 when this node is registered,
//! unfenced, not shutting down and its storage is sound: writable, above the free-space
//! refuse threshold, no corruption; 503 otherwise, with the reasons in the body), and the web
//! console under `/console` ([`console`]: read-only pages, assets embedded).
//!
//! A deliberately small HTTP/1.1 server: one request per connection (`Connection: close`), the
//! request head bounded to [`HEAD_MAX`] bytes and `http.request.head.timeout.ms` (a POST body
//! for the console to [`BODY_MAX`] within the same deadline), the response
//! write to [`IO_DEADLINE`], at most `http.connections.max` connections open. Connections are
//! accepted at once; when the table is full the oldest one still without a complete head is
//! closed to make room ([`admission`]), so idle sockets cannot starve `/health`. Anything but
//! `GET`/`HEAD` of a known path (or a console `POST`) gets 404/405.

mod admission;
mod console;

use crate::broker::Broker;
use crate::controller::ControllerProbe;
use crate::metrics;
use crate::types::NodeId;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

/// Largest request head accepted.
const HEAD_MAX: usize = 8 * 1024;
/// Deadline for writing the response (and for `raftka health`'s whole probe).
const IO_DEADLINE: Duration = Duration::from_secs(5);
/// Deadline for gathering the Raft metrics of one scrape.
const PROBE_DEADLINE: Duration = Duration::from_secs(2);

/// What the endpoints read.
#[derive(Debug, Clone)]
pub struct OpsState {
    pub broker: Broker,
    pub controller: ControllerProbe,
    /// Set when a controlled shutdown starts: `/health` turns 503.
    pub stopping: Arc<AtomicBool>,
    /// Storage faults (free space, failing writes, corruption).
    pub store: crate::storage::Store,
    /// Damaged local replicas.
    pub replicas: Arc<crate::replication::ReplicaManager>,
}

/// A bound operations listener.
#[derive(Debug)]
pub struct HttpServer {
    listener: TcpListener,
}

impl HttpServer {
    /// # Errors
    /// The address cannot be bound.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`.
    pub fn spawn(self, state: OpsState, shutdown: CancellationToken, tracker: &TaskTracker) {
        let addr = self.listener.local_addr().ok();
        info!(addr = ?addr, "HTTP listener ready (/metrics, /health, /console)");
        let limits = &state.broker.config().limits;
        let (head_timeout, table) = (
            limits.http_head_timeout,
            admission::Admission::new(limits.http_connections_max),
        );
        let t2 = tracker.clone();
        tracker.spawn(async move {
            let m = metrics::global();
            loop {
                let stream = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = self.listener.accept() => match r {
                        Ok((s, _)) => s,
                        Err(e) => {
                            warn!(error = %e, "HTTP accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let ticket = match table.admit() {
                    Ok(a) => {
                        if a.evicted {
                            metrics::inc(&m.http_connections_evicted, 1);
                        }
                        a.ticket
                    }
                    Err(admission::Full) => {
                        metrics::inc(&m.http_connections_refused, 1);
                        let _ = stream.set_zero_linger();
                        continue;
                    }
                };
                let state = state.clone();
                t2.spawn(async move {
                    if let Err(e) = serve(stream, &state, &ticket, head_timeout).await {
                        debug!(error = %e, "HTTP connection ended");
                    }
                    drop(ticket);
                });
            }
        });
    }
}

async fn serve(
    mut stream: TcpStream,
    state: &OpsState,
    ticket: &admission::Ticket,
    head_timeout: Duration,
) -> std::io::Result<()> {
    let head = tokio::select! {
        _ = ticket.evicted().cancelled() => {
            let _ = stream.set_zero_linger();
            return Err(std::io::Error::other("evicted: connection table full"));
        }
        r = tokio::time::timeout(head_timeout, read_head(&mut stream)) => r
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head"))??,
    };
    ticket.head_received();
    let (status, content_type, body, head_only) = match parse_request_line(&head) {
        None => (400, "text/plain", "bad request\n".to_owned(), false),
        Some(("POST", target)) if target.starts_with("/console/action/") => {
            let path = target.split('?').next().unwrap_or(target);
            let deadline = tokio::time::Instant::now() + head_timeout;
            match read_body(&mut stream, &head, deadline).await {
                Ok(form) => {
                    let peer = stream
                        .peer_addr()
                        .map(|a| a.ip().to_string())
                        .unwrap_or_default();
                    let (s, ct, b) = console::post(path, &head, &form, &peer, state).await;
                    (s, ct, b, false)
                }
                Err(status) => (status, "text/plain", "bad request body\n".to_owned(), false),
            }
        }
        Some((method, target)) => {
            let head_only = method == "HEAD";
            if method != "GET" && !head_only {
                (405, "text/plain", "method not allowed\n".to_owned(), false)
            } else {
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let peer = stream
                    .peer_addr()
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default();
                let (s, ct, b) = match console::route(path, query, &head, &peer, state).await {
                    Some(r) => r,
                    None => route(path, state).await,
                };
                (s, ct, b, head_only)
            }
        }
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        _ => "Service Unavailable",
    };
    let challenge = if status == 401 {
        "WWW-Authenticate: Basic realm=\"raftka console\", charset=\"UTF-8\"\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{challenge}Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.push_str(&body);
    }
    tokio::time::timeout(IO_DEADLINE, stream.write_all(out.as_bytes()))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "response"))??;
    let _ = stream.shutdown().await;
    Ok(())
}

/// Reads until the blank line that ends the head (bodies are not read: GET has none).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Ok(buf);
        }
        if buf.len() > HEAD_MAX {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
    }
}

/// Largest request body accepted (the console's forms).
const BODY_MAX: usize = 16 * 1024;

/// A request header's value (the first with that name, case-insensitive).
pub(crate) fn header<'h>(head: &'h [u8], name: &str) -> Option<&'h str> {
    let text = std::str::from_utf8(head).ok()?;
    text.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The body of a POST: `Content-Length` bytes (at most [`BODY_MAX`]; 411 without it, 413
/// past it), those that came with the head first, the rest by `deadline`.
async fn read_body(
    stream: &mut TcpStream,
    head: &[u8],
    deadline: tokio::time::Instant,
) -> Result<Vec<u8>, u16> {
    let len: usize = header(head, "content-length")
        .ok_or(411u16)?
        .parse()
        .map_err(|_| 400u16)?;
    if len > BODY_MAX {
        return Err(413);
    }
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| head.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
        .unwrap_or(head.len());
    let mut body = head[end..].to_vec();
    if body.len() > len {
        return Err(400);
    }
    let mut chunk = [0u8; 4096];
    while body.len() < len {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .map_err(|_| 400u16)?
            .map_err(|_| 400u16)?;
        if n == 0 {
            return Err(400);
        }
        body.extend_from_slice(&chunk[..n]);
        if body.len() > len {
            return Err(400);
        }
    }
    Ok(body)
}

/// `METHOD TARGET HTTP/1.x` → (method, target: the path and any `?query`).
fn parse_request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line_end = head.iter().position(|b| *b == b'\n')?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?.trim_end();
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return None;
    }
    Some((method, target))
}

async fn route(path: &str, state: &OpsState) -> (u16, &'static str, String) {
    match path {
        "/health" | "/healthz" => match health(state) {
            Ok(()) => (200, "text/plain", "ok\n".to_owned()),
            Err(why) => (503, "text/plain", format!("{why}\n")),
        },
        "/metrics" => (
            200,
            "text/plain; version=0.0.4",
            render_metrics(state).await,
        ),
        _ => (
            404,
            "text/plain",
            "not found (try /metrics, /health or /console)\n".to_owned(),
        ),
    }
}

/// Healthy: serving, registered and unfenced in the applied metadata, and its storage
/// writable, not nearly full, not corrupt (every storage problem is listed, one per line).
fn health(state: &OpsState) -> Result<(), String> {
    if state.stopping.load(Ordering::Acquire) {
        return Err("shutting down".into());
    }
    let problems = storage_problems(state);
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let image = state.broker.metadata_view();
    let id = state.broker.node_id();
    if image.cluster_id.is_none() {
        return Err("cluster not initialised yet".into());
    }
    match image.brokers.get(&id) {
        None => Err(format!("broker {id} not registered yet")),
        Some(b) if b.fenced => Err(format!("broker {id} is fenced")),
        Some(_) => Ok(()),
    }
}

/// Reasons the storage needs attention (each one line; empty when healthy).
fn storage_problems(state: &OpsState) -> Vec<String> {
    let mut out = Vec::new();
    let disk = state.store.disk().snapshot();
    if disk.level == crate::storage::DiskLevel::Full {
        out.push(format!(
            "log dir nearly full: {} bytes free, below log.dir.free.bytes.min = {}; appends are refused",
            disk.free_bytes, disk.limits.min_bytes
        ));
    }
    let health = state.store.health();
    if let Some(f) = health.write_fault() {
        out.push(format!(
            "storage writes failing for {} s{}: {}",
            f.since.elapsed().as_secs(),
            if f.no_space { " (no space left)" } else { "" },
            f.error
        ));
    }
    if let Some(e) = state.store.wal().last_error() {
        out.push(format!("WAL fsync failing: {e}"));
    }
    for c in health.corruptions() {
        if c.cf == crate::storage::CF_PART_LOG && c.file.is_none() {
            continue; // a bad batch: shown with its partition below
        }
        out.push(format!(
            "corrupt data in {} ({}): {}",
            c.cf,
            c.file.as_deref().unwrap_or("file unknown"),
            c.error
        ));
    }
    if let Some(r) = health.rebuild_reason() {
        out.push(format!("restarting to rebuild the partition log: {r}"));
    }
    for (topic, partition, d, leads) in state.replicas.damaged() {
        let to = d.to.map_or_else(|| "end".to_owned(), |t| t.to_string());
        let what = match d.kind {
            crate::replication::DamageKind::Lost => "lost to corrupt storage".to_owned(),
            crate::replication::DamageKind::Corrupt(r) => format!("corrupt ({r})"),
        };
        let action = if leads {
            "leader: KAFKA_STORAGE_ERROR there until an in-sync replica takes over"
        } else {
            "follower: repairing from the leader"
        };
        out.push(format!(
            "replica {topic}-{partition} offsets {}..{to} {what}; {action}",
            d.from
        ));
    }
    out
}

/// Storage gauges and counters (from the store's own state, at scrape time).
/// A Prometheus label value: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Consumer lag of the groups coordinated here: per group, topic and partition the committed
/// offset and the lag to the high watermark, and per group the total lag.
fn render_consumer_lag(out: &mut String, lags: &[crate::broker::PartitionLag]) {
    let series = [
        (
            "raftka_consumer_group_committed_offset",
            "Committed offset of a group coordinated by this node, per partition.",
        ),
        (
            "raftka_consumer_group_lag",
            "Records between a group's committed offset and the partition's high watermark.",
        ),
    ];
    for (i, (name, help)) in series.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for l in lags {
            let v = if i == 0 { Some(l.committed) } else { l.lag() };
            if let Some(v) = v {
                let _ = writeln!(
                    out,
                    "{name}{{group=\"{}\",topic=\"{}\",partition=\"{}\"}} {v}",
                    label(&l.group),
                    label(&l.topic),
                    l.partition
                );
            }
        }
    }
    let name = "raftka_consumer_group_lag_sum";
    let _ = writeln!(
        out,
        "# HELP {name} A group's lag summed over its partitions (those with a known high watermark)."
    );
    let _ = writeln!(out, "# TYPE {name} gauge");
    let mut sums = std::collections::BTreeMap::<&str, i64>::new();
    for l in lags {
        if let Some(v) = l.lag() {
            *sums.entry(l.group.as_str()).or_default() += v;
        }
    }
    for (g, v) in sums {
        let _ = writeln!(out, "{name}{{group=\"{}\"}} {v}", label(g));
    }
}

fn render_storage_metrics(out: &mut String, state: &OpsState) {
    let disk = state.store.disk().snapshot();
    gauge(
        out,
        "raftka_log_dir_free_bytes",
        "Free bytes of the log dir's filesystem (last probe).",
        disk.free_bytes,
    );
    gauge(
        out,
        "raftka_log_dir_total_bytes",
        "Size of the log dir's filesystem.",
        disk.total_bytes,
    );
    gauge(
        out,
        "raftka_log_dir_free_bytes_min",
        "Appends are refused below this many free bytes (log.dir.free.bytes.min, resolved).",
        disk.limits.min_bytes,
    );
    gauge(
        out,
        "raftka_log_dir_free_bytes_warn",
        "A warning is logged below this many free bytes (log.dir.free.bytes.warn, resolved).",
        disk.limits.warn_bytes,
    );
    gauge(
        out,
        "raftka_log_dir_appends_refused",
        "1 while appends are refused for lack of space.",
        u8::from(disk.level == crate::storage::DiskLevel::Full),
    );
    let health = state.store.health();
    gauge(
        out,
        "raftka_storage_writes_failing",
        "1 while storage writes fail (cleared by the next successful write).",
        u8::from(health.write_fault().is_some()),
    );
    gauge(
        out,
        "raftka_partitions_damaged",
        "Local replicas with a damaged (corrupt or lost) range of offsets.",
        state.replicas.damaged().len(),
    );
    let counters = [
        (
            "raftka_storage_write_errors_total",
            "Failed storage writes.",
            health.write_errors(),
        ),
        (
            "raftka_wal_fsync_failures_total",
            "Failed WAL fsyncs (the writes they covered are never acknowledged).",
            state.store.wal().failures(),
        ),
        (
            "raftka_storage_corruption_reports_total",
            "Reads that found corrupt data (RocksDB checksum or batch CRC).",
            health.corruption_reports(),
        ),
    ];
    for (name, help, v) in counters {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {v}");
    }
}

fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {value}");
}

/// The registry plus gauges read from the node's state now.
async fn render_metrics(state: &OpsState) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let node = state.broker.node_id();
    let image = state.broker.metadata_view();
    gauge(&mut out, "raftka_node_id", "This node's id.", node);
    gauge(
        &mut out,
        "raftka_healthy",
        "1 when /health answers 200.",
        u8::from(health(state).is_ok()),
    );
    // Partitions, from the applied metadata.
    let (mut replicas, mut leaders, mut under, mut under_min, mut offline, mut total) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let live = |n: &NodeId| image.brokers.get(n).is_some_and(|b| !b.fenced);
    for t in image.topics.values() {
        let min_isr: usize = state
            .broker
            .topic_config_value(t, "min.insync.replicas")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        for p in &t.partitions {
            total += 1;
            if p.leader.is_none_or(|l| !live(&l)) {
                offline += 1;
            }
            if p.replicas.contains(&node) {
                replicas += 1;
            }
            if p.leader == Some(node) {
                leaders += 1;
                if p.isr.len() < p.replicas.len() {
                    under += 1;
                }
                if p.isr.len() < min_isr {
                    under_min += 1;
                }
            }
        }
    }
    gauge(
        &mut out,
        "raftka_topics",
        "Topics in the cluster.",
        image.topics.len(),
    );
    gauge(
        &mut out,
        "raftka_partitions",
        "Partitions in the cluster.",
        total,
    );
    gauge(
        &mut out,
        "raftka_partition_replicas",
        "Partition replicas hosted on this node.",
        replicas,
    );
    gauge(
        &mut out,
        "raftka_partition_leaders",
        "Partitions this node leads.",
        leaders,
    );
    gauge(
        &mut out,
        "raftka_under_replicated_partitions",
        "Partitions led here whose ISR is smaller than the replica set.",
        under,
    );
    gauge(
        &mut out,
        "raftka_under_min_isr_partitions",
        "Partitions led here whose ISR is below min.insync.replicas.",
        under_min,
    );
    gauge(
        &mut out,
        "raftka_offline_partitions",
        "Partitions in the cluster without a live leader.",
        offline,
    );
    let txn = state.broker.transaction_gauges();
    gauge(
        &mut out,
        "raftka_open_transactions",
        "Transactions open on partitions led here (each partition counts its own).",
        txn.open_transactions,
    );
    gauge(
        &mut out,
        "raftka_partitions_lso_behind_hw",
        "Partitions led here whose last stable offset is below the high watermark.",
        txn.partitions_lso_behind_hw,
    );
    gauge(
        &mut out,
        "raftka_lso_lag_max",
        "Largest high watermark minus last stable offset over the partitions led here.",
        txn.lso_lag_max,
    );
    let (coordinated_open, coordinated_ids) = state.broker.txn().gauges();
    gauge(
        &mut out,
        "raftka_txn_coordinator_open_transactions",
        "Transactions open or ending that this node coordinates.",
        coordinated_open,
    );
    gauge(
        &mut out,
        "raftka_txn_coordinator_transactional_ids",
        "Transactional ids held by this node's transaction coordinator.",
        coordinated_ids,
    );
    let (brokers, fenced) = image
        .brokers
        .values()
        .fold((0u64, 0u64), |(a, f), b| (a + 1, f + u64::from(b.fenced)));
    gauge(&mut out, "raftka_brokers", "Registered brokers.", brokers);
    gauge(
        &mut out,
        "raftka_brokers_fenced",
        "Registered brokers currently fenced.",
        fenced,
    );
    // Raft.
    if let Ok(m) = tokio::time::timeout(PROBE_DEADLINE, state.controller.metrics()).await {
        gauge(&mut out, "raftka_raft_term", "Current Raft term.", m.term);
        gauge(
            &mut out,
            "raftka_raft_leader",
            "Node id of the Raft (controller) leader, -1 if unknown.",
            m.leader.map_or(-1, |l| l.0),
        );
        gauge(
            &mut out,
            "raftka_raft_is_leader",
            "1 if this node leads the controller quorum.",
            u8::from(m.is_leader),
        );
        let idx = |v: Option<u64>| v.map_or(-1, |i| i64::try_from(i).unwrap_or(i64::MAX));
        gauge(
            &mut out,
            "raftka_raft_last_log_index",
            "Last Raft log index on this node.",
            idx(m.last_log_index),
        );
        gauge(
            &mut out,
            "raftka_raft_commit_index",
            "Raft commit index known to this node.",
            idx(m.committed_index),
        );
        gauge(
            &mut out,
            "raftka_raft_applied_index",
            "Raft index applied to the metadata image.",
            idx(m.last_applied_index),
        );
        gauge(
            &mut out,
            "raftka_raft_voters",
            "Voters in the Raft membership.",
            m.voters.len(),
        );
    }
    // Groups coordinated here (absent while a coordinator partition loads).
    if let Ok(groups) = state.broker.groups().list_groups() {
        let name = "raftka_groups";
        let _ = writeln!(
            out,
            "# HELP {name} Consumer groups coordinated by this node, by state."
        );
        let _ = writeln!(out, "# TYPE {name} gauge");
        let mut by_state = std::collections::BTreeMap::<&str, u64>::new();
        for g in &groups {
            *by_state.entry(g.state.as_str()).or_default() += 1;
        }
        for (s, n) in by_state {
            let _ = writeln!(out, "{name}{{state=\"{s}\"}} {n}");
        }
    }
    render_consumer_lag(&mut out, &state.broker.consumer_lag().await);
    render_storage_metrics(&mut out, state);
    gauge(
        &mut out,
        "raftka_zk_sessions",
        "ZooKeeper-facade sessions in the cluster (replicated).",
        image.zk.sessions.len(),
    );
    metrics::global().render(&mut out, |k| {
        kafka_protocol::messages::ApiKey::try_from(k)
            .ok()
            .map(|a| format!("{a:?}"))
    });
    out
}

/// `raftka health`: GET `url`, true on a 200 answer. For container health checks.
///
/// # Errors
/// A message for anything but 200.
pub async fn probe_health(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("unsupported URL {url:?} (http:// only)"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let fut = async {
        let mut s = TcpStream::connect(authority)
            .await
            .map_err(|e| format!("connect {authority}: {e}"))?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut resp = Vec::new();
        s.take(64 * 1024)
            .read_to_end(&mut resp)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&resp);
        let status = text.split(' ').nth(1).unwrap_or("");
        if status == "200" {
            Ok(())
        } else {
            let body = text.split("\r\n\r\n").nth(1).unwrap_or("").trim();
            Err(format!("{authority}{path}: HTTP {status} {body}"))
        }
    };
    tokio::time::timeout(IO_DEADLINE, fut)
        .await
        .map_err(|_| format!("{url}: timed out"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_lag_series_with_escaped_labels() {
        let l = |group: &str, partition, committed, end| crate::broker::PartitionLag {
            group: group.into(),
            topic: "t".into(),
            partition,
            committed,
            end,
        };
        let mut out = String::new();
        render_consumer_lag(
            &mut out,
            &[
                l("g\"1", 0, 40, Some(100)),
                l("g\"1", 1, 7, None),
                l("h", 0, 9, Some(5)),
            ],
        );
        assert!(
            out.contains(
                "raftka_consumer_group_lag{group=\"g\\\"1\",topic=\"t\",partition=\"0\"} 60\n"
            ),
            "{out}"
        );
        assert!(out.contains("raftka_consumer_group_committed_offset{group=\"g\\\"1\",topic=\"t\",partition=\"1\"} 7\n"));
        assert!(
            !out.contains("partition=\"1\"} 7\nraftka_consumer_group_lag{"),
            "no lag without an end"
        );
        assert!(
            out.contains("raftka_consumer_group_lag{group=\"h\",topic=\"t\",partition=\"0\"} 0\n")
        );
        assert!(out.contains("raftka_consumer_group_lag_sum{group=\"g\\\"1\"} 60\n"));
        assert!(out.contains("raftka_consumer_group_lag_sum{group=\"h\"} 0\n"));
    }

    #[test]
    fn request_line_parsing() {
        assert_eq!(
            parse_request_line(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(("GET", "/metrics?x=1"))
        );
        assert_eq!(
            parse_request_line(b"GET /health HTTP/1.0\n\n"),
            Some(("GET", "/health"))
        );
        assert_eq!(parse_request_line(b"GET /health\r\n\r\n"), None);
        assert_eq!(parse_request_line(b"GET / SMTP/1.0\r\n\r\n"), None);
        assert_eq!(parse_request_line(b"\xff\xfe / HTTP/1.1\r\n"), None);
        assert_eq!(parse_request_line(b"no newline"), None);
    }
}
