//! One transactional id's state and its transitions: Kafka's `TransactionMetadata` and the
//! checks of its `TransactionCoordinator`, for both transaction versions: version 1 (Kafka
//! 2.2.1–3.x clients: the epoch changes only on InitProducerId and fencing) and version 2
//! (KIP-890 part 2, EndTxn v5+: every commit or abort bumps the epoch, so a late or retried
//! request of the previous transaction is told apart from the next one). Pure: time and new
//! producer ids are arguments; a transition is prepared here (`pending` set, the target
//! returned), written to `__transaction_state` by the driver, and completed with
//! [`TxnMeta::complete`] once durable, or dropped with [`TxnMeta::abandon`].

use super::records::{TxnLogValue, TxnStatus, TxnTopic};
use super::TxnError;
use std::collections::{BTreeMap, BTreeSet};

/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH` / `NO_PRODUCER_ID`.
pub const NO_EPOCH: i16 = -1;
pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's `TransactionVersion` levels that change the coordinator's rules.
pub const TV_1: i16 = 1;
pub const TV_2: i16 = 2;

/// A topic partition.
pub type Tp = (String, i32);

/// The state of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMeta {
    pub id: String,
    pub producer_id: i64,
    /// The id before the last rotation (`lastProducerId`).
    pub prev_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, in memory only as in Kafka (a retried InitProducerId).
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnStatus,
    pub partitions: BTreeSet<Tp>,
    pub start_ms: i64,
    pub last_update_ms: i64,
    /// The state being written (Kafka's `pendingState`).
    pub pending: Option<TxnStatus>,
    /// The producer id a version-2 end rotates to when the epoch is exhausted (written with
    /// PrepareCommit / PrepareAbort, taken on completion), else -1.
    pub next_producer_id: i64,
    /// The transaction version of the client's last request that set it (Kafka's
    /// `clientTransactionVersion`).
    pub client_version: i16,
}

/// A prepared transition: the state to write, then apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub producer_id: i64,
    pub prev_producer_id: i64,
    pub producer_epoch: i16,
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnStatus,
    pub partitions: BTreeSet<Tp>,
    pub start_ms: i64,
    pub last_update_ms: i64,
    pub next_producer_id: i64,
    pub client_version: i16,
}

impl Target {
    /// The record value Kafka writes for this state.
    #[must_use]
    pub fn to_value(&self) -> TxnLogValue {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in &self.partitions {
            by_topic.entry(t.as_str()).or_default().push(*p);
        }
        TxnLogValue {
            producer_id: self.producer_id,
            previous_producer_id: self.prev_producer_id,
            next_producer_id: self.next_producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            status: self.state,
            partitions: by_topic
                .into_iter()
                .map(|(t, ps)| TxnTopic {
                    topic: t.to_owned(),
                    partitions: ps,
                })
                .collect(),
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
            client_transaction_version: self.client_version,
        }
    }

    /// The producer id and epoch a version-2 EndTxn answers with: what the client uses for
    /// its next transaction (the next producer id at epoch 0 when this end rotates it).
    #[must_use]
    pub fn next_producer(&self) -> (i64, i16) {
        if self.next_producer_id == NO_PRODUCER_ID {
            (self.producer_id, self.producer_epoch)
        } else {
            (self.next_producer_id, 0)
        }
    }
}

/// What InitProducerId asks of the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// Write this (state Empty) and answer with its producer id and epoch.
    Write(Target),
    /// The epoch is exhausted: allocate a new producer id and call again with it.
    NeedProducerId,
    /// An open transaction must be aborted first: write this PrepareAbort (with the bumped
    /// epoch that fences the old producer), send its markers, and answer
    /// CONCURRENT_TRANSACTIONS (the client retries).
    AbortFirst(Target),
}

/// What EndTxn asks of the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStep {
    /// Already done (a retried EndTxn): answer at once with this producer id and epoch.
    Done(i64, i16),
    /// Write this PrepareCommit / PrepareAbort, answer, then send the markers.
    Write(Target),
    /// A version-2 end must bump an exhausted epoch: allocate a new producer id and call
    /// again with it.
    NeedProducerId,
}

/// Whether an epoch can no longer be bumped (Kafka's `isEpochExhausted`).
#[must_use]
pub fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

impl TxnMeta {
    /// A new transactional id with a fresh producer id (no epoch yet).
    #[must_use]
    pub fn new(id: String, producer_id: i64, timeout_ms: i32, now: i64) -> Self {
        Self {
            id,
            producer_id,
            prev_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_EPOCH,
            last_producer_epoch: NO_EPOCH,
            timeout_ms,
            state: TxnStatus::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now,
            pending: None,
            next_producer_id: NO_PRODUCER_ID,
            client_version: 0,
        }
    }

    /// Rebuilt from its last record.
    #[must_use]
    pub fn from_value(id: String, v: &TxnLogValue) -> Self {
        Self {
            id,
            producer_id: v.producer_id,
            prev_producer_id: v.previous_producer_id,
            producer_epoch: v.producer_epoch,
            last_producer_epoch: NO_EPOCH,
            timeout_ms: v.timeout_ms,
            state: v.status,
            partitions: v
                .partitions
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), *p)))
                .collect(),
            start_ms: v.start_ms,
            last_update_ms: v.last_update_ms,
            pending: None,
            next_producer_id: v.next_producer_id,
            client_version: v.client_transaction_version,
        }
    }

    fn target(&self) -> Target {
        Target {
            producer_id: self.producer_id,
            prev_producer_id: self.prev_producer_id,
            producer_epoch: self.producer_epoch,
            last_producer_epoch: self.last_producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions: self.partitions.clone(),
            start_ms: self.start_ms,
            last_update_ms: self.last_update_ms,
            next_producer_id: self.next_producer_id,
            client_version: self.client_version,
        }
    }

    /// Marks `t` as being written.
    fn prepare(&mut self, t: Target) -> Target {
        debug_assert!(
            t.state.valid_previous().contains(&self.state),
            "{:?} -> {:?}",
            self.state,
            t.state
        );
        self.pending = Some(t.state);
        t
    }

    /// Applies a written transition.
    pub fn complete(&mut self, t: &Target) {
        self.producer_id = t.producer_id;
        self.prev_producer_id = t.prev_producer_id;
        self.producer_epoch = t.producer_epoch;
        self.last_producer_epoch = t.last_producer_epoch;
        self.timeout_ms = t.timeout_ms;
        self.state = t.state;
        self.partitions = t.partitions.clone();
        self.start_ms = t.start_ms;
        self.last_update_ms = t.last_update_ms;
        self.next_producer_id = t.next_producer_id;
        self.client_version = t.client_version;
        self.pending = None;
    }

    /// Drops a transition whose write failed.
    pub fn abandon(&mut self) {
        self.pending = None;
    }

    /// Kafka's `isValidProducerId` for InitProducerId with an expected producer id and epoch
    /// (KIP-360).
    fn valid_expected(&self, pid: i64, epoch: i16) -> bool {
        self.producer_epoch == NO_EPOCH
            || pid == self.producer_id
            || (pid == self.prev_producer_id && epoch_exhausted(epoch))
    }

    /// InitProducerId with this transactional id (`expected`: KIP-360's producer id and
    /// epoch, v3+). `new_pid`: a freshly allocated producer id, when [`InitStep::NeedProducerId`]
    /// asked for one.
    ///
    /// # Errors
    /// CONCURRENT_TRANSACTIONS while a transition is in flight or a transaction is ending;
    /// PRODUCER_FENCED for a stale expected producer.
    pub fn init_producer_id(
        &mut self,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        new_pid: Option<i64>,
        tv2: bool,
        now: i64,
    ) -> Result<InitStep, TxnError> {
        if self.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        if let Some((pid, epoch)) = expected {
            if !self.valid_expected(pid, epoch) {
                return Err(TxnError::ProducerFenced);
            }
        }
        match self.state {
            TxnStatus::PrepareAbort | TxnStatus::PrepareCommit => {
                Err(TxnError::ConcurrentTransactions)
            }
            TxnStatus::Empty | TxnStatus::CompleteAbort | TxnStatus::CompleteCommit => {
                let mut t = self.target();
                t.state = TxnStatus::Empty;
                t.timeout_ms = timeout_ms;
                t.partitions.clear();
                t.start_ms = -1;
                t.last_update_ms = now;
                if epoch_exhausted(self.producer_epoch)
                    && expected.is_none_or(|(_, e)| e == self.producer_epoch)
                {
                    let Some(pid) = new_pid else {
                        return Ok(InitStep::NeedProducerId);
                    };
                    // Kafka's prepareProducerIdRotation.
                    t.prev_producer_id = self.producer_id;
                    t.producer_id = pid;
                    t.producer_epoch = 0;
                    t.last_producer_epoch = if expected.is_some() {
                        self.producer_epoch
                    } else {
                        NO_EPOCH
                    };
                    return Ok(InitStep::Write(self.prepare(t)));
                }
                // Kafka's prepareIncrementProducerEpoch.
                let bumped = self.producer_epoch.wrapping_add(1);
                match expected.map(|(_, e)| e) {
                    None => {
                        t.producer_epoch = bumped;
                        t.last_producer_epoch = NO_EPOCH;
                    }
                    Some(e) if self.producer_epoch == NO_EPOCH || e == self.producer_epoch => {
                        t.producer_epoch = bumped;
                        t.last_producer_epoch = self.producer_epoch;
                    }
                    Some(e) if e == self.last_producer_epoch => {
                        // A retry of a bump whose answer was lost: no second bump.
                    }
                    Some(_) => return Err(TxnError::ProducerFenced),
                }
                Ok(InitStep::Write(self.prepare(t)))
            }
            TxnStatus::Ongoing => {
                let t = self.fence_abort(tv2, now);
                Ok(InitStep::AbortFirst(self.prepare(t)))
            }
            TxnStatus::Dead | TxnStatus::PrepareEpochFence => Err(TxnError::ConcurrentTransactions),
        }
    }

    /// The abort of an open transaction that fences its producer (Kafka's
    /// `prepareFenceProducerEpoch`, then the abort; the PrepareEpochFence state itself is never
    /// written): the epoch is bumped unless it is at its maximum. At transaction version 2
    /// the abort bumps it once more (Kafka's coordinator does both), so the fenced producer's
    /// EndTxn, one epoch behind, is not taken for a retry of its own end but fenced.
    fn fence_abort(&self, tv2: bool, now: i64) -> Target {
        let mut t = self.target();
        let fenced = if self.producer_epoch < i16::MAX {
            self.producer_epoch + 1
        } else {
            self.producer_epoch
        };
        t.producer_epoch = fenced;
        t.last_producer_epoch = NO_EPOCH;
        if tv2 {
            t.client_version = TV_2;
            if fenced < i16::MAX {
                t.producer_epoch = fenced + 1;
                t.last_producer_epoch = fenced;
            }
        }
        t.state = TxnStatus::PrepareAbort;
        t.last_update_ms = now;
        t
    }

    /// Checks the producer of a request against this id (AddPartitionsToTxn, AddOffsetsToTxn,
    /// EndTxn).
    fn check_producer(&self, pid: i64, epoch: i16) -> Result<(), TxnError> {
        if pid != self.producer_id {
            // The producer id a version-2 end is rotating to: usable once the end completes.
            if pid == self.next_producer_id && self.is_ending() {
                return Err(TxnError::ConcurrentTransactions);
            }
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if epoch != self.producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if self.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        Ok(())
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: `None` if every partition is already in the
    /// open transaction (nothing to write).
    ///
    /// # Errors
    /// INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS (a transition in
    /// flight or the previous transaction still ending).
    pub fn add_partitions(
        &mut self,
        pid: i64,
        epoch: i16,
        partitions: &[Tp],
        client_version: i16,
        now: i64,
    ) -> Result<Option<Target>, TxnError> {
        self.check_producer(pid, epoch)?;
        match self.state {
            TxnStatus::PrepareCommit
            | TxnStatus::PrepareAbort
            | TxnStatus::Dead
            | TxnStatus::PrepareEpochFence => Err(TxnError::ConcurrentTransactions),
            TxnStatus::Ongoing if partitions.iter().all(|p| self.partitions.contains(p)) => {
                Ok(None)
            }
            TxnStatus::Ongoing
            | TxnStatus::Empty
            | TxnStatus::CompleteCommit
            | TxnStatus::CompleteAbort => {
                let mut t = self.target();
                if self.state != TxnStatus::Ongoing {
                    t.start_ms = now;
                    t.partitions.clear();
                }
                t.partitions.extend(partitions.iter().cloned());
                t.state = TxnStatus::Ongoing;
                t.last_update_ms = now;
                t.client_version = client_version;
                Ok(Some(self.prepare(t)))
            }
        }
    }

    /// EndTxn from the client at transaction version 1 (v0–v4) or 2 (v5+, `tv2`).
    /// `new_pid`: a freshly allocated producer id, when [`EndStep::NeedProducerId`] asked for
    /// one.
    ///
    /// # Errors
    /// INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS (the same end in
    /// progress), INVALID_TXN_STATE (nothing open, or the other outcome already chosen).
    pub fn end(
        &mut self,
        pid: i64,
        epoch: i16,
        commit: bool,
        tv2: bool,
        new_pid: Option<i64>,
        now: i64,
    ) -> Result<EndStep, TxnError> {
        if tv2 {
            return self.end_v2(pid, epoch, commit, new_pid, now);
        }
        self.check_producer(pid, epoch)?;
        match (self.state, commit) {
            (TxnStatus::Ongoing, _) => {
                let mut t = self.target();
                t.state = if commit {
                    TxnStatus::PrepareCommit
                } else {
                    TxnStatus::PrepareAbort
                };
                t.last_update_ms = now;
                Ok(EndStep::Write(self.prepare(t)))
            }
            (TxnStatus::CompleteCommit, true) | (TxnStatus::CompleteAbort, false) => {
                Ok(EndStep::Done(NO_PRODUCER_ID, NO_EPOCH))
            }
            (TxnStatus::PrepareCommit, true) | (TxnStatus::PrepareAbort, false) => {
                Err(TxnError::ConcurrentTransactions)
            }
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    /// EndTxn at transaction version 2 (Kafka's `endTransaction` with `supportsEpochBump`).
    /// The end is written with the epoch bumped (its markers carry it), and answered with the
    /// producer id and epoch of the next transaction. A request one epoch behind is a retry
    /// of the last end; an abort with nothing open is accepted (and bumps the epoch), which
    /// is how a version-2 client recovers from an abortable error:
    ///
    /// | state | abort, retry | abort, current | commit, retry | commit, current |
    /// |---|---|---|---|---|
    /// | Empty | fenced | bump | fenced | INVALID_TXN_STATE |
    /// | CompleteAbort | done | bump | INVALID_TXN_STATE | INVALID_TXN_STATE |
    /// | CompleteCommit | INVALID_TXN_STATE | bump | done | INVALID_TXN_STATE |
    fn end_v2(
        &mut self,
        pid: i64,
        epoch: i16,
        commit: bool,
        new_pid: Option<i64>,
        now: i64,
    ) -> Result<EndStep, TxnError> {
        let current = i32::from(self.producer_epoch);
        let retry_on_bump = current == i32::from(epoch) + 1;
        let retry_on_overflow = pid == self.prev_producer_id
            && pid != self.producer_id
            && epoch == i16::MAX - 1
            && self.producer_epoch == 0;
        let valid_epoch = match self.state {
            TxnStatus::PrepareCommit | TxnStatus::PrepareAbort => retry_on_bump,
            TxnStatus::CompleteCommit | TxnStatus::CompleteAbort => {
                retry_on_bump || retry_on_overflow || epoch == self.producer_epoch
            }
            _ => epoch == self.producer_epoch,
        };
        let retry = retry_on_bump || retry_on_overflow;
        if pid != self.producer_id && !retry_on_overflow {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if !valid_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if self.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        let next = match (self.state, commit) {
            (TxnStatus::Ongoing, true) => TxnStatus::PrepareCommit,
            (TxnStatus::Ongoing, false) => TxnStatus::PrepareAbort,
            (TxnStatus::CompleteCommit, true) | (TxnStatus::CompleteAbort, false) if retry => {
                return Ok(EndStep::Done(self.producer_id, self.producer_epoch))
            }
            (TxnStatus::CompleteCommit | TxnStatus::CompleteAbort | TxnStatus::Empty, false)
                if !retry =>
            {
                TxnStatus::PrepareAbort
            }
            (TxnStatus::PrepareCommit, true) | (TxnStatus::PrepareAbort, false) => {
                return Err(TxnError::ConcurrentTransactions)
            }
            _ => return Err(TxnError::InvalidTxnState),
        };
        let mut t = self.target();
        if epoch_exhausted(self.producer_epoch) {
            let Some(p) = new_pid else {
                return Ok(EndStep::NeedProducerId);
            };
            t.next_producer_id = p;
        }
        t.producer_epoch = self.producer_epoch + 1;
        t.last_producer_epoch = self.producer_epoch;
        if self.state != TxnStatus::Ongoing {
            // Nothing was added: the abort's start is now.
            t.start_ms = now;
            t.partitions.clear();
        }
        t.state = next;
        t.last_update_ms = now;
        t.client_version = TV_2;
        Ok(EndStep::Write(self.prepare(t)))
    }

    /// The abort of a transaction open past its timeout: the epoch is bumped (fencing the
    /// producer) as Kafka's `abortTimedOutTransactions` does. `None` unless it has expired.
    pub fn abort_if_expired(&mut self, tv2: bool, now: i64) -> Option<Target> {
        let expired = self.state == TxnStatus::Ongoing
            && self.pending.is_none()
            && self.start_ms.saturating_add(i64::from(self.timeout_ms)) <= now;
        if !expired {
            return None;
        }
        let t = self.fence_abort(tv2, now);
        Some(self.prepare(t))
    }

    /// The end of a prepared commit or abort once its markers are written.
    #[must_use]
    pub fn prepare_complete(&mut self, now: i64) -> Option<Target> {
        let state = match self.state {
            TxnStatus::PrepareCommit => TxnStatus::CompleteCommit,
            TxnStatus::PrepareAbort => TxnStatus::CompleteAbort,
            _ => return None,
        };
        if self.pending.is_some() {
            return None;
        }
        let mut t = self.target();
        t.state = state;
        t.partitions.clear();
        t.last_update_ms = now;
        if self.next_producer_id != NO_PRODUCER_ID {
            // A version-2 end that exhausted the epoch: the next producer id takes over
            // (Kafka keeps the last epoch the client saw, MAX − 1).
            t.prev_producer_id = self.producer_id;
            t.producer_id = self.next_producer_id;
            t.producer_epoch = 0;
            t.next_producer_id = NO_PRODUCER_ID;
        }
        Some(self.prepare(t))
    }

    /// The removal of an id idle past `transactional.id.expiration.ms` (Kafka writes a
    /// tombstone; `Dead` is never written as a value).
    pub fn expire_if_idle(&mut self, expiration_ms: i64, now: i64) -> bool {
        let idle = matches!(
            self.state,
            TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort
        ) && self.pending.is_none()
            && self.last_update_ms.saturating_add(expiration_ms) <= now;
        if idle {
            self.pending = Some(TxnStatus::Dead);
        }
        idle
    }

    /// Whether a transaction is being ended (its markers are due).
    #[must_use]
    pub fn is_ending(&self) -> bool {
        matches!(
            self.state,
            TxnStatus::PrepareCommit | TxnStatus::PrepareAbort
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> Tp {
        (t.to_owned(), p)
    }

    fn written(m: &mut TxnMeta, t: Target) -> Target {
        m.complete(&t);
        t
    }

    fn init(m: &mut TxnMeta, expected: Option<(i64, i16)>) -> Result<InitStep, TxnError> {
        m.init_producer_id(60_000, expected, None, false, 10)
    }

    /// A first or next InitProducerId, written.
    fn init_written(m: &mut TxnMeta) {
        let InitStep::Write(t) = init(m, None).expect("init") else {
            panic!("a write expected")
        };
        written(m, t);
    }

    #[test]
    fn first_init_gives_epoch_zero_and_each_init_bumps() {
        let mut m = TxnMeta::new("t".into(), 7, 60_000, 0);
        let InitStep::Write(t) = init(&mut m, None).expect("init") else {
            panic!("write expected")
        };
        assert_eq!(
            (t.producer_id, t.producer_epoch, t.state),
            (7, 0, TxnStatus::Empty)
        );
        // A second request while the first is written: retry.
        assert_eq!(init(&mut m, None), Err(TxnError::ConcurrentTransactions));
        written(&mut m, t);
        let InitStep::Write(t) = init(&mut m, None).expect("init") else {
            panic!()
        };
        assert_eq!(t.producer_epoch, 1);
        written(&mut m, t);
    }

    #[test]
    fn a_full_transaction_and_its_errors() {
        let mut m = TxnMeta::new("t".into(), 7, 60_000, 0);
        init_written(&mut m);
        assert_eq!(
            m.end(7, 0, true, false, None, 20),
            Err(TxnError::InvalidTxnState),
            "nothing open"
        );
        assert_eq!(
            m.add_partitions(8, 0, &[tp("a", 0)], TV_1, 20),
            Err(TxnError::InvalidProducerIdMapping)
        );
        assert_eq!(
            m.add_partitions(7, 1, &[tp("a", 0)], TV_1, 20),
            Err(TxnError::ProducerFenced)
        );
        let t = m
            .add_partitions(7, 0, &[tp("a", 0)], TV_1, 20)
            .expect("add")
            .expect("write");
        assert_eq!((t.state, t.start_ms), (TxnStatus::Ongoing, 20));
        written(&mut m, t);
        assert_eq!(
            m.add_partitions(7, 0, &[tp("a", 0)], TV_1, 21),
            Ok(None),
            "already in"
        );
        let t = m
            .add_partitions(7, 0, &[tp("b", 1)], TV_1, 22)
            .expect("add")
            .expect("write");
        assert_eq!(t.partitions.len(), 2);
        assert_eq!(t.start_ms, 20, "the start stays");
        written(&mut m, t);
        let EndStep::Write(t) = m.end(7, 0, true, false, None, 30).expect("end") else {
            panic!()
        };
        assert_eq!(t.state, TxnStatus::PrepareCommit);
        written(&mut m, t);
        assert_eq!(
            m.end(7, 0, true, false, None, 31),
            Err(TxnError::ConcurrentTransactions)
        );
        assert_eq!(
            m.end(7, 0, false, false, None, 31),
            Err(TxnError::InvalidTxnState)
        );
        assert_eq!(
            m.add_partitions(7, 0, &[tp("a", 0)], TV_1, 31),
            Err(TxnError::ConcurrentTransactions),
            "the next transaction waits for the markers"
        );
        let t = m.prepare_complete(40).expect("complete");
        assert_eq!(
            (t.state, t.partitions.len()),
            (TxnStatus::CompleteCommit, 0)
        );
        written(&mut m, t);
        assert_eq!(
            m.end(7, 0, true, false, None, 41),
            Ok(EndStep::Done(NO_PRODUCER_ID, NO_EPOCH)),
            "a retried commit"
        );
        assert_eq!(
            m.end(7, 0, false, false, None, 41),
            Err(TxnError::InvalidTxnState)
        );
    }

    #[test]
    fn init_during_an_open_transaction_aborts_it_with_a_fencing_epoch() {
        let mut m = TxnMeta::new("t".into(), 7, 60_000, 0);
        init_written(&mut m);
        let t = m
            .add_partitions(7, 0, &[tp("a", 0)], TV_1, 1)
            .expect("add")
            .expect("w");
        written(&mut m, t);
        let InitStep::AbortFirst(t) = init(&mut m, None).expect("init") else {
            panic!()
        };
        assert_eq!((t.state, t.producer_epoch), (TxnStatus::PrepareAbort, 1));
        written(&mut m, t);
        // The zombie at epoch 0 is fenced.
        assert_eq!(
            m.end(7, 0, true, false, None, 5),
            Err(TxnError::ProducerFenced)
        );
        assert_eq!(init(&mut m, None), Err(TxnError::ConcurrentTransactions));
        let t = m.prepare_complete(6).expect("complete");
        written(&mut m, t);
        let InitStep::Write(t) = init(&mut m, None).expect("init") else {
            panic!()
        };
        assert_eq!(t.producer_epoch, 2);
    }

    #[test]
    fn kip_360_expected_producer() {
        let mut m = TxnMeta::new("t".into(), 7, 60_000, 0);
        init_written(&mut m);
        let InitStep::Write(t) = init(&mut m, Some((7, 0))).expect("init") else {
            panic!()
        };
        assert_eq!((t.producer_epoch, t.last_producer_epoch), (1, 0));
        written(&mut m, t);
        // The same request again (its answer was lost): no second bump.
        let InitStep::Write(t) = init(&mut m, Some((7, 0))).expect("init") else {
            panic!()
        };
        assert_eq!(t.producer_epoch, 1);
        written(&mut m, t);
        assert_eq!(init(&mut m, Some((9, 0))), Err(TxnError::ProducerFenced));
        assert_eq!(init(&mut m, Some((7, 5))), Err(TxnError::ProducerFenced));
    }

    #[test]
    fn an_exhausted_epoch_rotates_the_producer_id() {
        let mut m = TxnMeta::new("t".into(), 7, 60_000, 0);
        m.producer_epoch = i16::MAX - 1;
        assert_eq!(init(&mut m, None), Ok(InitStep::NeedProducerId));
        let InitStep::Write(t) = m
            .init_producer_id(60_000, None, Some(99), false, 1)
            .expect("init")
        else {
            panic!()
        };
        assert_eq!(
            (t.producer_id, t.producer_epoch, t.prev_producer_id),
            (99, 0, 7)
        );
    }

    #[test]
    fn timeouts_and_expiration() {
        let mut m = TxnMeta::new("t".into(), 7, 1_000, 0);
        let InitStep::Write(t) = m
            .init_producer_id(1_000, None, None, false, 0)
            .expect("init")
        else {
            panic!()
        };
        written(&mut m, t);
        assert!(m.abort_if_expired(false, 10_000).is_none(), "nothing open");
        let t = m
            .add_partitions(7, 0, &[tp("a", 0)], TV_1, 100)
            .expect("add")
            .expect("w");
        written(&mut m, t);
        assert!(m.abort_if_expired(false, 1_099).is_none());
        let t = m.abort_if_expired(false, 1_100).expect("expired");
        assert_eq!((t.state, t.producer_epoch), (TxnStatus::PrepareAbort, 1));
        written(&mut m, t);
        assert!(!m.expire_if_idle(0, 5_000), "ending");
        let t = m.prepare_complete(1_200).expect("complete");
        written(&mut m, t);
        assert!(!m.expire_if_idle(10_000, 5_000));
        assert!(m.expire_if_idle(1_000, 5_000));
    }

    fn end2(m: &mut TxnMeta, epoch: i16, commit: bool) -> Result<EndStep, TxnError> {
        m.end(7, epoch, commit, true, None, 50)
    }

    /// An id with producer id 7 at epoch 0 and `a-0` in an open version-2 transaction.
    fn open_v2() -> TxnMeta {
        let mut m = TxnMeta::new("t".into(), 7, 60_000, 0);
        init_written(&mut m);
        let t = m
            .add_partitions(7, 0, &[tp("a", 0)], TV_2, 20)
            .expect("add")
            .expect("write");
        written(&mut m, t);
        m
    }

    #[test]
    fn version_2_bumps_the_epoch_on_every_end_and_tells_retries_apart() {
        let mut m = open_v2();
        let EndStep::Write(t) = end2(&mut m, 0, true).expect("end") else {
            panic!()
        };
        assert_eq!(
            (
                t.state,
                t.producer_epoch,
                t.last_producer_epoch,
                t.client_version
            ),
            (TxnStatus::PrepareCommit, 1, 0, TV_2)
        );
        assert_eq!(t.next_producer(), (7, 1), "the answer: the next epoch");
        written(&mut m, t);
        // While the markers are written: a retry waits, the other outcome is refused, the
        // new epoch may not end anything yet, nor start the next transaction.
        assert_eq!(end2(&mut m, 0, true), Err(TxnError::ConcurrentTransactions));
        assert_eq!(end2(&mut m, 0, false), Err(TxnError::InvalidTxnState));
        assert_eq!(end2(&mut m, 1, true), Err(TxnError::ProducerFenced));
        assert_eq!(
            m.add_partitions(7, 1, &[tp("a", 0)], TV_2, 51),
            Err(TxnError::ConcurrentTransactions)
        );
        let t = m.prepare_complete(60).expect("complete");
        assert_eq!((t.state, t.producer_epoch), (TxnStatus::CompleteCommit, 1));
        written(&mut m, t);
        // Kafka's table for the completed states.
        assert_eq!(
            end2(&mut m, 0, true),
            Ok(EndStep::Done(7, 1)),
            "a retried commit"
        );
        assert_eq!(end2(&mut m, 0, false), Err(TxnError::InvalidTxnState));
        assert_eq!(end2(&mut m, 1, true), Err(TxnError::InvalidTxnState));
        assert_eq!(end2(&mut m, 3, false), Err(TxnError::ProducerFenced));
        // An abort with nothing open bumps the epoch and writes no markers.
        let EndStep::Write(t) = end2(&mut m, 1, false).expect("empty abort") else {
            panic!()
        };
        assert_eq!(
            (t.state, t.producer_epoch, t.partitions.len(), t.start_ms),
            (TxnStatus::PrepareAbort, 2, 0, 50)
        );
        written(&mut m, t);
        let t = m.prepare_complete(61).expect("complete");
        written(&mut m, t);
        assert_eq!(
            end2(&mut m, 1, false),
            Ok(EndStep::Done(7, 2)),
            "a retried abort"
        );
        assert_eq!(end2(&mut m, 1, true), Err(TxnError::InvalidTxnState));
        // The next transaction runs at the new epoch; the old one is fenced.
        assert_eq!(
            m.add_partitions(7, 1, &[tp("a", 0)], TV_2, 62),
            Err(TxnError::ProducerFenced)
        );
        let t = m
            .add_partitions(7, 2, &[tp("a", 0)], TV_2, 62)
            .expect("add")
            .expect("write");
        written(&mut m, t);
        assert!(matches!(end2(&mut m, 2, false), Ok(EndStep::Write(_))));
    }

    #[test]
    fn version_2_from_empty() {
        let mut m = TxnMeta::new("t".into(), 7, 60_000, 0);
        init_written(&mut m);
        init_written(&mut m);
        assert_eq!(end2(&mut m, 1, true), Err(TxnError::InvalidTxnState));
        assert_eq!(
            end2(&mut m, 0, false),
            Err(TxnError::ProducerFenced),
            "a retry"
        );
        assert_eq!(
            m.end(8, 1, false, true, None, 50),
            Err(TxnError::InvalidProducerIdMapping)
        );
        let EndStep::Write(t) = end2(&mut m, 1, false).expect("abort") else {
            panic!()
        };
        assert_eq!((t.state, t.producer_epoch), (TxnStatus::PrepareAbort, 2));
        // Version 1 refuses the same abort.
        let mut v1 = TxnMeta::new("t".into(), 7, 60_000, 0);
        init_written(&mut v1);
        assert_eq!(
            v1.end(7, 0, false, false, None, 50),
            Err(TxnError::InvalidTxnState)
        );
    }

    #[test]
    fn version_2_rotates_an_exhausted_producer_id_on_end() {
        let mut m = open_v2();
        m.producer_epoch = i16::MAX - 1;
        assert_eq!(
            end2(&mut m, i16::MAX - 1, true),
            Ok(EndStep::NeedProducerId)
        );
        assert!(m.pending.is_none(), "nothing prepared");
        let EndStep::Write(t) = m
            .end(7, i16::MAX - 1, true, true, Some(99), 50)
            .expect("end")
        else {
            panic!()
        };
        assert_eq!(
            (t.producer_id, t.producer_epoch, t.next_producer_id),
            (7, i16::MAX, 99)
        );
        assert_eq!(
            t.next_producer(),
            (99, 0),
            "the client goes on with the new id"
        );
        written(&mut m, t);
        // The next transaction of the new id waits for the markers of this one.
        assert_eq!(
            m.add_partitions(99, 0, &[tp("a", 0)], TV_2, 51),
            Err(TxnError::ConcurrentTransactions)
        );
        let t = m.prepare_complete(60).expect("complete");
        assert_eq!(
            (
                t.producer_id,
                t.producer_epoch,
                t.prev_producer_id,
                t.next_producer_id
            ),
            (99, 0, 7, NO_PRODUCER_ID)
        );
        written(&mut m, t);
        assert_eq!(
            m.end(7, i16::MAX - 1, true, true, None, 61),
            Ok(EndStep::Done(99, 0)),
            "a retry of the end that rotated"
        );
        let t = m
            .add_partitions(99, 0, &[tp("a", 0)], TV_2, 62)
            .expect("add")
            .expect("write");
        assert_eq!(t.state, TxnStatus::Ongoing);
    }

    #[test]
    fn a_version_2_fence_bumps_twice_so_the_zombie_is_not_taken_for_a_retry() {
        for tv2 in [false, true] {
            let mut m = open_v2();
            let InitStep::AbortFirst(t) = m
                .init_producer_id(60_000, None, None, tv2, 30)
                .expect("init")
            else {
                panic!()
            };
            assert_eq!(t.producer_epoch, if tv2 { 2 } else { 1 });
            written(&mut m, t);
            if tv2 {
                assert_eq!(end2(&mut m, 0, true), Err(TxnError::ProducerFenced));
            }
            assert_eq!(
                m.end(7, 0, true, false, None, 50),
                Err(TxnError::ProducerFenced)
            );
            let t = m.prepare_complete(40).expect("complete");
            written(&mut m, t);
            let InitStep::Write(t) = init(&mut m, None).expect("init") else {
                panic!()
            };
            assert_eq!(t.producer_epoch, if tv2 { 3 } else { 2 });
        }
    }

    #[test]
    fn values_round_trip_through_the_log_format() {
        let mut m = TxnMeta::new("t".into(), 7, 60_000, 0);
        init_written(&mut m);
        let t = m
            .add_partitions(7, 0, &[tp("b", 1), tp("a", 0), tp("a", 2)], TV_1, 3)
            .expect("add")
            .expect("w");
        written(&mut m, t.clone());
        let raw = super::super::records::encode_value(&t.to_value());
        let back = super::super::records::decode_value(&raw).expect("decode");
        let mut again = TxnMeta::from_value("t".into(), &back);
        again.last_producer_epoch = m.last_producer_epoch;
        assert_eq!(again, m);

        // A version-2 end that rotates the producer id keeps the next id in the record.
        m.producer_epoch = i16::MAX - 1;
        let EndStep::Write(t) = m
            .end(7, i16::MAX - 1, false, true, Some(99), 4)
            .expect("end")
        else {
            panic!()
        };
        written(&mut m, t.clone());
        let raw = super::super::records::encode_value(&t.to_value());
        let back = super::super::records::decode_value(&raw).expect("decode");
        let mut again = TxnMeta::from_value("t".into(), &back);
        again.last_producer_epoch = m.last_producer_epoch;
        assert_eq!(again, m);
        assert_eq!((again.next_producer_id, again.client_version), (99, TV_2));
    }
}
