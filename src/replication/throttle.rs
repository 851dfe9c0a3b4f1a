//! Replication throttles (KIP-73), as `kafka-reassign-partitions.sh --throttle` sets them:
//! the per-broker dynamic configs `leader.replication.throttled.rate` and
//! `follower.replication.throttled.rate` (bytes/s) bound the replication traffic of the
//! partitions a topic lists in `leader.replication.throttled.replicas` /
//! `follower.replication.throttled.replicas` (`partition:broker,…` or `*`) for this broker.
//!
//! Kafka's semantics: only replicas **outside the ISR** are throttled (catching up never
//! slows an in-sync follower, so acks=all latency is untouched). The leader leaves a throttled
//! partition out of a follower's fetch reply while its rate over the window is above the
//! bound; the follower leaves it out of its fetch request while its own rate is. The rate is
//! measured as Kafka's `Rate` over `replication.quota.window.num` (11) one-second samples,
//! with the elapsed time at least 10 s (the window minus one sample).

use crate::metadata::MetadataImage;
use crate::types::{NodeId, TopicId};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// Kafka's `replication.quota.window.num`.
const SAMPLES: usize = 11;
/// Kafka's `replication.quota.window.size.seconds`, in ms.
const SAMPLE_MS: u64 = 1000;

pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

/// Bytes per one-second sample over the last [`SAMPLES`] seconds.
#[derive(Debug)]
struct Meter {
    start: Instant,
    /// (sample number since `start`, bytes)
    samples: [(u64, u64); SAMPLES],
}

impl Meter {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            samples: [(u64::MAX, 0); SAMPLES],
        }
    }

    fn now_sample(&self, now: Instant) -> u64 {
        let ms = u64::try_from(now.saturating_duration_since(self.start).as_millis())
            .unwrap_or(u64::MAX);
        ms / SAMPLE_MS
    }

    fn record(&mut self, bytes: u64, now: Instant) {
        let n = self.now_sample(now);
        let slot = &mut self.samples[(n % SAMPLES as u64) as usize];
        if slot.0 != n {
            *slot = (n, 0);
        }
        slot.1 = slot.1.saturating_add(bytes);
    }

    /// Bytes per second over the window.
    fn rate(&self, now: Instant) -> f64 {
        let n = self.now_sample(now);
        let live = |s: &&(u64, u64)| s.0 != u64::MAX && s.0 + SAMPLES as u64 > n;
        let total: u64 = self.samples.iter().filter(live).map(|s| s.1).sum();
        let oldest = self.samples.iter().filter(live).map(|s| s.0).min();
        let Some(oldest) = oldest else { return 0.0 };
        let elapsed_ms = u64::try_from(now.saturating_duration_since(self.start).as_millis())
            .unwrap_or(u64::MAX)
            .saturating_sub(oldest * SAMPLE_MS)
            .max((SAMPLES as u64 - 1) * SAMPLE_MS);
        total as f64 * 1000.0 / elapsed_ms as f64
    }
}

/// What the image says about this broker's throttles.
#[derive(Debug, Default, PartialEq)]
struct Settings {
    leader_rate: Option<u64>,
    follower_rate: Option<u64>,
    leader: HashSet<(TopicId, i32)>,
    follower: HashSet<(TopicId, i32)>,
}

/// One broker's replication throttles: settings from the image, and the two meters.
#[derive(Debug)]
pub struct ReplicationThrottle {
    me: NodeId,
    /// Whether any partition is throttled here at all: the replication hot path checks only
    /// this one atomic when nothing is (the common case).
    active: AtomicBool,
    settings: RwLock<Arc<Settings>>,
    leader: Mutex<Meter>,
    follower: Mutex<Meter>,
}

/// Whether a `*.replication.throttled.replicas` value lists `partition` on `me`.
fn lists(value: &str, partition: i32, me: NodeId) -> bool {
    value.split(',').map(str::trim).any(|e| {
        e == "*"
            || e.split_once(':').is_some_and(|(p, b)| {
                p.trim().parse::<i32>() == Ok(partition) && b.trim().parse::<i32>() == Ok(me.0)
            })
    })
}

/// A rate config: a non-negative byte rate (Kafka's default, `Long.MAX_VALUE`, and anything
/// unparsable mean unthrottled).
fn rate(image: &MetadataImage, me: NodeId, key: &str) -> Option<u64> {
    let own = image.broker_configs(Some(me));
    let v = own
        .get(key)
        .cloned()
        .or_else(|| image.broker_configs(None).get(key).cloned())?;
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|r| *r < i64::MAX as u64)
}

impl ReplicationThrottle {
    pub fn new(me: NodeId) -> Self {
        Self {
            me,
            active: AtomicBool::new(false),
            settings: RwLock::new(Arc::default()),
            leader: Mutex::new(Meter::new()),
            follower: Mutex::new(Meter::new()),
        }
    }

