//! One file per ZooKeeper op. Each takes the op context and the decoded request and returns a
//! [`Reply`]: an error code (header only) or a body. Ops read through `zk::tree` and write
//! through `Broker` verbs; they never touch the controller or storage.

pub mod check;
pub mod close_session;
pub mod create;
pub mod delete;
pub mod exists;
pub mod get_acl;
pub mod get_children;
pub mod get_children2;
pub mod get_data;
mod kafka;
pub mod multi;
pub mod set_acl;
pub mod set_data;
pub mod set_watches;
pub mod sync;

use super::error::{broker_error, op_error};
use super::tree::{consumers_query, ConsumersQuery, TreeView};
use super::watch::Watches;
use crate::broker::{Broker, BrokerError};
use crate::codec::jute::{ErrorCode, Stat, Writer};
use crate::metadata::{valid_path, MetadataImage, ZkOpError, ZkOpResult, ZnodeStat};
use std::sync::Arc;

/// What an op needs: the broker, its session, its watches and who the connection is.
#[derive(Debug)]
pub struct OpCtx<'a> {
    pub broker: &'a Broker,
    pub session_id: i64,
    pub watches: &'a mut Watches,
    pub path_bytes_max: usize,
    /// The connection's ids (`addauth` adds to them).
    pub auth: &'a mut crate::zk::acl::AuthInfo,
    pub acl: &'a crate::zk::acl::AclSettings,
}

impl OpCtx<'_> {
    /// The current image and the controller id (for the projection).
    pub fn image(&self) -> (Arc<MetadataImage>, Option<crate::types::NodeId>) {
        (self.broker.metadata_view(), self.broker.controller_id())
    }

    /// NOAUTH unless the ACL guarding `path` grants one of `perm`'s bits to this connection.
    pub fn may(&self, view: &TreeView<'_>, path: &str, perm: i32) -> Result<(), Reply> {
        let acl = crate::zk::acl::acl_of(view, path, self.acl);
        if crate::zk::acl::allows(&acl, perm, self.auth) {
            Ok(())
        } else {
            Err(Reply::err(ErrorCode::NoAuth))
        }
    }

    /// Checks a client path: length limit and ZooKeeper's shape rules.
    pub fn check_path(&self, path: &str) -> Result<(), Reply> {
        if path.len() > self.path_bytes_max || !valid_path(path) {
            return Err(Reply::err(ErrorCode::BadArguments));
        }
        Ok(())
    }
}

/// An op's answer (the session adds the reply header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub err: i32,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn ok(w: Writer) -> Self {
        Self {
            err: 0,
            body: w.buf,
        }
    }

    pub fn empty() -> Self {
        Self {
            err: 0,
            body: Vec::new(),
        }
    }

    pub fn err(code: ErrorCode) -> Self {
        Self {
            err: code.code(),
            body: Vec::new(),
        }
    }

    pub fn op_err(e: ZkOpError) -> Self {
        Self::err(op_error(e))
    }

    pub fn broker_err(e: &BrokerError) -> Self {
        tracing::debug!(error = %e, "znode op failed in the broker");
        Self::err(broker_error(e))
    }
}

/// The reply to a single-op write whose success carries a stat (setData, setACL): the stat,
/// or the op's or the broker's error.
pub fn stat_reply(result: Result<Vec<ZkOpResult>, BrokerError>) -> Reply {
    match result {
        Ok(mut r) => match r.pop() {
            Some(ZkOpResult::DataSet { stat }) => {
                let mut w = Writer::new();
                write_stat(&mut w, &stat);
                Reply::ok(w)
            }
            Some(ZkOpResult::Error(e)) => Reply::op_err(e),
            _ => Reply::err(ErrorCode::SystemError),
        },
        Err(e) => Reply::broker_err(&e),
    }
}

/// The wire `Stat` of a znode stat.
pub fn wire_stat(s: &ZnodeStat) -> Stat {
    Stat {
        czxid: s.czxid,
        mzxid: s.mzxid,
        ctime: s.ctime_ms,
        mtime: s.mtime_ms,
        version: s.version,
        cversion: s.cversion,
        aversion: s.aversion,
        ephemeral_owner: s.ephemeral_owner,
        data_length: s.data_length,
        num_children: s.num_children,
        pzxid: s.pzxid,
    }
}

pub fn write_stat(w: &mut Writer, s: &ZnodeStat) {
    wire_stat(s).write(w);
}

/// Builds the tree view over an image.
pub fn view<'a>(
    image: &'a MetadataImage,
    controller_id: Option<crate::types::NodeId>,
) -> TreeView<'a> {
    TreeView {
        image,
        controller_id,
        consumers: None,
    }
}

/// [`view`] with the committed offsets a read of `path` needs for the `/consumers`
/// projection (fetched from the group coordinators, possibly on other nodes).
pub async fn consumers_for(
    broker: &Broker,
    image: &MetadataImage,
    controller_id: Option<crate::types::NodeId>,
    path: &str,
) -> Option<crate::broker::ConsumerOffsets> {
    match consumers_query(&view(image, controller_id), path)? {
        ConsumersQuery::Groups => Some(broker.consumer_offsets(None).await),
        ConsumersQuery::Group(g) => Some(broker.consumer_offsets(Some(&g)).await),
    }
}
