//! `ReplicaManager`: owns the `Partition`s this node replicates and keeps them in line with
//! the metadata image (create on assignment, role and ISR on change, delete with the topic).

use super::fetcher::{self, FetcherContext, FetcherHandle};
use super::log::Partition;
use super::throttle::ReplicationThrottle;
use crate::metadata::MetadataImage;
use crate::rpc::PeerPool;
use crate::storage::{self, keys, Cf, StorageError, Store};
use crate::types::{NodeId, TopicId, TopicName};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

type Key = (TopicName, i32);
/// topic → partition → replica (`TopicName: Borrow<str>` allows `&str` lookups).
type PartitionMap = HashMap<TopicName, HashMap<i32, Arc<Partition>>>;

/// The replicas hosted by this node.
pub struct ReplicaManager {
    node_id: NodeId,
    store: Store,
    partitions: RwLock<PartitionMap>,
    open_lock: tokio::sync::Mutex<()>,
    /// Follower fetchers, one per source broker; `None` until replication is enabled.
    replication: std::sync::Mutex<Option<Replication>>,
    /// True once the first image has been reconciled (every local replica is open).
    reconciled: watch::Sender<bool>,
    /// Replication throttles of this broker, following the image.
    throttle: Arc<ReplicationThrottle>,
    /// The newest image (`applied_index`) any caller opened or reconciled a replica with. A
    /// reconcile pass with an older image is skipped: to it a topic created since is "gone",
    /// and it would drop (and delete the data of) a replica that a request had already opened
    /// with the newer image. The newer image is then still pending in the image watch.
    newest_image: std::sync::atomic::AtomicU64,
}

/// What running fetchers needs (set once by the node).
#[derive(Debug)]
struct Replication {
    ctx: FetcherContext,
    /// Node-to-node gRPC address of each broker (the controller quorum addresses; brokers not
    /// in it are looked up in their registration).
    addrs: std::collections::BTreeMap<NodeId, String>,
    token: CancellationToken,
    tracker: tokio_util::task::TaskTracker,
    fetchers: HashMap<NodeId, FetcherHandle>,
}

impl std::fmt::Debug for ReplicaManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self
            .partitions
            .read()
            .map(|p| p.values().map(HashMap::len).sum::<usize>())
            .unwrap_or(0);
        f.debug_struct("ReplicaManager")
            .field("node_id", &self.node_id)
            .field("partitions", &n)
            .finish()
    }
}

