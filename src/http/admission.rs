//! The operations listener's connection table (`http.connections.max`). Connections are
//! accepted at once, never queued behind a permit: when the table is full, the oldest
//! connection that has not sent its complete request head yet is evicted (closed) to make room,
//! so idle or slow sockets can delay a health probe by no more than an accept. Only when every
//! open connection is already being answered is the new one refused.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio_util::sync::CancellationToken;

/// Open HTTP connections, oldest first.
#[derive(Debug)]
pub(super) struct Admission {
    max: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    conns: BTreeMap<u64, Entry>,
}

#[derive(Debug)]
struct Entry {
    head_received: bool,
    evict: CancellationToken,
}

/// Every open connection is being answered; the new one is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Full;

/// One admitted connection; dropping it leaves the table.
#[derive(Debug)]
pub(super) struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    evict: CancellationToken,
}

/// An admitted connection, and whether an older one was evicted for it.
#[derive(Debug)]
pub(super) struct Admitted {
    pub(super) ticket: Ticket,
    pub(super) evicted: bool,
}

impl Admission {
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain inserts and removes: a panic elsewhere cannot leave the map inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a new connection, evicting the oldest one still waiting for its head when full.
    ///
    /// # Errors
    /// [`Full`] when the table is full of connections whose head already arrived.
    pub(super) fn admit(self: &Arc<Self>) -> Result<Admitted, Full> {
        let mut st = self.lock();
        let mut evicted = false;
        if st.conns.len() >= self.max {
            let oldest_waiting = st
                .conns
                .iter()
                .find(|(_, e)| !e.head_received)
                .map(|(id, _)| *id);
            let Some(id) = oldest_waiting else {
                return Err(Full);
            };
            if let Some(e) = st.conns.remove(&id) {
                e.evict.cancel();
                evicted = true;
            }
        }
        let id = st.next_id;
        st.next_id += 1;
        let evict = CancellationToken::new();
        st.conns.insert(
            id,
            Entry {
                head_received: false,
                evict: evict.clone(),
            },
        );
        Ok(Admitted {
            ticket: Ticket {
                admission: self.clone(),
                id,
                evict,
            },
            evicted,
        })
    }

    /// Connections in the table.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().conns.len()
    }
}

impl Ticket {
    /// Cancelled when this connection is evicted.
    pub(super) fn evicted(&self) -> &CancellationToken {
        &self.evict
    }

    /// The request head arrived: the connection is being answered and is no longer evicted.
    pub(super) fn head_received(&self) {
        if let Some(e) = self.admission.lock().conns.get_mut(&self.id) {
            e.head_received = true;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.lock().conns.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_table_evicts_the_oldest_connection_without_a_head() {
        let a = Admission::new(3);
        let first = a.admit().expect("room");
        let second = a.admit().expect("room");
        let third = a.admit().expect("room");
        assert!(!first.evicted && !second.evicted && !third.evicted);
        first.ticket.head_received(); // being answered: not evictable
        let fourth = a.admit().expect("evicts");
        assert!(fourth.evicted);
        assert!(!first.ticket.evicted().is_cancelled());
        assert!(
            second.ticket.evicted().is_cancelled(),
            "oldest waiting one goes"
        );
        assert!(!third.ticket.evicted().is_cancelled());
        assert_eq!(a.len(), 3);
        // The evicted task drops its ticket later: that must not remove anyone else.
        drop(second);
        assert_eq!(a.len(), 3);
        drop(first);
        assert_eq!(a.len(), 2);
        let fifth = a.admit().expect("room again");
        assert!(!fifth.evicted);
        drop((third, fourth, fifth));
        assert_eq!(a.len(), 0);
    }

    #[test]
    fn refuses_only_when_every_connection_is_being_answered() {
        let a = Admission::new(2);
        let x = a.admit().expect("room");
        let y = a.admit().expect("room");
        x.ticket.head_received();
        y.ticket.head_received();
        assert_eq!(a.admit().map(|_| ()), Err(Full));
        drop(y);
        assert!(a.admit().is_ok());
    }
}
