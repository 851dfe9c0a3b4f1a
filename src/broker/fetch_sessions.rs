//! Fetch sessions (KIP-227): the node's cache of incremental fetch sessions, as Kafka's
//! `FetchSessionCache` / `FetchManager` keep it.
//!
//! A consumer (Fetch v7+) that sends session id 0 and epoch 0 asks for a session: it gets a
//! full answer and, if the cache has room, a session id. Its next requests carry that id and
//! the next epoch (1, 2, …) and list only the partitions whose fetch position changed (plus
//! `forgotten_topics_data` to drop some); the node fetches every partition of the session and
//! answers only those with records, a moved high watermark or log start offset, or an error.
//! Epoch -1 closes a session (a sessionless full fetch); epoch 0 with an id closes it and asks
//! for a new one. A request for an unknown session gets FETCH_SESSION_ID_NOT_FOUND, one with
//! the wrong epoch (a duplicate, or one that crossed another) INVALID_FETCH_SESSION_EPOCH, and
//! one whose version uses topic ids (v13+) on a session made without them, or the other way
//! round, FETCH_SESSION_TOPIC_ID_ERROR; the client then starts over with a full fetch.
//!
//! Bounds: at most `max.incremental.fetch.session.cache.slots` sessions (Kafka's 1000; a new
//! session may evict one unused for two minutes, else the least valuable one: unprivileged
//! before privileged, then the fewest partitions, as Kafka's `tryEvict`), and — raftka's own
//! bound, Kafka has none — at most `fetch.session.cache.partitions.max` cached partitions over
//! all sessions: a full fetch that does not fit gets no session, an incremental one that would
//! grow past it closes its session (FETCH_SESSION_ID_NOT_FOUND; the client falls back to full
//! fetches). No protocol types here: the Kafka handler maps requests and answers.

use indexmap::IndexMap;
use rand::Rng;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The epoch of a full fetch that asks for a new session.
pub const INITIAL_EPOCH: i32 = 0;
/// The epoch of a full fetch that wants no session (and closes the one it names).
pub const FINAL_EPOCH: i32 = -1;
/// A session unused this long may be evicted by any new one, and one older than this may be
/// evicted by a more valuable one (Kafka's `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`).
pub const EVICTION_AGE: Duration = Duration::from_secs(120);

/// The epoch the next request of a session must carry (Kafka's `FetchMetadata.nextEpoch`).
#[must_use]
pub fn next_epoch(epoch: i32) -> i32 {
    if epoch < 0 {
        FINAL_EPOCH
    } else if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

/// How a session names a topic: by name (Fetch v7–v12) or by id (v13+).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SessionTopic {
    Name(Arc<str>),
    Id(uuid::Uuid),
}

/// One partition of a session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionPartition {
    pub topic: SessionTopic,
    pub partition: i32,
}

/// What the fetcher asks of one partition (kept by the session between requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionFetch {
    pub fetch_offset: i64,
    pub max_bytes: i32,
    pub current_leader_epoch: i32,
}

/// What a fetch answered for one partition, as far as the session cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub has_records: bool,
    pub error: bool,
}

#[derive(Debug)]
struct Cached {
    fetch: PartitionFetch,
    /// What the fetcher was last told (-1: nothing yet, or an error since).
    high_watermark: i64,
    log_start_offset: i64,
}

impl Cached {
    /// Whether `a` must be answered, updating what the fetcher was told (Kafka's
    /// `CachedPartition.maybeUpdateResponseData`): records, a moved HW or log start offset,
    /// or an error (after which the HW is forgotten, so the partition is answered again once
    /// the error is gone).
    fn must_answer(&mut self, a: &Answered) -> bool {
        let mut must = a.has_records;
        if self.high_watermark != a.high_watermark {
            must = true;
            self.high_watermark = a.high_watermark;
        }
        if self.log_start_offset != a.log_start_offset {
            must = true;
            self.log_start_offset = a.log_start_offset;
        }
        if a.error {
            self.high_watermark = -1;
            must = true;
        }
        must
    }
}

