//! getChildren (8): the child names; may set a child watch. `with_stat` is getChildren2 (12).

use super::{view, write_stat, OpCtx, Reply};
use crate::codec::jute::{ErrorCode, Writer};
use crate::zk::tree::lookup;

pub fn handle(ctx: &mut OpCtx<'_>, path: &str, watch: bool, with_stat: bool) -> Reply {
    if let Err(r) = ctx.check_path(path) {
        return r;
    }
    let (img, ctl) = ctx.image();
    let v = view(&img, ctl);
    let Some(n) = lookup(&v, path) else {
        return Reply::err(ErrorCode::NoNode);
    };
    if watch {
        ctx.watches.watch_children(&v, path);
    }
    let mut w = Writer::new();
    w.strings(&n.children);
    if with_stat {
        write_stat(&mut w, &n.stat);
    }
    Reply::ok(w)
}
