//! Follower fetchers: one task per source broker (the leader of some local follower replicas),
//! long-polling its `ReplicaService.Fetch`. Per round: truncate diverging replicas, append
//! the leader's batches as they are, adopt the leader's high watermark, hand the appends to
//! the fetcher's syncer and fetch again. The syncer **fsyncs**; only fsynced log end offsets
//! are reported as durable (`durable_offset` in the next fetch, or a `Durable` report when
//! the fsync ends while a fetch is in flight) — the `acks=all` contract. One fsync runs at a
//! time and at most one round waits behind it.

use super::log::Partition;
use super::service::{
    ERR_FENCED_LEADER_EPOCH, ERR_NONE, ERR_NOT_LEADER, ERR_OFFSET_OUT_OF_RANGE,
    ERR_UNKNOWN_PARTITION, FETCH_WAIT_MAX,
};
use crate::rpc::pb::replica::replica_service_client::ReplicaServiceClient;
use crate::rpc::pb::replica::{
    DurableRequest, FetchReply, FetchRequest, PartitionDurable, PartitionFetch,
};
use crate::rpc::{PeerPool, MESSAGE_BYTES_MAX};
use crate::storage::Store;
use crate::types::NodeId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

/// How long the leader may hold a fetch without data.
const FETCH_WAIT: Duration = Duration::from_millis(500);
/// Extra time on top of the long-poll for the network and the leader's reads.
const FETCH_DEADLINE_SLACK: Duration = Duration::from_secs(5);
/// Records bytes asked for per fetch.
const FETCH_BYTES: u32 = 8 << 20;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Longest a local fsync may take before the round is abandoned (the disk is then unhealthy).
const FSYNC_DEADLINE: Duration = Duration::from_secs(30);
const _: () = assert!(FETCH_WAIT.as_millis() <= FETCH_WAIT_MAX.as_millis());
/// Deadline of a `Durable` report (a lost one only delays the high watermark to the next fetch).
const DURABLE_DEADLINE: Duration = Duration::from_secs(2);
/// How long a fetcher whose every partition is held back by the throttle waits.
const THROTTLE_PAUSE: Duration = Duration::from_millis(100);

/// The handle the replica manager keeps per running fetcher.
#[derive(Debug)]
pub(crate) struct FetcherHandle {
    pub(crate) addr: String,
    pub(crate) partitions: watch::Sender<Vec<Arc<Partition>>>,
    pub(crate) token: CancellationToken,
}

/// What a fetcher needs from the node.
#[derive(Debug, Clone)]
pub(crate) struct FetcherContext {
    pub(crate) local: NodeId,
    pub(crate) store: Store,
    pub(crate) peers: PeerPool,
    pub(crate) throttle: Arc<super::throttle::ReplicationThrottle>,
}

fn jittered(backoff: Duration) -> Duration {
    let jitter_ms = rand::random::<u64>() % (backoff.as_millis() as u64 / 2 + 1);
    backoff + Duration::from_millis(jitter_ms)
}

/// Starts a fetcher for `source` at `addr` over `partitions`.
pub(crate) fn spawn(
    ctx: FetcherContext,
    source: NodeId,
    addr: String,
    partitions: Vec<Arc<Partition>>,
    parent: &CancellationToken,
    tracker: &tokio_util::task::TaskTracker,
) -> FetcherHandle {
    let (tx, rx) = watch::channel(partitions);
    let token = parent.child_token();
    let span = tracing::info_span!("fetcher", source = %source);
    tracker.spawn(run(ctx, addr.clone(), rx, token.clone()).instrument(span));
    FetcherHandle {
        addr,
        partitions: tx,
        token,
    }
}

