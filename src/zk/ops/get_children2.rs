//! getChildren2 (12): getChildren plus the parent's Stat (what Kafka tools use).

use super::{get_children, OpCtx, Reply};

pub fn handle(ctx: &mut OpCtx<'_>, path: &str, watch: bool) -> Reply {
    get_children::handle(ctx, path, watch, true)
}
