//! exists (3): the Stat, or NONODE; may set a data or exists watch.

use super::{view, write_stat, OpCtx, Reply};
use crate::codec::jute::{ErrorCode, Writer};
use crate::zk::tree::lookup;

pub fn handle(ctx: &mut OpCtx<'_>, path: &str, watch: bool) -> Reply {
    if let Err(r) = ctx.check_path(path) {
        return r;
    }
    let (img, ctl) = ctx.image();
    let v = view(&img, ctl);
    let node = lookup(&v, path);
    if watch {
        // exists on an existing node sets a data watch, on a missing node an exists watch.
        ctx.watches.watch_data(&v, path);
    }
    match node {
        None => Reply::err(ErrorCode::NoNode),
        Some(n) => {
            let mut w = Writer::new();
            write_stat(&mut w, &n.stat);
            Reply::ok(w)
        }
    }
}
