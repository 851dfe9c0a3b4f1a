//! setACL (7): only `world:anyone` is supported; setting it (again) is accepted as a no-op.

use super::{view, write_stat, OpCtx, Reply};
use crate::codec::jute::{Acl, ErrorCode, Writer};
use crate::zk::tree::lookup;

pub fn handle(ctx: &mut OpCtx<'_>, path: &str, acl: &[Acl], version: i32) -> Reply {
    if let Err(r) = ctx.check_path(path) {
        return r;
    }
    let (img, ctl) = ctx.image();
    let Some(n) = lookup(&view(&img, ctl), path) else {
        return Reply::err(ErrorCode::NoNode);
    };
    if acl.is_empty() || acl.iter().any(|a| a.scheme != "world" || a.id != "anyone") {
        return Reply::err(ErrorCode::InvalidAcl);
    }
    if version != -1 && version != n.stat.aversion {
        return Reply::err(ErrorCode::BadVersion);
    }
    let mut w = Writer::new();
    write_stat(&mut w, &n.stat);
    Reply::ok(w)
}
