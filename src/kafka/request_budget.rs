//! The node's budget of request bytes (`queued.max.request.bytes`): every byte of a request
//! frame is charged as it is read from the socket and released when the request's handler has
//! returned (see `connection.rs`). A connection that cannot get budget stops reading, so the
//! kernel's receive window pushes back on the client; nothing is allocated past the budget.
//!
//! Charging as bytes arrive (rather than the declared size up front, as Kafka's memory pool
//! does) means a client that declares 100 MiB and trickles holds only what it sent. It also
//! means partly read requests could hold the whole budget while each waits for more — a
//! deadlock. So the budget is split in three:
//!
//! - the **lane reserve** of `reserve` (= `socket.request.max.bytes`) bytes, drawn from by one
//!   request at a time, the holder of the lane. A request that cannot get bytes elsewhere also
//!   waits for the lane; the lane holder can always finish its request without waiting, and
//!   frees the lane with its bytes once handled. This guarantees progress.
//! - the **small pool**, a quarter of the rest, which only requests of at most
//!   [`SMALL_REQUEST_BYTES_MAX`] (declared) may use once the shared pool is empty: large
//!   requests streaming in cannot starve the small ones normal clients send (metadata, fetches,
//!   produce batches of a MiB).
//! - the **shared pool**, everything else, which every request tries first.
//!
//! Stalled requests: a client can hold budget by sending part of a request and then nothing.
//! The request read deadline ends that eventually, but while the budget is exhausted everyone
//! else would wait for it. So a request that must wait for budget evicts partly received
//! requests whose clients have sent nothing for at least `stall` (oldest stall first, until
//! their bytes cover what it needs); their connections are closed. Requests that wait for
//! budget themselves are never evicted: that wait is the node's doing.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Requests declaring at most this many bytes may use the small pool.
pub(crate) const SMALL_REQUEST_BYTES_MAX: usize = 1 << 20;

/// A node's request byte budget; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct RequestBudget {
    /// `None`: unbounded (`queued.max.request.bytes=-1`); bytes are still counted.
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    shared: Semaphore,
    small: Semaphore,
    /// Requests declaring at most this many bytes may use `small`.
    small_request_max: usize,
    lane: Arc<Mutex<()>>,
    /// Requests holding bytes while their reader waits for the client, by stall start.
    stalled: std::sync::Mutex<BTreeMap<(Instant, u64), Stalled>>,
    next_id: AtomicU64,
    /// How long a client must have been silent before its partial request may be evicted.
    stall: Duration,
}

#[derive(Debug)]
struct Stalled {
    bytes: usize,
    evict: CancellationToken,
}

impl Inner {
    fn stalled(&self) -> std::sync::MutexGuard<'_, BTreeMap<(Instant, u64), Stalled>> {
        // Plain inserts and removes: a panic elsewhere cannot leave the map inconsistent.
        self.stalled.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Evicts requests stalled for at least `self.stall`, oldest first, until their bytes
    /// cover `need`.
    fn evict_stalled(&self, need: usize) {
        let now = Instant::now();
        let mut map = self.stalled();
        let mut freed = 0;
        while freed < need {
            let Some((&key, _)) = map.iter().next() else {
                break;
            };
            if now.duration_since(key.0) < self.stall {
                break;
            }
            if let Some(s) = map.remove(&key) {
                freed += s.bytes;
                s.evict.cancel();
                crate::metrics::inc(&crate::metrics::global().kafka_requests_evicted, 1);
            }
        }
    }
}

/// Where bytes of a charge came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pool {
    Shared,
    Small,
    Lane,
}

/// Bytes charged to one request. Dropping it returns them (and the lane, if held).
#[derive(Debug)]
pub(crate) struct Charge {
    inner: Option<Arc<Inner>>,
    /// The request may use the small pool.
    small_request: bool,
    shared: usize,
    small: usize,
    lane_bytes: usize,
    lane: Option<OwnedMutexGuard<()>>,
    /// The pool of the most recent [`Charge::grow`] (what [`Charge::shrink`] returns to).
    last: Pool,
    id: u64,
    evict: CancellationToken,
}

/// The request was evicted while its client was silent and the budget exhausted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("partial request evicted: client silent while queued.max.request.bytes were exhausted")]
pub(crate) struct Evicted;

