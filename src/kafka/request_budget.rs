//! The node's budget of request bytes (`queued.max.request.bytes`): every byte of a request
//! frame is charged as it is read from the socket and released when the request's handler has
//! returned (see `connection.rs`). A connection that cannot get budget stops reading, so the
//! kernel's receive window pushes back on the client; nothing is allocated past the budget.
//!
//! Charging as bytes arrive (rather than the declared size up front, as Kafka's memory pool
//! does) means a client that declares 100 MiB and trickles holds only what it sent. It also
//! means partly read requests could hold the whole budget while each waits for more — a
//! deadlock. So the budget is split: a shared pool of `capacity - reserve` bytes, and a
//! reserve of `reserve` (= `socket.request.max.bytes`) bytes that one request at a time, the
//! holder of the *lane*, draws from. A request that finds the shared pool empty waits for
//! whichever comes first, shared bytes or the lane; the lane holder can always finish its
//! request without waiting, and frees the lane with its bytes once handled.
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

/// A node's request byte budget; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct RequestBudget {
    /// `None`: unbounded (`queued.max.request.bytes=-1`); bytes are still counted.
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    shared: Semaphore,
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

/// Bytes charged to one request. Dropping it returns them (and the lane, if held).
#[derive(Debug)]
pub(crate) struct Charge {
    inner: Option<Arc<Inner>>,
    shared: usize,
    lane: Option<OwnedMutexGuard<()>>,
    lane_bytes: usize,
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
    /// lane; partial requests whose client has been silent for `stall` may be evicted when the
    /// budget is exhausted. `capacity == usize::MAX` means unbounded. Config validation
    /// guarantees `capacity >= 2 * reserve`; a smaller capacity still works (a smaller shared
    /// pool).
    pub(crate) fn new(capacity: usize, reserve: usize, stall: Duration) -> Self {
        if capacity == usize::MAX {
            return Self { inner: None };
        }
        let shared = capacity.saturating_sub(reserve).min(Semaphore::MAX_PERMITS);
        Self {
            inner: Some(Arc::new(Inner {
                shared: Semaphore::new(shared),
                lane: Arc::new(Mutex::new(())),
                stalled: std::sync::Mutex::new(BTreeMap::new()),
                next_id: AtomicU64::new(0),
                stall,
            })),
        }
    }

    /// An empty charge for one request.
    pub(crate) fn charge(&self) -> Charge {
        Charge {
            id: self
                .inner
                .as_ref()
                .map_or(0, |i| i.next_id.fetch_add(1, Ordering::Relaxed)),
            inner: self.inner.clone(),
            shared: 0,
            lane: None,
            lane_bytes: 0,
            evict: CancellationToken::new(),
        }
    }

    /// Bytes of the shared pool free now.
    #[cfg(test)]
    pub(crate) fn shared_available_for_tests(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(usize::MAX, |i| i.shared.available_permits())
    }
}

impl Charge {
    /// Bytes charged.
    pub(crate) fn bytes(&self) -> usize {
        self.shared + self.lane_bytes
    }

