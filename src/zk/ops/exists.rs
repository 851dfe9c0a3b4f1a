//! exists (3): the Stat, or NONODE; may set a data or exists watch.

use super::{consumers_for, view, write_stat, OpCtx, Reply};
use crate::codec::jute::{ErrorCode, Writer};
use crate::zk::tree::lookup;

pub async fn handle(ctx: &mut OpCtx<'_>, path: &str, watch: bool) -> Reply {
    if let Err(r) = ctx.check_path(path) {
        return r;
    }
    let (img, ctl) = ctx.image();
    let consumers = consumers_for(ctx.broker, &img, ctl, path).await;
    let v = view(&img, ctl);
    let node = lookup(&v.with_consumers(consumers.as_ref()), path);
    if watch {
        // On the image alone: committed offsets change without notifications.
        // exists on an existing node sets a data watch, on a missing node an exists watch.
        ctx.watches.watch_data(&v, path);
    }
    match node {
        None => Reply::err(ErrorCode::NoNode),
        Some(n) => {
            let mut w = Writer::new();
            write_stat(&mut w, &n.stat);
            Reply::ok(w)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::jute::{event_type, WatcherEvent, STATE_SYNC_CONNECTED};
    use crate::zk::testing::{assert_err, stat, ZkFixture};

    fn fire(z: &mut ZkFixture) -> Vec<WatcherEvent> {
        let image = z.f.broker.metadata_view();
        z.watches.fire(&view(&image, z.f.broker.controller_id()))
    }

    fn event(kind: i32, path: &str) -> WatcherEvent {
        WatcherEvent {
            event_type: kind,
            state: STATE_SYNC_CONNECTED,
            path: path.into(),
        }
    }

    #[tokio::test]
    async fn stats_of_stored_projected_and_missing_nodes() {
        let mut z = ZkFixture::new().await;
        z.put("/a", b"abc").await;
        z.put("/a/b", b"").await;
        let s = stat(&handle(&mut z.ctx(), "/a", false).await);
        let stored = z.f.broker.metadata_view().zk.znodes["/a"].stat();
        assert_eq!(s, crate::zk::ops::wire_stat(&stored));
        assert_eq!((s.data_length, s.num_children, s.version), (3, 1, 0));
        // The broker's registration looks like an ephemeral owned by the broker.
        let s = stat(&handle(&mut z.ctx(), "/brokers/ids/1", false).await);
        assert_ne!(s.ephemeral_owner, 0);
        assert!(s.data_length > 0);
        assert_err(
            &handle(&mut z.ctx(), "/missing", false).await,
            ErrorCode::NoNode,
        );
        assert_err(
            &handle(&mut z.ctx(), "x", false).await,
            ErrorCode::BadArguments,
        );
        assert!(z.watches.is_empty(), "no watch without the flag");
    }

    #[tokio::test]
    async fn watches_fire_on_creation_and_change() {
        let mut z = ZkFixture::new().await;
        z.put("/a", b"1").await;
        // On a missing node: an exists watch (fires on creation).
        assert_err(
            &handle(&mut z.ctx(), "/later", true).await,
            ErrorCode::NoNode,
        );
        // On an existing node: a data watch.
        assert_eq!(handle(&mut z.ctx(), "/a", true).await.err, 0);
        assert_eq!(z.watches.len(), 2);
        assert!(fire(&mut z).is_empty(), "nothing changed yet");
        z.put("/later", b"").await;
        z.f.broker
            .zk_multi(
                z.session_id,
                vec![crate::metadata::ZkOp::SetData {
                    path: "/a".into(),
                    data: Some(b"2".to_vec()),
                    version: -1,
                }],
            )
            .await
            .expect("set");
        assert_eq!(
            fire(&mut z),
            vec![
                event(event_type::NODE_DATA_CHANGED, "/a"),
                event(event_type::NODE_CREATED, "/later"),
            ]
        );
        assert!(z.watches.is_empty(), "one-shot");
    }
}
