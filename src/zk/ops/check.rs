//! check (13) outside a multi: compares a znode's version. Needs READ.

use super::{view, OpCtx, Reply};
use crate::codec::jute::ErrorCode;
use crate::zk::tree::lookup;

pub fn handle(ctx: &mut OpCtx<'_>, path: &str, version: i32) -> Reply {
    if let Err(r) = ctx.check_path(path) {
        return r;
    }
    let (img, ctl) = ctx.image();
    let v = view(&img, ctl);
    match lookup(&v, path) {
        None => Reply::err(ErrorCode::NoNode),
        Some(_) if ctx.may(&v, path, crate::zk::acl::READ).is_err() => {
            Reply::err(ErrorCode::NoAuth)
        }
        Some(n) if version != -1 && version != n.stat.version => Reply::err(ErrorCode::BadVersion),
        Some(_) => Reply::empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::testing::{assert_err, ZkFixture};

    #[tokio::test]
    async fn compares_versions_of_stored_and_projected_nodes() {
        let mut z = ZkFixture::new().await;
        z.put("/a", b"").await;
        z.f.broker
            .zk_multi(
                z.session_id,
                vec![crate::metadata::ZkOp::SetData {
                    path: "/a".into(),
                    data: None,
                    version: -1,
                }],
            )
            .await
            .expect("set");
        assert_eq!(handle(&mut z.ctx(), "/a", -1), Reply::empty());
        assert_eq!(handle(&mut z.ctx(), "/a", 1), Reply::empty());
        assert_err(&handle(&mut z.ctx(), "/a", 0), ErrorCode::BadVersion);
        // Projected and implicit nodes have versions too.
        assert_eq!(handle(&mut z.ctx(), "/brokers/ids/1", 0), Reply::empty());
        assert_eq!(handle(&mut z.ctx(), "/config", 0), Reply::empty());
        assert_err(&handle(&mut z.ctx(), "/config", 2), ErrorCode::BadVersion);
        assert_err(&handle(&mut z.ctx(), "/missing", -1), ErrorCode::NoNode);
        assert_err(&handle(&mut z.ctx(), "bad", -1), ErrorCode::BadArguments);
    }
}
