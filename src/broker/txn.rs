//! Transaction verbs: delegated to this node's `TxnCoordinator` (InitProducerId with a
//! transactional id, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, the admin views) and to the
//! group coordinator (TxnOffsetCommit). The broker is the coordinator's [`TxnHost`]: new
//! producer ids come from the controller's blocks, and markers are appended here when this
//! node leads the partition or sent to its leader over `TxnService` (`proto/txn.proto`).

use super::{Broker, BrokerError, OffsetCommitEntry, WeakBroker};
use crate::codec::kafka::control::Marker;
use crate::group::GroupError;
use crate::rpc::pb::txn::txn_service_client::TxnServiceClient;
use crate::rpc::pb::txn::txn_service_server::{TxnService, TxnServiceServer};
use crate::rpc::pb::txn::{
    MarkerPartition, MarkerResult, VerifyReply, VerifyRequest, WriteMarkersReply,
    WriteMarkersRequest,
};
use crate::rpc::{PeerPool, MESSAGE_BYTES_MAX};
use crate::txn::{MarkerOutcome, MarkerWrite, Tp, TxnError, TxnHost, TxnSupport};
use crate::types::NodeId;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tonic::{Request, Response, Status};

/// How long one marker may take to be replicated (Kafka: `request.timeout.ms`).
const MARKER_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline of one `TxnService.Verify` call.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest transactional id accepted from a peer.
const TXN_ID_BYTES_MAX: usize = 32 << 10;
/// Deadline of one `TxnService.WriteMarkers` call (the markers' own deadline, and a margin).
const REMOTE_TIMEOUT: Duration = Duration::from_secs(35);
/// Partitions per `TxnService.WriteMarkers` call.
pub const MARKER_PARTITIONS_MAX: usize = 10_000;
/// Longest topic name accepted from a peer (Kafka's limit is 249).
const TOPIC_BYTES_MAX: usize = 255;

// `VerifyReply.error`.
const VERIFY_OK: i32 = 0;
const VERIFY_NOT_IN_TXN: i32 = 1;
const VERIFY_FENCED: i32 = 2;
const VERIFY_UNKNOWN_PRODUCER: i32 = 3;
const VERIFY_UNAVAILABLE: i32 = 4;
/// The transaction-version-2 add was refused (INVALID_TXN_STATE); a peer that predates it
/// reads it as unavailable (retriable).
const VERIFY_REFUSED: i32 = 5;

const OUTCOME_WRITTEN: i32 = 0;
const OUTCOME_GONE: i32 = 1;
const OUTCOME_RETRY: i32 = 2;
const OUTCOME_FENCED: i32 = 3;

/// One partition's answer.
pub(super) type PartitionResult = (Tp, Result<(), BrokerError>);

impl From<TxnError> for BrokerError {
    fn from(e: TxnError) -> Self {
        BrokerError::Txn(e)
    }
}

/// What a marker append's failure means to the coordinator.
fn outcome_of(e: &BrokerError) -> MarkerOutcome {
    match e {
        BrokerError::UnknownTopicOrPartition => MarkerOutcome::Gone,
        BrokerError::InvalidProducerEpoch | BrokerError::TransactionCoordinatorFenced => {
            MarkerOutcome::Fenced(e.to_string())
        }
        _ => MarkerOutcome::Retry(e.to_string()),
    }
}

impl Broker {
    /// The transaction coordinator of this node.
    pub fn txn(&self) -> &Arc<crate::txn::TxnCoordinator> {
        &self.inner.txn
    }

