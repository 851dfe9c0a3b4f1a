//! The coordinator's driver: follows leadership of `__consumer_offsets` (loading and
//! unloading partitions), applies session and rebalance deadlines, expires offsets, and
//! appends records through the one replicated write.

use super::loading::load_partition;
use super::*;

impl GroupCoordinator {
    /// Follows leadership of `__consumer_offsets` and applies deadlines until shutdown.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut images = self.images.clone();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_retention =
            Instant::now() + self.config.groups.offsets_retention_check_interval;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = images.changed() => if r.is_err() { break },
                _ = tick.tick() => {}
            }
            self.reconcile().await;
            self.tick_groups().await;
            if Instant::now() >= next_retention {
                next_retention =
                    Instant::now() + self.config.groups.offsets_retention_check_interval;
                self.expire_offsets().await;
            }
        }
        let mut st = self.lock();
        st.joins.clear();
        st.syncs.clear();
    }

    pub(super) async fn tick_groups(&self) {
        let now = now_ms();
        let mut persist = Vec::new();
        {
            let mut st = self.lock();
            let ids: Vec<String> = st.groups.keys().cloned().collect();
            for id in ids {
                let mut fx = Effects::default();
                let Some(g) = st.groups.get_mut(&id) else {
                    continue;
                };
                g.tick(now, &self.limits, &mut fx);
                if fx.persist {
                    persist.push((id.clone(), group_record(g)));
                }
                let unused = g.is_unused();
                st.deliver(&id, fx);
                if unused {
                    st.groups.remove(&id);
                }
            }
        }
        for (id, rec) in persist {
            let pidx = self.partition_of(&id);
            self.persist_quietly(pidx, rec).await;
        }
    }

    /// Loads partitions this node now leads; unloads those it no longer leads.
    pub(super) async fn reconcile(&self) {
        let image = self.images.borrow().clone();
        let Some(topic) = image.topic(OFFSETS_TOPIC) else {
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
            let (unload, load) = leadership_changes(&image, OFFSETS_TOPIC, self.node_id, held);
            for p in unload {
                info!(
                    partition = p,
                    "no longer coordinator for this offsets partition; unloading"
                );
                st.unload(p, n);
            }
            load
        };
        for (p, epoch) in to_load {
            let part = match self.replicas.partition(&image, OFFSETS_TOPIC, p).await {
                Ok(Some(part)) => part,
                Ok(None) => continue,
                Err(e) => {
                    warn!(partition = p, error = %e, "cannot open offsets partition");
                    continue;
                }
            };
            // The replica manager applies the same image; wait for it to act as leader.
            if !part.is_leader() || part.leader_epoch() != epoch {
                continue;
            }
            self.lock().partitions.insert(
                p,
                Load::Loading {
                    leader_epoch: epoch,
                },
            );
            match load_partition(
                part.clone(),
                self.config.limits.decompressed_batch_bytes_max,
            )
            .await
            {
                Ok((groups, upper)) => {
                    let mut st = self.lock();
                    if matches!(st.partitions.get(&p), Some(Load::Loading { leader_epoch }) if *leader_epoch == epoch)
                    {
                        let count = groups.len();
                        for g in groups {
                            st.groups.insert(g.id.clone(), g);
                        }
                        st.partitions.insert(
                            p,
                            Load::Loaded {
                                leader_epoch: epoch,
                                partition: part,
                            },
                        );
                        // Markers that became durable while the partition was read and
                        // that the read ended before (those it saw are applied already:
                        // applying one twice could end a later transaction's offsets).
                        for (producer_id, commit, _) in st
                            .completions_during_load
                            .remove(&p)
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|(_, _, at)| *at >= upper)
                        {
                            for g in st.groups.values_mut() {
                                if partition_for(&g.id, n) == p {
                                    g.complete_txn_offsets(producer_id, commit);
                                }
                            }
                        }
                        info!(
                            partition = p,
                            leader_epoch = epoch,
                            groups = count,
                            "loaded offsets partition"
                        );
                    }
                }
                Err(e) => {
                    warn!(partition = p, error = %e, "cannot load offsets partition; will retry");
                    self.lock().partitions.remove(&p);
                }
            }
        }
    }

    /// Expires offsets of Empty groups older than `offsets.retention.minutes`; removes groups
    /// left with nothing.
    pub(super) async fn expire_offsets(&self) {
        let now = now_ms();
        let retention =
            i64::try_from(self.config.groups.offsets_retention.as_millis()).unwrap_or(i64::MAX);
        let mut by_partition: HashMap<i32, Vec<Entry>> = HashMap::new();
        {
            let mut st = self.lock();
            let n = self.num_partitions();
            let mut dead = Vec::new();
            for g in st
                .groups
                .values_mut()
                .filter(|g| g.state == GroupState::Empty)
            {
                let since = g.state_timestamp_ms;
                let expired: Vec<(String, i32)> = g
                    .offsets
                    .iter()
                    .filter(|(_, c)| {
                        c.commit_timestamp_ms.max(since).saturating_add(retention) <= now
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                let out = by_partition.entry(partition_for(&g.id, n)).or_default();
                for k in expired {
                    g.offsets.remove(&k);
                    out.push((offset_key(&g.id, &k.0, k.1), None));
                }
                if g.offsets.is_empty() && g.is_empty() && since.saturating_add(retention) <= now {
                    let mut fx = Effects::default();
                    g.mark_dead(now, &mut fx);
                    out.push(group_record(g));
                    dead.push(g.id.clone());
                }
            }
            for id in dead {
                st.groups.remove(&id);
            }
        }
        for (p, recs) in by_partition.into_iter().filter(|(_, r)| !r.is_empty()) {
            debug!(partition = p, records = recs.len(), "expiring offsets");
            if let Err(e) = self.append(p, recs).await {
                warn!(partition = p, error = %e, "cannot write offset expiry tombstones");
            }
        }
    }

    /// Appends keyed records to an offsets partition this node leads and waits until they are
    /// durable: WAL fsync, then the high watermark past them (the acks=all path). Returns the
    /// offset of the first record.
    pub(super) async fn append(&self, pidx: i32, entries: Vec<Entry>) -> Result<i64, GroupError> {
        let turn = self.lock().turn(pidx);
        self.append_in_turn(turn, pidx, entries, None).await
    }

    /// As [`Self::append`], appending when `turn` comes (after the writes processed before
    /// it); the wait for replication is not ordered.
    /// `producer`: a transactional batch of that producer (TxnOffsetCommit), appended with
    /// only its epoch checked.
    pub(super) async fn append_in_turn(
        &self,
        turn: Turn,
        pidx: i32,
        entries: Vec<Entry>,
        producer: Option<(i64, i16)>,
    ) -> Result<i64, GroupError> {
        let part = self.lock().owner(pidx)?;
        let now = now_ms();
        let raw = records::build_batch_as(&entries, now, producer)
            .map_err(|e| GroupError::InvalidRequest(e.to_string()))?;
        let header = batch::validate_record_set(&raw)
            .map_err(|e| GroupError::InvalidRequest(e.to_string()))?;
        let [h] = header.as_slice() else {
            return Err(GroupError::InvalidRequest("one batch expected".into()));
        };
        let deadline = Instant::now() + self.config.groups.offsets_commit_timeout;
        let opts = AppendOptions {
            log_append_time: false,
            now_ms: now,
        };
        if tokio::time::timeout_at(deadline, turn.ready())
            .await
            .is_err()
        {
            warn!(
                partition = pidx,
                "offsets write waited too long for its turn to append"
            );
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let leader_epoch = part.leader_epoch();
        let appended = match producer {
            None => part.append_leader(raw, *h, opts).await,
            Some(_) => part.append_coordinator(raw, *h, opts).await,
        };
        drop(turn);
        let written = match appended {
            Ok(info) => match part.wait_replicated(&info, leader_epoch, deadline).await {
                Ok(()) => Ok(info),
                Err(e) => Err(e),
            },
            Err(e) => Err(ReplicatedError::Append(e)),
        };
        match written {
            Ok(info) => Ok(info.base_offset),
            Err(ReplicatedError::Append(AppendError::NotLeader) | ReplicatedError::NotLeader) => {
                Err(GroupError::NotCoordinator)
            }
            Err(ReplicatedError::Append(AppendError::InvalidProducerEpoch { .. })) => {
                Err(GroupError::ProducerFenced)
            }
            Err(e) => {
                warn!(partition = pidx, error = %e, "offsets write not replicated");
                Err(GroupError::CoordinatorNotAvailable)
            }
        }
    }
}
