//! setACL (7): replaces a stored node's ACL, as ZooKeeper does: the ACL is fixed up
//! (INVALIDACL), then NONODE, then ADMIN on the node (NOAUTH), then the ACL version
//! (`aversion`, BADVERSION). A projected or skeleton node keeps the ACL that guards it: setting
//! that same ACL is accepted (a no-op, as Kafka's `zookeeper-security-migration` expects when
//! nothing changes); any other is refused with NOAUTH.

use super::{view, write_stat, OpCtx, Reply};
use crate::codec::jute::{Acl, ErrorCode, Writer};
use crate::metadata::ZkOp;
use crate::zk::acl::{acl_of, fixup, ADMIN};
use crate::zk::tree::lookup;

pub async fn handle(ctx: &mut OpCtx<'_>, path: &str, acl: &[Acl], version: i32) -> Reply {
    if let Err(r) = ctx.check_path(path) {
        return r;
    }
    let Some(acl) = fixup(acl, ctx.auth) else {
        return Reply::err(ErrorCode::InvalidAcl);
    };
    let (img, ctl) = ctx.image();
    let v = view(&img, ctl);
    let Some(n) = lookup(&v, path) else {
        return Reply::err(ErrorCode::NoNode);
    };
    if let Err(r) = ctx.may(&v, path, ADMIN) {
        return r;
    }
    let stored = img.zk.znodes.get(path).is_some_and(|z| !z.implicit) && !n.projected;
    if !stored {
        if version != -1 && version != n.stat.aversion {
            return Reply::err(ErrorCode::BadVersion);
        }
        if acl != acl_of(&v, path, ctx.acl) {
            return Reply::err(ErrorCode::NoAuth);
        }
        let mut w = Writer::new();
        write_stat(&mut w, &n.stat);
        return Reply::ok(w);
    }
    let op = ZkOp::SetAcl {
        path: path.to_owned(),
        acl,
        version,
    };
    super::stat_reply(ctx.broker.zk_multi(ctx.session_id, vec![op]).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::acl::{digest, ALL, READ};
    use crate::zk::testing::{acls_and_stat, assert_err, stat, ZkFixture};

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    #[tokio::test]
    async fn replaces_stored_acls_with_zookeepers_checks() {
        let mut z = ZkFixture::new().await;
        z.put("/a", b"x").await;
        let open = [Acl::open()];
        let s = stat(&handle(&mut z.ctx(), "/a", &open, -1).await);
        assert_eq!(
            (s.aversion, s.data_length),
            (1, 1),
            "setACL moves the ACL version"
        );
        assert_err(
            &handle(&mut z.ctx(), "/a", &open, 0).await,
            ErrorCode::BadVersion,
        );
        // Only bob (digest) may do anything now; the address may read.
        let bob = digest("bob:pw");
        let two = [acl(ALL, "digest", &bob), acl(READ, "ip", "127.0.0.0/8")];
        let s = stat(&handle(&mut z.ctx(), "/a", &two, 1).await);
        assert_eq!(s.aversion, 2);
        let (got, _) = acls_and_stat(&crate::zk::ops::get_acl::handle(&mut z.ctx(), "/a"));
        assert_eq!(got[0].id, "bob:x", "without ADMIN the digest is masked");
        assert_err(
            &handle(&mut z.ctx(), "/a", &open, -1).await,
            ErrorCode::NoAuth,
        );
        z.auth
            .add("digest", b"bob:pw", &z.acl.clone())
            .expect("addauth");
        let (got, _) = acls_and_stat(&crate::zk::ops::get_acl::handle(&mut z.ctx(), "/a"));
        assert_eq!(got[0].id, bob, "with ADMIN it is shown");
        assert_eq!(handle(&mut z.ctx(), "/a", &open, -1).await.err, 0);
        // Errors in ZooKeeper's order.
        for (path, a, want) in [
            ("/a", vec![], ErrorCode::InvalidAcl),
            (
                "/a",
                vec![acl(ALL, "digest", "nohash")],
                ErrorCode::InvalidAcl,
            ),
            ("/missing", open.to_vec(), ErrorCode::NoNode),
            ("a", open.to_vec(), ErrorCode::BadArguments),
        ] {
            assert_err(&handle(&mut z.ctx(), path, &a, -1).await, want);
        }
        // Projected nodes keep the ACL that guards them: the same one is a no-op.
        assert_eq!(
            handle(&mut z.ctx(), "/brokers/ids/1", &open, -1).await.err,
            0
        );
        assert_err(
            &handle(
                &mut z.ctx(),
                "/brokers/ids/1",
                &[acl(READ, "world", "anyone")],
                -1,
            )
            .await,
            ErrorCode::NoAuth,
        );
    }
}