    /// InitProducerId: a transactional id goes to its coordinator; none (or empty) gets an
    /// idempotent producer id.
    ///
    /// # Errors
    /// The coordinator's errors; controller failures.
    pub async fn init_producer_id(
        &self,
        transactional_id: Option<&str>,
        timeout_ms: i32,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<(i64, i16), BrokerError> {
        match transactional_id.filter(|t| !t.is_empty()) {
            Some(id) => {
                let expected = (producer_id >= 0).then_some((producer_id, producer_epoch));
                Ok(self
                    .inner
                    .txn
                    .init_producer_id(id, timeout_ms, expected)
                    .await?)
            }
            None => {
                self.idempotent_producer_id(producer_id, producer_epoch)
                    .await
            }
        }
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn's offsets partition).
    ///
    /// # Errors
    /// The coordinator's errors.
    pub async fn add_partitions_to_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[Tp],
    ) -> Result<(), BrokerError> {
        self.add_partitions_at(
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
            false,
        )
        .await
    }

    /// The coordinator's add, at transaction version 2 (`tv2`: the implicit add) or below.
    async fn add_partitions_at(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[Tp],
        tv2: bool,
    ) -> Result<(), BrokerError> {
        Ok(self
            .inner
            .txn
            .add_partitions(
                transactional_id,
                producer_id,
                producer_epoch,
                partitions,
                tv2,
            )
            .await?)
    }

    /// AddPartitionsToTxn v4+ verify-only.
    ///
    /// # Errors
    /// The coordinator's errors for the whole transaction.
    pub fn verify_txn_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[Tp],
    ) -> Result<Vec<PartitionResult>, BrokerError> {
        let r = self.inner.txn.verify_partitions(
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
        )?;
        Ok(r.into_iter()
            .map(|(tp, r)| (tp, r.map_err(BrokerError::Txn)))
            .collect())
    }

    /// KIP-890's verification before the first transactional batch of a producer's
    /// transaction is appended to a partition this node leads: the transactional id's
    /// coordinator (here or on another node) must have the partition in the producer's open
    /// transaction. So a late or stray transactional produce cannot open a transaction that
    /// no coordinator would ever end. At transaction version 2 ([`TxnSupport::AddPartition`])
    /// the coordinator adds the partition instead (KIP-890 part 2: the client sends no
    /// AddPartitionsToTxn), under the same producer id and epoch checks.
    ///
    /// # Errors
    /// TRANSACTION_ABORTABLE (not in the open transaction; INVALID_TXN_STATE for a client
    /// that predates it, as Kafka's `AddPartitionsToTxnManager` answers), INVALID_TXN_STATE
    /// (the add was refused), INVALID_PRODUCER_EPOCH (a newer epoch),
    /// INVALID_PRODUCER_ID_MAPPING; NOT_ENOUGH_REPLICAS (retriable, as Kafka maps them) when
    /// the coordinator cannot be asked or the previous transaction is still ending.
    pub(super) async fn verify_produce(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        tp: &Tp,
        support: TxnSupport,
    ) -> Result<(), BrokerError> {
        let add = support.adds();
        let image = self.metadata_view();
        let Some(t) = image.topic(crate::txn::TRANSACTION_STATE_TOPIC) else {
            return Err(BrokerError::Txn(TxnError::InvalidProducerIdMapping));
        };
        let pidx = crate::group::partition_for(transactional_id, t.partitions.len() as i32);
        let leader = t.partitions.get(pidx as usize).and_then(|p| p.leader);
        let result = match leader {
            None => Err(BrokerError::NotEnoughReplicas),
            Some(l) if l == self.node_id() => {
                self.verify_local(transactional_id, producer_id, producer_epoch, tp, add)
                    .await
            }
            Some(l) => {
                let req = VerifyRequest {
                    transactional_id: transactional_id.to_owned(),
                    producer_id,
                    producer_epoch: i32::from(producer_epoch),
                    topic: tp.0.clone(),
                    partition: tp.1,
                    add,
                };
                self.verify_remote(&image, l, req).await
            }
        };
        result.map_err(|e| match e {
            BrokerError::Txn(TxnError::ProducerFenced) => BrokerError::InvalidProducerEpoch,
            BrokerError::Txn(
                t @ (TxnError::InvalidTxnState
                | TxnError::TransactionAbortable
                | TxnError::InvalidProducerIdMapping),
            ) => BrokerError::Txn(support.downgrade(t)),
            BrokerError::Txn(_) | BrokerError::RequestTimedOut => BrokerError::NotEnoughReplicas,
            other => other,
        })
    }