impl ReplicaManager {
    pub fn new(node_id: NodeId, store: Store) -> Arc<Self> {
        Arc::new(Self {
            node_id,
            store,
            partitions: RwLock::new(HashMap::new()),
            open_lock: tokio::sync::Mutex::new(()),
            replication: std::sync::Mutex::new(None),
            reconciled: watch::channel(false).0,
            throttle: Arc::new(ReplicationThrottle::new(node_id)),
            newest_image: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// This broker's replication throttles.
    pub fn throttle(&self) -> &Arc<ReplicationThrottle> {
        &self.throttle
    }

    /// Waits until the first metadata image has been reconciled (local replicas are open).
    pub async fn wait_reconciled(&self) {
        let mut rx = self.reconciled.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// Local replicas with a damaged range: (topic, partition, damage, leads).
    pub fn damaged(&self) -> Vec<(TopicName, i32, super::Damage, bool)> {
        self.all()
            .into_iter()
            .filter_map(|p| {
                p.damage()
                    .map(|d| (p.topic.clone(), p.partition, d, p.is_leader()))
            })
            .collect()
    }

    /// Enables follower fetchers: brokers are reached at `addrs` (node-to-node gRPC); fetchers
    /// stop when `token` fires and are spawned into `tracker`.
    pub fn enable_replication(
        &self,
        addrs: std::collections::BTreeMap<NodeId, String>,
        peers: PeerPool,
        token: CancellationToken,
        tracker: tokio_util::task::TaskTracker,
    ) {
        let ctx = FetcherContext {
            local: self.node_id,
            store: self.store.clone(),
            peers,
            throttle: self.throttle.clone(),
        };
        if let Ok(mut r) = self.replication.lock() {
            *r = Some(Replication {
                ctx,
                addrs,
                token,
                tracker,
                fetchers: HashMap::new(),
            });
        }
    }

    /// The local replica of a partition by topic id (follower fetches name topics by id).
    pub fn by_id(&self, topic_id: &TopicId, partition: i32) -> Option<Arc<Partition>> {
        let map = self.partitions.read().ok()?;
        map.values().find_map(|parts| {
            parts
                .get(&partition)
                .filter(|p| p.topic_id == *topic_id)
                .cloned()
        })
    }

    /// Starts, retargets and stops fetchers so that every local follower replica with a live
    /// leader is fetched by exactly one fetcher (the one for its leader).
    fn reconcile_fetchers(&self, image: &MetadataImage) {
        let mut wanted: HashMap<NodeId, Vec<Arc<Partition>>> = HashMap::new();
        for p in self.all() {
            let Some(t) = image.topic(p.topic.as_str()).filter(|t| t.id == p.topic_id) else {
                continue;
            };
            let Some(pi) = usize::try_from(p.partition)
                .ok()
                .and_then(|i| t.partitions.get(i))
            else {
                continue;
            };
            match pi.leader {
                Some(l) if l != self.node_id => wanted.entry(l).or_default().push(p),
                _ => {}
            }
        }
        let Ok(mut guard) = self.replication.lock() else {
            return;
        };
        let Some(r) = guard.as_mut() else { return };
        let gone: Vec<NodeId> = r
            .fetchers
            .keys()
            .filter(|s| !wanted.contains_key(s))
            .copied()
            .collect();
        for source in gone {
            if let Some(f) = r.fetchers.remove(&source) {
                f.token.cancel();
            }
        }
        for (source, mut parts) in wanted {
            parts.sort_by(|a, b| {
                (a.topic.as_str(), a.partition).cmp(&(b.topic.as_str(), b.partition))
            });
            // The configured voters first, then the address the broker registered (a node
            // added to the cluster later is in no one's `controller.quorum.voters`).
            let addr = r
                .addrs
                .get(&source)
                .cloned()
                .or_else(|| image.broker_raft_addr(source).map(str::to_owned));
            let Some(addr) = addr else {
                warn!(%source, "no node-to-node address for the leader; cannot fetch");
                continue;
            };
            match r.fetchers.get(&source) {
                Some(f) if f.addr == addr => {
                    f.partitions.send_if_modified(|cur| {
                        let same = cur.len() == parts.len()
                            && cur.iter().zip(&parts).all(|(a, b)| Arc::ptr_eq(a, b));
                        if !same {
                            *cur = parts;
                        }
                        !same
                    });
                }
                _ => {
                    if let Some(old) = r.fetchers.remove(&source) {
                        old.token.cancel();
                    }
                    let f =
                        fetcher::spawn(r.ctx.clone(), source, addr, parts, &r.token, &r.tracker);
                    r.fetchers.insert(source, f);
                }
            }
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn lookup(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .ok()?
            .get(topic)?
            .get(&partition)
            .cloned()
    }

    /// The local replica of `topic`-`partition` as the image describes it, opening it if the
    /// image assigns it here and it is not open yet. `None` if this node is not a replica.
    ///
    /// # Errors
    /// Storage failures while opening.
    pub async fn partition(
        &self,
        image: &MetadataImage,
        topic: &str,
        partition: i32,
    ) -> Result<Option<Arc<Partition>>, StorageError> {
        self.saw_image(image);
        let Some(t) = image.topic(topic) else {
            return Ok(None);
        };
        let Some(pi) = usize::try_from(partition)
            .ok()
            .and_then(|i| t.partitions.get(i))
        else {
            return Ok(None);
        };
        if !pi.replicas.contains(&self.node_id) {
            return Ok(None);
        }
        if let Some(p) = self.lookup(topic, partition) {
            if p.topic_id == t.id {
                return Ok(Some(p));
            }
        }
        let _g = self.open_lock.lock().await;
        if let Some(p) = self.lookup(topic, partition) {
            if p.topic_id == t.id {
                return Ok(Some(p));
            }
        }
        let (store, node, name, id) = (self.store.clone(), self.node_id, t.name.clone(), t.id);
        let p =
            storage::blocking(move || Partition::open(store, node, name, partition, id)).await?;
        p.update_role(pi.leader, pi.leader_epoch, pi.partition_epoch, &pi.isr);
        let p = Arc::new(p);
        if let Ok(mut map) = self.partitions.write() {
            map.entry(t.name.clone())
                .or_default()
                .insert(partition, p.clone());
        }
        Ok(Some(p))
    }

    /// Brings local replicas in line with `image`.
    /// Notes `image` as seen; false if a newer one was seen before it.
    fn saw_image(&self, image: &MetadataImage) -> bool {
        let before = self
            .newest_image
            .fetch_max(image.applied_index, std::sync::atomic::Ordering::AcqRel);
        before <= image.applied_index
    }

    /// Brings the open replicas, their roles and the fetchers in line with `image`; false
    /// (nothing done) if a newer image was seen already (see `newest_image`).
    async fn reconcile(&self, image: &MetadataImage) -> bool {
        if !self.saw_image(image) {
            debug!(
                applied_index = image.applied_index,
                "a newer image was seen already; reconciling with that one instead"
            );
            return false;
        }
        self.throttle.update(image);
        // Drop replicas whose topic is gone (or was re-created with another id) or moved away.
        let stale: Vec<(Key, TopicId, bool)> = match self.partitions.read() {
            Ok(map) => map
                .iter()
                .flat_map(|(t, parts)| parts.iter().map(move |(p, part)| (t, p, part)))
                .filter_map(|(t, p, part)| {
                    let cur = image.topic(t.as_str());
                    let topic_gone = cur.is_none_or(|ti| ti.id != part.topic_id);
                    let moved = cur
                        .and_then(|ti| ti.partitions.get(*p as usize))
                        .is_none_or(|pi| !pi.replicas.contains(&self.node_id));
                    (topic_gone || moved).then(|| ((t.clone(), *p), part.topic_id, topic_gone))
                })
                .collect(),
            Err(_) => return true,
        };
        let mut deleted: HashSet<TopicId> = HashSet::new();
        let mut moved_away: Vec<(Key, TopicId)> = Vec::new();
        for (key, id, topic_gone) in stale {
            if let Ok(mut map) = self.partitions.write() {
                if let Some(parts) = map.get_mut(&key.0) {
                    parts.remove(&key.1);
                    if parts.is_empty() {
                        map.remove(&key.0);
                    }
                }
            }
            if !topic_gone {
                moved_away.push((key.clone(), id));
            }
            if topic_gone && !image.topic_ids.contains_key(&id) && deleted.insert(id) {
                info!(topic = %key.0, topic_id = %id, "deleting local data of a deleted topic");
                let store = self.store.clone();
                if let Err(e) =
                    storage::blocking(move || Partition::delete_topic_data(&store, &id)).await
                {
                    warn!(error = %e, "failed to delete topic data");
                }
            }
        }
        for t in image.topics.values() {
            for (i, pi) in t.partitions.iter().enumerate() {
                if !pi.replicas.contains(&self.node_id) {
                    continue;
                }
                match self.partition(image, t.name.as_str(), i as i32).await {
                    Ok(Some(p)) => {
                        p.update_role(pi.leader, pi.leader_epoch, pi.partition_epoch, &pi.isr)
                    }
                    Ok(None) => {}
                    Err(e) => {
                        warn!(topic = %t.name, partition = i, error = %e, "cannot open partition")
                    }
                }
            }
        }
        self.reconcile_fetchers(image);
        // A replica moved off this node (a completed reassignment): its fetcher is stopped
        // above; its data goes, as Kafka's `StopReplica` with deletion does.
        for ((topic, partition), id) in moved_away {
            info!(%topic, partition, "deleting the local data of a replica moved off this node");
            let store = self.store.clone();
            if let Err(e) =
                storage::blocking(move || Partition::delete_partition_data(&store, &id, partition))
                    .await
            {
                warn!(%topic, partition, error = %e, "failed to delete a moved replica's data");
            }
        }
        true
    }

    /// Deletes data of topics that no longer exist (deleted while this node was down).
    async fn remove_orphans(&self, image: &MetadataImage) -> Result<(), StorageError> {
        let store = self.store.clone();
        let live: HashSet<[u8; 16]> = image.topic_ids.keys().map(|id| *id.0.as_bytes()).collect();
        let orphans = storage::blocking(move || {
            let mut found = Vec::new();
            let mut from = vec![0u8; 16];
            loop {
                let hit = store.scan(Cf::PartLog, &from, &[0xff; 17], 1, |_, _| false)?;
                let Some((k, _)) = hit.into_iter().next() else {
                    break;
                };
                let mut id = [0u8; 16];
                id.copy_from_slice(&k[..16]);
                if !live.contains(&id) {
                    found.push(id);
                }
                let (_, next) = keys::topic_range(&id);
                if next.len() > 16 {
                    break;
                }
                from = next;
            }
            for id in &found {
                Partition::delete_topic_data(&store, &TopicId(uuid::Uuid::from_bytes(*id)))?;
            }
            Ok(found.len())
        })
        .await?;
        if orphans > 0 {
            info!(
                orphans,
                "removed data of topics deleted while this node was down"
            );
        }
        Ok(())
    }

    /// Follows the image until shutdown.
    pub async fn run(
        self: Arc<Self>,
        mut images: watch::Receiver<Arc<MetadataImage>>,
        shutdown: CancellationToken,
    ) {
        let first = images.borrow_and_update().clone();
        if let Err(e) = self.remove_orphans(&first).await {
            warn!(error = %e, "orphan scan failed");
        }
        // Every local replica is open before `reconciled` says so (with the newest image, if
        // a request opened one with a newer image meanwhile).
        let mut image = first;
        while !self.reconcile(&image).await {
            let next = images.borrow_and_update().clone();
            if next.applied_index <= image.applied_index {
                break;
            }
            image = next;
        }
        self.reconciled.send_replace(true);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = images.changed() => {
                    if changed.is_err() { break; }
                    let image = images.borrow_and_update().clone();
                    self.reconcile(&image).await;
                }
            }
        }
    }

    /// Persists changed high watermarks every `every` (and once more at shutdown), in one
    /// unsynced write: a lost checkpoint only means a lower HW after a crash.
    pub async fn run_hw_checkpoints(
        self: Arc<Self>,
        every: std::time::Duration,
        shutdown: CancellationToken,
    ) {
        let mut written: HashMap<(TopicId, i32), i64> = HashMap::new();
        // Failures repeat every `every` while the disk is full: logged once a minute.
        let mut last_warned: Option<std::time::Instant> = None;
        loop {
            let stop = tokio::select! {
                _ = shutdown.cancelled() => true,
                _ = tokio::time::sleep(every) => false,
            };
            let mut wb = storage::Batch::new();
            let mut pending = Vec::new();
            for p in self.all() {
                let Some((key, hw)) = p.hw_checkpoint() else {
                    continue;
                };
                let id = (p.topic_id, p.partition);
                if written.get(&id) != Some(&hw) {
                    wb.put(
                        &self.store,
                        Cf::PartState,
                        &key,
                        &keys::u64_key(hw.max(0) as u64),
                    );
                    pending.push((id, hw));
                }
            }
            if !pending.is_empty() {
                let store = self.store.clone();
                match storage::blocking(move || store.write(wb, false)).await {
                    Ok(()) => {
                        written.extend(pending);
                        last_warned = None;
                    }
                    Err(e) => {
                        if last_warned
                            .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(60))
                        {
                            warn!(error = %e, "high watermark checkpoint failed (repeats are not logged for a minute)");
                            last_warned = Some(std::time::Instant::now());
                        }
                    }
                }
            }
            if stop {
                break;
            }
        }
    }

    /// Every local replica (for metrics and shutdown).
    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .map(|m| m.values().flat_map(|p| p.values().cloned()).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{apply, BrokerRegistration, MetadataCommand, MetadataRequest};
    use std::collections::BTreeMap;

    fn step(image: &MetadataImage, cmd: MetadataCommand) -> MetadataImage {
        let index = image.applied_index + 1;
        apply(image, &MetadataRequest::new(cmd), index).0
    }

    /// A reconcile pass still working on an older image must not drop (or delete the data
    /// of) a replica a request opened with a newer one: to the older image the new topic does
    /// not exist yet. (Seen as a flaky DescribeLogDirs test: the new topic's replica vanished.)
    #[tokio::test]
    async fn an_older_image_does_not_drop_a_replica_opened_with_a_newer_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let m = ReplicaManager::new(NodeId(1), store);
        let create = |image: &MetadataImage, name: &str| {
            step(
                image,
                MetadataCommand::CreateTopic {
                    name: TopicName::new(name).expect("valid"),
                    topic_id: TopicId::random(),
                    assignment: vec![vec![NodeId(1)]],
                    configs: BTreeMap::new(),
                },
            )
        };
        let registered = step(
            &MetadataImage::default(),
            MetadataCommand::RegisterBroker {
                registration: BrokerRegistration::for_test(NodeId(1), "h"),
            },
        );
        let old = create(&registered, "a");
        let new = create(&old, "b");
        assert!(m.reconcile(&old).await);
        let b = m
            .partition(&new, "b", 0)
            .await
            .expect("open")
            .expect("assigned here");
        assert!(!m.reconcile(&old).await, "the older image is skipped");
        let names: Vec<(String, i32)> = m
            .all()
            .iter()
            .map(|p| (p.topic.to_string(), p.partition))
            .collect();
        assert!(names.contains(&("b".to_owned(), 0)), "{names:?}");
        assert!(Arc::ptr_eq(&b, &m.lookup("b", 0).expect("still open")));
        assert!(m.reconcile(&new).await);
        assert_eq!(m.all().len(), 2);
    }
}
