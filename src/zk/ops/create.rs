//! create (1), create2 (15, with Stat) and createContainer (19, kept as persistent).
//! Flags: 0 persistent, 1 ephemeral, 2 sequential, 3 ephemeral sequential, 4 container;
//! TTL modes (5, 6) are UNIMPLEMENTED.

use super::{kafka, view, write_stat, OpCtx, Reply};
use crate::codec::jute::{opcode, Acl, ErrorCode, Writer};
use crate::metadata::{ZkOp, ZkOpResult};
use crate::zk::tree::{broker_owned, kafka_path, lookup, KafkaPath};

/// Maps the flags to (ephemeral, sequential).
fn mode(flags: i32) -> Option<(bool, bool)> {
    match flags {
        0 | 4 => Some((false, false)),
        1 => Some((true, false)),
        2 => Some((false, true)),
        3 => Some((true, true)),
        _ => None,
    }
}

fn created(op: i32, path: &str, stat: &crate::metadata::ZnodeStat) -> Reply {
    let mut w = Writer::new();
    w.ustring(path);
    if op == opcode::CREATE2 {
        write_stat(&mut w, stat);
    }
    Reply::ok(w)
}

pub async fn handle(
    ctx: &mut OpCtx<'_>,
    op: i32,
    path: &str,
    data: Option<Vec<u8>>,
    acl: &[Acl],
    flags: i32,
) -> Reply {
    let Some((ephemeral, sequential)) = mode(flags) else {
        return Reply::err(ErrorCode::Unimplemented);
    };
    if acl.is_empty() {
        return Reply::err(ErrorCode::InvalidAcl);
    }
    let shape = if sequential {
        format!("{path}0")
    } else {
        path.to_owned()
    };
    if let Err(r) = ctx.check_path(&shape) {
        return r;
    }
    let (img, ctl) = ctx.image();
    let v = view(&img, ctl);
    if !sequential {
        match kafka_path(&v, path) {
            Some(KafkaPath::TopicAssignment(t)) if img.topic(&t).is_none() => {
                if let Err(r) = kafka::create_topic(ctx, path, &t, data.as_deref()).await {
                    return r;
                }
                let (img, ctl) = ctx.image();
                return match lookup(&view(&img, ctl), path) {
                    Some(n) => created(op, path, &n.stat),
                    None => Reply::err(ErrorCode::SystemError),
                };
            }
            Some(KafkaPath::TopicConfig(t)) if img.topic(&t).is_some() => {
                return Reply::err(ErrorCode::NodeExists)
            }
            _ => {}
        }
        if lookup(&v, path).is_some() {
            return Reply::err(ErrorCode::NodeExists);
        }
    }
    if broker_owned(&v, path) {
        return Reply::err(ErrorCode::NoAuth);
    }
    let ops = vec![ZkOp::Create {
        path: path.to_owned(),
        data,
        ephemeral,
        sequential,
    }];
    match ctx.broker.zk_multi(ctx.session_id, ops).await {
        Ok(mut r) => match r.pop() {
            Some(ZkOpResult::Created { path, stat }) => created(op, &path, &stat),
            Some(ZkOpResult::Error(e)) => Reply::op_err(e),
            _ => Reply::err(ErrorCode::SystemError),
        },
        Err(e) => Reply::broker_err(&e),
    }
}
