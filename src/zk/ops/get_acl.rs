//! getACL (6): every znode is open (`world:anyone`, cdrwa).

use super::{view, write_stat, OpCtx, Reply};
use crate::codec::jute::{write_acls, Acl, ErrorCode, Writer};
use crate::zk::tree::lookup;

pub fn handle(ctx: &mut OpCtx<'_>, path: &str) -> Reply {
    if let Err(r) = ctx.check_path(path) {
        return r;
    }
    let (img, ctl) = ctx.image();
    let Some(n) = lookup(&view(&img, ctl), path) else {
        return Reply::err(ErrorCode::NoNode);
    };
    let mut w = Writer::new();
    write_acls(&mut w, &[Acl::open()]);
    write_stat(&mut w, &n.stat);
    Reply::ok(w)
}
