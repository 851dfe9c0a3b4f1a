//! Load generator for raftka (issue 9, `make bench`), built on rust-rdkafka (librdkafka 2.12).
//!
//! ```text
//! cargo run --release --example raftka_bench -- produce --bootstrap 127.0.0.1:9092 \
//!     --topic t --record-size 100 --partitions 1 --acks 1 --seconds 10
//! cargo run --release --example raftka_bench -- produce --rate 50000 ...   # open loop
//! cargo run --release --example raftka_bench -- consume --topic t ...      # read a backlog
//! cargo run --release --example raftka_bench -- e2e --rate 20000 ...       # producer + consumer
//! ```
//!
//! Modes:
//! - `produce` without `--rate`: closed loop, as fast as librdkafka accepts records (its queue
//!   is the only back-pressure). Latency is measured from `send()` to the delivery callback.
//! - `produce --rate N`: open loop. Record `i` is *scheduled* at `start + i / N`; its latency
//!   is measured from the scheduled time, so a stalled broker (or a full client queue) shows up
//!   in the percentiles instead of silently lowering the send rate (no coordinated omission).
//!   The generator sleeps between records (waking at most every 0.5 ms and sending all that
//!   are due), so it does not take a core from the brokers on a small machine; the up to
//!   0.5 ms a record waits for that wake-up is part of its measured latency.
//! - `consume`: reads everything between the low and high watermarks of every partition at
//!   the time it starts (a backlog written beforehand), reports records/s and MB/s.
//! - `e2e`: an open-loop producer and a concurrent consumer; each payload starts with the
//!   scheduled send time (ns since the Unix epoch), the consumer reports now - that time.
//!
//! A human-readable summary goes to stderr; stdout gets exactly one JSON line (for
//! `bench/run.py`). Exit code 1 on errors (undelivered records, timeouts).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};
use futures::executor::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};

const META_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Parser)]
#[command(
    name = "raftka_bench",
    about = "Kafka load generator for raftka benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Produce records: closed loop (max throughput) or open loop with --rate.
    Produce(ProduceArgs),
    /// Read the backlog of a topic from the beginning.
    Consume(ConsumeArgs),
    /// Open-loop producer plus concurrent consumer: end-to-end latency.
    E2e(ProduceArgs),
}

#[derive(Debug, Args, Clone)]
struct Common {
    /// Bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Topic (created if missing with --partitions/--replication-factor/--min-isr).
    #[arg(long)]
    topic: String,
    /// Partitions (for creation, and records are spread round-robin over them).
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    #[arg(long, default_value_t = 1)]
    replication_factor: i32,
    /// min.insync.replicas topic config (only set when given).
    #[arg(long)]
    min_isr: Option<u32>,
    /// Extra librdkafka settings, `key=value`, repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Free-form label copied into the JSON output.
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Debug, Args, Clone)]
struct ProduceArgs {
    #[command(flatten)]
    common: Common,
    /// Record value size in bytes (no key).
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// acks: 0, 1 or all.
    #[arg(long, default_value = "1")]
    acks: String,
    /// enable.idempotence.
    #[arg(long, default_value_t = false)]
    idempotence: bool,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// batch.size in bytes (librdkafka's per-partition MessageSet limit).
    #[arg(long, default_value_t = 1_000_000)]
    batch_size: u64,
    /// batch.num.messages.
    #[arg(long, default_value_t = 10_000)]
    batch_num_messages: u64,
    /// Measured duration in seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Stop after this many records instead (measured phase).
    #[arg(long)]
    count: Option<u64>,
    /// Open loop: records per second (scheduled send times). Without it: closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Warm-up seconds (same load, not measured).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Transactional: this `transactional.id` (implies idempotence), committing a transaction
    /// every `--txn-records` records (closed loop only).
    #[arg(long)]
    transactional_id: Option<String>,
    /// Records per transaction (with --transactional-id).
    #[arg(long, default_value_t = 100)]
    txn_records: u64,
}

#[derive(Debug, Args, Clone)]
struct ConsumeArgs {
    #[command(flatten)]
    common: Common,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// Stop after this many records (default: the whole backlog).
    #[arg(long)]
    count: Option<u64>,
}