    /// [`Broker::verify_produce`] with this node's coordinator.
    async fn verify_local(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        tp: &Tp,
        add: bool,
    ) -> Result<(), BrokerError> {
        let one = std::slice::from_ref(tp);
        if add {
            return self
                .add_partitions_at(transactional_id, producer_id, producer_epoch, one, true)
                .await;
        }
        self.verify_txn_partitions(transactional_id, producer_id, producer_epoch, one)
            .and_then(|mut r| r.pop().map_or(Ok(()), |(_, r)| r))
    }

    async fn verify_remote(
        &self,
        image: &crate::metadata::MetadataImage,
        node: NodeId,
        req: VerifyRequest,
    ) -> Result<(), BrokerError> {
        let addr = image
            .broker_raft_addr(node)
            .ok_or(BrokerError::NotEnoughReplicas)?;
        let channel = self
            .inner
            .peers
            .channel(addr)
            .map_err(|_| BrokerError::NotEnoughReplicas)?;
        let mut client = TxnServiceClient::new(channel)
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX);
        let mut req = Request::new(req);
        req.set_timeout(VERIFY_TIMEOUT);
        let reply = tokio::time::timeout(VERIFY_TIMEOUT, client.verify(req))
            .await
            .map_err(|_| BrokerError::NotEnoughReplicas)?
            .map_err(|_| BrokerError::NotEnoughReplicas)?
            .into_inner();
        Err(match reply.error {
            VERIFY_OK => return Ok(()),
            VERIFY_NOT_IN_TXN => BrokerError::Txn(TxnError::TransactionAbortable),
            VERIFY_REFUSED => BrokerError::Txn(TxnError::InvalidTxnState),
            VERIFY_FENCED => BrokerError::Txn(TxnError::ProducerFenced),
            VERIFY_UNKNOWN_PRODUCER => BrokerError::Txn(TxnError::InvalidProducerIdMapping),
            _ => BrokerError::NotEnoughReplicas,
        })
    }

    /// AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the transaction.
    ///
    /// # Errors
    /// The coordinator's errors; the offsets topic cannot be created.
    pub async fn add_offsets_to_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
    ) -> Result<(), BrokerError> {
        let topic = self.ensure_offsets_topic().await?;
        let p = crate::group::partition_for(group_id, topic.partitions.len() as i32);
        let tp = (crate::group::OFFSETS_TOPIC.to_owned(), p);
        self.add_partitions_to_txn(transactional_id, producer_id, producer_epoch, &[tp])
            .await
    }

    /// EndTxn; at transaction version 2 (`tv2`) the answer is the producer id and epoch of
    /// the next transaction.
    ///
    /// # Errors
    /// The coordinator's errors.
    pub async fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        tv2: bool,
    ) -> Result<(i64, i16), BrokerError> {
        Ok(self
            .inner
            .txn
            .end_txn(transactional_id, producer_id, producer_epoch, commit, tv2)
            .await?)
    }

    /// TxnOffsetCommit: one result per entry, or a group-level failure. The producer's
    /// open transaction must hold the group's offsets partition (AddOffsetsToTxn), checked
    /// with the transactional id's coordinator as for a produce (KIP-890; Kafka 4's group
    /// coordinator does the same): so offsets pending in a group always belong to a
    /// transaction some coordinator will end, and a stray producer id cannot park entries.
    /// At transaction version 2 ([`TxnSupport::AddPartition`], v5+) the commit adds the
    /// partition itself, as a produce does (the client sends no AddOffsetsToTxn).
    ///
    /// # Errors
    /// Group-level failures; the verification's (TRANSACTION_ABORTABLE or INVALID_TXN_STATE
    /// by `support`, INVALID_PRODUCER_EPOCH,
    /// INVALID_PRODUCER_ID_MAPPING, COORDINATOR_NOT_AVAILABLE when the transaction
    /// coordinator cannot be asked).
    #[allow(clippy::too_many_arguments)]
    pub async fn txn_offset_commit(
        &self,
        transactional_id: &str,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        member_id: &str,
        instance: Option<&str>,
        generation_id: i32,
        entries: Vec<OffsetCommitEntry>,
        support: TxnSupport,
    ) -> Result<Vec<Result<(), BrokerError>>, BrokerError> {
        let offsets_partition = self
            .metadata_view()
            .topic(crate::group::OFFSETS_TOPIC)
            .map(|t| crate::group::partition_for(group_id, t.partitions.len() as i32))
            .ok_or(BrokerError::Group(GroupError::CoordinatorNotAvailable))?;
        let tp = (crate::group::OFFSETS_TOPIC.to_owned(), offsets_partition);
        self.verify_produce(transactional_id, producer_id, producer_epoch, &tp, support)
            .await
            .map_err(|e| match e {
                BrokerError::NotEnoughReplicas => {
                    BrokerError::Group(GroupError::CoordinatorNotAvailable)
                }
                other => other,
            })?;
        let r = self
            .inner
            .groups
            .commit_txn_offsets(
                group_id,
                (producer_id, producer_epoch),
                member_id,
                instance,
                generation_id,
                entries,
            )
            .await?;
        Ok(r.into_iter()
            .map(|r| r.map_err(BrokerError::Group))
            .collect())
    }

    /// Appends markers on the partitions this node leads and waits for each (acks=all).
    async fn write_markers_local(
        &self,
        w: &MarkerWrite,
        partitions: Vec<Tp>,
    ) -> Vec<(Tp, MarkerOutcome)> {
        let marker = Marker {
            commit: w.commit,
            coordinator_epoch: w.coordinator_epoch,
        };
        let mut pending = Vec::with_capacity(partitions.len());
        for tp in partitions {
            let r = self
                .marker_append(
                    &tp.0,
                    tp.1,
                    w.producer_id,
                    w.producer_epoch,
                    marker,
                    false,
                    MARKER_TIMEOUT,
                )
                .await;
            pending.push((tp, r));
        }
        let mut out = Vec::with_capacity(pending.len());
        for (tp, r) in pending {
            let res = match r {
                Ok(p) => p.wait().await.map(|_| ()),
                Err(e) => Err(e),
            };
            out.push((
                tp,
                match res {
                    Ok(()) => MarkerOutcome::Written,
                    Err(e) => outcome_of(&e),
                },
            ));
        }
        out
    }

    /// Markers for every partition of `w`: local ones appended here, the others sent to
    /// their leaders (one call per node, in parallel).
    async fn write_markers(&self, w: MarkerWrite) -> Vec<(Tp, MarkerOutcome)> {
        let image = self.metadata_view();
        let mut by_node: BTreeMap<NodeId, Vec<Tp>> = BTreeMap::new();
        let mut out = Vec::new();
        for tp in &w.partitions {
            match image.partition(&tp.0, tp.1) {
                None => out.push((tp.clone(), MarkerOutcome::Gone)),
                Some(pi) => match pi.leader {
                    None => out.push((tp.clone(), MarkerOutcome::Retry("no leader".into()))),
                    Some(l) => by_node.entry(l).or_default().push(tp.clone()),
                },
            }
        }
        let me = self.node_id();
        let calls = by_node.into_iter().map(|(node, parts)| {
            let w = w.clone();
            let image = image.clone();
            async move {
                if node == me {
                    self.write_markers_local(&w, parts).await
                } else {
                    self.write_markers_remote(&image, node, &w, parts).await
                }
            }
        });
        for r in futures::future::join_all(calls).await {
            out.extend(r);
        }
        out
    }

    async fn write_markers_remote(
        &self,
        image: &crate::metadata::MetadataImage,
        node: NodeId,
        w: &MarkerWrite,
        parts: Vec<Tp>,
    ) -> Vec<(Tp, MarkerOutcome)> {
        let fail = |parts: Vec<Tp>, why: String| {
            parts
                .into_iter()
                .map(|tp| (tp, MarkerOutcome::Retry(why.clone())))
                .collect::<Vec<_>>()
        };
        let Some(addr) = image.broker_raft_addr(node) else {
            return fail(parts, format!("no address for node {node}"));
        };
        let channel = match self.inner.peers.channel(addr) {
            Ok(c) => c,
            Err(e) => return fail(parts, e.to_string()),
        };
        let mut client = TxnServiceClient::new(channel)
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX);
        let mut out = Vec::with_capacity(parts.len());
        for chunk in parts.chunks(MARKER_PARTITIONS_MAX) {
            let mut req = Request::new(WriteMarkersRequest {
                producer_id: w.producer_id,
                producer_epoch: i32::from(w.producer_epoch),
                commit: w.commit,
                coordinator_epoch: w.coordinator_epoch,
                partitions: chunk
                    .iter()
                    .map(|(t, p)| MarkerPartition {
                        topic: t.clone(),
                        partition: *p,
                    })
                    .collect(),
            });
            req.set_timeout(REMOTE_TIMEOUT);
            let reply = match tokio::time::timeout(REMOTE_TIMEOUT, client.write_markers(req)).await
            {
                Err(_) => {
                    out.extend(fail(chunk.to_vec(), "no answer in time".into()));
                    continue;
                }
                Ok(Err(s)) => {
                    out.extend(fail(chunk.to_vec(), s.message().to_owned()));
                    continue;
                }
                Ok(Ok(r)) => r.into_inner(),
            };
            // Only the partitions asked for count; any missing is retried.
            let mut answered: BTreeMap<Tp, MarkerOutcome> = BTreeMap::new();
            for r in reply.results {
                let o = match r.outcome {
                    OUTCOME_WRITTEN => MarkerOutcome::Written,
                    OUTCOME_GONE => MarkerOutcome::Gone,
                    OUTCOME_FENCED => MarkerOutcome::Fenced(r.reason),
                    _ => MarkerOutcome::Retry(r.reason),
                };
                answered.insert((r.topic, r.partition), o);
            }
            for tp in chunk {
                let o = answered
                    .remove(tp)
                    .unwrap_or_else(|| MarkerOutcome::Retry("not answered".into()));
                out.push((tp.clone(), o));
            }
        }
        out
    }
}

