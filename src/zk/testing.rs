//! The op test fixture: the broker fixture plus one ZooKeeper session opened through the
//! broker's `zk_create_session` verb (as the handshake does) and its watches, and decoders for
//! op reply bodies. Ops are called directly with [`ZkFixture::ctx`].

use super::ops::{OpCtx, Reply};
use super::watch::Watches;
use crate::broker::testing::Fixture;
use crate::codec::jute::{opcode, Acl, ErrorCode, MultiResult, Reader, Stat};

/// A broker with one open ZooKeeper session.
#[derive(Debug)]
pub(crate) struct ZkFixture {
    pub(crate) f: Fixture,
    pub(crate) session_id: i64,
    pub(crate) watches: Watches,
    pub(crate) auth: crate::zk::acl::AuthInfo,
    pub(crate) acl: crate::zk::acl::AclSettings,
}

impl ZkFixture {
    pub(crate) async fn new() -> Self {
        Self::with(&[]).await
    }

    /// With `server.properties` overrides.
    pub(crate) async fn with(props: &[(&str, &str)]) -> Self {
        let f = Fixture::with(props).await;
        let session_id = open_session(&f, 0x100).await;
        let watches = Watches::new(f.broker.config().limits.zk_watches_per_session_max);
        let acl = crate::zk::acl::AclSettings::of(f.broker.config());
        Self {
            f,
            session_id,
            watches,
            auth: crate::zk::acl::AuthInfo::new(std::net::IpAddr::from([127, 0, 0, 1])),
            acl,
        }
    }

    /// The op context of this session.
    pub(crate) fn ctx(&mut self) -> OpCtx<'_> {
        OpCtx {
            broker: &self.f.broker,
            session_id: self.session_id,
            path_bytes_max: self.f.broker.config().limits.zk_path_bytes_max,
            watches: &mut self.watches,
            auth: &mut self.auth,
            acl: &self.acl,
        }
    }

    /// Stores `path` with `data` (a plain persistent create through the broker).
    pub(crate) async fn put(&self, path: &str, data: &[u8]) {
        let r = self
            .f
            .broker
            .zk_multi(
                self.session_id,
                vec![crate::metadata::ZkOp::Create {
                    path: path.to_owned(),
                    data: Some(data.to_vec()),
                    ephemeral: false,
                    sequential: false,
                    acl: crate::metadata::open_acls(),
                }],
            )
            .await
            .expect("zk multi");
        assert!(
            matches!(r[0], crate::metadata::ZkOpResult::Created { .. }),
            "create {path}: {r:?}"
        );
    }
}

/// Opens a session with id `id` (10 s timeout) through the broker.
pub(crate) async fn open_session(f: &Fixture, id: i64) -> i64 {
    f.broker
        .zk_create_session(id, vec![7; 16], 10_000)
        .await
        .expect("create session");
    id
}

/// Asserts that `r` failed with `code` and carries no body.
pub(crate) fn assert_err(r: &Reply, code: ErrorCode) {
    assert_eq!((r.err, r.body.len()), (code.code(), 0), "{r:?}");
}

fn ok_body(r: &Reply) -> Reader<'_> {
    assert_eq!(r.err, 0, "op failed: {r:?}");
    Reader::new(&r.body)
}

fn done(rd: &Reader<'_>) {
    assert_eq!(rd.remaining(), 0, "trailing bytes in the reply");
}

/// A body that is exactly one `Stat` (exists, setData, setACL).
pub(crate) fn stat(r: &Reply) -> Stat {
    let mut rd = ok_body(r);
    let s = Stat::read(&mut rd).expect("stat");
    done(&rd);
    s
}

/// getData: (data, stat).
pub(crate) fn data_and_stat(r: &Reply) -> (Option<Vec<u8>>, Stat) {
    let mut rd = ok_body(r);
    let data = rd.buffer().expect("data");
    let s = Stat::read(&mut rd).expect("stat");
    done(&rd);
    (data, s)
}

/// getChildren: the names; getChildren2 also the parent's stat.
pub(crate) fn children(r: &Reply, with_stat: bool) -> (Vec<String>, Option<Stat>) {
    let mut rd = ok_body(r);
    let names = rd.vector(4, |x| x.ustring()).expect("names");
    let s = with_stat.then(|| Stat::read(&mut rd).expect("stat"));
    done(&rd);
    (names, s)
}

/// create: the created path; create2 also its stat.
pub(crate) fn created(r: &Reply, with_stat: bool) -> (String, Option<Stat>) {
    let mut rd = ok_body(r);
    let path = rd.ustring().expect("path");
    let s = with_stat.then(|| Stat::read(&mut rd).expect("stat"));
    done(&rd);
    (path, s)
}

/// getACL: (acls, stat).
pub(crate) fn acls_and_stat(r: &Reply) -> (Vec<Acl>, Stat) {
    let mut rd = ok_body(r);
    let acls = rd
        .vector(12, |x| {
            Ok(Acl {
                perms: x.int()?,
                scheme: x.ustring()?,
                id: x.ustring()?,
            })
        })
        .expect("acls");
    let s = Stat::read(&mut rd).expect("stat");
    done(&rd);
    (acls, s)
}

/// A multi response: one result per op.
pub(crate) fn multi_results(r: &Reply) -> Vec<MultiResult> {
    let mut rd = ok_body(r);
    let mut out = Vec::new();
    loop {
        let kind = rd.int().expect("type");
        let last = rd.bool().expect("done");
        let err = rd.int().expect("err");
        if last {
            assert_eq!((kind, err), (-1, -1), "end marker");
            break;
        }
        out.push(match kind {
            opcode::CREATE => MultiResult::Create {
                path: rd.ustring().expect("path"),
            },
            opcode::CREATE2 => MultiResult::Create2 {
                path: rd.ustring().expect("path"),
                stat: Stat::read(&mut rd).expect("stat"),
            },
            opcode::DELETE => MultiResult::Delete,
            opcode::SET_DATA => MultiResult::SetData {
                stat: Stat::read(&mut rd).expect("stat"),
            },
            opcode::CHECK => MultiResult::Check,
            opcode::ERROR => {
                assert_eq!(rd.int().expect("err"), err);
                MultiResult::Error { err }
            }
            other => panic!("unexpected multi result type {other}"),
        });
    }
    done(&rd);
    out
}