    /// Takes the throttles of this broker from `image`.
    pub fn update(&self, image: &MetadataImage) {
        let mut s = Settings {
            leader_rate: rate(image, self.me, LEADER_RATE),
            follower_rate: rate(image, self.me, FOLLOWER_RATE),
            ..Settings::default()
        };
        for t in image.topics.values() {
            for (key, set) in [
                (LEADER_REPLICAS, &mut s.leader),
                (FOLLOWER_REPLICAS, &mut s.follower),
            ] {
                let Some(v) = t.configs.get(key).filter(|v| !v.trim().is_empty()) else {
                    continue;
                };
                for i in 0..t.partitions.len() {
                    let Ok(p) = i32::try_from(i) else { break };
                    if lists(v, p, self.me) {
                        set.insert((t.id, p));
                    }
                }
            }
        }
        let mut cur = self
            .settings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let active = (s.leader_rate.is_some() && !s.leader.is_empty())
            || (s.follower_rate.is_some() && !s.follower.is_empty());
        if **cur != s {
            *cur = Arc::new(s);
        }
        self.active.store(active, Ordering::Release);
    }

    fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether the leader's reads of `(topic, partition)` for an out-of-sync follower count
    /// against the leader throttle (listed here and a rate set).
    pub fn leader_throttled(&self, topic: &TopicId, partition: i32) -> bool {
        if !self.active.load(Ordering::Acquire) {
            return false;
        }
        let s = self.settings();
        s.leader_rate.is_some() && s.leader.contains(&(*topic, partition))
    }

    /// Whether the follower's fetches of `(topic, partition)` count against the follower
    /// throttle.
    pub fn follower_throttled(&self, topic: &TopicId, partition: i32) -> bool {
        if !self.active.load(Ordering::Acquire) {
            return false;
        }
        let s = self.settings();
        s.follower_rate.is_some() && s.follower.contains(&(*topic, partition))
    }

    /// Whether the leader throttle's rate is above its bound now.
    pub fn leader_exceeded(&self) -> bool {
        exceeded(&self.leader, self.settings().leader_rate)
    }

    pub fn follower_exceeded(&self) -> bool {
        if !self.active.load(Ordering::Acquire) {
            return false;
        }
        exceeded(&self.follower, self.settings().follower_rate)
    }

    pub fn record_leader(&self, bytes: usize) {
        record(&self.leader, bytes);
    }

    pub fn record_follower(&self, bytes: usize) {
        record(&self.follower, bytes);
    }
}

fn exceeded(m: &Mutex<Meter>, bound: Option<u64>) -> bool {
    let Some(bound) = bound else { return false };
    m.lock()
        .map(|m| m.rate(Instant::now()) > bound as f64)
        .unwrap_or(false)
}

fn record(m: &Mutex<Meter>, bytes: usize) {
    if let Ok(mut m) = m.lock() {
        m.record(bytes as u64, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn throttled_replica_lists_as_kafka_writes_them() {
        let me = NodeId(2);
        assert!(lists("0:1,0:2,1:3", 0, me));
        assert!(!lists("0:1,0:2,1:3", 1, me));
        assert!(lists("*", 7, me));
        assert!(lists(" 3 : 2 ", 3, me));
        assert!(!lists("", 0, me));
        assert!(!lists("x:y,0", 0, me));
    }

    /// The settings follow the image: a listed partition is throttled only once this broker
    /// (or the cluster default) has a rate.
    #[test]
    fn settings_follow_the_image() {
        use crate::metadata::{apply, ConfigOp, MetadataCommand, MetadataRequest};
        use crate::types::TopicName;
        let reg = MetadataCommand::RegisterBroker {
            registration: crate::metadata::BrokerRegistration {
                node_id: NodeId(1),
                endpoints: vec![],
                rack: None,
                fenced: false,
                registered_index: 0,
                raft_addr: None,
            },
        };
        let id = TopicId::random();
        let topic = MetadataCommand::CreateTopic {
            name: TopicName::new("t").expect("valid"),
            topic_id: id,
            assignment: vec![vec![NodeId(1)], vec![NodeId(1)]],
            configs: [(LEADER_REPLICAS.to_owned(), "1:1,0:2".to_owned())].into(),
        };
        let rate = MetadataCommand::AlterBrokerConfigs {
            broker: None,
            ops: vec![ConfigOp::Set {
                key: LEADER_RATE.into(),
                value: "100".into(),
            }],
        };
        let th = ReplicationThrottle::new(NodeId(1));
        let mut img = MetadataImage::default();
        for (i, c) in [reg, topic, rate].into_iter().enumerate() {
            img = apply(&img, &MetadataRequest::new(c), i as u64 + 1).0;
            th.update(&img);
            // No rate before the last command.
            assert_eq!(th.leader_throttled(&id, 1), i == 2, "after command {i}");
        }
        assert!(!th.leader_throttled(&id, 0), "0:2 names another broker");
        assert!(!th.follower_throttled(&id, 1));
        assert!(!th.leader_exceeded());
        th.record_leader(10_000);
        assert!(th.leader_exceeded(), "10 kB over 10 s is above 100 B/s");
    }

    #[test]
    fn the_rate_is_bytes_over_at_least_ten_seconds_of_window() {
        let mut m = Meter::new();
        let t0 = m.start;
        m.record(10_000, t0);
        // One sample recorded: the elapsed time is taken as 10 s.
        assert!((m.rate(t0 + Duration::from_millis(500)) - 1000.0).abs() < 1e-6);
        for s in 1..=20u64 {
            m.record(10_000, t0 + Duration::from_secs(s));
        }
        // Steady 10 kB/s: the 11 live samples over ~10-11 s.
        let r = m.rate(t0 + Duration::from_millis(20_500));
        assert!((9_000.0..=11_100.0).contains(&r), "{r}");
        // Long idle: nothing left in the window.
        assert_eq!(m.rate(t0 + Duration::from_secs(60)), 0.0);
    }
}