    /// Charges `n` more bytes, waiting while the budget is exhausted. Returns whether it had
    /// to wait. Cancel-safe: a cancelled wait charges nothing.
    pub(crate) async fn grow(&mut self, n: u32) -> bool {
        let bytes = n as usize;
        let Some(inner) = self.inner.clone() else {
            self.lane_bytes += bytes;
            gauge_add(bytes);
            return false;
        };
        if self.lane.is_some() {
            // The lane holder's whole request fits the reserve: never waits.
            self.lane_bytes += bytes;
            gauge_add(bytes);
            return false;
        }
        if let Ok(p) = inner.shared.try_acquire_many(n) {
            p.forget();
            self.shared += bytes;
            gauge_add(bytes);
            return false;
        }
        crate::metrics::inc(&crate::metrics::global().kafka_request_bytes_waits, 1);
        // Re-check for newly stalled requests while waiting.
        let recheck = (inner.stall / 2).max(Duration::from_millis(10));
        loop {
            inner.evict_stalled(bytes);
            tokio::select! {
                biased;
                p = inner.shared.acquire_many(n) => {
                    match p {
                        Ok(p) => {
                            p.forget();
                            self.shared += bytes;
                        }
                        // Never closed; if it were, the lane still guarantees progress.
                        Err(_) => {
                            self.lane = Some(inner.lane.clone().lock_owned().await);
                            self.lane_bytes += bytes;
                        }
                    }
                    break;
                }
                g = inner.lane.clone().lock_owned() => {
                    self.lane = Some(g);
                    self.lane_bytes += bytes;
                    break;
                }
                () = tokio::time::sleep(recheck) => {}
            }
        }
        gauge_add(bytes);
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
        if n == 0 {
            return;
        }
        if self.lane.is_some() || self.inner.is_none() {
            let n = n.min(self.lane_bytes);
            self.lane_bytes -= n;
            gauge_sub(n);
        } else {
            let n = n.min(self.shared);
            self.shared -= n;
            if let Some(i) = &self.inner {
                i.shared.add_permits(n);
            }
            gauge_sub(n);
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(i) = &self.inner {
            i.shared.add_permits(self.shared);
        }
        gauge_sub(self.shared + self.lane_bytes);
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

    #[tokio::test]
    async fn charges_and_returns_bytes() {
        let b = RequestBudget::new(1000, 400, STALL); // shared pool 600
        let mut c = b.charge();
        assert!(!c.grow(100).await);
        assert!(!c.grow(50).await);
        c.shrink(30);
        assert_eq!(c.bytes(), 120);
        assert_eq!(b.shared_available_for_tests(), 480);
        drop(c);
        assert_eq!(b.shared_available_for_tests(), 600);
    }

    #[tokio::test]
    async fn exhausted_shared_pool_waits_then_proceeds_when_bytes_return() {
        let b = RequestBudget::new(1000, 400, STALL);
        let mut lane_holder = b.charge();
        assert!(!lane_holder.grow(600).await); // the whole shared pool
                                               // Next one takes the lane (the shared pool is empty) and draws from the reserve.
        let mut second = b.charge();
        assert!(second.grow(300).await);
        assert!(!second.grow(100).await, "the lane holder never waits");
        assert_eq!(second.bytes(), 400);
        // A third waits: no shared bytes, lane taken.
        let b2 = b.clone();
        let third = tokio::spawn(async move {
            let mut c = b2.charge();
            c.grow(10).await;
            c
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            !third.is_finished(),
            "must wait while the budget is exhausted"
        );
        drop(second); // frees the lane
        let third = tokio::time::timeout(Duration::from_secs(1), third)
            .await
            .expect("got the lane")
            .expect("task");
        assert_eq!(third.bytes(), 10);
        assert!(third.lane.is_some());
        drop(lane_holder);
        assert_eq!(b.shared_available_for_tests(), 600);
    }

    /// Two half-read requests that together hold the shared pool must not wait on each other
    /// forever: one of them gets the lane and completes.
    #[tokio::test]
    async fn partly_read_requests_cannot_deadlock() {
        let b = RequestBudget::new(1000, 500, STALL); // shared 500, largest request 500
        let mut a = b.charge();
        let mut c = b.charge();
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
        let mut c = b.charge();
        for _ in 0..10 {
            assert!(!c.grow(u32::MAX).await);
        }
        c.shrink(5);
        assert_eq!(c.bytes(), 10 * u32::MAX as usize - 5);
    }

    /// A request silent for the stall time is evicted when another one needs its bytes; one
    /// that is not silent long enough, or that is not waiting for its client, is kept.
    #[tokio::test]
    async fn silent_partial_requests_are_evicted_for_waiting_ones() {
        let stall = Duration::from_millis(100);
        let b = RequestBudget::new(1000, 400, stall); // shared 600
        let mut hog = b.charge();
        hog.grow(600).await;
        let mut lane = b.charge();
        lane.grow(1).await; // takes the lane: the shared pool is empty
        let hog_wait = tokio::spawn(async move {
            let r = hog.client_wait(std::future::pending::<()>()).await;
            (r, hog)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Before the stall time: the waiter waits.
        let mut normal = b.charge();
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