#[derive(Debug)]
struct Session {
    id: i32,
    /// Created by a replica's fetch (Kafka's followers): evicted only by other privileged
    /// sessions or when old.
    privileged: bool,
    uses_topic_ids: bool,
    created: Instant,
    last_used: Instant,
    /// The epoch the next request must carry.
    epoch: i32,
    /// Whether an incremental request was accepted (the client knows the session).
    used: bool,
    partitions: IndexMap<SessionPartition, Cached>,
}

/// Why a request's session cannot be used (the whole request fails with this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// FETCH_SESSION_ID_NOT_FOUND
    IdNotFound,
    /// INVALID_FETCH_SESSION_EPOCH
    InvalidEpoch,
    /// FETCH_SESSION_TOPIC_ID_ERROR
    TopicIdError,
}

/// How to answer a fetch, decided from its session id and epoch.
#[derive(Debug)]
pub enum Begin {
    /// Answer every partition of the request, with session id 0.
    Sessionless,
    /// Answer every partition of the request, then offer a session ([`FetchSessions::create`]).
    Full,
    /// Answer the session's partitions that changed ([`FetchSessions::finish`]).
    Incremental(Incremental),
    /// Answer only this error.
    Error(SessionError),
}

/// An incremental fetch in progress.
#[derive(Debug)]
pub struct Incremental {
    session: Arc<Mutex<Session>>,
    pub id: i32,
    /// The session's epoch once this request was accepted: another request accepted meanwhile
    /// moves it, and this one's answer is then refused.
    expected_epoch: i32,
    /// Every partition of the session, in its order, with what to fetch.
    pub partitions: Vec<(SessionPartition, PartitionFetch)>,
}

/// Counts the cache exposes (`/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    pub sessions: usize,
    pub partitions: usize,
    pub evictions: u64,
}

/// The node's fetch sessions.
#[derive(Debug)]
pub struct FetchSessions {
    slots: usize,
    partitions_max: usize,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    sessions: HashMap<i32, Arc<Mutex<Session>>>,
    /// Cached partitions over all sessions.
    partitions: usize,
    evictions: u64,
}