// ---- latency histogram -------------------------------------------------------------------------

/// Log-linear histogram of microsecond values: exact below 256 µs, then 128 sub-buckets per
/// power of two (< 0.8 % relative error), up to 2^63.
#[derive(Debug, Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    max: u64,
}

const SUB_BITS: u32 = 7;

impl Histogram {
    fn new() -> Self {
        Self {
            counts: vec![0; (64 << SUB_BITS) as usize],
            total: 0,
            sum: 0,
            max: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < (2 << SUB_BITS) {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros();
        let shift = msb - SUB_BITS;
        (((shift + 1) << SUB_BITS) as u64 + (v >> shift) - (1 << SUB_BITS)) as usize
    }

    /// Upper bound of bucket `idx`.
    fn value_of(idx: usize) -> u64 {
        if idx < (2 << SUB_BITS) as usize {
            return idx as u64;
        }
        let shift = (idx >> SUB_BITS) as u32 - 1;
        let mant = (idx as u64 & ((1 << SUB_BITS) - 1)) + (1 << SUB_BITS);
        ((mant + 1) << shift) - 1
    }

    fn record(&mut self, us: u64) {
        self.counts[Self::index(us)] += 1;
        self.total += 1;
        self.sum += u128::from(us);
        self.max = self.max.max(us);
    }

    fn percentile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value_of(i).min(self.max);
            }
        }
        self.max
    }

    fn summary_ms(&self) -> Value {
        let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
        json!({
            "count": self.total,
            "mean": if self.total == 0 { 0.0 } else { ms((self.sum / u128::from(self.total)) as u64) },
            "p50": ms(self.percentile(50.0)),
            "p99": ms(self.percentile(99.0)),
            "p999": ms(self.percentile(99.9)),
            "max": ms(self.max),
        })
    }
}

fn fmt_lat(v: &Value) -> String {
    format!(
        "p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms",
        v["p50"], v["p99"], v["p999"], v["max"]
    )
}

// ---- clients -------------------------------------------------------------------------------

fn base_config(c: &Common) -> Result<ClientConfig> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &c.bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "30000");
    for kv in &c.set {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--set {kv}: expected KEY=VALUE"))?;
        config.set(k, v);
    }
    Ok(config)
}

/// Creates the topic unless it exists, then waits until every partition has a leader.
fn ensure_topic(c: &Common) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = base_config(c)?.create()?;
    let min_isr = c.min_isr.map(|m| m.to_string());
    let mut topic = NewTopic::new(
        &c.topic,
        c.partitions,
        TopicReplication::Fixed(c.replication_factor),
    );
    if let Some(m) = &min_isr {
        topic = topic.set("min.insync.replicas", m);
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let results = block_on(admin.create_topics([&topic], &opts))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("create topic {name}: {code}"),
        }
    }
    let probe: BaseConsumer = base_config(c)?
        .set("group.id", "raftka-bench-meta")
        .create()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = probe
            .fetch_metadata(Some(&c.topic), META_TIMEOUT)
            .ok()
            .and_then(|md| {
                md.topics().first().map(|t| {
                    t.error().is_none()
                        && t.partitions().len() as i32 >= c.partitions
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                })
            })
            .unwrap_or(false);
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "topic {} has no leader for every partition after 30 s",
                c.topic
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

// ---- producer ------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Acked {
    hist: Option<Histogram>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    last_ack: Option<Instant>,
}

#[derive(Debug)]
struct BenchContext {
    base: Instant,
    acked: Mutex<Acked>,
}

impl ClientContext for BenchContext {}

impl ProducerContext for BenchContext {
    /// Nanoseconds since `base` at which the record was sent (closed loop) or scheduled.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        let now = Instant::now();
        let lat_us =
            (now.duration_since(self.base).as_nanos() as u64).saturating_sub(sent_ns as u64) / 1000;
        let mut a = self.acked.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) => {
                a.ok += 1;
                if let Some(h) = a.hist.as_mut() {
                    h.record(lat_us);
                }
                a.last_ack = Some(now);
            }
            Err((e, _)) => {
                a.errors += 1;
                if a.first_error.is_none() {
                    a.first_error = Some(e.to_string());
                }
            }
        }
    }
}

