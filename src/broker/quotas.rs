//! Client quotas: DescribeClientQuotas / AlterClientQuotas, the ZooKeeper route
//! (`/config/clients/<c>`, `/config/users/<u>/clients/<c>`), and enforcement — each node
//! measures every (user, client id)'s produce bytes, fetch bytes and request time over Kafka's
//! window (`quota.window.num` 11 × `quota.window.size.seconds` 1) against the quota that
//! Kafka's precedence picks (`metadata::quotas::resolve`) and answers the throttle time
//! (Kafka's `ClientQuotaManager`: `(rate − quota) / quota × window`, at most the window),
//! and the controller mutations (partitions created or deleted) against a token bucket
//! (KIP-599's `ControllerMutationQuotaManager`). The protocol layer puts the throttle in
//! `throttle_time_ms` and mutes the connection that long.

use super::{Broker, BrokerError};
use crate::metadata::quotas::{self, QuotaEntity, QuotaName, QuotaValue};
use crate::metadata::{MetadataCommand, MetadataImage};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Kafka's `quota.window.num`.
const SAMPLES: u64 = 11;
/// Kafka's `quota.window.size.seconds`, in ms.
const SAMPLE_MS: u64 = 1000;
/// At most this many (kind, user, client id) rates are kept per node; idle ones (nothing
/// recorded for a whole window: their rate is zero) make room. Past it, new clients share one
/// rate per kind (they are throttled together rather than not at all).
pub(super) const SENSORS_MAX: usize = 10_000;
/// Longest entity name accepted (user or client id) in AlterClientQuotas and the facade.
pub(super) const QUOTA_NAME_MAX_BYTES: usize = 1024;

/// What a rate counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    /// Produce request bytes (`producer_byte_rate`).
    Produce,
    /// Fetch response bytes (`consumer_byte_rate`).
    Fetch,
    /// Request handling time, in percent of one thread (`request_percentage`).
    Request,
}

impl QuotaKind {
    fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => quotas::PRODUCER_BYTE_RATE,
            QuotaKind::Fetch => quotas::CONSUMER_BYTE_RATE,
            QuotaKind::Request => quotas::REQUEST_PERCENTAGE,
        }
    }
}

/// One sensor: the sum per one-second sample over the last [`SAMPLES`] seconds.
#[derive(Debug)]
struct Sensor {
    /// (sample number since the manager's start, sum)
    samples: [(u64, f64); SAMPLES as usize],
    last: u64,
}

impl Sensor {
    fn new() -> Self {
        Self {
            samples: [(u64::MAX, 0.0); SAMPLES as usize],
            last: 0,
        }
    }

    fn record(&mut self, value: f64, now_ms: u64) {
        let n = now_ms / SAMPLE_MS;
        let slot = &mut self.samples[(n % SAMPLES) as usize];
        if slot.0 != n {
            *slot = (n, 0.0);
        }
        slot.1 += value;
        self.last = now_ms;
    }

    /// (rate per second, window in ms): Kafka's `Rate` — the elapsed time since the oldest
    /// live sample, at least `SAMPLES − 1` whole samples.
    fn rate(&self, now_ms: u64) -> (f64, u64) {
        let n = now_ms / SAMPLE_MS;
        let live = |s: &&(u64, f64)| s.0 != u64::MAX && s.0 + SAMPLES > n;
        let total: f64 = self.samples.iter().filter(live).map(|s| s.1).sum();
        let oldest = self
            .samples
            .iter()
            .filter(live)
            .map(|s| s.0)
            .min()
            .unwrap_or(n);
        let window = now_ms
            .saturating_sub(oldest * SAMPLE_MS)
            .max((SAMPLES - 1) * SAMPLE_MS);
        (total.max(0.0) * 1000.0 / window as f64, window)
    }
}

/// The throttle for a rate over a bound (Kafka's `QuotaUtils.throttleTime`), at most the
/// whole window.
fn throttle_ms(rate: f64, bound: f64, window_ms: u64) -> u64 {
    let max = SAMPLES * SAMPLE_MS;
    if rate <= bound {
        return 0;
    }
    if bound <= 0.0 {
        return max;
    }
    let t = (rate - bound) / bound * window_ms as f64;
    (t.round() as u64).min(max)
}

