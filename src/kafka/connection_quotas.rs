//! Connections per client IP address (`max.connections.per.ip` and its overrides), as Kafka's
//! `ConnectionQuotas` counts them: a slot is taken right after accept and released when the
//! connection ends; a connection over its address's limit is closed at once.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Open Kafka connections per client address, shared by every listener of a node.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionQuotas {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    default_max: usize,
    overrides: BTreeMap<IpAddr, usize>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// The address already has as many connections as it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{ip} already has {limit} connections (max.connections.per.ip)")]
pub(crate) struct TooManyConnections {
    pub(crate) ip: IpAddr,
    pub(crate) limit: usize,
}

/// One counted connection; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct IpSlot {
    inner: Arc<Inner>,
    ip: IpAddr,
}

impl ConnectionQuotas {
    /// `default_max` applies to every address not in `overrides` (keys already canonical:
    /// IPv4-mapped IPv6 addresses stored as IPv4).
    pub(crate) fn new(default_max: usize, overrides: BTreeMap<IpAddr, usize>) -> Self {
        Self {
            inner: Arc::new(Inner {
                default_max,
                overrides,
                open: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The limit for `ip`.
    pub(crate) fn limit(&self, ip: IpAddr) -> usize {
        let ip = ip.to_canonical();
        self.inner
            .overrides
            .get(&ip)
            .copied()
            .unwrap_or(self.inner.default_max)
    }

    /// Takes a slot for a new connection from `ip`.
    ///
    /// # Errors
    /// [`TooManyConnections`] when `ip` is at its limit.
    pub(crate) fn try_acquire(&self, ip: IpAddr) -> Result<IpSlot, TooManyConnections> {
        let ip = ip.to_canonical();
        let limit = self.limit(ip);
        let mut open = self.inner.lock();
        let n = open.entry(ip).or_insert(0);
        if *n >= limit {
            if *n == 0 {
                open.remove(&ip);
            }
            return Err(TooManyConnections { ip, limit });
        }
        *n += 1;
        Ok(IpSlot {
            inner: self.inner.clone(),
            ip,
        })
    }

    /// Open connections counted for `ip`.
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        self.inner
            .lock()
            .get(&ip.to_canonical())
            .copied()
            .unwrap_or(0)
    }

    /// Addresses with at least one open connection.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.inner.lock().len()
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // The map is only counted up and down; a panic elsewhere cannot leave it half-updated.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.inner.lock();
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn counts_per_address_and_frees_on_drop() {
        let q = ConnectionQuotas::new(2, BTreeMap::new());
        let a1 = q.try_acquire(ip("10.0.0.1")).expect("first");
        let a2 = q.try_acquire(ip("10.0.0.1")).expect("second");
        assert_eq!(
            q.try_acquire(ip("10.0.0.1")).map(|_| ()),
            Err(TooManyConnections {
                ip: ip("10.0.0.1"),
                limit: 2
            })
        );
        // Another address has its own count.
        let b = q.try_acquire(ip("10.0.0.2")).expect("other address");
        assert_eq!(q.open(ip("10.0.0.1")), 2);
        drop(a1);
        assert_eq!(q.open(ip("10.0.0.1")), 1);
        let a3 = q.try_acquire(ip("10.0.0.1")).expect("slot freed");
        drop((a2, a3, b));
        assert_eq!(q.open(ip("10.0.0.1")), 0);
        assert_eq!(
            q.tracked(),
            0,
            "no entry kept for addresses without connections"
        );
    }

    #[test]
    fn overrides_raise_lower_or_forbid() {
        let q = ConnectionQuotas::new(
            1,
            BTreeMap::from([(ip("127.0.0.1"), 3), (ip("10.0.0.9"), 0)]),
        );
        let held: Vec<_> = (0..3)
            .map(|_| q.try_acquire(ip("127.0.0.1")).expect("override of 3"))
            .collect();
        assert!(q.try_acquire(ip("127.0.0.1")).is_err());
        // An IPv4-mapped IPv6 peer is the same address.
        assert!(q.try_acquire(ip("::ffff:127.0.0.1")).is_err());
        assert_eq!(q.limit(ip("::ffff:127.0.0.1")), 3);
        // 0 refuses the address entirely; refused attempts leave no entry behind.
        assert!(q.try_acquire(ip("10.0.0.9")).is_err());
        assert_eq!(q.tracked(), 1);
        let _other = q.try_acquire(ip("10.0.0.5")).expect("default of 1");
        assert!(q.try_acquire(ip("10.0.0.5")).is_err());
        drop(held);
        assert_eq!(q.open(ip("127.0.0.1")), 0);
    }
}