fn make_producer(p: &ProduceArgs) -> Result<BaseProducer<BenchContext>> {
    let mut config = base_config(&p.common)?;
    config
        .set("acks", &p.acks)
        .set("enable.idempotence", p.idempotence.to_string())
        .set("linger.ms", p.linger_ms.to_string())
        .set("batch.size", p.batch_size.to_string())
        .set("batch.num.messages", p.batch_num_messages.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "32768")
        .set("compression.type", "none")
        .set("message.timeout.ms", "60000");
    // --set may override the above: re-apply it last.
    for kv in &p.common.set {
        if let Some((k, v)) = kv.split_once('=') {
            config.set(k, v);
        }
    }
    if let Some(id) = &p.transactional_id {
        config
            .set("transactional.id", id)
            .set("enable.idempotence", "true");
    }
    let ctx = BenchContext {
        base: Instant::now(),
        acked: Mutex::new(Acked::default()),
    };
    let producer: BaseProducer<BenchContext> = config.create_with_context(ctx)?;
    if p.transactional_id.is_some() {
        producer
            .init_transactions(Duration::from_secs(30))
            .context("init_transactions")?;
    }
    Ok(producer)
}

#[derive(Debug)]
struct PhaseResult {
    sent: u64,
    acked: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: f64,
    hist: Histogram,
}

/// The open loop's shortest sleep: records due within it are sent after one wake-up.
const PACE_NS: u64 = 500_000;

/// One produce phase (warm-up or measured). `stop` lets the e2e consumer end it early.
fn produce_phase(
    producer: &BaseProducer<BenchContext>,
    p: &ProduceArgs,
    seconds: f64,
    count: Option<u64>,
    stop: Option<&AtomicBool>,
) -> Result<PhaseResult> {
    let ctx = producer.context();
    {
        let mut a = ctx.acked.lock().unwrap_or_else(|e| e.into_inner());
        *a = Acked {
            hist: Some(Histogram::new()),
            ..Acked::default()
        };
    }
    let mut payload = vec![0u8; p.record_size.max(8)];
    for (i, b) in payload.iter_mut().enumerate() {
        *b = b'a' + (i % 26) as u8;
    }
    payload.truncate(p.record_size);
    let stamp = p.record_size >= 8;
    let partitions = p.common.partitions.max(1);
    let topic = p.common.topic.as_str();

    let start = Instant::now();
    let start_ns = start.duration_since(ctx.base).as_nanos() as u64;
    let start_unix = unix_ns();
    let end_ns = start_ns + (seconds * 1e9) as u64;
    let interval_ns = p.rate.map(|r| 1e9 / r);
    let mut sent: u64 = 0;
    let txn = p.transactional_id.is_some();
    let per_txn = p.txn_records.max(1);
    let mut transactions: u64 = 0;
    if txn {
        producer.begin_transaction().context("begin_transaction")?;
    }
    loop {
        if count.is_some_and(|c| sent >= c) || stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            break;
        }
        if txn && sent > 0 && sent % per_txn == 0 {
            // Serve the delivery reports first (BaseProducer has no background poller: a
            // commit that has to wait for them waits in 100 ms steps).
            producer
                .flush(Duration::from_secs(60))
                .context("flush before commit")?;
            producer
                .commit_transaction(Duration::from_secs(60))
                .context("commit_transaction")?;
            transactions += 1;
            producer.begin_transaction().context("begin_transaction")?;
        }
        let now_ns = Instant::now().duration_since(ctx.base).as_nanos() as u64;
        // Send time of this record: its schedule (open loop) or now (closed loop).
        let due_ns = match interval_ns {
            Some(iv) => start_ns + (sent as f64 * iv) as u64,
            None => now_ns,
        };
        if count.is_none() && due_ns >= end_ns {
            break;
        }
        if due_ns > now_ns {
            // Sleep, never spin: a generator that busy-waits for each record's slot took a
            // whole core at 10,000 records/s, half of this 2-core machine, from the brokers
            // it measures. It wakes at most every PACE_NS and sends every record due by
            // then; each record's latency still counts from its own scheduled time, so the
            // wake-up granularity (≤ PACE_NS plus the timer's slack) is inside the figures.
            producer.poll(Duration::ZERO);
            let wait = (due_ns - now_ns).clamp(PACE_NS, 1_000_000);
            thread::sleep(Duration::from_nanos(wait));
            continue;
        }
        if stamp {
            let ts = start_unix + (due_ns - start_ns);
            payload[..8].copy_from_slice(&ts.to_be_bytes());
        }
        let partition = (sent % partitions as u64) as i32;
        let mut record = BaseRecord::<(), [u8], usize>::with_opaque_to(topic, due_ns as usize)
            .partition(partition)
            .payload(&payload[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => bail!("send: {e}"),
            }
        }
        sent += 1;
        if sent % 64 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    if txn {
        producer
            .flush(Duration::from_secs(60))
            .context("flush before commit")?;
        producer
            .commit_transaction(Duration::from_secs(60))
            .context("commit_transaction")?;
        transactions += 1;
    }
    producer
        .flush(Duration::from_secs(120))
        .context("flush: records still undelivered after 120 s")?;
    if txn {
        eprintln!("{transactions} transactions of up to {per_txn} records");
    }
    let mut a = ctx.acked.lock().unwrap_or_else(|e| e.into_inner());
    let elapsed = a
        .last_ack
        .unwrap_or_else(Instant::now)
        .duration_since(start)
        .as_secs_f64();
    Ok(PhaseResult {
        sent,
        acked: a.ok,
        errors: a.errors,
        first_error: a.first_error.take(),
        elapsed,
        hist: a.hist.take().unwrap_or_else(Histogram::new),
    })
}

