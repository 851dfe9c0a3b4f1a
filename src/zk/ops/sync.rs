//! sync (9): a read barrier, so the next read on this session is linearizable.

use super::{OpCtx, Reply};
use crate::codec::jute::Writer;

pub async fn handle(ctx: &mut OpCtx<'_>, path: &str) -> Reply {
    if let Err(e) = ctx.broker.zk_sync().await {
        return Reply::broker_err(&e);
    }
    let mut w = Writer::new();
    w.ustring(path);
    Reply::ok(w)
}