impl Cache {
    /// Shows the cache's size on `/metrics` (after every change, under the cache lock).
    fn publish(&self) {
        let m = crate::metrics::global();
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        m.fetch_sessions
            .store(n(self.sessions.len()), std::sync::atomic::Ordering::Relaxed);
        m.fetch_session_partitions
            .store(n(self.partitions), std::sync::atomic::Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FetchSessions {
    /// A cache of at most `slots` sessions holding at most `partitions_max` partitions.
    #[must_use]
    pub fn new(slots: usize, partitions_max: usize) -> Self {
        Self {
            slots,
            partitions_max,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Decides how to answer a request with `session_id` and `epoch`. For an incremental one,
    /// applies `changes` (partitions added or with a new position) and `forgotten` to the
    /// session first and moves its epoch on (Kafka's `FetchManager.newContext`).
    pub fn begin(
        &self,
        session_id: i32,
        epoch: i32,
        uses_topic_ids: bool,
        changes: &[(SessionPartition, PartitionFetch)],
        forgotten: &[SessionPartition],
        now: Instant,
    ) -> Begin {
        if epoch == INITIAL_EPOCH || epoch == FINAL_EPOCH {
            // A full fetch closes the session it names.
            if session_id != 0 {
                self.remove(session_id);
            }
            return if epoch == FINAL_EPOCH {
                Begin::Sessionless
            } else {
                Begin::Full
            };
        }
        let mut cache = lock(&self.cache);
        let Some(handle) = cache.sessions.get(&session_id).cloned() else {
            return Begin::Error(SessionError::IdNotFound);
        };
        let mut s = lock(&handle);
        if s.epoch != epoch {
            return Begin::Error(SessionError::InvalidEpoch);
        }
        if s.uses_topic_ids != uses_topic_ids {
            return Begin::Error(SessionError::TopicIdError);
        }
        let before = s.partitions.len();
        for (key, fetch) in changes {
            match s.partitions.get_mut(key) {
                Some(c) => c.fetch = *fetch,
                None => {
                    s.partitions.insert(
                        key.clone(),
                        Cached {
                            fetch: *fetch,
                            high_watermark: -1,
                            log_start_offset: -1,
                        },
                    );
                }
            }
        }
        for key in forgotten {
            s.partitions.shift_remove(key);
        }
        let after = s.partitions.len();
        let total = cache.partitions - before + after;
        if after == 0 || total > self.partitions_max {
            // Kafka answers a session left empty without one; raftka closes one that would
            // grow past the cache's partition bound (the client starts over with a full fetch).
            cache.partitions -= before;
            cache.sessions.remove(&session_id);
            cache.publish();
            return if after == 0 {
                Begin::Sessionless
            } else {
                Begin::Error(SessionError::IdNotFound)
            };
        }
        cache.partitions = total;
        cache.publish();
        s.used = true;
        s.last_used = now;
        s.epoch = next_epoch(epoch);
        let partitions = s
            .partitions
            .iter()
            .map(|(k, c)| (k.clone(), c.fetch))
            .collect();
        Begin::Incremental(Incremental {
            session: handle.clone(),
            id: s.id,
            expected_epoch: s.epoch,
            partitions,
        })
    }

    /// Which of an incremental fetch's partitions to answer (`answers` in the order of
    /// `inc.partitions`), updating the session: answered partitions move to the end, so the
    /// others come first in the next answer's byte budget (Kafka's `IncrementalFetchContext`).
    ///
    /// # Errors
    /// [`SessionError::InvalidEpoch`] if another request of the session was accepted since.
    pub fn finish(
        &self,
        inc: &Incremental,
        answers: &[Answered],
    ) -> Result<Vec<bool>, SessionError> {
        let mut s = lock(&inc.session);
        if s.epoch != inc.expected_epoch || s.partitions.len() != answers.len() {
            return Err(SessionError::InvalidEpoch);
        }
        let include: Vec<bool> = s
            .partitions
            .values_mut()
            .zip(answers)
            .map(|(c, a)| c.must_answer(a))
            .collect();
        if include.iter().any(|i| *i) {
            let old = std::mem::take(&mut s.partitions);
            let mut kept = IndexMap::with_capacity(old.len());
            let mut moved = Vec::new();
            for ((k, c), i) in old.into_iter().zip(&include) {
                if *i {
                    moved.push((k, c));
                } else {
                    kept.insert(k, c);
                }
            }
            kept.extend(moved);
            s.partitions = kept;
        }
        Ok(include)
    }

    /// Offers a session for a full fetch that answered `parts`: its id, or 0 if the cache has
    /// no room for it (Kafka's `maybeCreateSession`). The session's next epoch is 1.
    pub fn create(
        &self,
        privileged: bool,
        uses_topic_ids: bool,
        parts: Vec<(SessionPartition, PartitionFetch, Answered)>,
        now: Instant,
    ) -> i32 {
        let mut partitions = IndexMap::with_capacity(parts.len());
        for (k, fetch, a) in parts {
            partitions.insert(
                k,
                Cached {
                    fetch,
                    high_watermark: a.high_watermark,
                    log_start_offset: a.log_start_offset,
                },
            );
        }
        let size = partitions.len();
        if size == 0 || size > self.partitions_max || self.slots == 0 {
            return 0;
        }
        let mut cache = lock(&self.cache);
        if cache.sessions.len() >= self.slots && !Self::try_evict(&mut cache, privileged, size, now)
        {
            return 0;
        }
        while cache.partitions + size > self.partitions_max {
            if !Self::try_evict(&mut cache, privileged, size, now) {
                return 0;
            }
        }
        let mut rng = rand::rng();
        let id = loop {
            let id = rng.random_range(1..i32::MAX);
            if !cache.sessions.contains_key(&id) {
                break id;
            }
        };
        cache.partitions += size;
        cache.sessions.insert(
            id,
            Arc::new(Mutex::new(Session {
                id,
                privileged,
                uses_topic_ids,
                created: now,
                last_used: now,
                epoch: next_epoch(INITIAL_EPOCH),
                used: false,
                partitions,
            })),
        );
        cache.publish();
        id
    }

    /// A throttled answer of session `session_id` was sent without its partitions (Kafka
    /// builds a throttled answer without touching the session): what `answered` were told
    /// is forgotten, so they are answered again. A session that the throttled answer would
    /// have created is closed instead (Kafka creates none then). Whether the session stays.
    pub fn unanswered<'a>(
        &self,
        session_id: i32,
        answered: impl Iterator<Item = &'a SessionPartition>,
    ) -> bool {
        let mut cache = lock(&self.cache);
        let Some(handle) = cache.sessions.get(&session_id).cloned() else {
            return false;
        };
        let mut s = lock(&handle);
        if !s.used {
            drop(s);
            Self::remove_locked(&mut cache, session_id);
            cache.publish();
            return false;
        }
        for k in answered {
            if let Some(c) = s.partitions.get_mut(k) {
                c.high_watermark = -1;
            }
        }
        true
    }

    /// Closes a session (a full fetch naming it).
    pub fn remove(&self, session_id: i32) {
        let mut cache = lock(&self.cache);
        if Self::remove_locked(&mut cache, session_id) {
            cache.publish();
        }
    }

    fn remove_locked(cache: &mut Cache, session_id: i32) -> bool {
        let Some(s) = cache.sessions.remove(&session_id) else {
            return false;
        };
        cache.partitions -= lock(&s).partitions.len();
        true
    }

    /// Evicts one session to make room for a new one of `size` partitions (Kafka's
    /// `tryEvict`): the least recently used one if unused for [`EVICTION_AGE`], else the least
    /// valuable of those that may be evicted — by a privileged newcomer an unprivileged
    /// session or one older than [`EVICTION_AGE`], by an unprivileged one only the old ones —
    /// ordered by (privileged, partitions, id), if it is worth less than the newcomer.
    fn try_evict(cache: &mut Cache, privileged: bool, size: usize, now: Instant) -> bool {
        let view: Vec<(i32, bool, usize, Instant, Instant)> = cache
            .sessions
            .values()
            .map(|s| {
                let s = lock(s);
                (
                    s.id,
                    s.privileged,
                    s.partitions.len(),
                    s.created,
                    s.last_used,
                )
            })
            .collect();
        let age = |t: Instant| now.saturating_duration_since(t);
        let stale = view
            .iter()
            .min_by_key(|(id, _, _, _, used)| (*used, *id))
            .filter(|(_, _, _, _, used)| age(*used) > EVICTION_AGE);
        let victim = match stale {
            Some((id, ..)) => Some(*id),
            None => view
                .iter()
                .filter(|(_, p, _, created, _)| age(*created) > EVICTION_AGE || (privileged && !*p))
                .min_by_key(|(id, p, n, _, _)| (*p, *n, *id))
                .filter(|(_, p, n, _, _)| (privileged, size) > (*p, *n))
                .map(|(id, ..)| *id),
        };
        match victim {
            Some(id) => {
                Self::remove_locked(cache, id);
                cache.evictions += 1;
                crate::metrics::inc(&crate::metrics::global().fetch_session_evictions, 1);
                true
            }
            None => false,
        }
    }

    /// Sessions, cached partitions and evictions so far.
    pub fn stats(&self) -> CacheStats {
        let cache = lock(&self.cache);
        CacheStats {
            sessions: cache.sessions.len(),
            partitions: cache.partitions,
            evictions: cache.evictions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: &str, p: i32) -> SessionPartition {
        SessionPartition {
            topic: SessionTopic::Name(t.into()),
            partition: p,
        }
    }

    fn fetch(offset: i64) -> PartitionFetch {
        PartitionFetch {
            fetch_offset: offset,
            max_bytes: 1 << 20,
            current_leader_epoch: -1,
        }
    }

    fn answered(hw: i64, records: bool) -> Answered {
        Answered {
            high_watermark: hw,
            log_start_offset: 0,
            has_records: records,
            error: false,
        }
    }

    fn incremental(b: Begin) -> Incremental {
        match b {
            Begin::Incremental(i) => i,
            other => panic!("expected an incremental fetch, got {other:?}"),
        }
    }

    fn error(b: Begin) -> SessionError {
        match b {
            Begin::Error(e) => e,
            other => panic!("expected a session error, got {other:?}"),
        }
    }

    /// A session's life as a Java consumer drives it: a full fetch creates it, incremental
    /// fetches send only changed positions and get only changed partitions (those with data
    /// moved to the end), a forgotten partition leaves it, and a full fetch closes it.
    #[test]
    fn sessions_answer_only_what_changed_and_follow_their_epochs() {
        let c = FetchSessions::new(10, 100);
        let now = Instant::now();
        assert!(matches!(
            c.begin(0, INITIAL_EPOCH, false, &[], &[], now),
            Begin::Full
        ));
        let id = c.create(
            false,
            false,
            vec![
                (key("a", 0), fetch(0), answered(5, true)),
                (key("a", 1), fetch(0), answered(0, false)),
                (key("b", 0), fetch(0), answered(0, false)),
            ],
            now,
        );
        assert!(id > 0);
        assert_eq!(
            c.stats(),
            CacheStats {
                sessions: 1,
                partitions: 3,
                evictions: 0
            }
        );
        // Epoch 1: a/0 moved on; nothing new anywhere but b/0's HW.
        let inc = incremental(c.begin(id, 1, false, &[(key("a", 0), fetch(5))], &[], now));
        assert_eq!(inc.id, id);
        let keys: Vec<_> = inc
            .partitions
            .iter()
            .map(|(k, f)| (k.clone(), f.fetch_offset))
            .collect();
        assert_eq!(
            keys,
            vec![(key("a", 0), 5), (key("a", 1), 0), (key("b", 0), 0)]
        );
        let got = c
            .finish(
                &inc,
                &[answered(5, false), answered(0, false), answered(2, true)],
            )
            .expect("same epoch");
        assert_eq!(got, vec![false, false, true]);
        // A repeated epoch (a duplicate request) and an unknown id are refused.
        assert_eq!(
            error(c.begin(id, 1, false, &[], &[], now)),
            SessionError::InvalidEpoch
        );
        assert_eq!(
            error(c.begin(id + 1, 2, false, &[], &[], now)),
            SessionError::IdNotFound
        );
        assert_eq!(
            error(c.begin(id, 2, true, &[], &[], now)),
            SessionError::TopicIdError
        );
        // Epoch 2: a/1 gets data and moves to the end; b/0 is forgotten.
        let inc = incremental(c.begin(id, 2, false, &[], &[key("b", 0)], now));
        let keys: Vec<_> = inc.partitions.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, vec![key("a", 0), key("a", 1)]);
        assert_eq!(c.stats().partitions, 2);
        let got = c
            .finish(&inc, &[answered(5, false), answered(3, true)])
            .expect("same epoch");
        assert_eq!(got, vec![false, true]);
        // An error is always answered, and the partition again once the error is gone.
        let inc = incremental(c.begin(id, 3, false, &[], &[], now));
        let err = Answered {
            error: true,
            ..answered(-1, false)
        };
        assert_eq!(
            c.finish(&inc, &[answered(5, false), err]),
            Ok(vec![false, true])
        );
        let inc = incremental(c.begin(id, 4, false, &[], &[], now));
        assert_eq!(
            c.finish(&inc, &[answered(5, false), answered(3, false)]),
            Ok(vec![false, true])
        );
        // Two requests crossing: the answer of the first is refused.
        let first = incremental(c.begin(id, 5, false, &[], &[], now));
        let _second = incremental(c.begin(id, 6, false, &[], &[], now));
        assert_eq!(
            c.finish(&first, &[answered(5, false), answered(3, false)]),
            Err(SessionError::InvalidEpoch)
        );
        // A full fetch naming the session closes it.
        assert!(matches!(
            c.begin(id, FINAL_EPOCH, false, &[], &[], now),
            Begin::Sessionless
        ));
        assert_eq!(c.stats(), CacheStats::default());
        assert_eq!(
            error(c.begin(id, 7, false, &[], &[], now)),
            SessionError::IdNotFound
        );
    }

    /// A throttled answer leaves the session as if it had not been sent.
    #[test]
    fn a_throttled_answer_is_answered_again() {
        let c = FetchSessions::new(10, 100);
        let now = Instant::now();
        let new = c.create(
            false,
            false,
            vec![(key("a", 0), fetch(0), answered(1, true))],
            now,
        );
        assert!(
            !c.unanswered(new, [key("a", 0)].iter()),
            "a new session is not kept"
        );
        assert_eq!(c.stats().sessions, 0);
        let id = c.create(
            false,
            false,
            vec![(key("a", 0), fetch(0), answered(1, true))],
            now,
        );
        let inc = incremental(c.begin(id, 1, false, &[], &[], now));
        assert_eq!(c.finish(&inc, &[answered(2, false)]), Ok(vec![true]));
        assert!(c.unanswered(id, [key("a", 0)].iter()));
        let inc = incremental(c.begin(id, 2, false, &[], &[], now));
        assert_eq!(
            c.finish(&inc, &[answered(2, false)]),
            Ok(vec![true]),
            "HW 2 again"
        );
    }

    #[test]
    fn forgetting_every_partition_ends_the_session() {
        let c = FetchSessions::new(10, 100);
        let now = Instant::now();
        let id = c.create(
            false,
            true,
            vec![(key("a", 0), fetch(0), answered(0, false))],
            now,
        );
        assert!(matches!(
            c.begin(id, 1, true, &[], &[key("a", 0)], now),
            Begin::Sessionless
        ));
        assert_eq!(c.stats().sessions, 0);
    }

    /// The slots as Kafka evicts them, and raftka's bound on cached partitions.
    #[test]
    fn eviction_and_the_partition_bound() {
        let now = Instant::now();
        let later = now + EVICTION_AGE + Duration::from_secs(1);
        let parts = |n: i32| -> Vec<(SessionPartition, PartitionFetch, Answered)> {
            (0..n)
                .map(|p| (key("t", p), fetch(0), answered(0, false)))
                .collect()
        };
        let c = FetchSessions::new(2, 10);
        let small = c.create(false, false, parts(1), now);
        let big = c.create(false, false, parts(3), now);
        assert!(small > 0 && big > 0);
        // Full, nothing old: an unprivileged newcomer evicts nobody; a privileged one evicts
        // the smallest unprivileged session.
        assert_eq!(c.create(false, false, parts(5), now), 0);
        let follower = c.create(true, false, parts(2), now);
        assert!(follower > 0);
        assert_eq!(
            error(c.begin(small, 1, false, &[], &[], now)),
            SessionError::IdNotFound
        );
        assert_eq!(c.stats().evictions, 1);
        // Later, a session unused for two minutes goes first (the least recently used).
        let _ = incremental(c.begin(follower, 1, false, &[], &[], later));
        let newer = c.create(false, false, parts(1), later);
        assert!(newer > 0);
        assert_eq!(
            error(c.begin(big, 1, false, &[], &[], later)),
            SessionError::IdNotFound
        );
        // The partition bound: a session that would pass it is not created, and an
        // incremental fetch that would grow one past it closes it.
        assert_eq!(c.stats().partitions, 3);
        let c = FetchSessions::new(10, 4);
        assert_eq!(c.create(false, false, parts(5), now), 0);
        let id = c.create(false, false, parts(3), now);
        let grow = vec![(key("u", 0), fetch(0)), (key("u", 1), fetch(0))];
        assert_eq!(
            error(c.begin(id, 1, false, &grow, &[], now)),
            SessionError::IdNotFound
        );
        assert_eq!(
            c.stats(),
            CacheStats {
                sessions: 0,
                partitions: 0,
                evictions: 0
            }
        );
    }
}
