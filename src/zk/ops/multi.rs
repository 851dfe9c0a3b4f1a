//! multi (14): all-or-nothing over stored znodes. A failed multi answers with header err 0 and
//! one ErrorResult per op (0 before the failing op, its code, RUNTIMEINCONSISTENCY after), as
//! ZooKeeper does. Ops on projected Kafka paths are refused with NOAUTH inside the results, and
//! so is an op the node's ACL does not allow (create: CREATE on the parent, delete: DELETE on
//! the parent, setData: WRITE, check: READ; against the nodes as they were before the multi).

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
        // ZooKeeper's ACL checks, against the nodes as they are before the multi.
        let (guarded, perm) = match op {
            MultiOp::Create { .. } => (crate::metadata::parent_of(path), crate::zk::acl::CREATE),
            MultiOp::Delete { .. } => (crate::metadata::parent_of(path), crate::zk::acl::DELETE),
            MultiOp::SetData { .. } => (path.as_str(), crate::zk::acl::WRITE),
            MultiOp::Check { .. } => (path.as_str(), crate::zk::acl::READ),
        };
        let acl = match op {
            MultiOp::Create { acl, .. } => match crate::zk::acl::fixup(acl, ctx.auth) {
                Some(a) => a,
                None => return Err((i, ErrorCode::InvalidAcl)),
            },
            _ => crate::metadata::open_acls(),
        };
        let target_exists = match op {
            MultiOp::Create { .. } => true,
            _ => lookup(&v, path).is_some(),
        };
        if target_exists && lookup(&v, guarded).is_some() && ctx.may(&v, guarded, perm).is_err() {
            return Err((i, ErrorCode::NoAuth));
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
                        acl: acl.clone(),
                    },
                    1 => ZkOp::Create {
                        path: path.clone(),
                        data: data.clone(),
                        ephemeral: true,
                        sequential: false,
                        acl: acl.clone(),
                    },
                    2 => ZkOp::Create {
                        path: path.clone(),
                        data: data.clone(),
                        ephemeral: false,
                        sequential: true,
                        acl: acl.clone(),
                    },
                    3 => ZkOp::Create {
                        path: path.clone(),
                        data: data.clone(),
                        ephemeral: true,
                        sequential: true,
                        acl: acl.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::jute::Acl;
    use crate::zk::testing::{multi_results, ZkFixture};

    fn create(op: i32, path: &str, flags: i32) -> MultiOp {
        MultiOp::Create {
            opcode: op,
            path: path.into(),
            data: Some(b"d".to_vec()),
            acl: vec![Acl::open()],
            flags,
        }
    }

    fn set(path: &str, version: i32) -> MultiOp {
        MultiOp::SetData {
            path: path.into(),
            data: Some(b"new".to_vec()),
            version,
        }
    }

    fn delete(path: &str, version: i32) -> MultiOp {
        MultiOp::Delete {
            path: path.into(),
            version,
        }
    }

    fn check(path: &str, version: i32) -> MultiOp {
        MultiOp::Check {
            path: path.into(),
            version,
        }
    }

    fn errors(codes: &[ErrorCode]) -> Vec<MultiResult> {
        codes
            .iter()
            .map(|c| MultiResult::Error { err: c.code() })
            .collect()
    }

    fn stored(z: &ZkFixture, path: &str) -> bool {
        z.f.broker
            .metadata_view()
            .zk
            .znodes
            .get(path)
            .is_some_and(|n| !n.implicit)
    }

    #[tokio::test]
    async fn all_ops_apply_together() {
        let mut z = ZkFixture::new().await;
        let ops = [
            create(opcode::CREATE, "/m", 0),
            create(opcode::CREATE2, "/m/c", 0),
            create(opcode::CREATE, "/m/s-", 2),
            set("/m", 0),
            check("/m", 1),
            delete("/m/c", 0),
        ];
        let got = multi_results(&handle(&mut z.ctx(), &ops).await);
        assert_eq!(got.len(), 6);
        assert_eq!(got[0], MultiResult::Create { path: "/m".into() });
        let MultiResult::Create2 { path, stat } = &got[1] else {
            panic!("create2 result: {:?}", got[1]);
        };
        assert_eq!(
            (path.as_str(), stat.version, stat.data_length),
            ("/m/c", 0, 1)
        );
        assert_eq!(
            got[2],
            MultiResult::Create {
                path: "/m/s-0000000001".into()
            }
        );
        let MultiResult::SetData { stat } = &got[3] else {
            panic!("setData result: {:?}", got[3]);
        };
        assert_eq!((stat.version, stat.data_length), (1, 3));
        assert_eq!(
            (&got[4], &got[5]),
            (&MultiResult::Check, &MultiResult::Delete)
        );
        assert!(stored(&z, "/m") && stored(&z, "/m/s-0000000001") && !stored(&z, "/m/c"));
        // An empty multi is an empty answer.
        assert_eq!(multi_results(&handle(&mut z.ctx(), &[]).await), vec![]);
    }

    #[tokio::test]
    async fn a_failing_op_rolls_everything_back() {
        let mut z = ZkFixture::new().await;
        z.put("/x", b"").await;
        for (ops, want) in [
            (
                vec![
                    create(opcode::CREATE, "/y", 0),
                    create(opcode::CREATE, "/x", 0),
                ],
                vec![ErrorCode::Ok, ErrorCode::NodeExists],
            ),
            (
                vec![
                    create(opcode::CREATE, "/y", 0),
                    delete("/nope", -1),
                    create(opcode::CREATE, "/z", 0),
                ],
                vec![
                    ErrorCode::Ok,
                    ErrorCode::NoNode,
                    ErrorCode::RuntimeInconsistency,
                ],
            ),
            (
                vec![check("/x", 3), create(opcode::CREATE, "/y", 0)],
                vec![ErrorCode::BadVersion, ErrorCode::RuntimeInconsistency],
            ),
            (
                vec![create(opcode::CREATE, "/y", 0), set("/x", 7)],
                vec![ErrorCode::Ok, ErrorCode::BadVersion],
            ),
            (
                vec![create(opcode::CREATE, "/x/c", 0), delete("/x", -1)],
                vec![ErrorCode::Ok, ErrorCode::NotEmpty],
            ),
        ] {
            let got = multi_results(&handle(&mut z.ctx(), &ops).await);
            assert_eq!(got, errors(&want), "{ops:?}");
            assert!(!stored(&z, "/y") && !stored(&z, "/z") && !stored(&z, "/x/c"));
        }
        assert!(stored(&z, "/x"));
    }

    /// A multi cannot create a topic (that is a topic creation, not a znode write); it used to
    /// store a plain znode that `getChildren /brokers/topics` listed as a topic.
    #[tokio::test]
    async fn a_topic_assignment_is_not_a_znode_inside_a_multi() {
        let mut z = ZkFixture::new().await;
        let ops = [MultiOp::Create {
            opcode: opcode::CREATE,
            path: "/brokers/topics/x".into(),
            data: Some(br#"{"version":1,"partitions":{"0":[1]}}"#.to_vec()),
            acl: vec![Acl::open()],
            flags: 0,
        }];
        let got = multi_results(&handle(&mut z.ctx(), &ops).await);
        assert_eq!(got, errors(&[ErrorCode::NoAuth]));
        assert!(!stored(&z, "/brokers/topics/x"));
        let image = z.f.broker.metadata_view();
        assert!(image.topics.is_empty());
        let listed = lookup(&view(&image, None), "/brokers/topics")
            .expect("/brokers/topics")
            .children;
        assert!(listed.is_empty(), "{listed:?}");
    }

    #[tokio::test]
    async fn refused_up_front() {
        let mut z = ZkFixture::with(&[("jute.maxbuffer", "1024")]).await;
        z.f.topic("t", 1, &[]).await;
        let big = MultiOp::Create {
            opcode: opcode::CREATE,
            path: "/big".into(),
            data: Some(vec![0; 1025]),
            acl: vec![Acl::open()],
            flags: 0,
        };
        for (bad, code) in [
            (
                create(opcode::CREATE, "no-slash", 0),
                ErrorCode::BadArguments,
            ),
            (create(opcode::CREATE, "/ttl", 5), ErrorCode::Unimplemented),
            (
                create(opcode::CREATE, "/brokers/ids/1", 0),
                ErrorCode::NodeExists,
            ),
            (
                create(opcode::CREATE, "/brokers/ids/7", 0),
                ErrorCode::NoAuth,
            ),
            (set("/brokers/topics/t", -1), ErrorCode::NoAuth),
            (set("/config/topics/t", -1), ErrorCode::NoAuth),
            (delete("/brokers/ids/1", -1), ErrorCode::NoAuth),
            (check("/brokers/topics/t", 9), ErrorCode::BadVersion),
            (big, ErrorCode::BadArguments),
        ] {
            let ops = [
                create(opcode::CREATE, "/ok", 0),
                bad.clone(),
                create(opcode::CREATE, "/ok2", 0),
            ];
            let got = multi_results(&handle(&mut z.ctx(), &ops).await);
            assert_eq!(
                got,
                errors(&[ErrorCode::Ok, code, ErrorCode::RuntimeInconsistency]),
                "{bad:?}"
            );
            assert!(!stored(&z, "/ok") && !stored(&z, "/ok2"));
        }
        // A check of a projected node at its version passes.
        let got = multi_results(
            &handle(
                &mut z.ctx(),
                &[
                    check("/brokers/topics/t", 0),
                    create(opcode::CREATE, "/ok", 0),
                ],
            )
            .await,
        );
        assert_eq!(
            got,
            vec![
                MultiResult::Check,
                MultiResult::Create { path: "/ok".into() }
            ]
        );
    }
}
