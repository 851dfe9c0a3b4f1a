//! check (13) outside a multi: compares a znode's version.

use super::{view, OpCtx, Reply};
use crate::codec::jute::ErrorCode;
use crate::zk::tree::lookup;

pub fn handle(ctx: &mut OpCtx<'_>, path: &str, version: i32) -> Reply {
    if let Err(r) = ctx.check_path(path) {
        return r;
    }
    let (img, ctl) = ctx.image();
    match lookup(&view(&img, ctl), path) {
        None => Reply::err(ErrorCode::NoNode),
        Some(n) if version != -1 && version != n.stat.version => Reply::err(ErrorCode::BadVersion),
        Some(_) => Reply::empty(),
    }
}
