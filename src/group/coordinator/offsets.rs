//! Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete.

use super::*;

/// Markers remembered per partition while it loads.
const COMPLETIONS_DURING_LOAD_MAX: usize = 100_000;

/// An OffsetCommit's answer: one result per entry, or a group-level failure.
pub(crate) type CommitResult = Result<Vec<Result<(), GroupError>>, GroupError>;

/// Whose commit: a consumer's OffsetCommit, or a transactional producer's TxnOffsetCommit
/// (producer id, epoch), whose offsets wait for the transaction's marker.
#[derive(Debug, Clone, Copy)]
enum CommitKind {
    Plain,
    Txn { producer: (i64, i16) },
}

/// A checked commit.
enum Checked {
    /// Nothing to write (every entry failed its own check).
    Done(Vec<Result<(), GroupError>>),
    Write(PendingCommit),
}

/// A commit that passed its checks and holds its append turn.
struct PendingCommit {
    pidx: i32,
    now: i64,
    results: Vec<Result<(), GroupError>>,
    writes: Vec<(usize, OffsetCommitEntry)>,
    turn: Turn,
}

impl GroupCoordinator {
    /// OffsetCommit: answers once the records are durable. One result per entry.
    ///
    /// The commit is checked and takes its place in the partition's append order when this is
    /// called, not when the returned future is first polled: a connection that calls it for
    /// each request in turn (and polls the futures concurrently) has its commits applied in
    /// request order, as Kafka applies one connection's requests one at a time.
    ///
    /// # Errors
    /// Group-level failures (coordinator, membership, generation).
    pub fn commit_offsets(
        self: &Arc<Self>,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        entries: Vec<OffsetCommitEntry>,
    ) -> impl std::future::Future<Output = CommitResult> + Send + 'static {
        self.commit(
            group_id,
            CommitKind::Plain,
            member_id,
            instance,
            generation_id,
            entries,
        )
    }

    /// Checks a commit now (taking its append turn) and returns the write to await.
    fn commit(
        self: &Arc<Self>,
        group_id: &str,
        kind: CommitKind,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        entries: Vec<OffsetCommitEntry>,
    ) -> impl std::future::Future<Output = CommitResult> + Send + 'static {
        let checked =
            self.check_commit(group_id, kind, member_id, instance, generation_id, entries);
        let this = self.clone();
        let group_id = group_id.to_owned();
        async move {
            match checked? {
                Checked::Done(results) => Ok(results),
                Checked::Write(w) => Ok(this.write_commit(&group_id, kind, w).await),
            }
        }
    }

    /// Checks a commit against the group (OffsetCommit's membership rules, or KIP-447's for
    /// TxnOffsetCommit) and each entry's metadata size; takes the append turn.
    fn check_commit(
        &self,
        group_id: &str,
        kind: CommitKind,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        entries: Vec<OffsetCommitEntry>,
    ) -> Result<Checked, GroupError> {
        let plain = matches!(kind, CommitKind::Plain);
        validate_group_id(group_id, plain)?;
        let pidx = self.partition_of(group_id);
        let now = now_ms();
        let mut results: Vec<Result<(), GroupError>> = Vec::with_capacity(entries.len());
        let mut writes: Vec<(usize, OffsetCommitEntry)> = Vec::new();
        let mut st = self.lock();
        st.owner(pidx)?;
        if !st.groups.contains_key(group_id) {
            if plain && generation_id >= 0 {
                return Err(GroupError::IllegalGeneration);
            }
            if st.groups.len() >= self.config.groups.groups_max {
                return Err(GroupError::InvalidRequest(
                    "too many groups on this coordinator".into(),
                ));
            }
            st.groups
                .insert(group_id.to_owned(), Group::new(group_id.to_owned(), now));
        }
        let group = st
            .groups
            .get_mut(group_id)
            .ok_or(GroupError::CoordinatorNotAvailable)?;
        if plain {
            group.check_commit(member_id, instance, generation_id, now)?;
        } else {
            group.check_txn_commit(member_id, instance, generation_id)?;
        }
        for (i, e) in entries.into_iter().enumerate() {
            if e.metadata
                .as_ref()
                .is_some_and(|m| m.len() > self.config.groups.offset_metadata_bytes_max)
            {
                results.push(Err(GroupError::OffsetMetadataTooLarge));
            } else {
                results.push(Ok(()));
                writes.push((i, e));
            }
        }
        if writes.is_empty() {
            return Ok(Checked::Done(results));
        }
        let turn = st.turn(pidx);
        Ok(Checked::Write(PendingCommit {
            pidx,
            now,
            results,
            writes,
            turn,
        }))
    }

    /// Appends a checked commit in its turn; once durable, the offsets become committed
    /// (later records win, as when the partition is loaded) or, for a transaction, pending
    /// until its marker.
    async fn write_commit(
        &self,
        group_id: &str,
        kind: CommitKind,
        w: PendingCommit,
    ) -> Vec<Result<(), GroupError>> {
        let PendingCommit {
            pidx,
            now,
            mut results,
            writes,
            turn,
        } = w;
        let recs: Vec<Entry> = writes
            .iter()
            .map(|(_, e)| {
                let v = OffsetValue {
                    offset: e.offset,
                    leader_epoch: e.leader_epoch,
                    metadata: e.metadata.clone().unwrap_or_default(),
                    commit_timestamp_ms: now,
                };
                (
                    offset_key(group_id, &e.topic, e.partition),
                    Some(records::encode_offset_value(&v)),
                )
            })
            .collect();
        let producer = match kind {
            CommitKind::Plain => None,
            CommitKind::Txn { producer } => Some(producer),
        };
        match self.append_in_turn(turn, pidx, recs, producer).await {
            Err(err) => {
                for (i, _) in &writes {
                    results[*i] = Err(err.clone());
                }
            }
            Ok(base) => {
                let mut st = self.lock();
                // The group may have been dropped meanwhile as unused (a standalone commit).
                if st.owner(pidx).is_ok() {
                    let group = st
                        .groups
                        .entry(group_id.to_owned())
                        .or_insert_with(|| Group::new(group_id.to_owned(), now));
                    for (n, (_, e)) in writes.into_iter().enumerate() {
                        let c = CommittedOffset {
                            offset: e.offset,
                            leader_epoch: e.leader_epoch,
                            metadata: e.metadata.unwrap_or_default(),
                            commit_timestamp_ms: now,
                            log_offset: base + n as i64,
                        };
                        if let Some((producer_id, _)) = producer {
                            group
                                .pending_txn_offsets
                                .entry(producer_id)
                                .or_default()
                                .insert((e.topic, e.partition), c);
                            continue;
                        }
                        // Later records win, as when the partition is loaded.
                        let slot = group.offsets.entry((e.topic, e.partition));
                        match slot {
                            std::collections::btree_map::Entry::Occupied(mut o)
                                if o.get().log_offset < c.log_offset =>
                            {
                                o.insert(c);
                            }
                            std::collections::btree_map::Entry::Occupied(_) => {}
                            std::collections::btree_map::Entry::Vacant(v) => {
                                v.insert(c);
                            }
                        }
                    }
                }
            }
        }
        results
    }

    /// OffsetFetch: `None` topics = every committed offset of the group.
    ///
    /// # Errors
    /// Not the coordinator, or loading.
    #[allow(clippy::type_complexity)]
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>, GroupError> {
        Ok(self
            .fetch_offsets_stable(group_id, topics, false)?
            .into_iter()
            .map(|(t, ps)| {
                (
                    t,
                    ps.into_iter().map(|(p, c)| (p, c.ok().flatten())).collect(),
                )
            })
            .collect())
    }

    /// OffsetFetch with KIP-447's `require_stable` (v7+): a requested partition with
    /// transactional offsets still waiting for their marker answers UNSTABLE_OFFSET_COMMIT
    /// (the client retries), so that a consumer never starts from an offset an ongoing
    /// transaction is about to move. An all-topics fetch lists the committed offsets as
    /// Kafka's `getOffsets` does.
    ///
    /// # Errors
    /// Not the coordinator, or loading.
    #[allow(clippy::type_complexity)]
    pub fn fetch_offsets_stable(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
        require_stable: bool,
    ) -> Result<
        Vec<(
            String,
            Vec<(i32, Result<Option<CommittedOffset>, GroupError>)>,
        )>,
        GroupError,
    > {
        validate_group_id(group_id, true)?;
        let pidx = self.partition_of(group_id);
        let st = self.lock();
        st.owner(pidx)?;
        let group = st.groups.get(group_id);
        Ok(match topics {
            Some(ts) => ts
                .into_iter()
                .map(|(t, ps)| {
                    let parts = ps
                        .into_iter()
                        .map(|p| {
                            let tp = (t.clone(), p);
                            let c = match group {
                                Some(g) if require_stable && g.has_pending_txn_offset(&tp) => {
                                    Err(GroupError::UnstableOffsetCommit)
                                }
                                g => Ok(g.and_then(|g| g.offsets.get(&tp).cloned())),
                            };
                            (p, c)
                        })
                        .collect();
                    (t, parts)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<
                    String,
                    Vec<(i32, Result<Option<CommittedOffset>, GroupError>)>,
                > = BTreeMap::new();
                for ((t, p), c) in group.map(|g| g.offsets.iter()).into_iter().flatten() {
                    by_topic
                        .entry(t.clone())
                        .or_default()
                        .push((*p, Ok(Some(c.clone()))));
                }
                by_topic.into_iter().collect()
            }
        })
    }

    /// OffsetDelete: removes committed offsets of topics the group does not subscribe to.
    ///
    /// # Errors
    /// Group-level failures.
    #[allow(clippy::type_complexity)]
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        topics: Vec<(String, Vec<i32>)>,
    ) -> Result<Vec<(String, Vec<(i32, Result<(), GroupError>)>)>, GroupError> {
        validate_group_id(group_id, false)?;
        let pidx = self.partition_of(group_id);
        let mut tombstones = Vec::new();
        let out = {
            let mut st = self.lock();
            st.owner(pidx)?;
            let group = st.live_group_mut(group_id)?;
            let subscribed = if group.state == GroupState::Empty {
                Default::default()
            } else {
                group.subscribed_topics().ok_or(GroupError::NonEmptyGroup)?
            };
            let mut out = Vec::new();
            for (t, ps) in topics {
                let mut parts = Vec::new();
                for p in ps {
                    if subscribed.contains(&t) {
                        parts.push((p, Err(GroupError::GroupSubscribedToTopic)));
                        continue;
                    }
                    if group.offsets.remove(&(t.clone(), p)).is_some() {
                        tombstones.push((offset_key(group_id, &t, p), None));
                    }
                    parts.push((p, Ok(())));
                }
                out.push((t, parts));
            }
            out
        };
        if !tombstones.is_empty() {
            self.append(pidx, tombstones).await?;
        }
        Ok(out)
    }

    /// TxnOffsetCommit: writes the offsets as part of producer `producer`'s (id, epoch)
    /// transaction; they become the group's committed offsets when the transaction's COMMIT
    /// marker reaches the group's offsets partition ([`Self::complete_txn_offsets`]).
    /// `member_id` / `generation_id` / `instance` are KIP-447's fencing fields (empty / -1
    /// without).
    ///
    /// # Errors
    /// Group-level failures (coordinator, membership, generation, a fenced producer).
    #[allow(clippy::too_many_arguments)]
    pub fn commit_txn_offsets(
        self: &Arc<Self>,
        group_id: &str,
        producer: (i64, i16),
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        entries: Vec<OffsetCommitEntry>,
    ) -> impl std::future::Future<Output = CommitResult> + Send + 'static {
        self.commit(
            group_id,
            CommitKind::Txn { producer },
            member_id,
            instance,
            generation_id,
            entries,
        )
    }

    /// A transaction marker of `producer_id` at offset `marker_offset` of offsets partition
    /// `partition` is written and replicated: its transactional offsets there become
    /// committed, or are dropped.
    pub fn complete_txn_offsets(
        &self,
        partition: i32,
        producer_id: i64,
        commit: bool,
        marker_offset: i64,
    ) {
        let n = self.num_partitions();
        let mut st = self.lock();
        match st.owner(partition) {
            Ok(_) => {}
            Err(GroupError::CoordinatorLoadInProgress) => {
                let during = st.completions_during_load.entry(partition).or_default();
                // One entry per marker; a load that takes this many markers is pathological,
                // and the log holds them for the next load anyway.
                if during.len() < COMPLETIONS_DURING_LOAD_MAX {
                    during.push((producer_id, commit, marker_offset));
                }
                return;
            }
            Err(_) => return,
        }
        for g in st
            .groups
            .values_mut()
            .filter(|g| g.pending_txn_offsets.contains_key(&producer_id))
        {
            if partition_for(&g.id, n) == partition {
                g.complete_txn_offsets(producer_id, commit);
            }
        }
    }
}
