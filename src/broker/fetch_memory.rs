//! The node's budget of fetch answer bytes in memory (`fetch.response.memory.max.bytes`).
//!
//! A consumer fetch may ask for up to `fetch.max.bytes` (55 MiB) and its answer lives from the
//! read (a copy out of RocksDB) until the connection has written it; a few consumers reading a
//! backlog at once would hold hundreds of MiB. So each read is granted bytes from one node-wide
//! budget first: up to what the request asks, at least [`FLOOR`] (or what it asks, if less),
//! waiting while not even that is free; a fetch that gets nothing before its wait ends is
//! answered with no records (the client fetches again). The grant is trimmed to the answer's
//! size after the read — KIP-74's one whole batch past the limit is charged too, so the
//! budget can be exceeded by at most one batch per fetch in flight — and released when the
//! connection has written the answer (`kafka/connection.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A read is granted at least this much (or what it asks, if less) before it goes ahead.
pub const FLOOR: usize = crate::config::FETCH_RESPONSE_MEMORY_MIN;

/// The budget; shared by every fetch of the node.
#[derive(Debug)]
pub struct FetchMemory {
    /// `None`: unbounded (`-1`); bytes are still counted.
    max: Option<usize>,
    used: AtomicUsize,
    freed: Notify,
}

/// Bytes held by one fetch answer; released on drop.
#[derive(Debug)]
pub struct MemoryGrant {
    mem: Arc<FetchMemory>,
    bytes: usize,
}

impl FetchMemory {
    #[must_use]
    pub fn new(max: Option<usize>) -> Arc<Self> {
        Arc::new(Self {
            max,
            used: AtomicUsize::new(0),
            freed: Notify::new(),
        })
    }

    /// Bytes granted now.
    #[must_use]
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Up to `want` bytes, at least `min(want, FLOOR)`: waits while fewer are free, until
    /// `deadline` (then `None`).
    pub async fn grant(self: &Arc<Self>, want: usize, deadline: Instant) -> Option<MemoryGrant> {
        let Some(max) = self.max else {
            self.add(want);
            return Some(self.granted(want));
        };
        let floor = want.min(FLOOR).min(max);
        let mut waited = false;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let used = self.used.load(Ordering::Acquire);
            let free = max.saturating_sub(used);
            if free >= floor {
                let take = want.min(free);
                if self
                    .used
                    .compare_exchange(used, used + take, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    gauge(take as i64);
                    return Some(self.granted(take));
                }
                continue;
            }
            if !waited {
                waited = true;
                crate::metrics::inc(&crate::metrics::global().fetch_response_bytes_waits, 1);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return None;
            }
        }
    }

    fn granted(self: &Arc<Self>, bytes: usize) -> MemoryGrant {
        MemoryGrant {
            mem: self.clone(),
            bytes,
        }
    }

    fn add(&self, n: usize) {
        self.used.fetch_add(n, Ordering::AcqRel);
        gauge(n as i64);
    }

    fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let before = self.used.fetch_sub(n, Ordering::AcqRel);
        debug_assert!(before >= n, "released {n} of {before} bytes");
        gauge(-(n as i64));
        self.freed.notify_waiters();
    }
}

fn gauge(delta: i64) {
    let m = crate::metrics::global();
    let now = m
        .fetch_response_bytes_held
        .fetch_add(delta, Ordering::Relaxed)
        .saturating_add(delta);
    m.fetch_response_bytes_held_max
        .fetch_max(now, Ordering::Relaxed);
}

impl MemoryGrant {
    /// Bytes held.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds exactly `bytes` (what the answer keeps): the rest goes back; more than granted
    /// (KIP-74's first whole batch) is charged regardless.
    pub fn settle(&mut self, bytes: usize) {
        if bytes < self.bytes {
            self.mem.release(self.bytes - bytes);
        } else {
            self.mem.add(bytes - self.bytes);
        }
        self.bytes = bytes;
    }
}

impl Drop for MemoryGrant {
    fn drop(&mut self) {
        self.mem.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(50)
    }

    #[tokio::test]
    async fn grants_what_is_free_and_waits_below_the_floor() {
        let m = FetchMemory::new(Some(3 * FLOOR));
        let mut a = m.grant(2 * FLOOR, soon()).await.expect("free");
        assert_eq!(a.bytes(), 2 * FLOOR);
        let b = m.grant(5 * FLOOR, soon()).await.expect("the rest");
        assert_eq!((b.bytes(), m.used()), (FLOOR, 3 * FLOOR));
        assert!(
            m.grant(10, soon()).await.is_none(),
            "nothing free until the deadline"
        );
        // A waiter gets bytes as soon as an answer shrinks to its size.
        let m2 = m.clone();
        let waiter = tokio::spawn(async move {
            m2.grant(FLOOR, Instant::now() + Duration::from_secs(5))
                .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        a.settle(FLOOR / 2);
        let c = waiter.await.expect("task").expect("granted");
        assert_eq!(c.bytes(), FLOOR);
        // One whole batch past the grant is charged; drops release everything.
        a.settle(FLOOR);
        assert_eq!(m.used(), 3 * FLOOR, "a, b and c: one FLOOR each");
        drop((a, b, c));
        assert_eq!(m.used(), 0);
    }

    #[tokio::test]
    async fn a_small_request_needs_only_its_own_size_and_unbounded_counts() {
        let m = FetchMemory::new(Some(FLOOR + 100));
        let _a = m.grant(FLOOR, soon()).await.expect("free");
        assert!(m.grant(500, soon()).await.is_none(), "100 free, 500 asked");
        let b = m.grant(100, soon()).await.expect("exactly what is free");
        assert_eq!((b.bytes(), m.used()), (100, FLOOR + 100));
        let u = FetchMemory::new(None);
        let g = u.grant(1 << 30, soon()).await.expect("unbounded");
        assert_eq!((g.bytes(), u.used()), (1 << 30, 1 << 30));
    }
}
