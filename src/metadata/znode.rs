//! The replicated ZooKeeper store: free-form znodes and ZooKeeper sessions, plus the pure
//! transitions of the `Zk*` commands. The Kafka projection (`/brokers/...`) is not stored here:
//! `zk::tree` derives it from the rest of the image. This module only knows which paths of that
//! projection are *skeleton* directories that may hold stored children (`/config/changes/...`).
//!
//! Skeleton directories and `/` are *implicit*: they exist without being stored, and are
//! materialized (stored with zxid 0 and `implicit = true`) the first time a child is created
//! under them, so that their `cversion` (the sequence counter), `pzxid` and children are kept.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Skeleton directories of the Kafka tree, relative to the root or to a chroot.
pub const ZK_SKELETON: &[&str] = &[
    "/admin",
    "/admin/delete_topics",
    "/brokers",
    "/brokers/ids",
    "/brokers/seqid",
    "/brokers/topics",
    "/cluster",
    "/config",
    "/config/brokers",
    "/config/changes",
    "/config/clients",
    "/config/topics",
    "/config/users",
    "/consumers",
    "/isr_change_notification",
    "/kafka-acl",
    "/kafka-acl/Cluster",
    "/kafka-acl/DelegationToken",
    "/kafka-acl/Group",
    "/kafka-acl/Topic",
    "/kafka-acl/TransactionalId",
    "/kafka-acl-changes",
    "/kafka-acl-extended",
    "/kafka-acl-extended/prefixed",
    "/kafka-acl-extended/prefixed/Cluster",
    "/kafka-acl-extended/prefixed/DelegationToken",
    "/kafka-acl-extended/prefixed/Group",
    "/kafka-acl-extended/prefixed/Topic",
    "/kafka-acl-extended/prefixed/TransactionalId",
    "/kafka-acl-extended-changes",
    "/latest_producer_id_block",
    "/log_dir_event_notification",
    "/zookeeper",
    "/zookeeper/quota",
];

/// One ZooKeeper ACL entry: permission bits (READ 1, WRITE 2, CREATE 4, DELETE 8, ADMIN 16)
/// for an id of a scheme (`world:anyone`, `digest:user:base64(sha1)`, `ip:10.0.0.0/8`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ZnodeAcl {
    pub perms: i32,
    pub scheme: String,
    pub id: String,
}

impl ZnodeAcl {
    /// `world:anyone` with every permission (ZooKeeper's `OPEN_ACL_UNSAFE`).
    pub fn open() -> Self {
        Self {
            perms: 31,
            scheme: "world".into(),
            id: "anyone".into(),
        }
    }
}

/// The ACL of a node created without one being stored: open.
pub fn open_acls() -> Vec<ZnodeAcl> {
    vec![ZnodeAcl::open()]
}

#[allow(clippy::ptr_arg)] // serde's skip_serializing_if passes `&Vec<_>`
fn is_open(acl: &Vec<ZnodeAcl>) -> bool {
    acl.len() == 1 && acl[0] == ZnodeAcl::open()
}

/// One stored znode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Znode {
    /// `None` is ZooKeeper's null data (length -1), distinct from empty.
    #[serde(with = "super::bytes_b64")]
    pub data: Option<Vec<u8>>,
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime_ms: i64,
    pub mtime_ms: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    /// Session id owning an ephemeral node, 0 for persistent nodes.
    pub ephemeral_owner: i64,
    /// Names (last path segment) of the stored children.
    pub children: BTreeSet<String>,
    /// A materialized skeleton directory (or `/`): not user-deletable, no data of its own.
    #[serde(default)]
    pub implicit: bool,
    /// Its ZooKeeper ACL (open unless the creator or a setACL said otherwise; not written to
    /// snapshots when open).
    #[serde(default = "open_acls", skip_serializing_if = "is_open")]
    pub acl: Vec<ZnodeAcl>,
}

impl Znode {
    fn implicit() -> Self {
        Self {
            data: None,
            czxid: 0,
            mzxid: 0,
            pzxid: 0,
            ctime_ms: 0,
            mtime_ms: 0,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            children: BTreeSet::new(),
            implicit: true,
            acl: open_acls(),
        }
    }

    /// The `cversion` clients see. ZooKeeper stores a creates-only counter (the sequence
    /// number source) and reports `2 * creates - numChildren`, i.e. creates plus deletes.
    pub fn reported_cversion(&self) -> i32 {
        let kids = i32::try_from(self.children.len()).unwrap_or(i32::MAX);
        self.cversion.saturating_mul(2).saturating_sub(kids).max(0)
    }