/// The broker as the coordinator's host (weakly held: the coordinator lives in the broker).
pub(super) struct Host(pub(super) WeakBroker);

impl TxnHost for Host {
    fn new_producer_id(&self) -> BoxFuture<'static, Result<i64, String>> {
        let b = self.0.upgrade();
        Box::pin(async move {
            let b = b.ok_or_else(|| "the broker is shutting down".to_owned())?;
            b.idempotent_producer_id(-1, -1)
                .await
                .map(|(id, _)| id)
                .map_err(|e| e.to_string())
        })
    }

    fn write_markers(&self, w: MarkerWrite) -> BoxFuture<'static, Vec<(Tp, MarkerOutcome)>> {
        let b = self.0.upgrade();
        Box::pin(async move {
            match b {
                Some(b) => b.write_markers(w).await,
                None => w
                    .partitions
                    .into_iter()
                    .map(|tp| {
                        (
                            tp,
                            MarkerOutcome::Retry("the broker is shutting down".into()),
                        )
                    })
                    .collect(),
            }
        })
    }
}

/// `TxnService`: markers from transaction coordinators on other nodes. Bound to the broker
/// after the gRPC server starts; until then every partition answers "retry".
#[derive(Clone, Default)]
pub struct TxnServiceImpl {
    broker: Arc<OnceLock<WeakBroker>>,
}

