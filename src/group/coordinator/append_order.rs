//! Append turns: the records of an offsets partition reach its log in the order the
//! coordinator processed the requests that wrote them, as Kafka appends under the group lock.
//! A request takes its turn while the coordinator's state is locked (when it is checked), then
//! waits for the turns before it to append; the replication wait that follows is not ordered.
//! So a newer OffsetCommit is never overwritten by an older one that reached the log later,
//! and the committed offset in memory (the record with the highest log offset wins) is the
//! one a coordinator rebuilds from the log after a failover.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The turns of one offsets partition.
#[derive(Debug)]
pub(super) struct AppendQueue {
    turns: Mutex<Turns>,
    /// The ticket now allowed to append.
    serving: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Turns {
    next: u64,
    serving: u64,
    /// Tickets dropped before their turn came (a cancelled request): skipped.
    abandoned: BTreeSet<u64>,
}

impl Default for AppendQueue {
    fn default() -> Self {
        Self {
            turns: Mutex::new(Turns::default()),
            serving: watch::channel(0).0,
        }
    }
}

impl AppendQueue {
    fn turns(&self) -> std::sync::MutexGuard<'_, Turns> {
        self.turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next turn (the caller's place in processing order).
    pub(super) fn take(self: &Arc<Self>) -> Turn {
        let mut t = self.turns();
        let ticket = t.next;
        t.next += 1;
        Turn {
            queue: self.clone(),
            ticket,
        }
    }
}

/// One writer's place in line; the next writer's turn comes when it is dropped.
#[derive(Debug)]
pub(super) struct Turn {
    queue: Arc<AppendQueue>,
    ticket: u64,
}

impl Turn {
    /// Waits until every earlier turn has appended (or was abandoned).
    pub(super) async fn ready(&self) {
        let mut rx = self.queue.serving.subscribe();
        // The sender lives in the queue this turn holds, so the channel cannot close.
        let _ = rx.wait_for(|s| *s >= self.ticket).await;
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut guard = self.queue.turns();
        let t = &mut *guard;
        if t.serving == self.ticket {
            t.serving += 1;
            while t.abandoned.remove(&t.serving) {
                t.serving += 1;
            }
            self.queue.serving.send_replace(t.serving);
        } else {
            t.abandoned.insert(self.ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn turns_come_in_ticket_order_and_abandoned_ones_are_skipped() {
        let q = Arc::new(AppendQueue::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let (a, b, c, d) = (q.take(), q.take(), q.take(), q.take());
        drop(c); // cancelled before its turn
        let mut tasks = Vec::new();
        // Started in reverse: each still appends in ticket order.
        for (name, turn) in [("d", d), ("b", b), ("a", a)] {
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                turn.ready().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
                order.lock().expect("order").push(name);
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(*order.lock().expect("order"), vec!["a", "b", "d"]);
        // A later turn is ready at once.
        tokio::time::timeout(Duration::from_secs(1), q.take().ready())
            .await
            .expect("ready");
    }
}
