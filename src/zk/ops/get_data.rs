//! getData (4): data and Stat; may set a data watch (only on an existing node). Needs READ.

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
    let Some(n) = lookup(&v.with_consumers(consumers.as_ref()), path) else {
        return Reply::err(ErrorCode::NoNode);
    };
    if let Err(r) = ctx.may(&v, path, crate::zk::acl::READ) {
        return r;
    }
    if watch {
        // On the image alone: committed offsets change without notifications.
        ctx.watches.watch_data(&v, path);
    }
    let mut w = Writer::new();
    w.buffer(n.data.as_deref());
    write_stat(&mut w, &n.stat);
    Reply::ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::jute::{event_type, WatcherEvent, STATE_SYNC_CONNECTED};
    use crate::zk::testing::{assert_err, data_and_stat, ZkFixture};

    fn json(r: &Reply) -> serde_json::Value {
        let (data, _) = data_and_stat(r);
        serde_json::from_slice(&data.expect("data")).expect("json")
    }

    #[tokio::test]
    async fn stored_data_and_stat() {
        let mut z = ZkFixture::new().await;
        z.put("/a", b"hello").await;
        let (data, stat) = data_and_stat(&handle(&mut z.ctx(), "/a", false).await);
        assert_eq!(data.as_deref(), Some(&b"hello"[..]));
        assert_eq!((stat.data_length, stat.version), (5, 0));
        z.f.broker
            .zk_multi(
                z.session_id,
                vec![crate::metadata::ZkOp::Create {
                    path: "/null".into(),
                    data: None,
                    ephemeral: false,
                    sequential: false,
                    acl: crate::metadata::open_acls(),
                }],
            )
            .await
            .expect("create");
        let (data, stat) = data_and_stat(&handle(&mut z.ctx(), "/null", false).await);
        assert_eq!((data, stat.data_length), (None, 0));
        assert_err(
            &handle(&mut z.ctx(), "/missing", false).await,
            ErrorCode::NoNode,
        );
        assert_err(
            &handle(&mut z.ctx(), "//", false).await,
            ErrorCode::BadArguments,
        );
    }

    #[tokio::test]
    async fn projected_kafka_nodes() {
        let mut z = ZkFixture::new().await;
        z.f.topic("t", 2, &[("retention.ms", "1000")]).await;
        let a = json(&handle(&mut z.ctx(), "/brokers/topics/t", false).await);
        assert_eq!(a["partitions"]["0"], serde_json::json!([1]));
        assert_eq!(a["partitions"]["1"], serde_json::json!([1]));
        let c = json(&handle(&mut z.ctx(), "/config/topics/t", false).await);
        assert_eq!(c["config"]["retention.ms"], "1000");
        let s = json(&handle(&mut z.ctx(), "/brokers/topics/t/partitions/1/state", false).await);
        assert_eq!(
            (s["leader"].clone(), s["isr"].clone()),
            (serde_json::json!(1), serde_json::json!([1]))
        );
        let b = json(&handle(&mut z.ctx(), "/brokers/ids/1", false).await);
        assert_eq!(
            (b["host"].clone(), b["port"].clone()),
            (serde_json::json!("127.0.0.1"), serde_json::json!(9092))
        );
        let ctl = json(&handle(&mut z.ctx(), "/controller", false).await);
        assert_eq!(ctl["brokerid"], 1);
        let id = json(&handle(&mut z.ctx(), "/cluster/id", false).await);
        assert_eq!(id["id"], "test-cluster");
    }

    #[tokio::test]
    async fn a_data_watch_fires_on_change_and_delete() {
        let mut z = ZkFixture::new().await;
        z.put("/a", b"1").await;
        z.put("/b", b"1").await;
        assert_eq!(handle(&mut z.ctx(), "/a", true).await.err, 0);
        assert_eq!(handle(&mut z.ctx(), "/b", true).await.err, 0);
        // getData on a missing node leaves no watch (unlike exists).
        assert_err(&handle(&mut z.ctx(), "/c", true).await, ErrorCode::NoNode);
        assert_eq!(z.watches.len(), 2);
        z.f.broker
            .zk_multi(
                z.session_id,
                vec![
                    crate::metadata::ZkOp::SetData {
                        path: "/a".into(),
                        data: Some(b"2".to_vec()),
                        version: -1,
                    },
                    crate::metadata::ZkOp::Delete {
                        path: "/b".into(),
                        version: -1,
                    },
                ],
            )
            .await
            .expect("multi");
        let image = z.f.broker.metadata_view();
        let ev = |t, p: &str| WatcherEvent {
            event_type: t,
            state: STATE_SYNC_CONNECTED,
            path: p.into(),
        };
        assert_eq!(
            z.watches.fire(&view(&image, z.f.broker.controller_id())),
            vec![
                ev(event_type::NODE_DATA_CHANGED, "/a"),
                ev(event_type::NODE_DELETED, "/b"),
            ]
        );
    }
}
