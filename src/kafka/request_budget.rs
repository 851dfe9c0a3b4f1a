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

use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard, Semaphore};

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
}

/// Bytes charged to one request. Dropping it returns them (and the lane, if held).
#[derive(Debug)]
pub(crate) struct Charge {
    inner: Option<Arc<Inner>>,
    shared: usize,
    lane: Option<OwnedMutexGuard<()>>,
    lane_bytes: usize,
}

impl RequestBudget {
    /// A budget of `capacity` bytes of which `reserve` (the largest request) is kept for the
    /// lane. `capacity == usize::MAX` means unbounded. Config validation guarantees
    /// `capacity >= 2 * reserve`; a smaller capacity still works (a smaller shared pool).
    pub(crate) fn new(capacity: usize, reserve: usize) -> Self {
        if capacity == usize::MAX {
            return Self { inner: None };
        }
        let shared = capacity.saturating_sub(reserve).min(Semaphore::MAX_PERMITS);
        Self {
            inner: Some(Arc::new(Inner {
                shared: Semaphore::new(shared),
                lane: Arc::new(Mutex::new(())),
            })),
        }
    }

    /// An empty charge for one request.
    pub(crate) fn charge(&self) -> Charge {
        Charge {
            inner: self.inner.clone(),
            shared: 0,
            lane: None,
            lane_bytes: 0,
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
        tokio::select! {
            biased;
            p = inner.shared.acquire_many(n) => match p {
                Ok(p) => {
                    p.forget();
                    self.shared += bytes;
                }
                // The semaphore is never closed; if it were, the lane still guarantees progress.
                Err(_) => {
                    self.lane = Some(inner.lane.clone().lock_owned().await);
                    self.lane_bytes += bytes;
                }
            },
            g = inner.lane.clone().lock_owned() => {
                self.lane = Some(g);
                self.lane_bytes += bytes;
            }
        }
        gauge_add(bytes);
        true
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
    use std::time::Duration;

    #[tokio::test]
    async fn charges_and_returns_bytes() {
        let b = RequestBudget::new(1000, 400); // shared pool 600
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
        let b = RequestBudget::new(1000, 400);
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
        let b = RequestBudget::new(1000, 500); // shared 500, largest request 500
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
        let b = RequestBudget::new(usize::MAX, 100);
        let mut c = b.charge();
        for _ in 0..10 {
            assert!(!c.grow(u32::MAX).await);
        }
        c.shrink(5);
        assert_eq!(c.bytes(), 10 * u32::MAX as usize - 5);
    }
}
