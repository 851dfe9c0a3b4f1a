//! delete (2), versioned. Projected Kafka nodes are refused (NOTEMPTY when they have children,
//! NOAUTH otherwise); topics are deleted through `/admin/delete_topics/<t>` as Kafka tools do.

use super::{view, OpCtx, Reply};
use crate::codec::jute::ErrorCode;
use crate::metadata::{ZkOp, ZkOpResult};
use crate::zk::tree::lookup;

pub async fn handle(ctx: &mut OpCtx<'_>, path: &str, version: i32) -> Reply {
    if let Err(r) = ctx.check_path(path) {
        return r;
    }
    let (img, ctl) = ctx.image();
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