/// Removes a stall entry however the wait ends (completed, evicted or dropped).
struct StallEntry<'a> {
    inner: &'a Inner,
    key: (Instant, u64),
}

impl Drop for StallEntry<'_> {
    fn drop(&mut self) {
        self.inner.stalled().remove(&self.key);
    }
}

impl RequestBudget {
    /// A budget of `capacity` bytes of which `reserve` (the largest request) is kept for the
    /// lane and a quarter of the rest for small requests; partial requests whose client has
    /// been silent for `stall` may be evicted when the budget is exhausted.
    /// `capacity == usize::MAX` means unbounded. Config validation guarantees
    /// `capacity >= 2 * reserve`; a smaller capacity still works (smaller pools).
    pub(crate) fn new(capacity: usize, reserve: usize, stall: Duration) -> Self {
        if capacity == usize::MAX {
            return Self { inner: None };
        }
        let rest = capacity.saturating_sub(reserve);
        let small = rest / 4;
        Self::with_pools(
            rest - small,
            small,
            SMALL_REQUEST_BYTES_MAX.min(small),
            stall,
        )
    }

    fn with_pools(shared: usize, small: usize, small_request_max: usize, stall: Duration) -> Self {
        Self {
            inner: Some(Arc::new(Inner {
                shared: Semaphore::new(shared.min(Semaphore::MAX_PERMITS)),
                small: Semaphore::new(small.min(Semaphore::MAX_PERMITS)),
                small_request_max,
                lane: Arc::new(Mutex::new(())),
                stalled: std::sync::Mutex::new(BTreeMap::new()),
                next_id: AtomicU64::new(0),
                stall,
            })),
        }
    }

    /// An empty charge for one request of `declared` bytes.
    pub(crate) fn charge(&self, declared: usize) -> Charge {
        Charge {
            id: self
                .inner
                .as_ref()
                .map_or(0, |i| i.next_id.fetch_add(1, Ordering::Relaxed)),
            small_request: self
                .inner
                .as_ref()
                .is_some_and(|i| declared <= i.small_request_max),
            inner: self.inner.clone(),
            shared: 0,
            small: 0,
            lane_bytes: 0,
            lane: None,
            last: Pool::Shared,
            evict: CancellationToken::new(),
        }
    }

    /// Bytes of the shared and small pools free now.
    #[cfg(test)]
    pub(crate) fn available_for_tests(&self) -> (usize, usize) {
        self.inner.as_ref().map_or((usize::MAX, usize::MAX), |i| {
            (i.shared.available_permits(), i.small.available_permits())
        })
    }
}

impl Charge {
    /// Bytes charged.
    pub(crate) fn bytes(&self) -> usize {
        self.shared + self.small + self.lane_bytes
    }

    fn add(&mut self, pool: Pool, bytes: usize) {
        match pool {
            Pool::Shared => self.shared += bytes,
            Pool::Small => self.small += bytes,
            Pool::Lane => self.lane_bytes += bytes,
        }
        self.last = pool;
        gauge_add(bytes);
    }

    /// Charges `n` more bytes, waiting while the budget is exhausted. Returns whether it had
    /// to wait. Cancel-safe: a cancelled wait charges nothing.
    pub(crate) async fn grow(&mut self, n: u32) -> bool {
        let bytes = n as usize;
        let Some(inner) = self.inner.clone() else {
            self.add(Pool::Lane, bytes);
            return false;
        };
        if self.lane.is_some() {
            // The lane holder's whole request fits the reserve: never waits.
            self.add(Pool::Lane, bytes);
            return false;
        }
        if let Ok(p) = inner.shared.try_acquire_many(n) {
            p.forget();
            self.add(Pool::Shared, bytes);
            return false;
        }
        if self.small_request {
            if let Ok(p) = inner.small.try_acquire_many(n) {
                p.forget();
                self.add(Pool::Small, bytes);
                return false;
            }
        }
        crate::metrics::inc(&crate::metrics::global().kafka_request_bytes_waits, 1);
        // The waits keep their place in line across re-checks for newly stalled requests.
        let recheck = (inner.stall / 2).max(Duration::from_millis(10));
        let small_request = self.small_request;
        let shared = inner.shared.acquire_many(n);
        let small = async {
            if small_request {
                inner.small.acquire_many(n).await
            } else {
                std::future::pending().await
            }
        };
        let lane = inner.lane.clone().lock_owned();
        tokio::pin!(shared, small, lane);
        let pool = loop {
            inner.evict_stalled(bytes);
            tokio::select! {
                biased;
                Ok(p) = &mut shared => {
                    p.forget();
                    break Pool::Shared;
                }
                Ok(p) = &mut small => {
                    p.forget();
                    break Pool::Small;
                }
                g = &mut lane => {
                    self.lane = Some(g);
                    break Pool::Lane;
                }
                () = tokio::time::sleep(recheck) => {}
            }
        };
        self.add(pool, bytes);
        true
    }

