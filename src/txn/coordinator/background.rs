//! The coordinator's driver: follows leadership of `__transaction_state` (loading and
//! unloading partitions), writes transitions through the one replicated write, sends the
//! markers of prepared transactions and completes them, aborts transactions open past their
//! timeout and removes ids idle past `transactional.id.expiration.ms`.

use super::*;
use crate::codec::kafka::batch;
use crate::replication::{AppendError, AppendOptions, ReplicatedError};
use std::time::Duration;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// How often leadership changes are looked for besides image changes.
const TICK: Duration = Duration::from_millis(500);
/// Deadline of one write to `__transaction_state` (Kafka: `request.timeout.ms`).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Backoff between marker rounds for partitions that could not be marked yet.
const MARKER_RETRY_MIN: Duration = Duration::from_millis(100);
const MARKER_RETRY_MAX: Duration = Duration::from_secs(2);
/// A transaction whose markers are still missing after this long is reported at INFO (and
/// again at most this often), with the partitions and the reasons: a slow completion keeps
/// its producer in CONCURRENT_TRANSACTIONS, and the reason must be visible without DEBUG.
const MARKER_SLOW_REPORT: Duration = Duration::from_secs(10);

impl TxnCoordinator {
    /// Follows leadership of `__transaction_state` and applies timeouts until shutdown.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut images = self.images.clone();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_abort = Instant::now() + self.config.txn.abort_check_interval;
        let mut next_expire = Instant::now() + self.config.txn.expire_check_interval;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = images.changed() => if r.is_err() { break },
                _ = tick.tick() => {}
            }
            if self.host.get().is_none() {
                continue;
            }
            self.reconcile().await;
            if Instant::now() >= next_abort {
                next_abort = Instant::now() + self.config.txn.abort_check_interval;
                self.abort_timed_out().await;
            }
            if Instant::now() >= next_expire {
                next_expire = Instant::now() + self.config.txn.expire_check_interval;
                self.expire_ids().await;
            }
        }
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Loads partitions this node now leads; unloads those it no longer leads.
    async fn reconcile(self: &Arc<Self>) {
        let image = self.images.borrow().clone();
        let Some(topic) = image.topic(TRANSACTION_STATE_TOPIC) else {
            let mut st = self.lock();
            if !st.partitions.is_empty() {
                *st = State::default();
            }
            return;
        };
        let n = topic.partitions.len() as i32;
        let to_load = {
            let mut st = self.lock();
            let held: Vec<(i32, i32)> = st
                .partitions
                .iter()
                .map(|(p, l)| (*p, l.leader_epoch()))
                .collect();
            let (unload, load) = crate::group::leadership_changes(
                &image,
                TRANSACTION_STATE_TOPIC,
                self.node_id,
                held,
            );
            for p in unload {
                info!(
                    partition = p,
                    "no longer transaction coordinator for this partition; unloading"
                );
                st.partitions.remove(&p);
                st.txns
                    .retain(|id, _| crate::group::partition_for(id, n) != p);
            }
            load
        };
        for (p, epoch) in to_load {
            let part = match self
                .replicas
                .partition(&image, TRANSACTION_STATE_TOPIC, p)
                .await
            {
                Ok(Some(part)) => part,
                Ok(None) => continue,
                Err(e) => {
                    warn!(partition = p, error = %e, "cannot open transaction state partition");
                    continue;
                }
            };
            if !part.is_leader() || part.leader_epoch() != epoch {
                continue;
            }
            self.lock().partitions.insert(
                p,
                Load::Loading {
                    leader_epoch: epoch,
                },
            );
            match self.load_partition(&part).await {
                Ok(txns) => {
                    let mut ending = Vec::new();
                    {
                        let mut st = self.lock();
                        if !matches!(st.partitions.get(&p), Some(Load::Loading { leader_epoch }) if *leader_epoch == epoch)
                        {
                            continue;
                        }
                        let count = txns.len();
                        for m in txns {
                            if m.is_ending() {
                                ending.push(m.id.clone());
                            }
                            st.txns.insert(m.id.clone(), m);
                        }
                        st.partitions.insert(
                            p,
                            Load::Loaded {
                                leader_epoch: epoch,
                                partition: part,
                            },
                        );
                        info!(
                            partition = p,
                            leader_epoch = epoch,
                            transactional_ids = count,
                            finishing = ending.len(),
                            "loaded transaction state partition"
                        );
                    }
                    for id in ending {
                        self.spawn_completion(p, epoch, id);
                    }
                }
                Err(e) => {
                    warn!(partition = p, error = %e, "cannot load transaction state partition; will retry");
                    self.lock().partitions.remove(&p);
                }
            }
        }
    }

    /// Rebuilds the ids of one partition (later records win; null values remove).
    async fn load_partition(&self, part: &Arc<Partition>) -> Result<Vec<TxnMeta>, String> {
        let mut txns: HashMap<String, Option<TxnMeta>> = HashMap::new();
        let cap = self.config.limits.decompressed_batch_bytes_max;
        part.scan_records(cap, |h, at, key, value| {
            if h.is_control() {
                return;
            }
            let Some(key) = key else { return };
            let id = match records::decode_key(key) {
                Ok(id) => id,
                Err(e) => {
                    debug!(offset = at, error = %e, "skipping unreadable transaction log key");
                    return;
                }
            };
            match value.map(records::decode_value) {
                None => {
                    txns.insert(id, None);
                }
                Some(Ok(v)) => {
                    let m = TxnMeta::from_value(id.clone(), &v);
                    txns.insert(id, Some(m));
                }
                Some(Err(e)) => {
                    debug!(offset = at, error = %e, "skipping unreadable transaction log value")
                }
            }
        })
        .await?;
        Ok(txns.into_values().flatten().collect())
    }

    /// Writes `t` (or, with `None`, the id's tombstone) to `pidx` as its leader in `epoch`, and
    /// applies it once durable. A failed write drops the prepared transition.
    pub(super) async fn write(
        &self,
        pidx: i32,
        epoch: i32,
        id: &str,
        t: Option<&Target>,
    ) -> Result<(), TxnError> {
        let result = self.append(pidx, epoch, vec![txn_record(id, t)]).await;
        let mut st = self.lock();
        let owned = st.still_owner(pidx, epoch);
        match (result, t) {
            (Ok(()), _) if !owned => Err(TxnError::NotCoordinator),
            (Ok(()), Some(t)) => {
                if let Some(m) = st.txns.get_mut(id) {
                    m.complete(t);
                }
                Ok(())
            }
            (Ok(()), None) => {
                st.txns.remove(id);
                Ok(())
            }
            (Err(e), _) => {
                if let Some(m) = st.txns.get_mut(id) {
                    m.abandon();
                }
                Err(e)
            }
        }
    }

    /// Appends keyed records to `pidx` and waits for `acks=all`.
    async fn append(
        &self,
        pidx: i32,
        epoch: i32,
        entries: Vec<(bytes::Bytes, Option<bytes::Bytes>)>,
    ) -> Result<(), TxnError> {
        let part = {
            let st = self.lock();
            let (part, e) = st.owner(pidx)?;
            if e != epoch {
                return Err(TxnError::NotCoordinator);
            }
            part
        };
        let now = now_ms();
        let raw = crate::group::records::build_batch(&entries, now)
            .map_err(|e| TxnError::InvalidRequest(e.to_string()))?;
        let headers = batch::validate_record_set(&raw)
            .map_err(|e| TxnError::InvalidRequest(e.to_string()))?;
        let [h] = headers.as_slice() else {
            return Err(TxnError::InvalidRequest("one batch expected".into()));
        };
        let opts = AppendOptions {
            log_append_time: false,
            now_ms: now,
        };
        let deadline = Instant::now() + WRITE_TIMEOUT;
        match part.replicated_write(raw, *h, opts, deadline).await {
            Ok(_) => Ok(()),
            Err(ReplicatedError::Append(AppendError::NotLeader) | ReplicatedError::NotLeader) => {
                Err(TxnError::NotCoordinator)
            }
            Err(e) => {
                warn!(partition = pidx, error = %e, "transaction state write not replicated");
                Err(TxnError::CoordinatorNotAvailable)
            }
        }
    }

    /// Finishes the prepared commit or abort of `id` in the background.
    pub(super) fn spawn_completion(self: &Arc<Self>, pidx: i32, epoch: i32, id: String) {
        let this = self.clone();
        let stop = self.shutdown.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = this.complete(pidx, epoch, &id) => {}
            }
        });
    }

    /// Sends the markers of `id`'s prepared transaction until every partition has one (or
    /// this node stops coordinating it), then writes CompleteCommit / CompleteAbort.
    async fn complete(&self, pidx: i32, epoch: i32, id: &str) {
        let Ok(host) = self.host().cloned() else {
            return;
        };
        let snapshot = {
            let st = self.lock();
            if !st.still_owner(pidx, epoch) {
                return;
            }
            match st.txns.get(id) {
                Some(m) if m.is_ending() && m.pending.is_none() => Some(MarkerWrite {
                    producer_id: m.producer_id,
                    producer_epoch: m.producer_epoch,
                    commit: m.state == TxnStatus::PrepareCommit,
                    coordinator_epoch: epoch,
                    partitions: m.partitions.iter().cloned().collect(),
                }),
                _ => None,
            }
        };
        let Some(mut w) = snapshot else { return };
        let mut backoff = MARKER_RETRY_MIN;
        let started = Instant::now();
        let mut next_report = started + MARKER_SLOW_REPORT;
        let mut rounds = 0u32;
        let mut reported = false;
        while !w.partitions.is_empty() {
            let results = host.write_markers(w.clone()).await;
            rounds += 1;
            let mut retry = Vec::new();
            let mut reasons = Vec::new();
            for (tp, outcome) in results {
                match outcome {
                    MarkerOutcome::Written | MarkerOutcome::Gone => {}
                    MarkerOutcome::Fenced(why) => {
                        warn!(transactional_id = id, topic = %tp.0, partition = tp.1, reason = %why, "marker refused; leaving the partition to the current coordinator");
                    }
                    MarkerOutcome::Retry(why) => {
                        debug!(transactional_id = id, topic = %tp.0, partition = tp.1, reason = %why, "marker not written yet; retrying");
                        // A few examples only: a transaction may span thousands of partitions.
                        if reasons.len() < 8 {
                            reasons.push(format!("{}-{}: {why}", tp.0, tp.1));
                        }
                        retry.push(tp);
                    }
                }
            }
            w.partitions = retry;
            if w.partitions.is_empty() {
                if reported {
                    info!(
                        transactional_id = id,
                        rounds,
                        waited_ms = started.elapsed().as_millis() as u64,
                        "markers written after retries"
                    );
                }
                break;
            }
            if Instant::now() >= next_report {
                info!(
                    transactional_id = id,
                    coordinator_epoch = epoch,
                    rounds,
                    waited_ms = started.elapsed().as_millis() as u64,
                    missing_partitions = w.partitions.len(),
                    examples = %reasons.join("; "),
                    "markers still missing; retrying"
                );
                next_report = Instant::now() + MARKER_SLOW_REPORT;
                reported = true;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MARKER_RETRY_MAX);
            if !self.lock().still_owner(pidx, epoch) {
                return;
            }
        }
        // The markers are written: record the end (retried while this node coordinates).
        let mut backoff = MARKER_RETRY_MIN;
        loop {
            let target = {
                let mut st = self.lock();
                if !st.still_owner(pidx, epoch) {
                    return;
                }
                match st.txns.get_mut(id) {
                    Some(m) => m.prepare_complete(now_ms()),
                    None => return,
                }
            };
            let Some(t) = target else { return };
            match self.write(pidx, epoch, id, Some(&t)).await {
                Ok(()) => {
                    debug!(
                        transactional_id = id,
                        state = t.state.name(),
                        "transaction completed"
                    );
                    self.completed.notify_waiters();
                    return;
                }
                Err(TxnError::NotCoordinator) => return,
                Err(e) => {
                    warn!(transactional_id = id, error = %e, "cannot record the end of a transaction; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MARKER_RETRY_MAX);
                }
            }
        }
    }

    /// Aborts transactions open past their timeout (bumping the epoch, which fences their
    /// producer), as Kafka's `abortTimedOutTransactions`.
    async fn abort_timed_out(self: &Arc<Self>) {
        let now = now_ms();
        let tv2 = self.server_tv2();
        let mut expired = Vec::new();
        {
            let mut st = self.lock();
            for (p, epoch, m) in st.loaded_txns_mut(self.num_partitions()) {
                if let Some(t) = m.abort_if_expired(tv2, now) {
                    expired.push((p, epoch, m.id.clone(), t));
                }
            }
        }
        for (p, epoch, id, t) in expired {
            info!(transactional_id = %id, producer_id = t.producer_id, "aborting a transaction open past its timeout");
            match self.write(p, epoch, &id, Some(&t)).await {
                Ok(()) => self.spawn_completion(p, epoch, id),
                Err(e) => {
                    warn!(transactional_id = %id, error = %e, "cannot abort a timed-out transaction")
                }
            }
        }
    }

    /// Removes ids idle past `transactional.id.expiration.ms` (a tombstone each).
    async fn expire_ids(&self) {
        let now = now_ms();
        let expiration =
            i64::try_from(self.config.txn.id_expiration.as_millis()).unwrap_or(i64::MAX);
        let mut idle = Vec::new();
        {
            let mut st = self.lock();
            for (p, epoch, m) in st.loaded_txns_mut(self.num_partitions()) {
                if m.expire_if_idle(expiration, now) {
                    idle.push((p, epoch, m.id.clone()));
                }
            }
        }
        for (p, epoch, id) in idle {
            debug!(transactional_id = %id, "transactional id expired");
            if let Err(e) = self.write(p, epoch, &id, None).await {
                warn!(transactional_id = %id, error = %e, "cannot remove an expired transactional id");
            }
        }
    }
}
