//! The Kafka listeners: accept with a connection permit, one task per connection.

use super::connection;
use crate::broker::Broker;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, info_span, warn, Instrument};

/// Bound Kafka listeners, ready to serve.
#[derive(Debug)]
pub struct KafkaServer {
    listeners: Vec<(String, TcpListener)>,
}

impl KafkaServer {
    /// Binds every configured listener.
    ///
    /// # Errors
    /// A listener address cannot be bound.
    pub async fn bind(broker: &Broker) -> io::Result<Self> {
        let mut listeners = Vec::new();
        for l in &broker.config().listeners {
            let sock = TcpListener::bind(l.bind).await.map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot bind Kafka listener {} on {}: {e}", l.name, l.bind),
                )
            })?;
            listeners.push((l.name.clone(), sock));
        }
        Ok(Self { listeners })
    }

    /// The bound addresses (useful when binding port 0).
    pub fn local_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.listeners
            .iter()
            .filter_map(|(n, l)| l.local_addr().ok().map(|a| (n.clone(), a)))
            .collect()
    }

    /// Accepts connections until `shutdown`; connection tasks go into `tracker`.
    pub fn spawn(self, broker: Broker, shutdown: CancellationToken, tracker: &TaskTracker) {
        let permits = Arc::new(Semaphore::new(broker.config().limits.kafka_connections_max));
        for (name, listener) in self.listeners {
            let (broker, shutdown, permits, t2) = (
                broker.clone(),
                shutdown.clone(),
                permits.clone(),
                tracker.clone(),
            );
            if let Ok(addr) = listener.local_addr() {
                info!(listener = %name, %addr, "Kafka listener ready");
            }
            tracker.spawn(async move {
                let mut conn_id: u64 = 0;
                loop {
                    let permit = tokio::select! {
                        _ = shutdown.cancelled() => break,
                        p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                    };
                    let (stream, peer) = tokio::select! {
                        _ = shutdown.cancelled() => break,
                        r = listener.accept() => match r {
                            Ok(x) => x,
                            Err(e) => {
                                warn!(error = %e, "accept failed");
                                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                                continue;
                            }
                        },
                    };
                    conn_id += 1;
                    let span = info_span!("kafka_conn", conn_id, %peer, listener = %name);
                    let (b, s, n) = (broker.clone(), shutdown.clone(), name.clone());
                    t2.spawn(
                        async move {
                            connection::serve(stream, peer, b, n, s).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
            });
        }
    }
}