    /// Runs `wait` (a read from the client) while this request holds bytes, evictable once the
    /// client has been silent for the budget's stall time and another request needs the bytes.
    ///
    /// # Errors
    /// [`Evicted`]: the request must be dropped (its connection closed).
    pub(crate) async fn client_wait<F: Future>(&self, wait: F) -> Result<F::Output, Evicted> {
        let Some(inner) = self.inner.as_deref() else {
            return Ok(wait.await);
        };
        if self.bytes() == 0 {
            return Ok(wait.await);
        }
        let key = (Instant::now(), self.id);
        inner.stalled().insert(
            key,
            Stalled {
                bytes: self.bytes(),
                evict: self.evict.clone(),
            },
        );
        let _entry = StallEntry { inner, key };
        tokio::select! {
            biased;
            () = self.evict.cancelled() => Err(Evicted),
            r = wait => Ok(r),
        }
    }

    /// Returns `n` bytes of the most recent [`Charge::grow`] that were not used.
    pub(crate) fn shrink(&mut self, n: usize) {
        let held = match self.last {
            Pool::Shared => &mut self.shared,
            Pool::Small => &mut self.small,
            Pool::Lane => &mut self.lane_bytes,
        };
        let n = n.min(*held);
        *held -= n;
        if let Some(i) = &self.inner {
            match self.last {
                Pool::Shared => i.shared.add_permits(n),
                Pool::Small => i.small.add_permits(n),
                Pool::Lane => {}
            }
        }
        gauge_sub(n);
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(i) = &self.inner {
            i.shared.add_permits(self.shared);
            i.small.add_permits(self.small);
        }
        gauge_sub(self.bytes());
        // The lane guard (if any) is released with the struct.
    }
}

fn gauge_add(n: usize) {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    crate::metrics::global()
        .kafka_request_bytes_queued
        .fetch_add(n, Ordering::Relaxed);
}

