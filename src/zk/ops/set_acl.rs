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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::testing::{assert_err, stat, ZkFixture};

    #[tokio::test]
    async fn only_world_anyone_is_accepted() {
        let mut z = ZkFixture::new().await;
        z.put("/a", b"x").await;
        let open = [Acl::open()];
        let s = stat(&handle(&mut z.ctx(), "/a", &open, -1));
        assert_eq!((s.aversion, s.data_length), (0, 1));
        let s = stat(&handle(&mut z.ctx(), "/a", &open, 0));
        assert_eq!(s.aversion, 0, "setting the same ACL changes nothing");
        assert_err(&handle(&mut z.ctx(), "/a", &open, 1), ErrorCode::BadVersion);
        let digest = Acl {
            perms: 31,
            scheme: "digest".into(),
            id: "user:hash".into(),
        };
        assert_err(
            &handle(&mut z.ctx(), "/a", &[digest], -1),
            ErrorCode::InvalidAcl,
        );
        assert_err(&handle(&mut z.ctx(), "/a", &[], -1), ErrorCode::InvalidAcl);
        assert_err(
            &handle(&mut z.ctx(), "/missing", &open, -1),
            ErrorCode::NoNode,
        );
        assert_err(
            &handle(&mut z.ctx(), "a", &open, -1),
            ErrorCode::BadArguments,
        );
        // Projected nodes accept it as well.
        assert_eq!(handle(&mut z.ctx(), "/brokers/ids/1", &open, -1).err, 0);
    }
}