impl std::fmt::Debug for TxnServiceImpl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnServiceImpl").finish()
    }
}

impl TxnServiceImpl {
    /// Binds the broker (once; later calls are ignored).
    pub fn bind(&self, broker: &Broker) {
        let _ = self.broker.set(broker.downgrade());
    }

    /// The tonic service with explicit message limits.
    pub fn into_server(self) -> TxnServiceServer<Self> {
        TxnServiceServer::new(self)
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX)
    }
}

#[tonic::async_trait]
impl TxnService for TxnServiceImpl {
    async fn verify(
        &self,
        request: Request<VerifyRequest>,
    ) -> Result<Response<VerifyReply>, Status> {
        let req = request.into_inner();
        if req.transactional_id.len() > TXN_ID_BYTES_MAX || req.topic.len() > TOPIC_BYTES_MAX {
            return Err(Status::invalid_argument("name too long"));
        }
        let epoch = i16::try_from(req.producer_epoch)
            .map_err(|_| Status::invalid_argument("producer epoch out of range"))?;
        let Some(b) = self.broker.get().and_then(WeakBroker::upgrade) else {
            return Ok(Response::new(VerifyReply {
                error: VERIFY_UNAVAILABLE,
            }));
        };
        let tp = (req.topic, req.partition);
        let r = b
            .verify_local(&req.transactional_id, req.producer_id, epoch, &tp, req.add)
            .await;
        let error = match r {
            Ok(()) => VERIFY_OK,
            Err(BrokerError::Txn(TxnError::TransactionAbortable)) => VERIFY_NOT_IN_TXN,
            Err(BrokerError::Txn(TxnError::InvalidTxnState)) => VERIFY_REFUSED,
            Err(BrokerError::Txn(TxnError::ProducerFenced)) => VERIFY_FENCED,
            Err(BrokerError::Txn(TxnError::InvalidProducerIdMapping)) => VERIFY_UNKNOWN_PRODUCER,
            Err(_) => VERIFY_UNAVAILABLE,
        };
        Ok(Response::new(VerifyReply { error }))
    }

