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
