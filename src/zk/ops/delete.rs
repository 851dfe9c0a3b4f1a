//! delete (2), versioned. Projected Kafka nodes are refused (NOTEMPTY when they have children,
//! NOAUTH otherwise); topics are deleted through `/admin/delete_topics/<t>` as Kafka tools do.
//! Deleting an ACL znode (`/kafka-acl/<Type>/<name>`) removes that pattern's ACLs. Needs
//! DELETE on the parent.

use super::{view, OpCtx, Reply};
use crate::codec::jute::ErrorCode;
use crate::metadata::{ZkOp, ZkOpResult};
use crate::zk::tree::{consumers_owned, kafka_path, lookup, KafkaPath};

pub async fn handle(ctx: &mut OpCtx<'_>, path: &str, version: i32) -> Reply {
    if let Err(r) = ctx.check_path(path) {
        return r;
    }
    let (img, ctl) = ctx.image();
    if consumers_owned(&view(&img, ctl), path) {
        return Reply::err(ErrorCode::NoAuth);
    }
    {
        // ZooKeeper's order: NONODE, then DELETE on the parent, then the version.
        let v = view(&img, ctl);
        if lookup(&v, path).is_none() {
            return Reply::err(ErrorCode::NoNode);
        }
        if let Err(r) = ctx.may(&v, crate::metadata::parent_of(path), crate::zk::acl::DELETE) {
            return r;
        }
    }
    if let Some(KafkaPath::Acl(p)) = kafka_path(&view(&img, ctl), path) {
        let expect = crate::metadata::AclExpect::Present((version != -1).then_some(version));
        return match super::kafka::set_acls(ctx, &p, None, expect).await {
            Ok(()) => Reply::empty(),
            Err(r) => r,
        };
    }
    match lookup(&view(&img, ctl), path) {
        None => return Reply::err(ErrorCode::NoNode),
        Some(n) if n.projected || img.zk.znodes.get(path).is_none_or(|z| z.implicit) => {
            if version != -1 && version != n.stat.version {
                return Reply::err(ErrorCode::BadVersion);
            }
            return Reply::err(if n.children.is_empty() {
                ErrorCode::NoAuth
            } else {
                ErrorCode::NotEmpty
            });
        }
        Some(_) => {}
    }
    match ctx
        .broker
        .zk_multi(
            ctx.session_id,
            vec![ZkOp::Delete {
                path: path.to_owned(),
                version,
            }],
        )
        .await
    {
        Ok(mut r) => match r.pop() {
            Some(ZkOpResult::Deleted) => Reply::empty(),
            Some(ZkOpResult::Error(e)) => Reply::op_err(e),
            _ => Reply::err(ErrorCode::SystemError),
        },
        Err(e) => Reply::broker_err(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::testing::{assert_err, ZkFixture};

    fn exists(z: &ZkFixture, path: &str) -> bool {
        z.f.broker.metadata_view().zk.znodes.contains_key(path)
    }

    #[tokio::test]
    async fn deletes_stored_nodes_any_or_exact_version() {
        let mut z = ZkFixture::new().await;
        z.put("/a", b"").await;
        z.put("/b", b"").await;
        z.put("/p", b"").await;
        z.put("/p/c", b"").await;
        let r = handle(&mut z.ctx(), "/a", -1).await;
        assert_eq!(r, Reply::empty());
        assert!(!exists(&z, "/a"));
        assert_err(&handle(&mut z.ctx(), "/b", 3).await, ErrorCode::BadVersion);
        assert!(exists(&z, "/b"));
        assert_eq!(handle(&mut z.ctx(), "/b", 0).await, Reply::empty());
        // Children first.
        assert_err(&handle(&mut z.ctx(), "/p", -1).await, ErrorCode::NotEmpty);
        assert_eq!(handle(&mut z.ctx(), "/p/c", -1).await, Reply::empty());
        let image = z.f.broker.metadata_view();
        assert!(image
            .zk
            .znodes
            .get("/p")
            .is_some_and(|n| n.children.is_empty()));
        assert_eq!(handle(&mut z.ctx(), "/p", -1).await, Reply::empty());
    }

    #[tokio::test]
    async fn missing_bad_and_projected_paths() {
        let mut z = ZkFixture::new().await;
        z.f.topic("t", 1, &[]).await;
        for (path, version, want) in [
            ("/missing", -1, ErrorCode::NoNode),
            ("nope", -1, ErrorCode::BadArguments),
            ("/x/", -1, ErrorCode::BadArguments),
            ("/brokers/ids/1", -1, ErrorCode::NoAuth),
            ("/controller", -1, ErrorCode::NoAuth),
            ("/brokers/topics/t", -1, ErrorCode::NotEmpty),
            ("/brokers/topics/t", 5, ErrorCode::BadVersion),
            ("/config/topics/t", -1, ErrorCode::NoAuth),
            ("/config", -1, ErrorCode::NotEmpty),
            ("/admin/delete_topics", -1, ErrorCode::NoAuth),
            ("/", -1, ErrorCode::NotEmpty),
        ] {
            assert_err(&handle(&mut z.ctx(), path, version).await, want);
        }
        assert!(z.f.broker.metadata_view().topic("t").is_some());
    }
}