    async fn write_markers(
        &self,
        request: Request<WriteMarkersRequest>,
    ) -> Result<Response<WriteMarkersReply>, Status> {
        let req = request.into_inner();
        if req.partitions.len() > MARKER_PARTITIONS_MAX {
            return Err(Status::invalid_argument("too many partitions"));
        }
        if req
            .partitions
            .iter()
            .any(|p| p.topic.len() > TOPIC_BYTES_MAX)
        {
            return Err(Status::invalid_argument("topic name too long"));
        }
        let epoch = i16::try_from(req.producer_epoch)
            .map_err(|_| Status::invalid_argument("producer epoch out of range"))?;
        let parts: Vec<Tp> = req
            .partitions
            .into_iter()
            .map(|p| (p.topic, p.partition))
            .collect();
        let results = match self.broker.get().and_then(WeakBroker::upgrade) {
            None => parts
                .into_iter()
                .map(|tp| (tp, MarkerOutcome::Retry("not ready".into())))
                .collect(),
            Some(b) => {
                let w = MarkerWrite {
                    producer_id: req.producer_id,
                    producer_epoch: epoch,
                    commit: req.commit,
                    coordinator_epoch: req.coordinator_epoch,
                    partitions: Vec::new(),
                };
                b.write_markers_local(&w, parts).await
            }
        };
        Ok(Response::new(WriteMarkersReply {
            results: results
                .into_iter()
                .map(|((topic, partition), o)| {
                    let (outcome, reason) = match o {
                        MarkerOutcome::Written => (OUTCOME_WRITTEN, String::new()),
                        MarkerOutcome::Gone => (OUTCOME_GONE, String::new()),
                        MarkerOutcome::Retry(r) => (OUTCOME_RETRY, r),
                        MarkerOutcome::Fenced(r) => (OUTCOME_FENCED, r),
                    };
                    MarkerResult {
                        topic,
                        partition,
                        outcome,
                        reason,
                    }
                })
                .collect(),
        }))
    }
}

/// A pool for the markers' calls (TLS when the node-to-node port uses it).
pub(super) fn peer_pool(config: &crate::config::Config) -> PeerPool {
    PeerPool::with_tls(crate::rpc::RaftTls::client_for(config))
}
