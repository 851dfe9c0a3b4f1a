//! The Kafka listeners: accept with a connection permit (`max.connections`; the acceptor waits
//! while all are taken, as Kafka's does), count the connection against its address
//! (`max.connections.per.ip`; one over is closed at once), one task per connection. All
//! listeners share the permits, the per-address counts and the request byte budget.

use super::connection;
use super::connection_quotas::ConnectionQuotas;
use super::request_budget::RequestBudget;
use crate::broker::Broker;
use crate::security::tls::{PrincipalMapper, Reload, ReloadingConfig};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, info_span, warn, Instrument};

/// Bound Kafka listeners, ready to serve.
#[derive(Debug)]
pub struct KafkaServer {
    listeners: Vec<(String, TcpListener, Option<Arc<TlsListener>>)>,
}

/// A TLS listener's stores (reloaded when their files change) and principal mapping.
#[derive(Debug)]
struct TlsListener {
    config: ReloadingConfig,
    mapper: Arc<PrincipalMapper>,
}

impl KafkaServer {
    /// Binds every configured listener.
    ///
    /// # Errors
    /// A listener address cannot be bound.
    pub async fn bind(broker: &Broker) -> io::Result<Self> {
        let mut listeners = Vec::new();
        for l in &broker.config().listeners {
            let tls = match &l.tls {
                None => None,
                Some(t) => {
                    let bad = |e: String| {
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("TLS listener {}: {e}", l.name),
                        )
                    };
                    let mapper = PrincipalMapper::parse(&t.principal_mapping_rules).map_err(bad)?;
                    let config = ReloadingConfig::new(t.clone()).map_err(bad)?;
                    Some(Arc::new(TlsListener {
                        config,
                        mapper: Arc::new(mapper),
                    }))
                }
            };
            let sock = TcpListener::bind(l.bind).await.map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot bind Kafka listener {} on {}: {e}", l.name, l.bind),
                )
            })?;
            listeners.push((l.name.clone(), sock, tls));
        }
        Ok(Self { listeners })
    }

    /// The bound addresses (useful when binding port 0).
    pub fn local_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.listeners
            .iter()
            .filter_map(|(n, l, _)| l.local_addr().ok().map(|a| (n.clone(), a)))
            .collect()
    }

    /// Accepts connections, once `serving` is cancelled, until `shutdown`; connection tasks go
    /// into `tracker`. Connections that arrive before `serving` wait in the kernel's backlog
    /// (their clients see a connected socket whose first request is answered late).
    pub fn spawn(
        self,
        broker: Broker,
        serving: CancellationToken,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) {
        let limits = &broker.config().limits;
        let permits = Arc::new(Semaphore::new(limits.kafka_connections_max));
        let quotas = ConnectionQuotas::new(
            limits.kafka_connections_per_ip_max,
            limits.kafka_connections_per_ip_overrides.clone(),
        );
        let budget = RequestBudget::new(
            limits.kafka_queued_request_bytes_max,
            limits.kafka_request_bytes_max,
            limits.kafka_queued_request_stall,
        );
        for (name, listener, tls) in self.listeners {
            let (broker, serving, shutdown, permits, t2) = (
                broker.clone(),
                serving.clone(),
                shutdown.clone(),
                permits.clone(),
                tracker.clone(),
            );
            let (quotas, budget) = (quotas.clone(), budget.clone());
            let max_connections = limits.kafka_connections_max;
            tracker.spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = serving.cancelled() => {}
                }
                if let Ok(addr) = listener.local_addr() {
                    info!(listener = %name, %addr, "Kafka listener ready");
                }
                let mut conn_id: u64 = 0;
                let m = crate::metrics::global();
                // Warnings that could repeat per accept are logged at most once a minute.
                let (mut warned_full, mut warned_ip): (Option<Instant>, Option<Instant>) = (None, None);
                loop {
                    let permit = match permits.clone().try_acquire_owned() {
                        Ok(p) => p,
                        Err(_) => {
                            crate::metrics::inc(&m.kafka_connections_max_waits, 1);
                            if due(&mut warned_full) {
                                warn!(listener = %name, max_connections, "max.connections reached; new connections wait");
                            }
                            tokio::select! {
                                _ = shutdown.cancelled() => break,
                                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                            }
                        }
                    };
                    let (stream, peer) = tokio::select! {
                        _ = shutdown.cancelled() => break,
                        r = listener.accept() => match r {
                            Ok(x) => x,
                            Err(e) => {
                                warn!(error = %e, "accept failed");
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            }
                        },
                    };
                    conn_id += 1;
                    let ip_slot = match quotas.try_acquire(peer.ip()) {
                        Ok(slot) => slot,
                        Err(e) => {
                            // As Kafka does: accepted, then closed at once (a reset, no reply).
                            crate::metrics::inc(&m.kafka_connections_refused_per_ip, 1);
                            if due(&mut warned_ip) {
                                warn!(%peer, listener = %name, limit = e.limit, "too many connections from one address (max.connections.per.ip); closing the excess");
                            } else {
                                debug!(conn_id, %peer, listener = %name, limit = e.limit, "too many connections from this address; closed");
                            }
                            let _ = stream.set_zero_linger();
                            drop(stream);
                            continue;
                        }
                    };
                    let span = info_span!("kafka_conn", conn_id, %peer, listener = %name);
                    let (b, s, n, budget) = (broker.clone(), shutdown.clone(), name.clone(), budget.clone());
                    let tls_ctx = tls.as_ref().map(|t| {
                        let (config, reload) = t.config.current();
                        match reload {
                            Reload::Unchanged => {}
                            Reload::Reloaded => {
                                crate::metrics::inc(&m.kafka_tls_reloads, 1);
                                info!(listener = %name, "TLS key/trust stores changed: reloaded");
                            }
                            Reload::Failed(e) => {
                                warn!(listener = %name, error = %e, "TLS key/trust stores changed but do not load; keeping the previous ones");
                            }
                        }
                        (config, t.mapper.clone())
                    });
                    t2.spawn(
                        async move {
                            connection::serve(stream, peer, b, n, budget, s, tls_ctx).await;
                            drop(ip_slot);
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
            });
        }
    }
}

/// True (and restarts the period) when a rate-limited warning may be logged again.
fn due(last: &mut Option<Instant>) -> bool {
    const PERIOD: Duration = Duration::from_secs(60);
    let now = Instant::now();
    if last.is_some_and(|t| now.duration_since(t) < PERIOD) {
        return false;
    }
    *last = Some(now);
    true
}
