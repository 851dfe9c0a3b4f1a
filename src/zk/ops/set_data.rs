//! setData (5), versioned. On `/brokers/topics/<t>` it adds partitions, on `/config/topics/<t>`
//! it replaces the topic's overrides; other projected nodes are refused.

use super::{kafka, view, write_stat, OpCtx, Reply};
use crate::codec::jute::{ErrorCode, Writer};
use crate::metadata::{ZkOp, ZkOpResult};
use crate::zk::tree::{kafka_path, lookup, KafkaPath};

pub async fn handle(ctx: &mut OpCtx<'_>, path: &str, data: Option<Vec<u8>>, version: i32) -> Reply {
    if let Err(r) = ctx.check_path(path) {
        return r;
    }
    let (img, ctl) = ctx.image();
    let v = view(&img, ctl);
    let Some(node) = lookup(&v, path) else {
        return Reply::err(ErrorCode::NoNode);
    };
    if node.projected {
        if version != -1 && version != node.stat.version {
            return Reply::err(ErrorCode::BadVersion);
        }
        let done = match kafka_path(&v, path) {
            Some(KafkaPath::TopicAssignment(t)) => {
                kafka::set_assignment(ctx, &t, data.as_deref()).await
            }
            Some(KafkaPath::TopicConfig(t)) => kafka::set_configs(ctx, &t, data.as_deref()).await,
            _ => Err(Reply::err(ErrorCode::NoAuth)),
        };
        if let Err(r) = done {
            return r;
        }
        let (img, ctl) = ctx.image();
        let Some(n) = lookup(&view(&img, ctl), path) else {
            return Reply::err(ErrorCode::NoNode);
        };
        let mut w = Writer::new();
        write_stat(&mut w, &n.stat);
        return Reply::ok(w);
    }
    match ctx
        .broker
        .zk_multi(
            ctx.session_id,
            vec![ZkOp::SetData {
                path: path.to_owned(),
                data,
                version,
            }],
        )
        .await
    {
        Ok(mut r) => match r.pop() {
            Some(ZkOpResult::DataSet { stat }) => {
                let mut w = Writer::new();
                write_stat(&mut w, &stat);
                Reply::ok(w)
            }
            Some(ZkOpResult::Error(e)) => Reply::op_err(e),
            _ => Reply::err(ErrorCode::SystemError),
        },
        Err(e) => Reply::broker_err(&e),
    }
}