async fn run(
    ctx: FetcherContext,
    addr: String,
    mut partitions: watch::Receiver<Vec<Arc<Partition>>>,
    token: CancellationToken,
) {
    info!(%addr, "fetcher started");
    // What this node reports as durable must be, also right after a restart: the first round
    // starts with a barrier fsync (`Track::unsynced`).
    let track = Arc::new(Tracked::default());
    let syncer = tokio::spawn(
        sync_loop(ctx.clone(), addr.clone(), track.clone(), token.clone())
            .instrument(tracing::Span::current()),
    );
    let mut warned_at = None;
    let mut backoff = BACKOFF_MIN;
    let mut known: Vec<Key> = Vec::new();
    loop {
        let parts = partitions.borrow_and_update().clone();
        track.follow(&parts, &mut known);
        if parts.is_empty() {
            tokio::select! {
                _ = token.cancelled() => break,
                r = partitions.changed() => if r.is_err() { break } else { continue },
            }
        }
        let outcome = tokio::select! {
            _ = token.cancelled() => break,
            o = round(&ctx, &addr, &parts, &track, &mut warned_at) => o,
        };
        match outcome {
            Ok(true) => backoff = BACKOFF_MIN,
            Ok(false) | Err(()) => {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(jittered(backoff)) => {}
                    // A role change (new image) is worth an immediate retry.
                    _ = partitions.changed() => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    token.cancel();
    let _ = syncer.await;
    info!(%addr, "fetcher stopped");
}

/// A partition as the fetcher's durability bookkeeping knows it.
type Key = (uuid::Uuid, i32);

fn key_of(p: &Partition) -> Key {
    (p.topic_id.0, p.partition)
}

/// How often a fetcher repeats that its fsyncs fail.
const FSYNC_WARN_EVERY: Duration = Duration::from_secs(60);

/// The fetcher's durability bookkeeping, shared by the fetch loop and its syncer.
///
/// Followers pipeline: a fetch answer's batches are appended and handed to the syncer, and the
/// next fetch leaves at once, reporting the log end (`fetch_offset`) and only the fsynced part
/// of it (`durable_offset`) — the leader counts the latter for the high watermark. At most one
/// fsync runs and at most one more round waits behind it (the fetch loop stops until the
/// running fsync ends), so a stuck disk stops fetching and the leader drops the follower from
/// the ISR as before.
#[derive(Debug, Default)]
struct Tracked {
    state: std::sync::Mutex<Track>,
    /// Wakes the syncer (appends waiting) and the fetch loop (an fsync ended).
    synced: tokio::sync::Notify,
    appended: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Track {
    /// Fsynced log end offsets.
    durable: HashMap<Key, i64>,
    /// Bumped when a partition's log is cut (truncation, reset, repair) or it joins the
    /// fetcher: an fsync started before that says nothing about the log after it.
    generation: HashMap<Key, u64>,
    next_generation: u64,
    /// Appended, not yet fsynced: (partition, log end offset, generation), and the highest
    /// WAL ticket among them.
    waiting: Vec<(Key, i64, u64)>,
    waiting_ticket: u64,
    /// An fsync is running.
    syncing: bool,
    /// Appends may exist that no successful fsync covers (start, a partition joined, an fsync
    /// failed): the fetch loop runs a fresh barrier before it reports anything.
    unsynced: bool,
    /// The fetch in flight: per partition what it carried; an fsync that moves one past its
    /// durable offset while the fetch is out is reported at once.
    in_flight: Option<Vec<Sent>>,
}

/// One partition of the fetch in flight, as it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    key: Key,
    leader_epoch: i32,
    fetch_offset: i64,
    last_fetched_epoch: i32,
    durable: i64,
}

impl Tracked {
    fn lock(&self) -> std::sync::MutexGuard<'_, Track> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps the bookkeeping to `parts`: a partition that joins needs a barrier first.
    fn follow(&self, parts: &[Arc<Partition>], known: &mut Vec<Key>) {
        let now: Vec<Key> = parts.iter().map(|p| key_of(p)).collect();
        if now == *known {
            return;
        }
        let mut t = self.lock();
        t.durable.retain(|k, _| now.contains(k));
        t.generation.retain(|k, _| now.contains(k));
        for k in &now {
            if !known.contains(k) {
                t.cut(*k, None);
                t.unsynced = true;
            }
        }
        *known = now;
    }
}

impl Track {
    /// The log of `key` was cut to `leo` (or is unknown): fsyncs started before do not count.
    fn cut(&mut self, key: Key, leo: Option<i64>) {
        self.next_generation += 1;
        self.generation.insert(key, self.next_generation);
        match leo {
            Some(leo) => {
                if let Some(d) = self.durable.get_mut(&key) {
                    *d = (*d).min(leo);
                }
            }
            None => {
                self.durable.remove(&key);
            }
        }
    }

    /// An fsync covering `entries` succeeded: what it makes durable (entries of a log cut
    /// since are ignored), and the report for the fetch in flight — the partitions this fsync
    /// moved past what that fetch carried (`None`: no fetch is out, the next one carries it).
    fn synced(&mut self, entries: Vec<(Key, i64, u64)>) -> Option<Vec<PartitionDurable>> {
        for (key, leo, generation) in entries {
            if self.generation.get(&key) == Some(&generation) {
                let d = self.durable.entry(key).or_insert(leo);
                *d = (*d).max(leo);
            }
        }
        let sent = self.in_flight.as_ref()?;
        Some(
            sent.iter()
                .filter_map(|s| {
                    // The log has not changed since the fetch left: never above its offset.
                    let d = (*self.durable.get(&s.key)?).min(s.fetch_offset);
                    (d > s.durable).then(|| PartitionDurable {
                        topic_id: s.key.0.as_bytes().to_vec(),
                        partition: s.key.1,
                        leader_epoch: s.leader_epoch,
                        durable_offset: d,
                        fetch_offset: s.fetch_offset,
                        last_fetched_epoch: s.last_fetched_epoch,
                    })
                })
                .collect(),
        )
    }

    /// What a fetch reports as fsynced for `p` (never above its log end).
    fn durable_of(&self, p: &Partition) -> i64 {
        let leo = p.log_end_offset();
        self.durable
            .get(&key_of(p))
            .map_or(p.log_start_offset().min(leo), |d| (*d).min(leo))
    }
}

/// Runs the fsyncs of the fetcher's appends, one at a time, and reports their results to the
/// leader when a fetch is in flight (otherwise the next fetch carries them).
async fn sync_loop(
    ctx: FetcherContext,
    addr: String,
    track: Arc<Tracked>,
    token: CancellationToken,
) {
    loop {
        let appended = track.appended.notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        let (ticket, entries) = {
            let mut t = track.lock();
            if t.waiting.is_empty() || t.unsynced {
                (0, Vec::new())
            } else {
                t.syncing = true;
                (t.waiting_ticket, std::mem::take(&mut t.waiting))
            }
        };
        if entries.is_empty() {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = appended => continue,
            }
        }
        let synced = tokio::select! {
            _ = token.cancelled() => return,
            r = tokio::time::timeout(FSYNC_DEADLINE, ctx.store.wal().sync_after(ticket)) => r,
        };
        let failed = match synced {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("timed out".to_owned()),
        };
        let report = {
            let mut t = track.lock();
            t.syncing = false;
            match failed {
                None => t.synced(entries),
                Some(e) => {
                    warn!(error = %e, "fsync failed; not fetching until one succeeds");
                    // The failed ticket is never retried: a fresh barrier decides.
                    t.unsynced = true;
                    t.waiting.clear();
                    None
                }
            }
        };
        track.synced.notify_waiters();
        if let Some(partitions) = report.filter(|r| !r.is_empty()) {
            let req = DurableRequest {
                replica_id: ctx.local.0,
                partitions,
            };
            tokio::select! {
                _ = token.cancelled() => return,
                _ = report_durable(&ctx, &addr, req) => {}
            }
        }
    }
}

/// One fetch round. `Ok(true)` if every partition was served, `Ok(false)` if some need a
/// backoff (not leader / fenced epoch), `Err` on transport or local failures.
///
/// When appends may exist that no successful fsync covers (`Track::unsynced`: this fetcher
/// just started, a partition joined it, or an fsync failed — a failed fsync is never retried
/// for the writes it covered, `WalSync`), the round first runs a fresh barrier fsync and does
/// not fetch until one succeeds.
async fn round(
    ctx: &FetcherContext,
    addr: &str,
    parts: &[Arc<Partition>],
    track: &Tracked,
    warned_at: &mut Option<std::time::Instant>,
) -> Result<bool, ()> {
    // At most one round waits behind a running fsync.
    loop {
        let synced = track.synced.notified();
        tokio::pin!(synced);
        synced.as_mut().enable();
        {
            let t = track.lock();
            if !t.syncing || t.waiting.is_empty() {
                break;
            }
        }
        synced.await;
    }
    if track.lock().unsynced {
        // The log end offsets before the barrier are durable once it succeeds (only this
        // fetcher appends to these partitions).
        let leos: Vec<(Key, i64)> = parts
            .iter()
            .map(|p| (key_of(p), p.log_end_offset()))
            .collect();
        let failed = match tokio::time::timeout(FSYNC_DEADLINE, ctx.store.wal().barrier()).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("timed out".to_owned()),
        };
        if let Some(e) = failed {
            if warned_at.is_none_or(|t| t.elapsed() >= FSYNC_WARN_EVERY) {
                warn!(error = %e, "fsync failed; not fetching until one succeeds");
                *warned_at = Some(std::time::Instant::now());
            }
            return Err(());
        }
        *warned_at = None;
        let mut t = track.lock();
        t.unsynced = false;
        for (k, leo) in leos {
            let d = t.durable.entry(k).or_insert(leo);
            *d = (*d).max(leo);
        }
    }
    let mut repaired_all = true;
    for p in parts {
        if p.repair_from().is_some() && !p.is_leader() {
            match p.repair().await {
                Ok(leo) => track.lock().cut(key_of(p), leo),
                Err(e) => {
                    warn!(topic = %p.topic, partition = p.partition, error = %e, "repair of a damaged replica failed");
                    repaired_all = false;
                }
            }
        }
    }
    let mut req = FetchRequest {
        replica_id: ctx.local.0,
        max_wait_ms: FETCH_WAIT.as_millis() as u32,
        max_bytes: FETCH_BYTES,
        partitions: Vec::with_capacity(parts.len()),
    };
    let mut sent_epochs = Vec::with_capacity(parts.len());
    let mut throttled = vec![false; parts.len()];
    let over_quota = ctx.throttle.follower_exceeded();
    let mut held_back = 0usize;
    for (i, p) in parts.iter().enumerate() {
        let leader_epoch = p.leader_epoch();
        sent_epochs.push(leader_epoch);
        if p.repair_from().is_some() {
            // Its log end is above a damaged range: never reported until repaired.
            continue;
        }
        // Kafka's follower throttle: an out-of-sync replica listed for it waits while the
        // rate is over the bound (an in-sync one never does).
        throttled[i] = ctx.throttle.follower_throttled(&p.topic_id, p.partition)
            && !p.isr().contains(&ctx.local);
        if throttled[i] && over_quota {
            held_back += 1;
            continue;
        }
        req.partitions.push(PartitionFetch {
            topic_id: p.topic_id.0.as_bytes().to_vec(),
            partition: p.partition,
            leader_epoch,
            fetch_offset: p.log_end_offset(),
            last_fetched_epoch: p.last_epoch().await,
            durable_offset: None,
        });
    }
    if req.partitions.is_empty() && held_back > 0 {
        // Everything is held back by the throttle: wait for the rate to fall.
        tokio::time::sleep(THROTTLE_PAUSE).await;
        return Ok(true);
    }
    {
        let mut t = track.lock();
        let mut sent = Vec::with_capacity(req.partitions.len());
        for pf in &mut req.partitions {
            let Some(p) = parts.iter().find(|p| {
                p.topic_id.0.as_bytes()[..] == pf.topic_id[..] && p.partition == pf.partition
            }) else {
                continue;
            };
            let durable = t.durable_of(p).min(pf.fetch_offset);
            pf.durable_offset = Some(durable);
            sent.push(Sent {
                key: key_of(p),
                leader_epoch: pf.leader_epoch,
                fetch_offset: pf.fetch_offset,
                last_fetched_epoch: pf.last_fetched_epoch,
                durable,
            });
        }
        t.in_flight = Some(sent);
    }
    let reply = call(ctx, addr, req).await;
    track.lock().in_flight = None;
    let reply = reply?;
    let mut all_ok = true;
    let mut appended: Vec<(Key, i64)> = Vec::new();
    let mut ticket = None;
    for r in reply.partitions {
        let Some(i) = parts.iter().position(|p| {
            p.topic_id.0.as_bytes()[..] == r.topic_id[..] && p.partition == r.partition
        }) else {
            continue;
        };
        let p = &parts[i];
        match r.error {
            ERR_NONE => {}
            ERR_OFFSET_OUT_OF_RANGE => {
                match p.reset_to(r.log_start_offset).await {
                    Ok(()) => {
                        track.lock().cut(key_of(p), None);
                        track.lock().unsynced = true;
                        info!(topic = %p.topic, partition = p.partition, log_start_offset = r.log_start_offset, "behind the leader's log start; restarted the log there")
                    }
                    Err(e) => {
                        warn!(topic = %p.topic, partition = p.partition, error = %e, "log reset failed");
                        all_ok = false;
                    }
                }
                continue;
            }
            ERR_NOT_LEADER | ERR_FENCED_LEADER_EPOCH | ERR_UNKNOWN_PARTITION => {
                debug!(topic = %p.topic, partition = p.partition, error = r.error, "leader not ready for this replica");
                all_ok = false;
                continue;
            }
            e => {
                warn!(topic = %p.topic, partition = p.partition, error = e, "fetch error from leader");
                all_ok = false;
                continue;
            }
        }
        if let Some(epoch) = r.diverging_epoch {
            match p.truncate_to(r.diverging_end_offset).await {
                Ok(leo) => {
                    track.lock().cut(key_of(p), Some(leo));
                    info!(topic = %p.topic, partition = p.partition, diverging_epoch = epoch, log_end_offset = leo, "truncated diverging log")
                }
                Err(e) => {
                    // What is left of the log is unknown: nothing of it counts as fsynced
                    // until a barrier.
                    track.lock().cut(key_of(p), None);
                    track.lock().unsynced = true;
                    warn!(topic = %p.topic, partition = p.partition, error = %e, "truncation failed");
                    all_ok = false;
                }
            }
            continue;
        }
        if !r.records.is_empty() {
            let bytes = r.records.len();
            match p.append_follower(r.records, sent_epochs[i]).await {
                Ok(a) => {
                    ticket = ticket.max(Some(a.wal_ticket));
                    appended.push((key_of(p), a.log_end_offset));
                    if throttled[i] {
                        ctx.throttle.record_follower(bytes);
                    }
                }
                Err(e) => {
                    debug!(topic = %p.topic, partition = p.partition, error = %e, "follower append refused");
                    all_ok = false;
                    continue;
                }
            }
        }
        p.adopt_leader_hw(r.high_watermark);
        // Retention / DeleteRecords on the leader: follow its log start offset (up to our HW).
        if let Err(e) = p.adopt_leader_log_start(r.log_start_offset).await {
            warn!(topic = %p.topic, partition = p.partition, error = %e, "adopting the leader's log start offset failed");
        }
    }
    if let Some(ticket) = ticket {
        // The syncer makes them durable; the next fetch leaves now.
        let mut t = track.lock();
        for (key, leo) in appended {
            let generation = t.generation.get(&key).copied().unwrap_or(0);
            t.waiting.push((key, leo, generation));
        }
        t.waiting_ticket = t.waiting_ticket.max(ticket);
        drop(t);
        track.appended.notify_one();
    }
    Ok(all_ok && repaired_all)
}

async fn report_durable(ctx: &FetcherContext, addr: &str, req: DurableRequest) {
    let Ok(channel) = ctx.peers.channel(addr) else {
        return;
    };
    let mut client = ReplicaServiceClient::new(channel)
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX);
    let mut request = tonic::Request::new(req);
    request.set_timeout(DURABLE_DEADLINE);
    match tokio::time::timeout(DURABLE_DEADLINE, client.durable(request)).await {
        Ok(Ok(_)) => {}
        Ok(Err(status)) => debug!(code = ?status.code(), "durable report failed"),
        Err(_) => debug!("durable report timed out"),
    }
}

