//! multi (14): all-or-nothing over stored znodes. A failed multi answers with header err 0 and
//! one ErrorResult per op (0 before the failing op, its code, RUNTIMEINCONSISTENCY after), as
//! ZooKeeper does. Ops on projected Kafka paths are refused with NOAUTH inside the results.

use super::{view, OpCtx, Reply};
use crate::codec::jute::{opcode, write_multi_response, ErrorCode, MultiOp, MultiResult, Writer};
use crate::metadata::{ZkOp, ZkOpResult};
use crate::zk::error::op_error;
use crate::zk::ops::wire_stat;
use crate::zk::tree::{broker_owned, kafka_path, lookup};

fn failed_at(n: usize, i: usize, code: ErrorCode) -> Vec<MultiResult> {
    (0..n)
        .map(|j| MultiResult::Error {
            err: match j.cmp(&i) {
                std::cmp::Ordering::Less => 0,
                std::cmp::Ordering::Equal => code.code(),
                std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency.code(),
            },
        })
        .collect()
}

fn reply(results: &[MultiResult]) -> Reply {
    let mut w = Writer::new();
    write_multi_response(&mut w, results);
    Reply::ok(w)
}

/// Translates the wire ops; the error is (index, code) of the first op refused up front.
fn translate(ctx: &OpCtx<'_>, ops: &[MultiOp]) -> Result<Vec<ZkOp>, (usize, ErrorCode)> {
    let (img, ctl) = ctx.image();
    let v = view(&img, ctl);
    let mut out = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let path = match op {
            MultiOp::Create { path, .. }
            | MultiOp::Delete { path, .. }
            | MultiOp::SetData { path, .. }
            | MultiOp::Check { path, .. } => path,
        };
        let sequential = matches!(op, MultiOp::Create { flags, .. } if flags & 2 != 0);
        let shape = if sequential {
            format!("{path}0")
        } else {
            path.clone()
        };
        if ctx.check_path(&shape).is_err() {
            return Err((i, ErrorCode::BadArguments));
        }
        let projected = lookup(&v, path).is_some_and(|n| n.projected);
        let refused = broker_owned(&v, path) || kafka_path(&v, path).is_some() && projected;
        let zk_op = match op {
            MultiOp::Create { flags, data, .. } => {
                if refused || projected {
                    return Err((
                        i,
                        if projected {
                            ErrorCode::NodeExists
                        } else {
                            ErrorCode::NoAuth
                        },
                    ));
                }
                match flags {
                    0 | 4 => ZkOp::Create {
                        path: path.clone(),
                        data: data.clone(),
                        ephemeral: false,
                        sequential: false,
                    },
                    1 => ZkOp::Create {
                        path: path.clone(),
                        data: data.clone(),
                        ephemeral: true,
                        sequential: false,
                    },
                    2 => ZkOp::Create {
                        path: path.clone(),
                        data: data.clone(),
                        ephemeral: false,
                        sequential: true,
                    },
                    3 => ZkOp::Create {
                        path: path.clone(),
                        data: data.clone(),
                        ephemeral: true,
                        sequential: true,
                    },
                    _ => return Err((i, ErrorCode::Unimplemented)),
                }
            }
            MultiOp::Delete { version, .. } if !refused && !projected => ZkOp::Delete {
                path: path.clone(),
                version: *version,
            },
            MultiOp::SetData { data, version, .. } if !refused && !projected => ZkOp::SetData {
                path: path.clone(),
                data: data.clone(),
                version: *version,
            },
            MultiOp::Check { version, .. } => match lookup(&v, path) {
                Some(n) if n.projected => {
                    if *version != -1 && *version != n.stat.version {
                        return Err((i, ErrorCode::BadVersion));
                    }
                    // Checked against the projection now; stored paths are checked in the multi.
                    ZkOp::Check {
                        path: "/".into(),
                        version: -1,
                    }
                }
                _ => ZkOp::Check {
                    path: path.clone(),
                    version: *version,
                },
            },
            _ => return Err((i, ErrorCode::NoAuth)),
        };
        out.push(zk_op);
    }
    Ok(out)
}

pub async fn handle(ctx: &mut OpCtx<'_>, ops: &[MultiOp]) -> Reply {
    let zk_ops = match translate(ctx, ops) {
        Ok(z) => z,
        Err((i, code)) => return reply(&failed_at(ops.len(), i, code)),
    };
    if zk_ops.is_empty() {
        return reply(&[]);
    }
    let results = match ctx.broker.zk_multi(ctx.session_id, zk_ops).await {
        Ok(r) => r,
        Err(e) => return Reply::broker_err(&e),
    };
    let wire: Vec<MultiResult> = results
        .into_iter()
        .zip(ops)
        .map(|(r, op)| match r {
            ZkOpResult::Created { path, stat } => match op {
                MultiOp::Create {
                    opcode: opcode::CREATE2,
                    ..
                } => MultiResult::Create2 {
                    path,
                    stat: wire_stat(&stat),
                },
                _ => MultiResult::Create { path },
            },
            ZkOpResult::Deleted => MultiResult::Delete,
            ZkOpResult::DataSet { stat } => MultiResult::SetData {
                stat: wire_stat(&stat),
            },
            ZkOpResult::Checked => MultiResult::Check,
            ZkOpResult::Error(e) => MultiResult::Error {
                err: op_error(e).code(),
            },
        })
        .collect();
    reply(&wire)
}
