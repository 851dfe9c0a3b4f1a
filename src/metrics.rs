//! Process-wide counters and histograms, rendered in the Prometheus text format by
//! [`crate::http`]. Only monotonic counters and latency histograms live here (lock-free
//! atomics, bumped on hot paths); gauges that describe state (partitions, ISR, Raft, groups,
//! sessions) are computed from the node's state at scrape time instead of being mirrored.
//!
//! The registry is a process-global (as Prometheus' default registry is): the numbers describe
//! the process. Several in-process nodes (unit tests) share it.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// Kafka API keys tracked per key (keys at or above this are counted under `other`).
const API_SLOTS: usize = 100;

/// Latency bucket upper bounds, seconds (Prometheus `le`), plus the implicit `+Inf`.
const BUCKETS_S: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A cumulative-on-render latency histogram.
#[derive(Debug)]
pub struct Histogram {
    /// Per-bucket (non-cumulative) counts; the last slot is `+Inf`.
    buckets: [AtomicU64; BUCKETS_S.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BUCKETS_S
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(BUCKETS_S.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Appends `name_bucket`, `name_sum` and `name_count` lines with `labels` (`k="v",...`).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (i, b) in BUCKETS_S.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        cumulative += self.buckets[BUCKETS_S.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// The stages of a produce request, each a histogram of
/// `raftka_produce_stage_duration_seconds{stage=...}` (issue 18: every regression on the
/// produce path shows in the stage it is in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProduceStage {
    /// Frame fully read → handler start (decode, a quota mute, SASL bookkeeping).
    Queue,
    /// One partition's append as leader (validation, producer state, the write batch).
    Append,
    /// `acks=all`: append done → the batch's WAL fsync (group commit) done.
    LeaderFsync,
    /// `acks=all`: fsync done → high watermark past the batch (the followers' fetch, append,
    /// fsync and next fetch).
    Replication,
    /// Response ready → written to the socket (encode, throttle, write).
    Response,
}

impl ProduceStage {
    pub const ALL: [ProduceStage; 5] = [
        ProduceStage::Queue,
        ProduceStage::Append,
        ProduceStage::LeaderFsync,
        ProduceStage::Replication,
        ProduceStage::Response,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ProduceStage::Queue => "queue",
            ProduceStage::Append => "append",
            ProduceStage::LeaderFsync => "leader_fsync",
            ProduceStage::Replication => "replication",
            ProduceStage::Response => "response",
        }
    }
}

/// The process registry.
#[derive(Debug)]
pub struct Metrics {
    api: Vec<Histogram>,
    produce_stages: [Histogram; ProduceStage::ALL.len()],
    pub kafka_bytes_in: AtomicU64,
    pub kafka_bytes_out: AtomicU64,
    pub kafka_connections_total: AtomicU64,
    pub kafka_connections_active: AtomicI64,
    pub kafka_connection_errors: AtomicU64,
    pub kafka_unsupported_requests: AtomicU64,
    pub kafka_quota_throttled_requests: AtomicU64,
    pub kafka_quota_throttle_ms: AtomicU64,
    pub kafka_authentications: AtomicU64,
    pub kafka_authentication_failures: AtomicU64,
    pub kafka_reauthentications: AtomicU64,
    pub kafka_expired_sessions: AtomicU64,
    pub kafka_tls_handshake_failures: AtomicU64,
    pub kafka_tls_reloads: AtomicU64,
    pub isr_shrinks: AtomicU64,
    pub isr_expands: AtomicU64,
    pub truncations_below_hw: AtomicU64,
    /// Damaged replica ranges found by reads (corrupt batch or block).
    pub storage_corruptions: AtomicU64,
    /// Follower repairs (truncate below a damaged range, re-fetch from the leader).
    pub replica_repairs: AtomicU64,
    /// Appends refused because the log dir is below `log.dir.free.bytes.min`.
    pub appends_refused_no_space: AtomicU64,
    pub zk_connections_total: AtomicU64,
    pub zk_connections_active: AtomicI64,
    pub zk_requests: AtomicU64,
    /// Produced batches refused by record validation (corrupt, bomb, keyless, timestamps).
    pub produce_rejected_batches: AtomicU64,
    /// Stored batches whose records failed to decode when read (ListOffsets by timestamp,
    /// the compaction cleaner, the offsets loader).
    pub stored_batches_undecodable: AtomicU64,
    /// Connections and request memory limits (`max.connections*`, deadlines,
    /// `queued.max.request.bytes`) and the HTTP listener's connection cap.
    pub kafka_connections_refused_per_ip: AtomicU64,
    pub kafka_connections_max_waits: AtomicU64,
    pub kafka_first_request_timeouts: AtomicU64,
    pub kafka_request_read_timeouts: AtomicU64,
    pub kafka_idle_timeouts: AtomicU64,
    pub kafka_request_bytes_waits: AtomicU64,
    pub kafka_request_bytes_queued: AtomicI64,
    pub kafka_requests_evicted: AtomicU64,
    /// Fetch answer bytes held (`fetch.response.memory.max.bytes`) and fetches that waited.
    pub fetch_response_bytes_held: AtomicI64,
    pub fetch_response_bytes_held_max: AtomicI64,
    pub fetch_response_bytes_waits: AtomicU64,
    /// Fetch sessions (KIP-227) cached, their partitions, and sessions evicted.
    pub fetch_sessions: AtomicI64,
    pub fetch_session_partitions: AtomicI64,
    pub fetch_session_evictions: AtomicU64,
    pub http_connections_evicted: AtomicU64,
    pub http_connections_refused: AtomicU64,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process registry.
pub fn global() -> &'static Metrics {
    METRICS.get_or_init(|| Metrics {
        api: (0..=API_SLOTS).map(|_| Histogram::new()).collect(),
        produce_stages: std::array::from_fn(|_| Histogram::new()),
        kafka_bytes_in: AtomicU64::new(0),
        kafka_bytes_out: AtomicU64::new(0),
        kafka_connections_total: AtomicU64::new(0),
        kafka_connections_active: AtomicI64::new(0),
        kafka_connection_errors: AtomicU64::new(0),
        kafka_unsupported_requests: AtomicU64::new(0),
        kafka_quota_throttled_requests: AtomicU64::new(0),
        kafka_quota_throttle_ms: AtomicU64::new(0),
        kafka_authentications: AtomicU64::new(0),
        kafka_authentication_failures: AtomicU64::new(0),
        kafka_reauthentications: AtomicU64::new(0),
        kafka_expired_sessions: AtomicU64::new(0),
        kafka_tls_handshake_failures: AtomicU64::new(0),
        kafka_tls_reloads: AtomicU64::new(0),
        isr_shrinks: AtomicU64::new(0),
        isr_expands: AtomicU64::new(0),
        truncations_below_hw: AtomicU64::new(0),
        storage_corruptions: AtomicU64::new(0),
        replica_repairs: AtomicU64::new(0),
        appends_refused_no_space: AtomicU64::new(0),
        zk_connections_total: AtomicU64::new(0),
        zk_connections_active: AtomicI64::new(0),
        zk_requests: AtomicU64::new(0),
        produce_rejected_batches: AtomicU64::new(0),
        stored_batches_undecodable: AtomicU64::new(0),
        kafka_connections_refused_per_ip: AtomicU64::new(0),
        kafka_connections_max_waits: AtomicU64::new(0),
        kafka_first_request_timeouts: AtomicU64::new(0),
        kafka_request_read_timeouts: AtomicU64::new(0),
        kafka_idle_timeouts: AtomicU64::new(0),
        kafka_request_bytes_waits: AtomicU64::new(0),
        kafka_request_bytes_queued: AtomicI64::new(0),
        kafka_requests_evicted: AtomicU64::new(0),
        fetch_response_bytes_held: AtomicI64::new(0),
        fetch_response_bytes_held_max: AtomicI64::new(0),
        fetch_sessions: AtomicI64::new(0),
        fetch_session_partitions: AtomicI64::new(0),
        fetch_session_evictions: AtomicU64::new(0),
        fetch_response_bytes_waits: AtomicU64::new(0),
        http_connections_evicted: AtomicU64::new(0),
        http_connections_refused: AtomicU64::new(0),
    })
}

/// Adds `n` to a counter (relaxed: counters need no ordering).
pub fn inc(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Rate limit for a log line that can repeat in a loop: true at most once per `interval_ms`
/// per `slot` (which holds the last time it returned true, in ms since the epoch).
pub fn log_allowed(slot: &AtomicI64, interval_ms: i64) -> bool {
    let now = crate::types::now_ms();
    let last = slot.load(Ordering::Relaxed);
    now.saturating_sub(last) >= interval_ms
        && slot
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// A +1/-1 gauge guard: increments on creation, decrements on drop.
#[derive(Debug)]
pub struct GaugeGuard(&'static AtomicI64);

impl GaugeGuard {
    pub fn new(g: &'static AtomicI64) -> Self {
        g.fetch_add(1, Ordering::Relaxed);
        Self(g)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// The latency histogram of a Kafka API key (`other` for keys outside the table).
    pub fn api(&self, key: i16) -> &Histogram {
        let i = usize::try_from(key)
            .ok()
            .filter(|k| *k < API_SLOTS)
            .unwrap_or(API_SLOTS);
        &self.api[i]
    }

    /// The histogram of one produce stage.
    pub fn produce_stage(&self, stage: ProduceStage) -> &Histogram {
        &self.produce_stages[stage as usize]
    }

    /// Appends the registry in the Prometheus text format. `api_name` names a key.
    pub fn render(&self, out: &mut String, api_name: impl Fn(i16) -> Option<String>) {
        let name = "raftka_produce_stage_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Produce request latency by stage: queue (frame read to handler), append (per partition), leader_fsync and replication (acks=all, per partition), response (ready to written)."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for stage in ProduceStage::ALL {
            self.produce_stage(stage)
                .render(out, name, &format!("stage=\"{}\"", stage.name()));
        }
        let name = "raftka_kafka_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Kafka request latency, frame received to response ready (in correlation order), by API."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (i, h) in self.api.iter().enumerate() {
            if h.count() == 0 {
                continue;
            }
            let api = i16::try_from(i)
                .ok()
                .filter(|_| i < API_SLOTS)
                .and_then(&api_name)
                .unwrap_or_else(|| "other".to_owned());
            h.render(out, name, &format!("api=\"{api}\""));
        }
        let counters: &[(&str, &str, &AtomicU64)] = &[
            (
                "raftka_kafka_bytes_in_total",
                "Kafka request bytes received.",
                &self.kafka_bytes_in,
            ),
            (
                "raftka_kafka_bytes_out_total",
                "Kafka response bytes sent.",
                &self.kafka_bytes_out,
            ),
            (
                "raftka_kafka_connections_total",
                "Kafka connections accepted.",
                &self.kafka_connections_total,
            ),
            (
                "raftka_kafka_connection_errors_total",
                "Kafka connections closed for a protocol error or timeout.",
                &self.kafka_connection_errors,
            ),
            (
                "raftka_kafka_unsupported_requests_total",
                "Kafka requests of an API or version this node does not serve (connection closed).",
                &self.kafka_unsupported_requests,
            ),
            (
                "raftka_kafka_quota_throttled_requests_total",
                "Requests throttled for a client quota (produce, fetch bytes or request time).",
                &self.kafka_quota_throttled_requests,
            ),
            (
                "raftka_kafka_quota_throttle_ms_total",
                "Throttle time given to clients over their quota, in ms.",
                &self.kafka_quota_throttle_ms,
            ),
            (
                "raftka_kafka_authentications_total",
                "SASL authentications (and re-authentications) that succeeded.",
                &self.kafka_authentications,
            ),
            (
                "raftka_kafka_authentication_failures_total",
                "SASL authentications that failed (bad credentials, unsupported mechanism, a request out of order); the connection is closed.",
                &self.kafka_authentication_failures,
            ),
            (
                "raftka_kafka_reauthentications_total",
                "KIP-368 re-authentications that succeeded.",
                &self.kafka_reauthentications,
            ),
            (
                "raftka_kafka_expired_sessions_total",
                "Connections closed because their authenticated session expired without re-authentication (connections.max.reauth.ms).",
                &self.kafka_expired_sessions,
            ),
            (
                "raftka_kafka_tls_handshake_failures_total",
                "TLS handshakes that failed or timed out (untrusted or expired certificate, not TLS at all); the connection is closed.",
                &self.kafka_tls_handshake_failures,
            ),
            (
                "raftka_kafka_tls_reloads_total",
                "TLS listener key/trust stores reloaded after their files changed.",
                &self.kafka_tls_reloads,
            ),
            (
                "raftka_isr_shrinks_total",
                "ISR shrinks applied for partitions this node leads.",
                &self.isr_shrinks,
            ),
            (
                "raftka_isr_expands_total",
                "ISR expansions applied for partitions this node leads.",
                &self.isr_expands,
            ),
            (
                "raftka_truncations_below_hw_total",
                "Follower truncations below the high watermark the leader asked for.",
                &self.truncations_below_hw,
            ),
            (
                "raftka_storage_corruptions_total",
                "Damaged replica ranges found by reads (corrupt batch or storage block).",
                &self.storage_corruptions,
            ),
            (
                "raftka_replica_repairs_total",
                "Damaged follower ranges truncated and re-fetched from the leader.",
                &self.replica_repairs,
            ),
            (
                "raftka_appends_refused_no_space_total",
                "Appends refused because the log dir is below log.dir.free.bytes.min.",
                &self.appends_refused_no_space,
            ),
            (
                "raftka_zk_connections_total",
                "ZooKeeper-facade connections accepted.",
                &self.zk_connections_total,
            ),
            (
                "raftka_zk_requests_total",
                "ZooKeeper-facade requests served.",
                &self.zk_requests,
            ),
            (
                "raftka_produce_rejected_batches_total",
                "Produced record batches refused by record validation (corrupt, over the decompression limit, keyless on a compacted topic, timestamps out of range).",
                &self.produce_rejected_batches,
            ),
            (
                "raftka_stored_batches_undecodable_total",
                "Stored record batches whose records failed to decode when read (ListOffsets by timestamp, compaction, offsets loading).",
                &self.stored_batches_undecodable,
            ),
            (
                "raftka_kafka_connections_refused_per_ip_total",
                "Kafka connections closed at accept: their address had max.connections.per.ip open.",
                &self.kafka_connections_refused_per_ip,
            ),
            (
                "raftka_kafka_connections_max_waits_total",
                "Times the Kafka acceptor waited because max.connections connections were open.",
                &self.kafka_connections_max_waits,
            ),
            (
                "raftka_kafka_first_request_timeouts_total",
                "Kafka connections closed for not sending a complete first request within connections.first.request.timeout.ms.",
                &self.kafka_first_request_timeouts,
            ),
            (
                "raftka_kafka_request_read_timeouts_total",
                "Kafka connections closed because a started request did not arrive within connections.request.read.timeout.ms.",
                &self.kafka_request_read_timeouts,
            ),
            (
                "raftka_kafka_idle_timeouts_total",
                "Kafka connections closed after connections.max.idle.ms without a request.",
                &self.kafka_idle_timeouts,
            ),
            (
                "raftka_kafka_request_bytes_waits_total",
                "Times a Kafka connection stopped reading because queued.max.request.bytes were in use.",
                &self.kafka_request_bytes_waits,
            ),
            (
                "raftka_kafka_requests_evicted_total",
                "Partly received Kafka requests dropped (connection closed): their client was silent for queued.max.request.stall.ms while queued.max.request.bytes were exhausted.",
                &self.kafka_requests_evicted,
            ),
            (
                "raftka_fetch_response_bytes_waits_total",
                "Fetch reads that waited because fetch.response.memory.max.bytes were held by other answers.",
                &self.fetch_response_bytes_waits,
            ),
            (
                "raftka_fetch_session_evictions_total",
                "Fetch sessions evicted to make room for new ones (max.incremental.fetch.session.cache.slots, fetch.session.cache.partitions.max).",
                &self.fetch_session_evictions,
            ),
            (
                "raftka_http_connections_evicted_total",
                "HTTP connections closed before their request head to make room (http.connections.max).",
                &self.http_connections_evicted,
            ),
            (
                "raftka_http_connections_refused_total",
                "HTTP connections closed at accept: http.connections.max requests were being answered.",
                &self.http_connections_refused,
            ),
        ];
        for (n, help, c) in counters {
            let _ = writeln!(out, "# HELP {n} {help}");
            let _ = writeln!(out, "# TYPE {n} counter");
            let _ = writeln!(out, "{n} {}", c.load(Ordering::Relaxed));
        }
        let gauges: &[(&str, &str, &AtomicI64)] = &[
            (
                "raftka_kafka_connections_active",
                "Open Kafka connections.",
                &self.kafka_connections_active,
            ),
            (
                "raftka_zk_connections_active",
                "Open ZooKeeper-facade connections.",
                &self.zk_connections_active,
            ),
            (
                "raftka_kafka_request_bytes_queued",
                "Kafka request bytes held now (read and not yet handled), out of queued.max.request.bytes.",
                &self.kafka_request_bytes_queued,
            ),
            (
                "raftka_fetch_response_bytes_held",
                "Consumer fetch answer bytes in memory now (read and not yet written), out of fetch.response.memory.max.bytes.",
                &self.fetch_response_bytes_held,
            ),
            (
                "raftka_fetch_response_bytes_held_max",
                "The most consumer fetch answer bytes held at once since the node started.",
                &self.fetch_response_bytes_held_max,
            ),
            (
                "raftka_fetch_sessions",
                "Incremental fetch sessions (KIP-227) cached now, out of max.incremental.fetch.session.cache.slots.",
                &self.fetch_sessions,
            ),
            (
                "raftka_fetch_session_partitions",
                "Partitions cached over all fetch sessions now, out of fetch.session.cache.partitions.max.",
                &self.fetch_session_partitions,
            ),
        ];
        for (n, help, g) in gauges {
            let _ = writeln!(out, "# HELP {n} {help}");
            let _ = writeln!(out, "# TYPE {n} gauge");
            let _ = writeln!(out, "{n} {}", g.load(Ordering::Relaxed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_count_matches() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let mut s = String::new();
        h.render(&mut s, "x", "api=\"Produce\"");
        assert!(
            s.contains("x_bucket{api=\"Produce\",le=\"0.0001\"} 1\n"),
            "{s}"
        );
        assert!(
            s.contains("x_bucket{api=\"Produce\",le=\"0.005\"} 2\n"),
            "{s}"
        );
        assert!(s.contains("x_bucket{api=\"Produce\",le=\"5\"} 2\n"), "{s}");
        assert!(
            s.contains("x_bucket{api=\"Produce\",le=\"+Inf\"} 3\n"),
            "{s}"
        );
        assert!(s.contains("x_count{api=\"Produce\"} 3\n"), "{s}");
        assert_eq!(h.count(), 3);
    }

    #[test]
    fn out_of_range_api_keys_share_the_other_slot() {
        let m = global();
        assert!(std::ptr::eq(m.api(-1), m.api(500)));
        assert!(!std::ptr::eq(m.api(0), m.api(1)));
    }
}