async fn call(ctx: &FetcherContext, addr: &str, req: FetchRequest) -> Result<FetchReply, ()> {
    let channel = ctx
        .peers
        .channel(addr)
        .map_err(|e| warn!(error = %e, "bad leader address"))?;
    let mut client = ReplicaServiceClient::new(channel)
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX);
    let mut request = tonic::Request::new(req);
    let deadline = FETCH_WAIT + FETCH_DEADLINE_SLACK;
    request.set_timeout(deadline);
    match tokio::time::timeout(deadline, client.fetch(request)).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(status)) => {
            debug!(code = ?status.code(), message = status.message(), "fetch failed");
            Err(())
        }
        Err(_) => {
            debug!("fetch timed out");
            Err(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u128) -> Key {
        (uuid::Uuid::from_u128(n), 0)
    }

    /// An fsync reports only what it moved past the fetch in flight, and never vouches for a
    /// log that was cut after the appends it covers.
    #[test]
    fn an_fsync_counts_only_for_logs_not_cut_since() {
        let (a, b) = (key(1), key(2));
        let mut t = Track::default();
        t.cut(a, None);
        t.cut(b, None);
        let (ga, gb) = (t.generation[&a], t.generation[&b]);
        // No fetch out: durable offsets move, nothing to report.
        assert_eq!(t.synced(vec![(a, 10, ga), (b, 5, gb)]), None);
        assert_eq!((t.durable[&a], t.durable[&b]), (10, 5));
        // A fetch carried a = 10, b = 5 (b's log ends at 8); the next fsync moves only b.
        let sent = |key, fetch_offset, durable| Sent {
            key,
            leader_epoch: 3,
            fetch_offset,
            last_fetched_epoch: 2,
            durable,
        };
        t.in_flight = Some(vec![sent(a, 10, 10), sent(b, 8, 5)]);
        let r = t.synced(vec![(b, 8, gb)]).expect("a fetch is out");
        assert_eq!(r.len(), 1);
        assert_eq!(
            (
                r[0].leader_epoch,
                r[0].durable_offset,
                r[0].fetch_offset,
                r[0].last_fetched_epoch
            ),
            (3, 8, 8, 2)
        );
        assert_eq!(r[0].topic_id, b.0.as_bytes().to_vec());
        // b is truncated to 6 while an fsync of its old tail (up to 12) runs: that fsync says
        // nothing about what b holds now, and its durable offset drops to the cut.
        // (A cut happens while an answer is processed, with no fetch out.)
        t.in_flight = None;
        t.cut(b, Some(6));
        assert_eq!(t.durable[&b], 6);
        assert_eq!(t.synced(vec![(b, 12, gb)]), None);
        assert_eq!(t.durable[&b], 6);
        // A report never goes above the offset of the fetch it follows.
        t.in_flight = Some(vec![sent(b, 6, 6)]);
        // A later append of b (new generation) counts.
        let gb2 = t.generation[&b];
        assert_ne!(gb, gb2);
        let r = t.synced(vec![(b, 9, gb2)]).expect("a fetch is out");
        assert_eq!(t.durable[&b], 9);
        assert!(r.is_empty(), "b's fetch left at 6: {r:?}");
        // A durable offset never goes back by an older fsync.
        let _ = t.synced(vec![(a, 4, ga)]);
        assert_eq!(t.durable[&a], 10);
    }
}
