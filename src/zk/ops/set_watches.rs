//! setWatches (101/105): restores a reconnecting client's watches; stale ones fire at once.
//! Returns the events to send before the (header-only) reply.

use super::{view, OpCtx};
use crate::codec::jute::WatcherEvent;

pub fn handle(
    ctx: &mut OpCtx<'_>,
    relative_zxid: i64,
    data: &[String],
    exist: &[String],
    child: &[String],
) -> Vec<WatcherEvent> {
    let (img, ctl) = ctx.image();
    ctx.watches
        .restore(&view(&img, ctl), relative_zxid, data, exist, child)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::jute::{event_type, STATE_SYNC_CONNECTED};
    use crate::zk::testing::ZkFixture;

    fn ev(kind: i32, path: &str) -> WatcherEvent {
        WatcherEvent {
            event_type: kind,
            state: STATE_SYNC_CONNECTED,
            path: path.into(),
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[tokio::test]
    async fn stale_watches_fire_at_once_and_current_ones_are_kept() {
        let mut z = ZkFixture::new().await;
        z.put("/old", b"").await;
        z.put("/p", b"").await;
        let seen = i64::try_from(z.f.broker.metadata_view().applied_index).expect("index");
        // After the client's zxid: /old changes, /p gets a child, /new appears.
        z.f.broker
            .zk_multi(
                z.session_id,
                vec![crate::metadata::ZkOp::SetData {
                    path: "/old".into(),
                    data: Some(b"x".to_vec()),
                    version: -1,
                }],
            )
            .await
            .expect("set");
        z.put("/p/c", b"").await;
        z.put("/new", b"").await;
        z.put("/quiet", b"").await;
        let now = i64::try_from(z.f.broker.metadata_view().applied_index).expect("index");
        let events = handle(
            &mut z.ctx(),
            seen,
            &s(&["/old", "/gone"]),
            &s(&["/new"]),
            &s(&["/p"]),
        );
        assert_eq!(
            events,
            vec![
                ev(event_type::NODE_DATA_CHANGED, "/old"),
                ev(event_type::NODE_DELETED, "/gone"),
                ev(event_type::NODE_CREATED, "/new"),
                ev(event_type::NODE_CHILDREN_CHANGED, "/p"),
            ]
        );
        assert!(z.watches.is_empty(), "fired watches are not kept");
        // Up to date: registered, and they fire on the next change.
        let events = handle(
            &mut z.ctx(),
            now,
            &s(&["/quiet"]),
            &s(&["/none"]),
            &s(&["/p"]),
        );
        assert!(events.is_empty());
        assert_eq!(z.watches.len(), 3);
        z.put("/none", b"").await;
        let image = z.f.broker.metadata_view();
        assert_eq!(
            z.watches.fire(&view(&image, z.f.broker.controller_id())),
            vec![ev(event_type::NODE_CREATED, "/none")]
        );
        assert_eq!(z.watches.len(), 2);
    }
}