fn produce_json(p: &ProduceArgs, mode: &str, r: &PhaseResult) -> Value {
    let bytes = r.acked * p.record_size as u64;
    json!({
        "tool": "raftka_bench",
        "mode": mode,
        "label": p.common.label,
        "topic": p.common.topic,
        "record_size": p.record_size,
        "partitions": p.common.partitions,
        "replication_factor": p.common.replication_factor,
        "acks": p.acks,
        "idempotence": p.idempotence,
        "linger_ms": p.linger_ms,
        "batch_size": p.batch_size,
        "rate_target": p.rate,
        "transactional": p.transactional_id.is_some(),
        "txn_records": p.transactional_id.as_ref().map(|_| p.txn_records),
        "sent": r.sent,
        "records": r.acked,
        "errors": r.errors,
        "first_error": r.first_error,
        "elapsed_s": r.elapsed,
        "records_per_s": r.acked as f64 / r.elapsed.max(1e-9),
        "mb_per_s": bytes as f64 / r.elapsed.max(1e-9) / 1e6,
        "latency_ms": r.hist.summary_ms(),
        "loadavg": loadavg(),
    })
}

fn run_produce(p: &ProduceArgs) -> Result<Value> {
    ensure_topic(&p.common)?;
    let producer = make_producer(p)?;
    if p.warmup > 0.0 {
        produce_phase(&producer, p, p.warmup, None, None)?;
    }
    let r = produce_phase(&producer, p, p.seconds, p.count, None)?;
    let out = produce_json(p, "produce", &r);
    eprintln!(
        "produce {} x {} B, {} partitions, acks={}{}{}: {:.0} records/s, {:.1} MB/s, \
         latency {}; errors {}",
        r.acked,
        p.record_size,
        p.common.partitions,
        p.acks,
        if p.idempotence { " idempotent" } else { "" },
        p.rate
            .map(|r| format!(", open loop {r:.0}/s"))
            .unwrap_or_default(),
        out["records_per_s"].as_f64().unwrap_or(0.0),
        out["mb_per_s"].as_f64().unwrap_or(0.0),
        fmt_lat(&out["latency_ms"]),
        r.errors
    );
    Ok(out)
}

// ---- consumer ------------------------------------------------------------------------------