type SensorKey = (QuotaKind, QuotaEntity);

/// Kafka's controller mutation quota (KIP-599, `TokenBucket`): partitions created or deleted
/// refill at `rate` per second up to a burst of `rate × 11 s`; the bucket may go below zero
/// by one request, and while it is below zero new mutations wait (the throttle is the time to
/// refill to zero).
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last_ms: u64,
}

impl Bucket {
    fn refill(&mut self, rate: f64, now_ms: u64) {
        let burst = rate * (SAMPLES * SAMPLE_MS) as f64 / 1000.0;
        let dt = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + dt * rate).min(burst);
        self.last_ms = now_ms;
    }

    /// The time to refill to zero.
    fn throttle_ms(&self, rate: f64) -> u64 {
        if self.tokens >= 0.0 {
            return 0;
        }
        if rate <= 0.0 {
            return SAMPLES * SAMPLE_MS;
        }
        ((-self.tokens / rate * 1000.0).ceil() as u64).min(u64::from(u32::MAX))
    }
}

/// The rates of one node.
#[derive(Debug)]
pub(super) struct QuotaSensors {
    /// False only while the latest image this node's image follower applied
    /// (`Broker::follow_dynamic_configs`) had no client quota: the request path then skips
    /// the image read. True until the follower runs (a node without it checks every time).
    any_quota: AtomicBool,
    start: Instant,
    sensors: Mutex<HashMap<SensorKey, Sensor>>,
    buckets: Mutex<HashMap<QuotaEntity, Bucket>>,
}