    /// The ZooKeeper `Stat` of this node as stored (children: stored ones only).
    pub fn stat(&self) -> ZnodeStat {
        ZnodeStat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime_ms: self.ctime_ms,
            mtime_ms: self.mtime_ms,
            version: self.version,
            cversion: self.reported_cversion(),
            aversion: self.aversion,
            ephemeral_owner: self.ephemeral_owner,
            data_length: self
                .data
                .as_ref()
                .map_or(0, |d| i32::try_from(d.len()).unwrap_or(i32::MAX)),
            num_children: i32::try_from(self.children.len()).unwrap_or(i32::MAX),
            pzxid: self.pzxid,
        }
    }
}

/// ZooKeeper's `Stat` record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZnodeStat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime_ms: i64,
    pub mtime_ms: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

/// A ZooKeeper session as the quorum knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZkSession {
    pub password: Vec<u8>,
    pub timeout_ms: i32,
    /// Wall-clock ms of the last touch, from the command (so apply stays deterministic).
    pub last_touch_ms: i64,
}

/// One write inside `ZkMulti`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZkOp {
    Create {
        path: String,
        #[serde(with = "super::bytes_b64")]
        data: Option<Vec<u8>>,
        ephemeral: bool,
        sequential: bool,
        /// The new node's ACL, already validated and with `auth` ids resolved.
        #[serde(default = "open_acls", skip_serializing_if = "is_open")]
        acl: Vec<ZnodeAcl>,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        #[serde(with = "super::bytes_b64")]
        data: Option<Vec<u8>>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    /// setACL (never inside a multi): replaces a stored node's ACL if its `aversion` is
    /// `version` (-1: any); the result is `DataSet` with the new stat.
    SetAcl {
        path: String,
        acl: Vec<ZnodeAcl>,
        version: i32,
    },
}

/// Why a znode op failed (the ZooKeeper error it maps to has the same name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZkOpError {
    /// An earlier op of the same multi ran fine but the multi was rolled back (code 0).
    RolledBack,
    /// A later op of a failed multi that was never tried (RUNTIMEINCONSISTENCY).
    RuntimeInconsistency,
    NoNode,
    NodeExists,
    BadVersion,
    NotEmpty,
    NoChildrenForEphemerals,
    BadArguments,
    SessionExpired,
    /// The write would take the stored znode data past the budget the command carries.
    QuotaExceeded,
}

/// The result of one op of a `ZkMulti`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZkOpResult {
    Created { path: String, stat: ZnodeStat },
    Deleted,
    DataSet { stat: ZnodeStat },
    Checked,
    Error(ZkOpError),
}

/// The part of the image the ZooKeeper commands change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZkState {
    pub znodes: BTreeMap<String, Arc<Znode>>,
    pub sessions: BTreeMap<i64, ZkSession>,
}

