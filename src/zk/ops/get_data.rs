//! getData (4): data and Stat; may set a data watch (only on an existing node).

use super::{view, write_stat, OpCtx, Reply};
use crate::codec::jute::{ErrorCode, Writer};
use crate::zk::tree::lookup;

pub fn handle(ctx: &mut OpCtx<'_>, path: &str, watch: bool) -> Reply {
    if let Err(r) = ctx.check_path(path) {
        return r;
    }
    let (img, ctl) = ctx.image();
    let v = view(&img, ctl);
    let Some(n) = lookup(&v, path) else {
        return Reply::err(ErrorCode::NoNode);
    };
    if watch {
        ctx.watches.watch_data(&v, path);
    }
    let mut w = Writer::new();
    w.buffer(n.data.as_deref());
    write_stat(&mut w, &n.stat);
    Reply::ok(w)
}
