//! getChildren (8): the child names; may set a child watch. `with_stat` is getChildren2 (12).
//! Needs READ.

use super::{consumers_for, view, write_stat, OpCtx, Reply};
use crate::codec::jute::{ErrorCode, Writer};
use crate::zk::tree::lookup;

pub async fn handle(ctx: &mut OpCtx<'_>, path: &str, watch: bool, with_stat: bool) -> Reply {
    if let Err(r) = ctx.check_path(path) {
        return r;
    }
    let (img, ctl) = ctx.image();
    let consumers = consumers_for(ctx.broker, &img, ctl, path).await;
    let v = view(&img, ctl);
    let Some(n) = lookup(&v.with_consumers(consumers.as_ref()), path) else {
        return Reply::err(ErrorCode::NoNode);
    };
    if let Err(r) = ctx.may(&v, path, crate::zk::acl::READ) {
        return r;
    }
    if watch {
        // On the image alone: committed offsets change without notifications.
        ctx.watches.watch_children(&v, path);
    }
    let mut w = Writer::new();
    w.strings(&n.children);
    if with_stat {
        write_stat(&mut w, &n.stat);
    }
    Reply::ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::jute::{event_type, WatcherEvent, STATE_SYNC_CONNECTED};
    use crate::zk::testing::{assert_err, children, ZkFixture};

    async fn names(z: &mut ZkFixture, path: &str) -> Vec<String> {
        children(&handle(&mut z.ctx(), path, false, false).await, false).0
    }

    #[tokio::test]
    async fn stored_and_projected_children() {
        let mut z = ZkFixture::new().await;
        z.f.topic("t", 2, &[]).await;
        z.put("/app", b"").await;
        z.put("/app/b", b"").await;
        z.put("/app/a", b"").await;
        assert_eq!(names(&mut z, "/app").await, vec!["a", "b"]);
        assert!(names(&mut z, "/app/a").await.is_empty());
        let root = names(&mut z, "/").await;
        for want in [
            "app",
            "brokers",
            "config",
            "controller",
            "zookeeper",
            "admin",
        ] {
            assert!(root.iter().any(|n| n == want), "{want} in {root:?}");
        }
        assert_eq!(names(&mut z, "/brokers/ids").await, vec!["1"]);
        assert_eq!(names(&mut z, "/brokers/topics").await, vec!["t"]);
        assert_eq!(
            names(&mut z, "/brokers/topics/t/partitions").await,
            vec!["0", "1"]
        );
        assert_err(
            &handle(&mut z.ctx(), "/missing", false, false).await,
            ErrorCode::NoNode,
        );
        assert_err(
            &handle(&mut z.ctx(), "", false, false).await,
            ErrorCode::BadArguments,
        );
    }

    #[tokio::test]
    async fn a_child_watch_fires_when_the_children_change() {
        let mut z = ZkFixture::new().await;
        z.put("/p", b"").await;
        let r = handle(&mut z.ctx(), "/p", true, false).await;
        assert_eq!(r.err, 0);
        // No watch is left on a missing node.
        assert_err(
            &handle(&mut z.ctx(), "/nope", true, false).await,
            ErrorCode::NoNode,
        );
        assert_eq!(z.watches.len(), 1);
        z.put("/p/c", b"").await;
        let image = z.f.broker.metadata_view();
        let events = z.watches.fire(&view(&image, z.f.broker.controller_id()));
        assert_eq!(
            events,
            vec![WatcherEvent {
                event_type: event_type::NODE_CHILDREN_CHANGED,
                state: STATE_SYNC_CONNECTED,
                path: "/p".into(),
            }]
        );
    }
}