/// The parent path of `path` (`/a/b` → `/a`, `/a` → `/`).
pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last segment of `path`.
pub fn name_of(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// ZooKeeper's `PathUtils.validatePath`, minus the character-class checks that only matter for
/// display: absolute, no empty, `.` or `..` segments, no trailing slash, no NUL.
pub fn valid_path(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    path.starts_with('/')
        && !path.ends_with('/')
        && !path.contains('\0')
        && path[1..]
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

impl ZkState {
    /// Whether `path` exists without being stored: `/`, a skeleton directory, or a skeleton
    /// directory under a chroot (a stored, non-implicit znode).
    pub fn is_implicit(&self, path: &str) -> bool {
        if path == "/" || ZK_SKELETON.contains(&path) {
            return true;
        }
        ZK_SKELETON.iter().any(|s| {
            path.strip_suffix(s).is_some_and(|chroot| {
                !chroot.is_empty() && self.znodes.get(chroot).is_some_and(|z| !z.implicit)
            })
        })
    }

    /// Whether `path` exists as a stored or implicit directory.
    pub fn exists(&self, path: &str) -> bool {
        self.znodes.contains_key(path) || self.is_implicit(path)
    }

    /// Stores `path` (and its implicit ancestors) if it is implicit and not stored yet.
    fn materialize(&mut self, path: &str) {
        if self.znodes.contains_key(path) {
            return;
        }
        if path != "/" {
            let parent = parent_of(path).to_owned();
            self.materialize(&parent);
            if let Some(p) = self.znodes.get_mut(&parent) {
                Arc::make_mut(p).children.insert(name_of(path).to_owned());
            }
        }
        self.znodes
            .insert(path.to_owned(), Arc::new(Znode::implicit()));
    }

    fn stored_or_implicit_version(&self, path: &str) -> Option<i32> {
        match self.znodes.get(path) {
            Some(z) => Some(z.version),
            None if self.is_implicit(path) => Some(0),
            None => None,
        }
    }

    fn create(
        &mut self,
        op: (&str, &Option<Vec<u8>>, bool, bool, &[ZnodeAcl]),
        session: i64,
        zxid: i64,
        now_ms: i64,
    ) -> Result<ZkOpResult, ZkOpError> {
        let (path, data, ephemeral, sequential, acl) = op;
        let shape_ok = if sequential {
            valid_path(&format!("{path}0"))
        } else {
            valid_path(path) && path != "/"
        };
        if !shape_ok {
            return Err(if path == "/" {
                ZkOpError::NodeExists
            } else {
                ZkOpError::BadArguments
            });
        }
        let parent = parent_of(path).to_owned();
        if !self.exists(&parent) {
            return Err(ZkOpError::NoNode);
        }
        if ephemeral && !self.sessions.contains_key(&session) {
            return Err(ZkOpError::SessionExpired);
        }
        // No node may appear below an ephemeral one, including the implicit (projected) nodes
        // `materialize` would create between a stored ephemeral ancestor and `parent`.
        let mut ancestor = parent.as_str();
        loop {
            if self
                .znodes
                .get(ancestor)
                .is_some_and(|z| z.ephemeral_owner != 0)
            {
                return Err(ZkOpError::NoChildrenForEphemerals);
            }
            if ancestor == "/" {
                break;
            }
            ancestor = parent_of(ancestor);
        }
        self.materialize(&parent);
        let parent_node = self.znodes.get(&parent).ok_or(ZkOpError::NoNode)?;
        if parent_node.ephemeral_owner != 0 {
            return Err(ZkOpError::NoChildrenForEphemerals);
        }
        let path = if sequential {
            format!("{path}{:010}", parent_node.cversion)
        } else {
            path.to_owned()
        };
        if self.exists(&path) {
            return Err(ZkOpError::NodeExists);
        }
        let node = Znode {
            data: data.clone(),
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime_ms: now_ms,
            mtime_ms: now_ms,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: if ephemeral { session } else { 0 },
            children: BTreeSet::new(),
            implicit: false,
            acl: acl.to_vec(),
        };
        let stat = node.stat();
        self.znodes.insert(path.clone(), Arc::new(node));
        self.link(&parent, name_of(&path), zxid, true);
        Ok(ZkOpResult::Created { path, stat })
    }

    /// Adds or removes `name` from `parent`'s children and moves `pzxid`. Only a create bumps
    /// the stored `cversion` (sequence numbers count creates); deletes show up in
    /// [`Znode::reported_cversion`], as in ZooKeeper.
    fn link(&mut self, parent: &str, name: &str, zxid: i64, add: bool) {
        if let Some(p) = self.znodes.get_mut(parent) {
            let p = Arc::make_mut(p);
            if add {
                p.children.insert(name.to_owned());
                p.cversion = p.cversion.wrapping_add(1);
            } else {
                p.children.remove(name);
            }
            p.pzxid = p.pzxid.max(zxid);
        }
    }

    fn delete(&mut self, path: &str, version: i32, zxid: i64) -> Result<ZkOpResult, ZkOpError> {
        let node = match self.znodes.get(path) {
            Some(z) if !z.implicit => z,
            Some(_) => return Err(ZkOpError::BadArguments),
            None if self.is_implicit(path) => return Err(ZkOpError::BadArguments),
            None => return Err(ZkOpError::NoNode),
        };
        if version != -1 && version != node.version {
            return Err(ZkOpError::BadVersion);
        }
        if !node.children.is_empty() {
            return Err(ZkOpError::NotEmpty);
        }
        self.znodes.remove(path);
        self.link(parent_of(path), name_of(path), zxid, false);
        Ok(ZkOpResult::Deleted)
    }

    /// The stored (not implicit) node at `path`, to change: BADARGUMENTS for a skeleton
    /// directory, NONODE for nothing.
    fn stored_mut(&mut self, path: &str) -> Result<&mut Znode, ZkOpError> {
        match self.znodes.get(path) {
            Some(z) if !z.implicit => {}
            Some(_) => return Err(ZkOpError::BadArguments),
            None if self.is_implicit(path) => return Err(ZkOpError::BadArguments),
            None => return Err(ZkOpError::NoNode),
        }
        Ok(Arc::make_mut(
            self.znodes.get_mut(path).ok_or(ZkOpError::NoNode)?,
        ))
    }

    fn set_data(
        &mut self,
        path: &str,
        data: &Option<Vec<u8>>,
        version: i32,
        zxid: i64,
        now_ms: i64,
    ) -> Result<ZkOpResult, ZkOpError> {
        let node = self.stored_mut(path)?;
        if version != -1 && version != node.version {
            return Err(ZkOpError::BadVersion);
        }
        node.data = data.clone();
        node.version = node.version.wrapping_add(1);
        node.mzxid = zxid;
        node.mtime_ms = now_ms;
        Ok(ZkOpResult::DataSet { stat: node.stat() })
    }

    fn set_acl(
        &mut self,
        path: &str,
        acl: &[ZnodeAcl],
        version: i32,
    ) -> Result<ZkOpResult, ZkOpError> {
        let node = self.stored_mut(path)?;
        if version != -1 && version != node.aversion {
            return Err(ZkOpError::BadVersion);
        }
        node.acl = acl.to_vec();
        node.aversion = node.aversion.wrapping_add(1);
        Ok(ZkOpResult::DataSet { stat: node.stat() })
    }

    fn check(&self, path: &str, version: i32) -> Result<ZkOpResult, ZkOpError> {
        let current = self
            .stored_or_implicit_version(path)
            .ok_or(ZkOpError::NoNode)?;
        if version != -1 && version != current {
            return Err(ZkOpError::BadVersion);
        }
        Ok(ZkOpResult::Checked)
    }

    fn run_op(
        &mut self,
        op: &ZkOp,
        session: i64,
        zxid: i64,
        now_ms: i64,
    ) -> Result<ZkOpResult, ZkOpError> {
        match op {
            ZkOp::Create {
                path,
                data,
                ephemeral,
                sequential,
                acl,
            } => self.create(
                (path, data, *ephemeral, *sequential, acl),
                session,
                zxid,
                now_ms,
            ),
            ZkOp::SetAcl { path, acl, version } => self.set_acl(path, acl, *version),
            ZkOp::Delete { path, version } => self.delete(path, *version, zxid),
            ZkOp::SetData {
                path,
                data,
                version,
            } => self.set_data(path, data, *version, zxid, now_ms),
            ZkOp::Check { path, version } => self.check(path, *version),
        }
    }

    /// Total bytes of stored znode data.
    pub fn data_bytes(&self) -> u64 {
        self.znodes
            .values()
            .map(|z| z.data.as_ref().map_or(0, |d| d.len() as u64))
            .sum()
    }

    fn data_len(&self, path: &str) -> u64 {
        self.znodes
            .get(path)
            .and_then(|z| z.data.as_ref())
            .map_or(0, |d| d.len() as u64)
    }

    /// Runs `ops` all-or-nothing at `zxid`. On failure `self` is unchanged and the results are
    /// ZooKeeper's: `RolledBack` before the failing op, its error, `RuntimeInconsistency` after.
    /// With `data_bytes_max`, an op that grows the stored data past it fails with
    /// `QuotaExceeded` (ops that shrink it always pass, so a full store can be cleaned up).
    pub fn multi(
        &mut self,
        ops: &[ZkOp],
        session: i64,
        zxid: i64,
        now_ms: i64,
        data_bytes_max: Option<u64>,
    ) -> Vec<ZkOpResult> {
        let mut scratch = self.clone();
        let mut results = Vec::with_capacity(ops.len());
        let grows = ops.iter().any(|op| {
            matches!(op, ZkOp::Create { data: Some(d), .. } | ZkOp::SetData { data: Some(d), .. } if !d.is_empty())
        });
        // Summed only when the budget can matter: O(znodes), on writes that add data.
        let mut total = match data_bytes_max {
            Some(_) if grows => Some(scratch.data_bytes()),
            _ => None,
        };
        for (i, op) in ops.iter().enumerate() {
            let before = match (total, op) {
                (Some(_), ZkOp::SetData { path, .. } | ZkOp::Delete { path, .. }) => {
                    scratch.data_len(path)
                }
                _ => 0,
            };
            let outcome = scratch.run_op(op, session, zxid, now_ms).and_then(|r| {
                let (Some(t), Some(max)) = (total.as_mut(), data_bytes_max) else {
                    return Ok(r);
                };
                let added = match (op, &r) {
                    (ZkOp::Create { data, .. }, _) => data.as_ref().map_or(0, |d| d.len() as u64),
                    (ZkOp::SetData { data, .. }, _) => data.as_ref().map_or(0, |d| d.len() as u64),
                    _ => 0,
                };
                let removed = match op {
                    ZkOp::SetData { .. } | ZkOp::Delete { .. } => before,
                    _ => 0,
                };
                if added > removed && t.saturating_add(added - removed) > max {
                    return Err(ZkOpError::QuotaExceeded);
                }
                *t = t.saturating_add(added).saturating_sub(removed);
                Ok(r)
            });
            match outcome {
                Ok(r) => results.push(r),
                Err(e) => {
                    let mut failed = vec![ZkOpResult::Error(ZkOpError::RolledBack); i];
                    failed.push(ZkOpResult::Error(e));
                    failed.resize(
                        ops.len(),
                        ZkOpResult::Error(ZkOpError::RuntimeInconsistency),
                    );
                    return failed;
                }
            }
        }
        *self = scratch;
        results
    }

    /// Removes sessions and every ephemeral node they own.
    pub fn expire(&mut self, session_ids: &[i64], zxid: i64) {
        for id in session_ids {
            if self.sessions.remove(id).is_none() {
                continue;
            }
            let owned: Vec<String> = self
                .znodes
                .iter()
                .filter(|(_, z)| z.ephemeral_owner == *id)
                .map(|(p, _)| p.clone())
                .collect();
            for path in owned {
                self.znodes.remove(&path);
                self.link(parent_of(&path), name_of(&path), zxid, false);
            }
        }
    }

    /// # Panics
    /// If the store is inconsistent (the state machine must stop rather than serve it).
    pub fn check_invariants(&self) {
        for (path, z) in &self.znodes {
            assert!(valid_path(path), "stored znode with invalid path {path:?}");
            if path != "/" {
                let parent = self.znodes.get(parent_of(path));
                assert!(
                    parent.is_some_and(|p| p.children.contains(name_of(path))),
                    "znode {path} not linked from its parent"
                );
            }
            for c in &z.children {
                let child = if path == "/" {
                    format!("/{c}")
                } else {
                    format!("{path}/{c}")
                };
                assert!(
                    self.znodes.contains_key(&child),
                    "znode {path} lists missing child {c}"
                );
            }
            assert!(
                z.version >= 0 && z.aversion >= 0,
                "znode {path} has a negative version"
            );
            assert!(
                z.mzxid >= z.czxid && z.pzxid >= z.czxid,
                "znode {path} modified before it was created"
            );
            if z.ephemeral_owner != 0 {
                assert!(
                    self.sessions.contains_key(&z.ephemeral_owner),
                    "ephemeral {path} outlived its session"
                );
                assert!(z.children.is_empty(), "ephemeral {path} has children");
            }
            if z.implicit {
                assert!(
                    z.data.is_none() && z.ephemeral_owner == 0,
                    "implicit znode {path} carries data"
                );
            }
        }
        for s in self.sessions.values() {
            assert!(s.timeout_ms > 0, "session with non-positive timeout");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(path: &str, seq: bool, eph: bool) -> ZkOp {
        ZkOp::Create {
            path: path.into(),
            data: Some(b"x".to_vec()),
            ephemeral: eph,
            sequential: seq,
            acl: crate::metadata::open_acls(),
        }
    }

    #[test]
    fn create_sequential_and_versions() {
        let mut s = ZkState::default();
        assert!(matches!(
            s.multi(&[create("/a", false, false)], 0, 1, 0, None)[0],
            ZkOpResult::Created { .. }
        ));
        let r = s.multi(
            &[create("/a/s-", true, false), create("/a/s-", true, false)],
            0,
            2,
            0,
            None,
        );
        assert!(matches!(&r[1], ZkOpResult::Created { path, .. } if path == "/a/s-0000000001"));
        assert_eq!(s.znodes["/a"].cversion, 2);
        assert_eq!(
            s.multi(
                &[ZkOp::SetData {
                    path: "/a".into(),
                    data: None,
                    version: 3
                }],
                0,
                3,
                0,
                None
            ),
            vec![ZkOpResult::Error(ZkOpError::BadVersion)]
        );
        assert_eq!(
            s.multi(
                &[ZkOp::Delete {
                    path: "/a".into(),
                    version: -1
                }],
                0,
                3,
                0,
                None
            ),
            vec![ZkOpResult::Error(ZkOpError::NotEmpty)]
        );
        assert_eq!(
            s.multi(&[create("/x/y", false, false)], 0, 3, 0, None),
            vec![ZkOpResult::Error(ZkOpError::NoNode)]
        );
        s.check_invariants();
    }

    #[test]
    fn failed_multi_rolls_back() {
        let mut s = ZkState::default();
        let before = s.clone();
        let r = s.multi(
            &[
                create("/a", false, false),
                ZkOp::Check {
                    path: "/a".into(),
                    version: 5,
                },
                create("/b", false, false),
            ],
            0,
            1,
            0,
            None,
        );
        assert_eq!(
            r,
            vec![
                ZkOpResult::Error(ZkOpError::RolledBack),
                ZkOpResult::Error(ZkOpError::BadVersion),
                ZkOpResult::Error(ZkOpError::RuntimeInconsistency)
            ]
        );
        assert_eq!(s, before);
    }

    #[test]
    fn skeleton_and_chroot_parents_and_ephemerals() {
        let mut s = ZkState::default();
        let r = s.multi(
            &[create("/config/changes/config_change_", true, false)],
            0,
            1,
            0,
            None,
        );
        assert!(
            matches!(&r[0], ZkOpResult::Created { path, .. } if path == "/config/changes/config_change_0000000000")
        );
        assert!(s.znodes["/config"].implicit);
        s.multi(&[create("/kafka", false, false)], 0, 2, 0, None);
        assert!(s.exists("/kafka/config/changes"));
        assert!(!s.exists("/other/config/changes"));
        s.sessions.insert(
            7,
            ZkSession {
                password: vec![0; 16],
                timeout_ms: 4000,
                last_touch_ms: 0,
            },
        );
        s.multi(&[create("/kafka/e", false, true)], 7, 3, 0, None);
        assert_eq!(
            s.multi(&[create("/kafka/e/c", false, false)], 7, 4, 0, None),
            vec![ZkOpResult::Error(ZkOpError::NoChildrenForEphemerals)]
        );
        s.check_invariants();
        s.expire(&[7], 5);
        assert!(!s.znodes.contains_key("/kafka/e"));
        s.check_invariants();
        assert_eq!(
            s.multi(&[create("/kafka/e2", false, true)], 7, 6, 0, None),
            vec![ZkOpResult::Error(ZkOpError::SessionExpired)]
        );
    }

    #[test]
    fn the_data_budget_holds_and_shrinking_writes_always_pass() {
        let mut s = ZkState::default();
        let put = |p: &str, n: usize| ZkOp::Create {
            path: p.into(),
            data: Some(vec![7; n]),
            ephemeral: false,
            sequential: false,
            acl: crate::metadata::open_acls(),
        };
        let ok = |r: &[ZkOpResult]| r.iter().all(|r| !matches!(r, ZkOpResult::Error(_)));
        assert!(ok(&s.multi(
            &[put("/a", 600), put("/b", 300)],
            0,
            1,
            0,
            Some(1000)
        )));
        assert_eq!(s.data_bytes(), 900);
        // 900 + 200 > 1000: refused, nothing changes.
        let r = s.multi(&[put("/c", 200)], 0, 2, 0, Some(1000));
        assert_eq!(r, vec![ZkOpResult::Error(ZkOpError::QuotaExceeded)]);
        assert!(!s.znodes.contains_key("/c"));
        // Deleting first makes room within the same multi.
        let del = ZkOp::Delete {
            path: "/b".into(),
            version: -1,
        };
        assert!(ok(&s.multi(&[del, put("/c", 350)], 0, 3, 0, Some(1000))));
        assert_eq!(s.data_bytes(), 950);
        // A shrinking setData passes even over a lowered budget; a growing one does not.
        let set = |n: usize| ZkOp::SetData {
            path: "/a".into(),
            data: Some(vec![1; n]),
            version: -1,
        };
        assert!(ok(&s.multi(&[set(500)], 0, 4, 0, Some(100))));
        assert_eq!(
            s.multi(&[set(501)], 0, 5, 0, Some(100)),
            vec![ZkOpResult::Error(ZkOpError::QuotaExceeded)]
        );
        // Entries from before the budget existed carry none.
        assert!(ok(&s.multi(&[put("/d", 5000)], 0, 6, 0, None)));
    }
}
