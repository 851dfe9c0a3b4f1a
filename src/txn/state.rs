//! One transactional id's state and its transitions: Kafka's `TransactionMetadata` and the
//! checks of its `TransactionCoordinator` (transaction version 1, as Kafka 2.2.1–3.x clients
//! use it). Pure: time and new producer ids are arguments; a transition is prepared here
//! (`pending` set, the target returned), written to `__transaction_state` by the driver, and
//! completed with [`TxnMeta::complete`] once durable, or dropped with [`TxnMeta::abandon`].

use super::records::{TxnLogValue, TxnStatus, TxnTopic};
use super::TxnError;
use std::collections::{BTreeMap, BTreeSet};

/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH` / `NO_PRODUCER_ID`.
pub const NO_EPOCH: i16 = -1;
pub const NO_PRODUCER_ID: i64 = -1;

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
            previous_producer_id: NO_PRODUCER_ID,
            next_producer_id: NO_PRODUCER_ID,
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
            client_transaction_version: 0,
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
    /// Already done (a retried EndTxn): answer at once.
    Done,
    /// Write this PrepareCommit / PrepareAbort, answer, then send the markers.
    Write(Target),
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
                // Kafka's prepareFenceProducerEpoch, then the abort with the bumped epoch (the
                // PrepareEpochFence state itself is never written).
                let mut t = self.target();
                if !epoch_exhausted(self.producer_epoch) {
                    t.producer_epoch = self.producer_epoch + 1;
                }
                t.last_producer_epoch = NO_EPOCH;
                t.state = TxnStatus::PrepareAbort;
                t.last_update_ms = now;
                Ok(InitStep::AbortFirst(self.prepare(t)))
            }
            TxnStatus::Dead | TxnStatus::PrepareEpochFence => Err(TxnError::ConcurrentTransactions),
        }
    }

    /// Checks the producer of a request against this id (AddPartitionsToTxn, AddOffsetsToTxn,
    /// EndTxn).
    fn check_producer(&self, pid: i64, epoch: i16) -> Result<(), TxnError> {
        if pid != self.producer_id {
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
                Ok(Some(self.prepare(t)))
            }
        }
    }

    /// EndTxn from the client.
    ///
    /// # Errors
    /// INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS (the same end in
    /// progress), INVALID_TXN_STATE (nothing open, or the other outcome already chosen).
    pub fn end(
        &mut self,
        pid: i64,
        epoch: i16,
        commit: bool,
        now: i64,
    ) -> Result<EndStep, TxnError> {
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
                Ok(EndStep::Done)
            }
            (TxnStatus::PrepareCommit, true) | (TxnStatus::PrepareAbort, false) => {
                Err(TxnError::ConcurrentTransactions)
            }
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    /// The abort of a transaction open past its timeout: the epoch is bumped (fencing the
    /// producer) as Kafka's `abortTimedOutTransactions` does. `None` unless it has expired.
    pub fn abort_if_expired(&mut self, now: i64) -> Option<Target> {
        let expired = self.state == TxnStatus::Ongoing
            && self.pending.is_none()
            && self.start_ms.saturating_add(i64::from(self.timeout_ms)) <= now;
        if !expired {
            return None;
        }
        let mut t = self.target();
        if !epoch_exhausted(self.producer_epoch) {
            t.producer_epoch = self.producer_epoch + 1;
        }
        t.last_producer_epoch = NO_EPOCH;
        t.state = TxnStatus::PrepareAbort;
        t.last_update_ms = now;
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
        m.init_producer_id(60_000, expected, None, 10)
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
        let InitStep::Write(t) = init(&mut m, None).expect("init") else {
            panic!()
        };
        written(&mut m, t);
        assert_eq!(
            m.end(7, 0, true, 20),
            Err(TxnError::InvalidTxnState),
            "nothing open"
        );
        assert_eq!(
            m.add_partitions(8, 0, &[tp("a", 0)], 20),
            Err(TxnError::InvalidProducerIdMapping)
        );
        assert_eq!(
            m.add_partitions(7, 1, &[tp("a", 0)], 20),
            Err(TxnError::ProducerFenced)
        );
        let t = m
            .add_partitions(7, 0, &[tp("a", 0)], 20)
            .expect("add")
            .expect("write");
        assert_eq!((t.state, t.start_ms), (TxnStatus::Ongoing, 20));
        written(&mut m, t);
        assert_eq!(
            m.add_partitions(7, 0, &[tp("a", 0)], 21),
            Ok(None),
            "already in"
        );
        let t = m
            .add_partitions(7, 0, &[tp("b", 1)], 22)
            .expect("add")
            .expect("write");
        assert_eq!(t.partitions.len(), 2);
        assert_eq!(t.start_ms, 20, "the start stays");
        written(&mut m, t);
        let EndStep::Write(t) = m.end(7, 0, true, 30).expect("end") else {
            panic!()
        };
        assert_eq!(t.state, TxnStatus::PrepareCommit);
        written(&mut m, t);
        assert_eq!(m.end(7, 0, true, 31), Err(TxnError::ConcurrentTransactions));
        assert_eq!(m.end(7, 0, false, 31), Err(TxnError::InvalidTxnState));
        assert_eq!(
            m.add_partitions(7, 0, &[tp("a", 0)], 31),
            Err(TxnError::ConcurrentTransactions),
            "the next transaction waits for the markers"
        );
        let t = m.prepare_complete(40).expect("complete");
        assert_eq!(
            (t.state, t.partitions.len()),
            (TxnStatus::CompleteCommit, 0)
        );
        written(&mut m, t);
        assert_eq!(m.end(7, 0, true, 41), Ok(EndStep::Done), "a retried commit");
        assert_eq!(m.end(7, 0, false, 41), Err(TxnError::InvalidTxnState));
    }

    #[test]
    fn init_during_an_open_transaction_aborts_it_with_a_fencing_epoch() {
        let mut m = TxnMeta::new("t".into(), 7, 60_000, 0);
        let InitStep::Write(t) = init(&mut m, None).expect("init") else {
            panic!()
        };
        written(&mut m, t);
        let t = m
            .add_partitions(7, 0, &[tp("a", 0)], 1)
            .expect("add")
            .expect("w");
        written(&mut m, t);
        let InitStep::AbortFirst(t) = init(&mut m, None).expect("init") else {
            panic!()
        };
        assert_eq!((t.state, t.producer_epoch), (TxnStatus::PrepareAbort, 1));
        written(&mut m, t);
        // The zombie at epoch 0 is fenced.
        assert_eq!(m.end(7, 0, true, 5), Err(TxnError::ProducerFenced));
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
        let InitStep::Write(t) = init(&mut m, None).expect("init") else {
            panic!()
        };
        written(&mut m, t);
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
        let InitStep::Write(t) = m.init_producer_id(60_000, None, Some(99), 1).expect("init")
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
        let InitStep::Write(t) = m.init_producer_id(1_000, None, None, 0).expect("init") else {
            panic!()
        };
        written(&mut m, t);
        assert!(m.abort_if_expired(10_000).is_none(), "nothing open");
        let t = m
            .add_partitions(7, 0, &[tp("a", 0)], 100)
            .expect("add")
            .expect("w");
        written(&mut m, t);
        assert!(m.abort_if_expired(1_099).is_none());
        let t = m.abort_if_expired(1_100).expect("expired");
        assert_eq!((t.state, t.producer_epoch), (TxnStatus::PrepareAbort, 1));
        written(&mut m, t);
        assert!(!m.expire_if_idle(0, 5_000), "ending");
        let t = m.prepare_complete(1_200).expect("complete");
        written(&mut m, t);
        assert!(!m.expire_if_idle(10_000, 5_000));
        assert!(m.expire_if_idle(1_000, 5_000));
    }

    #[test]
    fn values_round_trip_through_the_log_format() {
        let mut m = TxnMeta::new("t".into(), 7, 60_000, 0);
        let InitStep::Write(t) = init(&mut m, None).expect("init") else {
            panic!()
        };
        written(&mut m, t);
        let t = m
            .add_partitions(7, 0, &[tp("b", 1), tp("a", 0), tp("a", 2)], 3)
            .expect("add")
            .expect("w");
        written(&mut m, t.clone());
        let raw = super::super::records::encode_value(&t.to_value());
        let back = super::super::records::decode_value(&raw).expect("decode");
        let mut again = TxnMeta::from_value("t".into(), &back);
        again.last_producer_epoch = m.last_producer_epoch;
        assert_eq!(again, m);
    }
}