impl Default for QuotaSensors {
    fn default() -> Self {
        Self {
            any_quota: AtomicBool::new(true),
            start: Instant::now(),
            sensors: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

impl QuotaSensors {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Records `value` on the sensor of `entity` and answers the throttle for `bound`.
    fn record(&self, kind: QuotaKind, entity: QuotaEntity, value: f64, bound: f64) -> u64 {
        let now = self.now_ms();
        let mut map = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SENSORS_MAX && !map.contains_key(&(kind, entity.clone())) {
            let idle_before = now.saturating_sub(SAMPLES * SAMPLE_MS);
            map.retain(|_, s| s.last >= idle_before);
        }
        let key = if map.len() >= SENSORS_MAX && !map.contains_key(&(kind, entity.clone())) {
            let shared = QuotaEntity {
                user: Some(QuotaName::Default),
                client_id: Some(QuotaName::Default),
            };
            (kind, shared)
        } else {
            (kind, entity)
        };
        let s = map.entry(key).or_insert_with(Sensor::new);
        s.record(value, now);
        let (rate, window) = s.rate(now);
        throttle_ms(rate, bound, window)
    }

    /// Applies `f` to the mutation bucket of `entity` (made full, refilled to now), bounded
    /// like the rates (idle full buckets make room; past the bound new ones share one).
    fn with_bucket<T>(
        &self,
        entity: QuotaEntity,
        rate: f64,
        f: impl FnOnce(&mut Bucket) -> T,
    ) -> T {
        let now = self.now_ms();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let key = if map.len() >= SENSORS_MAX && !map.contains_key(&entity) {
            let idle_before = now.saturating_sub(SAMPLES * SAMPLE_MS);
            map.retain(|_, b| b.last_ms >= idle_before);
            if map.len() >= SENSORS_MAX {
                QuotaEntity {
                    user: Some(QuotaName::Default),
                    client_id: Some(QuotaName::Default),
                }
            } else {
                entity
            }
        } else {
            entity
        };
        let b = map.entry(key).or_insert_with(|| Bucket {
            tokens: rate * (SAMPLES * SAMPLE_MS) as f64 / 1000.0,
            last_ms: now,
        });
        b.refill(rate, now);
        f(b)
    }

    /// Takes back a recorded value (a throttled fetch returns no data, as Kafka's
    /// `unrecordQuotaSensor`).
    fn unrecord(&self, kind: QuotaKind, entity: &QuotaEntity, value: f64) {
        let now = self.now_ms();
        let mut map = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.get_mut(&(kind, entity.clone())) {
            s.record(-value, now);
        }
    }
}

tokio::task_local! {
    /// The time the current request spent parked (a long-poll fetch waiting for data).
    static PARKED: std::cell::Cell<Duration>;
}

/// Runs `f` as waiting time: not counted as request handling time (`request_percentage`).
pub async fn parked<F: std::future::Future>(f: F) -> F::Output {
    let t = Instant::now();
    let out = f.await;
    let _ = PARKED.try_with(|c| c.set(c.get() + t.elapsed()));
    out
}

/// Runs a request's handler and answers its output and its busy time: the wall time less
/// what it spent [`parked`].
pub async fn timed<F: std::future::Future>(f: F) -> (F::Output, Duration) {
    let t = Instant::now();
    let (out, parked) = PARKED
        .scope(std::cell::Cell::new(Duration::ZERO), async {
            let out = f.await;
            (out, PARKED.with(std::cell::Cell::get))
        })
        .await;
    (out, t.elapsed().saturating_sub(parked))
}

/// Who a request is from, for quotas: the authenticated user's name and the client id.
#[derive(Debug, Clone)]
pub struct QuotaSubject {
    pub user: String,
    pub client_id: String,
}

/// One AlterClientQuotas entry's ops: key and `Some(value)` to set, `None` to remove.
pub type QuotaOps = Vec<(String, Option<f64>)>;

/// An entity as a request names it: `(type, name)` pairs, a `None` name for the default.
pub(super) type EntityParts = Vec<(String, Option<String>)>;

/// DescribeClientQuotas' answer: the matching entities with their quotas.
pub(super) type DescribedQuotas = Vec<(QuotaEntity, BTreeMap<String, f64>)>;

/// A DescribeClientQuotas filter component.
#[derive(Debug, Clone, PartialEq)]
pub enum QuotaMatch {
    /// This name (`None`: the default entity).
    Exact(Option<String>),
    /// Only the default entity.
    Default,
    /// Any entity of the type, the default included.
    Any,
}

const USER: &str = "user";
const CLIENT_ID: &str = "client-id";
const IP: &str = "ip";

fn quota_name(name: Option<&str>, what: &str) -> Result<QuotaName, BrokerError> {
    match name {
        None => Ok(QuotaName::Default),
        Some("") => Err(BrokerError::InvalidRequest(format!(
            "Empty {what} not supported"
        ))),
        Some(n) if n.len() > QUOTA_NAME_MAX_BYTES => Err(BrokerError::InvalidRequest(format!(
            "{what} longer than {QUOTA_NAME_MAX_BYTES} bytes"
        ))),
        Some(n) => Ok(QuotaName::Named(n.to_owned())),
    }
}

/// A request's entity (`(type, name)` pairs) as a [`QuotaEntity`], validated as Kafka's
/// controller does.
///
/// # Errors
/// `InvalidRequest`: empty, a duplicate or unknown type, an empty name; `ip` entities
/// (connection-rate quotas) are not supported by this node.
pub(super) fn parse_entity(parts: &[(String, Option<String>)]) -> Result<QuotaEntity, BrokerError> {
    if parts.is_empty() {
        return Err(BrokerError::InvalidRequest(
            "Invalid empty client quota entity".into(),
        ));
    }
    let mut e = QuotaEntity {
        user: None,
        client_id: None,
    };
    for (t, name) in parts {
        let slot = match t.as_str() {
            USER => &mut e.user,
            CLIENT_ID => &mut e.client_id,
            IP => {
                return Err(BrokerError::InvalidRequest(
                    "ip quotas (connection_creation_rate) are not supported by raftka".into(),
                ))
            }
            other => {
                return Err(BrokerError::InvalidRequest(format!(
                    "Unhandled client quota entity type: {other}"
                )))
            }
        };
        if slot.is_some() {
            return Err(BrokerError::InvalidRequest(format!(
                "Invalid empty client quota entity, duplicate entity entry {t}"
            )));
        }
        *slot = Some(quota_name(name.as_deref(), t)?);
    }
    Ok(e)
}

/// An entity as the Kafka APIs list it: `(type, name)`, user first.
pub fn entity_parts(e: &QuotaEntity) -> Vec<(&'static str, Option<String>)> {
    let mut out = Vec::with_capacity(2);
    if let Some(u) = &e.user {
        out.push((USER, u.api_name().map(str::to_owned)));
    }
    if let Some(c) = &e.client_id {
        out.push((CLIENT_ID, c.api_name().map(str::to_owned)));
    }
    out
}

fn matches(name: Option<&QuotaName>, m: &QuotaMatch) -> bool {
    match (name, m) {
        (None, _) => false,
        (Some(_), QuotaMatch::Any) => true,
        (Some(n), QuotaMatch::Default) => *n == QuotaName::Default,
        (Some(n), QuotaMatch::Exact(None)) => *n == QuotaName::Default,
        (Some(n), QuotaMatch::Exact(Some(s))) => *n == QuotaName::Named(s.clone()),
    }
}

impl Broker {
    /// DescribeClientQuotas: the entities the filter matches, with their quotas. Every
    /// component must match; with `strict` the entity has no other component.
    ///
    /// # Errors
    /// `InvalidRequest` for an unknown or repeated entity type.
    pub fn describe_client_quotas(
        &self,
        components: &[(String, QuotaMatch)],
        strict: bool,
    ) -> Result<DescribedQuotas, BrokerError> {
        let mut user = None;
        let mut client = None;
        for (t, m) in components {
            let slot = match t.as_str() {
                USER => &mut user,
                CLIENT_ID => &mut client,
                IP => {
                    return Err(BrokerError::InvalidRequest(
                        "ip quotas are not supported by raftka".into(),
                    ))
                }
                other => {
                    return Err(BrokerError::InvalidRequest(format!(
                        "Custom entity type '{other}' not supported"
                    )))
                }
            };
            if slot.is_some() {
                return Err(BrokerError::InvalidRequest(format!(
                    "Entity type {t} cannot appear more than once in the filter"
                )));
            }
            *slot = Some(m.clone());
        }
        let image = self.metadata_view();
        let mut out = Vec::new();
        for (e, q) in &image.client_quotas {
            let ok_user = user
                .as_ref()
                .map_or(!strict || e.user.is_none(), |m| matches(e.user.as_ref(), m));
            let ok_client = client
                .as_ref()
                .map_or(!strict || e.client_id.is_none(), |m| {
                    matches(e.client_id.as_ref(), m)
                });
            if ok_user && ok_client {
                out.push((e.clone(), q.iter().map(|(k, v)| (k.clone(), v.0)).collect()));
            }
        }
        Ok(out)
    }

    /// AlterClientQuotas: validates every entry (Kafka's per-entity errors: an entity with an
    /// error changes nothing), then applies the valid ones in one command unless
    /// `validate_only`. Answers one result per entry, in order.
    ///
    /// # Errors
    /// The command's failure (NotController, timeout) for all entries.
    pub async fn alter_client_quotas(
        &self,
        entries: Vec<(EntityParts, QuotaOps)>,
        validate_only: bool,
    ) -> Result<Vec<Result<(), BrokerError>>, BrokerError> {
        let mut results = Vec::with_capacity(entries.len());
        let mut valid: Vec<(QuotaEntity, quotas::QuotaChanges)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (parts, ops) in entries {
            let r = (|| {
                let entity = parse_entity(&parts)?;
                if !seen.insert(entity.clone()) {
                    return Err(BrokerError::InvalidRequest(format!(
                        "Ignoring duplicate entity {}",
                        entity.zk_path()
                    )));
                }
                let mut keys = std::collections::HashSet::new();
                let mut out = Vec::with_capacity(ops.len());
                for (k, v) in ops {
                    if !keys.insert(k.clone()) {
                        return Err(BrokerError::InvalidRequest(format!(
                            "Duplicate quota key {k} not updating quota for this entity"
                        )));
                    }
                    if !quotas::is_quota_key(&k) {
                        return Err(BrokerError::InvalidRequest(format!(
                            "Invalid configuration key {k}"
                        )));
                    }
                    if let Some(v) = v {
                        quotas::validate(&k, v).map_err(BrokerError::InvalidRequest)?;
                    }
                    out.push((k, v.map(QuotaValue)));
                }
                Ok((entity, out))
            })();
            match r {
                Ok(e) => {
                    valid.push(e);
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if !validate_only && !valid.is_empty() {
            self.propose(MetadataCommand::AlterClientQuotas { entries: valid })
                .await?;
        }
        Ok(results)
    }

    /// The ZooKeeper route: create or setData `/config/clients/<c>` or
    /// `/config/users/<u>/clients/<c>` (`{"version":1,"config":{"producer_byte_rate":"1024"}}`,
    /// what Kafka 2.x's `kafka-configs.sh --zookeeper ... --entity-type clients` writes)
    /// replaces that entity's quotas.
    ///
    /// # Errors
    /// `InvalidConfig` for an unknown key or a value that is not a valid quota.
    pub async fn zk_replace_client_quotas(
        &self,
        entity: QuotaEntity,
        configs: BTreeMap<String, String>,
    ) -> Result<(), BrokerError> {
        let quotas = parse_zk_quotas(configs)?;
        self.propose(MetadataCommand::ReplaceClientQuotas { entity, quotas })
            .await
            .map(|_| ())
    }

    /// The throttle for `value` more of `kind` by `subject`, if a quota applies (recorded
    /// either way only when one does). Zero when no quota is set anywhere (one map check).
    pub fn record_quota(&self, kind: QuotaKind, subject: &QuotaSubject, value: f64) -> Duration {
        let Some((entity, bound)) = self.resolved(kind.key(), subject) else {
            return Duration::ZERO;
        };
        let ms = self.inner.quota_sensors.record(kind, entity, value, bound);
        if ms > 0 {
            let m = crate::metrics::global();
            crate::metrics::inc(&m.kafka_quota_throttled_requests, 1);
            crate::metrics::inc(&m.kafka_quota_throttle_ms, ms);
        }
        Duration::from_millis(ms)
    }

    /// Before a topic mutation (strict clients, KIP-599): `Err(throttle)` while `subject`'s
    /// controller mutation quota is exhausted; `Ok` when none applies.
    pub fn mutation_allowed(&self, subject: &QuotaSubject) -> Result<(), Duration> {
        let Some((entity, rate)) = self.resolved(quotas::CONTROLLER_MUTATION_RATE, subject) else {
            return Ok(());
        };
        let ms = self
            .inner
            .quota_sensors
            .with_bucket(entity, rate, |b| b.throttle_ms(rate));
        if ms == 0 {
            Ok(())
        } else {
            Err(Duration::from_millis(ms))
        }
    }

    /// Records `partitions` created or deleted by `subject`; the throttle it now owes.
    pub fn record_mutations(&self, subject: &QuotaSubject, partitions: usize) -> Duration {
        let Some((entity, rate)) = self.resolved(quotas::CONTROLLER_MUTATION_RATE, subject) else {
            return Duration::ZERO;
        };
        let ms = self.inner.quota_sensors.with_bucket(entity, rate, |b| {
            b.tokens -= partitions as f64;
            b.throttle_ms(rate)
        });
        Duration::from_millis(ms)
    }

    /// The quota `key` that applies to `subject` (Kafka's precedence, `quotas::resolve`) with
    /// the sensor entity it is counted under; `None` at the cost of one atomic load while no
    /// quota is set anywhere.
    fn resolved(&self, key: &str, subject: &QuotaSubject) -> Option<(QuotaEntity, f64)> {
        if !self.inner.quota_sensors.any_quota.load(Ordering::Relaxed) {
            return None;
        }
        let image = self.metadata_view();
        quotas::resolve(&image.client_quotas, key, &subject.user, &subject.client_id)
    }

    /// Keeps [`QuotaSensors::any_quota`] in step with an applied metadata image.
    pub(super) fn note_quotas(&self, image: &MetadataImage) {
        self.inner
            .quota_sensors
            .any_quota
            .store(!image.client_quotas.is_empty(), Ordering::Relaxed);
    }

    /// Takes back what [`Broker::record_quota`] recorded (a throttled fetch sends no data).
    pub fn unrecord_quota(&self, kind: QuotaKind, subject: &QuotaSubject, value: f64) {
        if let Some((entity, _)) = self.resolved(kind.key(), subject) {
            self.inner.quota_sensors.unrecord(kind, &entity, value);
        }
    }
}

/// A ZooKeeper quota config map (string values) as validated quota values.
///
/// # Errors
/// `InvalidConfig` for an unknown key or an invalid value.
pub(super) fn parse_zk_quotas(
    configs: BTreeMap<String, String>,
) -> Result<BTreeMap<String, QuotaValue>, BrokerError> {
    let mut out = BTreeMap::new();
    for (k, v) in configs {
        let value: f64 = v
            .trim()
            .parse()
            .map_err(|_| BrokerError::InvalidConfig(format!("{k}: {v:?} is not a number")))?;
        quotas::validate(&k, value).map_err(BrokerError::InvalidConfig)?;
        out.insert(k, QuotaValue(value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_is_kafkas_formula() {
        assert_eq!(throttle_ms(100.0, 100.0, 10_000), 0);
        // 50 % over the quota over a 10 s window → 5 s.
        assert_eq!(throttle_ms(150.0, 100.0, 10_000), 5000);
        assert_eq!(throttle_ms(1e9, 1.0, 10_000), 11_000);
        assert_eq!(throttle_ms(1.0, 0.0, 10_000), 11_000);
    }

    #[test]
    fn a_sensor_rates_over_at_least_ten_seconds() {
        let mut s = Sensor::new();
        s.record(10_000.0, 0);
        assert_eq!(s.rate(500), (1000.0, 10_000));
        s.record(10_000.0, 10_500);
        let (r, w) = s.rate(10_500);
        assert_eq!(w, 10_500);
        assert!((r - 20_000.0 * 1000.0 / 10_500.0).abs() < 1e-6);
        // Eleven seconds later the first sample has left the window.
        let (r, _) = s.rate(11_000);
        assert!((r - 1000.0).abs() < 1e-6, "{r}");
        let (r, _) = s.rate(30_000);
        assert_eq!(r, 0.0);
    }

    #[test]
    fn the_mutation_bucket_is_kafkas_token_bucket() {
        // 2 partitions/s: a burst of 22, then refills at 2/s.
        let mut b = Bucket {
            tokens: 22.0,
            last_ms: 0,
        };
        b.refill(2.0, 5_000);
        assert_eq!(b.tokens, 22.0);
        b.tokens -= 30.0;
        assert_eq!(b.throttle_ms(2.0), 4000);
        b.refill(2.0, 9_000);
        assert_eq!(b.throttle_ms(2.0), 0);
        assert_eq!(b.tokens, 0.0);
    }

    #[test]
    fn sensors_stay_bounded() {
        let q = QuotaSensors::default();
        for i in 0..(SENSORS_MAX + 50) {
            let e = QuotaEntity {
                user: None,
                client_id: Some(QuotaName::Named(format!("c{i}"))),
            };
            let _ = q.record(QuotaKind::Produce, e, 1.0, 1e9);
        }
        let n = q.sensors.lock().expect("lock").len();
        assert!(n <= SENSORS_MAX + 1, "{n}");
    }

    #[test]
    fn entities_are_validated_as_kafka_does() {
        let p = |v: &[(&str, Option<&str>)]| {
            parse_entity(
                &v.iter()
                    .map(|(t, n)| ((*t).to_owned(), n.map(str::to_owned)))
                    .collect::<Vec<_>>(),
            )
        };
        assert!(p(&[]).is_err());
        assert!(p(&[("user", Some("a")), ("user", Some("b"))]).is_err());
        assert!(p(&[("user", Some(""))]).is_err());
        assert!(p(&[("group", Some("g"))]).is_err());
        assert!(p(&[("ip", Some("1.2.3.4"))]).is_err());
        let e = p(&[("client-id", None), ("user", Some("u"))]).expect("valid");
        assert_eq!(e.zk_path(), "users/u/clients/<default>");
        assert_eq!(
            entity_parts(&e),
            vec![("user", Some("u".to_owned())), ("client-id", None)]
        );
    }
}