fn gauge_sub(n: usize) {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    crate::metrics::global()
        .kafka_request_bytes_queued
        .fetch_sub(n, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(3600);
    const LARGE: usize = 1 << 30;

    #[test]
    fn pools_split_the_capacity() {
        let b = RequestBudget::new(256 << 20, 100 << 20, STALL);
        assert_eq!(b.available_for_tests(), (117 << 20, 39 << 20));
        let inner = b.inner.as_ref().expect("bounded");
        assert_eq!(inner.small_request_max, SMALL_REQUEST_BYTES_MAX);
        assert!(b.charge(1 << 20).small_request);
        assert!(!b.charge((1 << 20) + 1).small_request);
    }

    #[tokio::test]
    async fn charges_and_returns_bytes() {
        let b = RequestBudget::with_pools(600, 100, 50, STALL);
        let mut c = b.charge(LARGE);
        assert!(!c.grow(100).await);
        assert!(!c.grow(50).await);
        c.shrink(30);
        assert_eq!(c.bytes(), 120);
        assert_eq!(b.available_for_tests(), (480, 100));
        drop(c);
        assert_eq!(b.available_for_tests(), (600, 100));
    }

    #[tokio::test]
    async fn exhausted_pools_wait_then_proceed_when_bytes_return() {
        let b = RequestBudget::with_pools(600, 0, 0, STALL);
        let mut hog = b.charge(LARGE);
        assert!(!hog.grow(600).await); // the whole shared pool
                                       // Next one takes the lane (the shared pool is empty) and draws from the reserve.
        let mut second = b.charge(LARGE);
        assert!(second.grow(300).await);
        assert!(!second.grow(100).await, "the lane holder never waits");
        second.shrink(50);
        assert_eq!(second.bytes(), 350);
        // A third waits: no shared bytes, lane taken.
        let b2 = b.clone();
        let third = tokio::spawn(async move {
            let mut c = b2.charge(LARGE);
            c.grow(10).await;
            c
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !third.is_finished(),
            "must wait while the budget is exhausted"
        );
        drop(second); // frees the lane
        let third = tokio::time::timeout(Duration::from_secs(5), third)
            .await
            .expect("got the lane")
            .expect("task");
        assert_eq!(third.bytes(), 10);
        assert!(third.lane.is_some());
        drop(hog);
        assert_eq!(b.available_for_tests(), (600, 0));
    }

    /// Large requests streaming in cannot take the bytes small requests need.
    #[tokio::test]
    async fn small_requests_get_the_small_pool_when_large_ones_hold_the_rest() {
        let b = RequestBudget::with_pools(600, 200, 100, STALL);
        let mut large = b.charge(LARGE);
        large.grow(600).await;
        let mut lane = b.charge(LARGE);
        assert!(lane.grow(1).await);
        assert!(lane.lane.is_some());
        // Another large request waits; a small one does not.
        let mut large2 = b.charge(LARGE);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), large2.grow(10))
                .await
                .is_err()
        );
        let mut small = b.charge(100);
        assert!(!small.grow(100).await);
        assert_eq!(b.available_for_tests(), (0, 100));
        small.shrink(40);
        assert_eq!(b.available_for_tests(), (0, 140));
        drop(small);
        assert_eq!(b.available_for_tests(), (0, 200));
    }

    /// Two half-read requests that together hold the shared pool must not wait on each other
    /// forever: one of them gets the lane and completes.
    #[tokio::test]
    async fn partly_read_requests_cannot_deadlock() {
        let b = RequestBudget::with_pools(500, 0, 0, STALL); // largest request 500
        let mut a = b.charge(LARGE);
        let mut c = b.charge(LARGE);
        a.grow(250).await;
        c.grow(250).await;
        // Both want the rest of their 500-byte request.
        let a = tokio::spawn(async move {
            a.grow(250).await;
            a
        });
        let c = tokio::spawn(async move {
            c.grow(250).await;
            c
        });
        let first = tokio::select! {
            r = a => r.expect("task"),
            r = c => r.expect("task"),
        };
        assert_eq!(first.bytes(), 500, "one request completed through the lane");
    }

    #[tokio::test]
    async fn unbounded_budget_never_waits() {
        let b = RequestBudget::new(usize::MAX, 100, STALL);
        let mut c = b.charge(LARGE);
        for _ in 0..10 {
            assert!(!c.grow(u32::MAX).await);
        }
        c.shrink(5);
        assert_eq!(c.bytes(), 10 * u32::MAX as usize - 5);
    }

    /// A request silent for the stall time is evicted when another one needs its bytes; one
    /// that is not silent long enough is kept.
    #[tokio::test]
    async fn silent_partial_requests_are_evicted_for_waiting_ones() {
        let stall = Duration::from_millis(100);
        let b = RequestBudget::with_pools(600, 0, 0, stall);
        let mut hog = b.charge(LARGE);
        hog.grow(600).await;
        let mut lane = b.charge(LARGE);
        lane.grow(1).await; // takes the lane: the shared pool is empty
        let hog_wait = tokio::spawn(async move {
            let r = hog.client_wait(std::future::pending::<()>()).await;
            (r, hog)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Before the stall time: the waiter waits.
        let mut normal = b.charge(LARGE);
        let got = tokio::time::timeout(Duration::from_millis(50), normal.grow(100)).await;
        assert!(
            got.is_err(),
            "evicted a client silent for less than the stall time"
        );
        // After it: the hog is evicted and its bytes come back.
        let normal = tokio::spawn(async move {
            normal.grow(100).await;
            normal
        });
        let got = tokio::time::timeout(Duration::from_secs(5), async {
            let (r, hog) = hog_wait.await.expect("task");
            assert_eq!(r, Err(Evicted));
            drop(hog);
            normal.await.expect("task")
        })
        .await
        .expect("the waiter got the hog's bytes");
        assert_eq!(got.bytes(), 100);
        drop(lane);
    }
}