fn make_consumer(c: &Common) -> Result<BaseConsumer> {
    let mut config = base_config(c)?;
    config
        .set("group.id", "raftka-bench")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("queued.min.messages", "1000000")
        .set("queued.max.messages.kbytes", "1048576")
        .set("fetch.wait.max.ms", "100")
        .set("check.crcs", "false");
    for kv in &c.set {
        if let Some((k, v)) = kv.split_once('=') {
            config.set(k, v);
        }
    }
    Ok(config.create()?)
}

fn partitions_of(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i32>> {
    let md = consumer.fetch_metadata(Some(topic), META_TIMEOUT)?;
    let t = md
        .topics()
        .first()
        .with_context(|| format!("no metadata for {topic}"))?;
    if let Some(e) = t.error() {
        bail!("metadata for {topic}: {e:?}");
    }
    Ok(t.partitions().iter().map(|p| p.id()).collect())
}

/// Whether the consumer's position in every partition is at or past `ends`.
fn reached_end(consumer: &BaseConsumer, topic: &str, ends: &[(i32, i64)]) -> bool {
    let Ok(pos) = consumer.position() else {
        return false;
    };
    ends.iter().all(|(p, hi)| {
        matches!(pos.find_partition(topic, *p).map(|e| e.offset()), Some(Offset::Offset(o)) if o >= *hi)
    })
}

fn run_consume(c: &ConsumeArgs) -> Result<Value> {
    let consumer = make_consumer(&c.common)?;
    let topic = c.common.topic.as_str();
    let mut tpl = TopicPartitionList::new();
    let mut backlog: u64 = 0;
    let mut ends: Vec<(i32, i64)> = Vec::new();
    for p in partitions_of(&consumer, topic)? {
        let (lo, hi) = consumer.fetch_watermarks(topic, p, META_TIMEOUT)?;
        backlog += (hi - lo).max(0) as u64;
        ends.push((p, hi));
        tpl.add_partition_offset(topic, p, Offset::Offset(lo))?;
    }
    let want = c.count.unwrap_or(backlog).min(backlog);
    let start = Instant::now();
    consumer.assign(&tpl)?;
    let deadline = start + Duration::from_secs_f64(c.timeout);
    let (mut got, mut bytes, mut first) = (0u64, 0u64, None);
    let mut at_end = false;
    while got < want && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                got += 1;
                bytes += (m.payload_len() + m.key().map_or(0, <[u8]>::len)) as u64;
            }
            Some(Err(e)) => eprintln!("consume error: {e}"),
            None => {
                // Transaction markers and aborted records count in the watermarks but are
                // never delivered: the end is where every position reaches its high mark.
                if got > 0 && reached_end(&consumer, topic, &ends) {
                    at_end = true;
                    break;
                }
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let out = json!({
        "tool": "raftka_bench",
        "mode": "consume",
        "label": c.common.label,
        "topic": topic,
        "backlog": backlog,
        "records": got,
        "bytes": bytes,
        "elapsed_s": elapsed,
        "first_record_s": first.map(|f| f.duration_since(start).as_secs_f64()),
        "records_per_s": got as f64 / elapsed.max(1e-9),
        "mb_per_s": bytes as f64 / elapsed.max(1e-9) / 1e6,
        "errors": want - got,
        "loadavg": loadavg(),
    });
    eprintln!(
        "consume {got}/{want} records, {:.1} MB in {elapsed:.2} s: {:.0} records/s, {:.1} MB/s",
        bytes as f64 / 1e6,
        out["records_per_s"].as_f64().unwrap_or(0.0),
        out["mb_per_s"].as_f64().unwrap_or(0.0)
    );
    if got < want && !at_end {
        bail!("consume timed out: {got} of {want} records");
    }
    Ok(out)
}

// ---- end to end ----------------------------------------------------------------------------

fn run_e2e(p: &ProduceArgs) -> Result<Value> {
    if p.rate.is_none() {
        bail!("e2e needs --rate (an open-loop producer)");
    }
    if p.record_size < 8 {
        bail!("e2e needs --record-size >= 8 (the payload carries the send timestamp)");
    }
    ensure_topic(&p.common)?;
    let consumer = make_consumer(&p.common)?;
    let topic = p.common.topic.clone();
    let mut tpl = TopicPartitionList::new();
    for part in partitions_of(&consumer, &topic)? {
        let (_, hi) = consumer.fetch_watermarks(&topic, part, META_TIMEOUT)?;
        tpl.add_partition_offset(&topic, part, Offset::Offset(hi))?;
    }
    consumer.assign(&tpl)?;

    let producing = Arc::new(AtomicBool::new(true));
    let measuring = Arc::new(AtomicBool::new(false));
    let consumed = Arc::new(AtomicU64::new(0));
    let consumer_thread = {
        let (producing, measuring, consumed) =
            (producing.clone(), measuring.clone(), consumed.clone());
        thread::spawn(move || {
            let mut hist = Histogram::new();
            let mut idle_since: Option<Instant> = None;
            loop {
                match consumer.poll(Duration::from_millis(50)) {
                    Some(Ok(m)) => {
                        idle_since = None;
                        let now = unix_ns();
                        consumed.fetch_add(1, Ordering::Relaxed);
                        if let Some(ts) = m.payload().and_then(|b| b.get(..8)) {
                            let mut a = [0u8; 8];
                            a.copy_from_slice(ts);
                            let sent = u64::from_be_bytes(a);
                            if measuring.load(Ordering::Relaxed) {
                                hist.record(now.saturating_sub(sent) / 1000);
                            }
                        }
                    }
                    Some(Err(e)) => eprintln!("e2e consume error: {e}"),
                    None => {
                        if !producing.load(Ordering::Relaxed) {
                            let t = *idle_since.get_or_insert_with(Instant::now);
                            if t.elapsed() > Duration::from_secs(2) {
                                break;
                            }
                        }
                    }
                }
            }
            hist
        })
    };
    let producer = make_producer(p)?;
    if p.warmup > 0.0 {
        produce_phase(&producer, p, p.warmup, None, None)?;
    }
    measuring.store(true, Ordering::Relaxed);
    let r = produce_phase(&producer, p, p.seconds, p.count, None)?;
    producing.store(false, Ordering::Relaxed);
    let e2e = consumer_thread
        .join()
        .map_err(|_| anyhow::anyhow!("consumer thread panicked"))?;
    let mut out = produce_json(p, "e2e", &r);
    out["e2e_ms"] = e2e.summary_ms();
    out["consumed"] = json!(consumed.load(Ordering::Relaxed));
    eprintln!(
        "e2e {} records at {:.0}/s, {} B: produce latency {}; end-to-end {} ({} measured)",
        r.acked,
        p.rate.unwrap_or(0.0),
        p.record_size,
        fmt_lat(&out["latency_ms"]),
        fmt_lat(&out["e2e_ms"]),
        e2e.total
    );
    if e2e.total < r.acked {
        eprintln!(
            "warning: consumed {} of {} measured records",
            e2e.total, r.acked
        );
    }
    Ok(out)
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.mode {
        Mode::Produce(p) => run_produce(p),
        Mode::Consume(c) => run_consume(c),
        Mode::E2e(p) => run_e2e(p),
    };
    match result {
        Ok(v) => {
            let failed = v["errors"].as_u64().unwrap_or(0) > 0;
            println!("{v}");
            if failed {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("raftka_bench: {e:#}");
            println!(
                "{}",
                json!({"tool": "raftka_bench", "error": format!("{e:#}")})
            );
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn histogram_buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..2_000_000u64).step_by(7) {
            let i = Histogram::index(v);
            assert!(i >= last);
            last = i;
            let hi = Histogram::value_of(i);
            assert!(hi >= v, "{v} -> {i} -> {hi}");
            assert!(hi as f64 <= v as f64 * 1.008 + 1.0, "{v} -> {hi}");
        }
        let mut h = Histogram::new();
        for v in 1..=1000 {
            h.record(v);
        }
        // Bucket upper bounds: exact below 256, within 0.8 % above.
        assert_eq!(h.percentile(10.0), 100);
        assert!((500..=504).contains(&h.percentile(50.0)));
        assert_eq!(h.percentile(100.0), 1000);
    }
}
