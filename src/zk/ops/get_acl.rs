//! getACL (6): the node's ACL and Stat. As ZooKeeper 3.6+: needs READ or ADMIN; without
//! ADMIN, digest ids are shown as `user:x`. Projected nodes show the ACL that guards them
//! (`zk::acl::acl_of`).

use super::{view, write_stat, OpCtx, Reply};
use crate::codec::jute::{write_acls, ErrorCode, Writer};
use crate::zk::acl::{acl_of, allows, to_wire, ADMIN, READ};
use crate::zk::tree::lookup;

pub fn handle(ctx: &mut OpCtx<'_>, path: &str) -> Reply {
    if let Err(r) = ctx.check_path(path) {
        return r;
    }
    let (img, ctl) = ctx.image();
    let v = view(&img, ctl);
    let Some(n) = lookup(&v, path) else {
        return Reply::err(ErrorCode::NoNode);
    };
    let acl = acl_of(&v, path, ctx.acl);
    if !allows(&acl, READ | ADMIN, ctx.auth) {
        return Reply::err(ErrorCode::NoAuth);
    }
    let mask = !allows(&acl, ADMIN, ctx.auth);
    let mut w = Writer::new();
    write_acls(&mut w, &to_wire(&acl, mask));
    write_stat(&mut w, &n.stat);
    Reply::ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::jute::Acl;
    use crate::zk::testing::{acls_and_stat, assert_err, ZkFixture};

    #[tokio::test]
    async fn every_node_is_open() {
        let mut z = ZkFixture::new().await;
        z.put("/a", b"x").await;
        for path in ["/a", "/brokers/ids/1", "/", "/config"] {
            let (acls, s) = acls_and_stat(&handle(&mut z.ctx(), path));
            assert_eq!(acls, vec![Acl::open()], "{path}");
            assert_eq!(
                (acls[0].perms, acls[0].scheme.as_str(), acls[0].id.as_str()),
                (31, "world", "anyone")
            );
            assert_eq!(s.aversion, 0);
        }
        let (_, s) = acls_and_stat(&handle(&mut z.ctx(), "/a"));
        assert_eq!(s.data_length, 1);
        assert_err(&handle(&mut z.ctx(), "/missing"), ErrorCode::NoNode);
        assert_err(&handle(&mut z.ctx(), "/a/"), ErrorCode::BadArguments);
    }
}
