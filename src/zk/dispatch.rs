//! The opcode table: one arm per op. Unknown or unsupported opcodes get UNIMPLEMENTED.

use super::ops::{self, OpCtx, Reply};
use crate::codec::jute::{ErrorCode, Request, WatcherEvent};

/// What the session must do with an op's result.
#[derive(Debug)]
pub(crate) struct Dispatched {
    /// Watch events to send before the reply (setWatches).
    pub events: Vec<WatcherEvent>,
    pub reply: Reply,
    /// Close the connection after the reply (closeSession).
    pub close: bool,
}

impl From<Reply> for Dispatched {
    fn from(reply: Reply) -> Self {
        Self {
            events: Vec::new(),
            reply,
            close: false,
        }
    }
}

/// Runs one request.
pub(crate) async fn dispatch(ctx: &mut OpCtx<'_>, req: Request) -> Dispatched {
    crate::metrics::inc(&crate::metrics::global().zk_requests, 1);
    match req {
        Request::Create {
            opcode,
            path,
            data,
            acl,
            flags,
        } => ops::create::handle(ctx, opcode, &path, data, &acl, flags)
            .await
            .into(),
        Request::Delete { path, version } => ops::delete::handle(ctx, &path, version).await.into(),
        Request::Exists { path, watch } => ops::exists::handle(ctx, &path, watch).await.into(),
        Request::GetData { path, watch } => ops::get_data::handle(ctx, &path, watch).await.into(),
        Request::SetData {
            path,
            data,
            version,
        } => ops::set_data::handle(ctx, &path, data, version)
            .await
            .into(),
        Request::GetAcl { path } => ops::get_acl::handle(ctx, &path).into(),
        Request::SetAcl { path, acl, version } => {
            ops::set_acl::handle(ctx, &path, &acl, version).await.into()
        }
        Request::GetChildren {
            opcode: crate::codec::jute::opcode::GET_CHILDREN2,
            path,
            watch,
        } => ops::get_children2::handle(ctx, &path, watch).await.into(),
        Request::GetChildren { path, watch, .. } => {
            ops::get_children::handle(ctx, &path, watch, false)
                .await
                .into()
        }
        Request::Sync { path } => ops::sync::handle(ctx, &path).await.into(),
        Request::Ping => Reply::empty().into(),
        // addauth: an unknown scheme fails and closes the connection, as ZooKeeper does.
        Request::Auth { scheme, auth } => match ctx.auth.add(&scheme, &auth, ctx.acl) {
            Ok(()) => Reply::empty().into(),
            Err(crate::zk::acl::UnknownScheme) => Dispatched {
                events: Vec::new(),
                reply: Reply::err(ErrorCode::AuthFailed),
                close: true,
            },
        },
        Request::Check { path, version } => ops::check::handle(ctx, &path, version).into(),
        Request::Multi(list) => ops::multi::handle(ctx, &list).await.into(),
        Request::SetWatches {
            relative_zxid,
            data,
            exist,
            child,
        } => {
            let events = ops::set_watches::handle(ctx, relative_zxid, &data, &exist, &child);
            Dispatched {
                events,
                reply: Reply::empty(),
                close: false,
            }
        }
        Request::CloseSession => Dispatched {
            events: Vec::new(),
            reply: ops::close_session::handle(ctx).await,
            close: true,
        },
        Request::GetAllChildrenNumber { .. } | Request::WhoAmI | Request::Unknown(_) => {
            Reply::err(ErrorCode::Unimplemented).into()
        }
    }
}
