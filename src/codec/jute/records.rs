//! The records of `zookeeper.jute` the facade speaks.

use super::{opcode, JuteError, Reader, Writer};

/// `ConnectRequest`; `read_only` is `None` for clients that do not send the byte (3.3/3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    pub read_only: Option<bool>,
}

impl ConnectRequest {
    /// # Errors
    /// Malformed or trailing bytes.
    pub fn decode(buf: &[u8]) -> Result<Self, JuteError> {
        let mut r = Reader::new(buf);
        let req = Self {
            protocol_version: r.int()?,
            last_zxid_seen: r.long()?,
            timeout_ms: r.int()?,
            session_id: r.long()?,
            password: r.buffer()?.unwrap_or_default(),
            read_only: if r.remaining() > 0 {
                Some(r.bool()?)
            } else {
                None
            },
        };
        if r.remaining() != 0 {
            return Err(JuteError::Trailing);
        }
        Ok(req)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.int(self.protocol_version)
            .long(self.last_zxid_seen)
            .int(self.timeout_ms)
            .long(self.session_id)
            .buffer(Some(&self.password));
        if let Some(ro) = self.read_only {
            w.bool(ro);
        }
        w.into_frame()
    }
}

/// `ConnectResponse`, sent with the read-only byte when the client sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    pub read_only: Option<bool>,
}

impl ConnectResponse {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.int(self.protocol_version)
            .int(self.timeout_ms)
            .long(self.session_id)
            .buffer(Some(&self.password));
        if let Some(ro) = self.read_only {
            w.bool(ro);
        }
        w.into_frame()
    }

    /// # Errors
    /// Malformed bytes.
    pub fn decode(buf: &[u8]) -> Result<Self, JuteError> {
        let mut r = Reader::new(buf);
        Ok(Self {
            protocol_version: r.int()?,
            timeout_ms: r.int()?,
            session_id: r.long()?,
            password: r.buffer()?.unwrap_or_default(),
            read_only: if r.remaining() > 0 {
                Some(r.bool()?)
            } else {
                None
            },
        })
    }
}

/// ZooKeeper's `Stat`: 68 bytes on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

impl Stat {
    pub const WIRE_BYTES: usize = 68;

    pub fn write(&self, w: &mut Writer) {
        w.long(self.czxid)
            .long(self.mzxid)
            .long(self.ctime)
            .long(self.mtime);
        w.int(self.version)
            .int(self.cversion)
            .int(self.aversion)
            .long(self.ephemeral_owner);
        w.int(self.data_length)
            .int(self.num_children)
            .long(self.pzxid);
    }

    /// # Errors
    /// Truncated input.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, JuteError> {
        Ok(Self {
            czxid: r.long()?,
            mzxid: r.long()?,
            ctime: r.long()?,
            mtime: r.long()?,
            version: r.int()?,
            cversion: r.int()?,
            aversion: r.int()?,
            ephemeral_owner: r.long()?,
            data_length: r.int()?,
            num_children: r.int()?,
            pzxid: r.long()?,
        })
    }
}

/// An ACL entry: perms plus `scheme:id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    pub perms: i32,
    pub scheme: String,
    pub id: String,
}

impl Acl {
    /// `world:anyone` with all permissions (cdrwa = 31).
    pub fn open() -> Self {
        Self {
            perms: 31,
            scheme: "world".into(),
            id: "anyone".into(),
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, JuteError> {
        let perms = r.int()?;
        let scheme = r.ustring()?;
        // A null id is read as empty: kazoo sends `auth` ACLs' empty id as null, and
        // ZooKeeper takes it (the id of an `auth` entry is not used).
        let id = match r.buffer()? {
            None => String::new(),
            Some(b) => String::from_utf8(b).map_err(|_| JuteError::BadUtf8)?,
        };
        Ok(Self { perms, scheme, id })
    }

    pub fn write(&self, w: &mut Writer) {
        w.int(self.perms).ustring(&self.scheme).ustring(&self.id);
    }
}

/// The smallest encoding of one ACL (perms plus two empty strings).
const ACL_MIN_BYTES: usize = 12;

fn read_acls(r: &mut Reader<'_>) -> Result<Vec<Acl>, JuteError> {
    r.vector(ACL_MIN_BYTES, Acl::read)
}

pub fn write_acls(w: &mut Writer, acls: &[Acl]) {
    w.int(i32::try_from(acls.len()).unwrap_or(i32::MAX));
    for a in acls {
        a.write(w);
    }
}

/// `RequestHeader`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    pub xid: i32,
    pub opcode: i32,
}

/// `ReplyHeader` (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
}

impl ReplyHeader {
    pub fn write(&self, w: &mut Writer) {
        w.int(self.xid).long(self.zxid).int(self.err);
    }

    /// # Errors
    /// Truncated input.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, JuteError> {
        Ok(Self {
            xid: r.int()?,
            zxid: r.long()?,
            err: r.int()?,
        })
    }
}

/// One op inside a multi request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create {
        opcode: i32,
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        flags: i32,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
}

/// A decoded request body, by opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// create (1), create2 (15) and createContainer (19).
    Create {
        opcode: i32,
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        flags: i32,
    },
    Delete {
        path: String,
        version: i32,
    },
    Exists {
        path: String,
        watch: bool,
    },
    GetData {
        path: String,
        watch: bool,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    GetAcl {
        path: String,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    /// getChildren (8) and getChildren2 (12).
    GetChildren {
        opcode: i32,
        path: String,
        watch: bool,
    },
    Sync {
        path: String,
    },
    Ping,
    Check {
        path: String,
        version: i32,
    },
    Multi(Vec<MultiOp>),
    /// setWatches (101) and setWatches2 (105; persistent watches are ignored).
    SetWatches {
        relative_zxid: i64,
        data: Vec<String>,
        exist: Vec<String>,
        child: Vec<String>,
    },
    /// addauth: the scheme and its credentials (`user:password` for digest).
    Auth {
        scheme: String,
        auth: Vec<u8>,
    },
    GetAllChildrenNumber {
        path: String,
    },
    WhoAmI,
    CloseSession,
    /// An opcode the facade does not implement; answered with UNIMPLEMENTED.
    Unknown(i32),
}

/// The smallest encoding of one string in a vector.
const STRING_MIN_BYTES: usize = 4;
/// The smallest multi op: header (9 bytes) plus a path and an int.
const MULTI_OP_MIN_BYTES: usize = 17;

fn read_create(r: &mut Reader<'_>, opcode: i32) -> Result<Request, JuteError> {
    Ok(Request::Create {
        opcode,
        path: r.ustring()?,
        data: r.buffer()?,
        acl: read_acls(r)?,
        flags: r.int()?,
    })
}

fn read_multi(r: &mut Reader<'_>) -> Result<Vec<MultiOp>, JuteError> {
    let mut ops = Vec::new();
    loop {
        let (op_type, done, _err) = (r.int()?, r.bool()?, r.int()?);
        if done {
            return Ok(ops);
        }
        // Every op consumes bytes, so the loop ends at the frame's end at the latest.
        if r.remaining() < MULTI_OP_MIN_BYTES - 9 {
            return Err(JuteError::Truncated);
        }
        let op = match op_type {
            opcode::CREATE | opcode::CREATE2 | opcode::CREATE_CONTAINER => MultiOp::Create {
                opcode: op_type,
                path: r.ustring()?,
                data: r.buffer()?,
                acl: read_acls(r)?,
                flags: r.int()?,
            },
            opcode::DELETE => MultiOp::Delete {
                path: r.ustring()?,
                version: r.int()?,
            },
            opcode::SET_DATA => MultiOp::SetData {
                path: r.ustring()?,
                data: r.buffer()?,
                version: r.int()?,
            },
            opcode::CHECK => MultiOp::Check {
                path: r.ustring()?,
                version: r.int()?,
            },
            other => return Err(JuteError::BadLength(other)),
        };
        ops.push(op);
    }
}

impl Request {
    /// Decodes a request frame (without its length prefix): header, then the body by opcode.
    ///
    /// # Errors
    /// Malformed bodies. Unknown opcodes are not an error (`Request::Unknown`).
    pub fn decode(frame: &[u8]) -> Result<(RequestHeader, Self), JuteError> {
        let mut r = Reader::new(frame);
        let header = RequestHeader {
            xid: r.int()?,
            opcode: r.int()?,
        };
        let r = &mut r;
        let body = match header.opcode {
            opcode::CREATE | opcode::CREATE2 | opcode::CREATE_CONTAINER => {
                read_create(r, header.opcode)?
            }
            opcode::DELETE => Request::Delete {
                path: r.ustring()?,
                version: r.int()?,
            },
            opcode::EXISTS => Request::Exists {
                path: r.ustring()?,
                watch: r.bool()?,
            },
            opcode::GET_DATA => Request::GetData {
                path: r.ustring()?,
                watch: r.bool()?,
            },
            opcode::SET_DATA => Request::SetData {
                path: r.ustring()?,
                data: r.buffer()?,
                version: r.int()?,
            },
            opcode::GET_ACL => Request::GetAcl { path: r.ustring()? },
            opcode::SET_ACL => Request::SetAcl {
                path: r.ustring()?,
                acl: read_acls(r)?,
                version: r.int()?,
            },
            opcode::GET_CHILDREN | opcode::GET_CHILDREN2 => Request::GetChildren {
                opcode: header.opcode,
                path: r.ustring()?,
                watch: r.bool()?,
            },
            opcode::SYNC => Request::Sync { path: r.ustring()? },
            opcode::PING => Request::Ping,
            opcode::CHECK => Request::Check {
                path: r.ustring()?,
                version: r.int()?,
            },
            opcode::MULTI => Request::Multi(read_multi(r)?),
            opcode::SET_WATCHES | opcode::SET_WATCHES2 => {
                let relative_zxid = r.long()?;
                let data = r.vector(STRING_MIN_BYTES, Reader::ustring)?;
                let exist = r.vector(STRING_MIN_BYTES, Reader::ustring)?;
                let child = r.vector(STRING_MIN_BYTES, Reader::ustring)?;
                if header.opcode == opcode::SET_WATCHES2 {
                    r.vector(STRING_MIN_BYTES, Reader::ustring)?;
                    r.vector(STRING_MIN_BYTES, Reader::ustring)?;
                }
                Request::SetWatches {
                    relative_zxid,
                    data,
                    exist,
                    child,
                }
            }
            opcode::AUTH => {
                let _type = r.int()?;
                let scheme = r.ustring()?;
                let auth = r.buffer()?.unwrap_or_default();
                Request::Auth { scheme, auth }
            }
            opcode::GET_ALL_CHILDREN_NUMBER => Request::GetAllChildrenNumber { path: r.ustring()? },
            opcode::WHO_AM_I => Request::WhoAmI,
            opcode::CLOSE_SESSION => Request::CloseSession,
            other => return Ok((header, Request::Unknown(other))),
        };
        Ok((header, body))
    }

    /// Encodes a request frame (used by tests and the fuzz seeds).
    pub fn encode(&self, xid: i32) -> Vec<u8> {
        let mut w = Writer::new();
        let op = self.opcode();
        w.int(xid).int(op);
        match self {
            Request::Create {
                path,
                data,
                acl,
                flags,
                ..
            } => {
                w.ustring(path).buffer(data.as_deref());
                write_acls(&mut w, acl);
                w.int(*flags);
            }
            Request::Delete { path, version } | Request::Check { path, version } => {
                w.ustring(path).int(*version);
            }
            Request::Exists { path, watch }
            | Request::GetData { path, watch }
            | Request::GetChildren { path, watch, .. } => {
                w.ustring(path).bool(*watch);
            }
            Request::SetData {
                path,
                data,
                version,
            } => {
                w.ustring(path).buffer(data.as_deref()).int(*version);
            }
            Request::GetAcl { path }
            | Request::Sync { path }
            | Request::GetAllChildrenNumber { path } => {
                w.ustring(path);
            }
            Request::SetAcl { path, acl, version } => {
                w.ustring(path);
                write_acls(&mut w, acl);
                w.int(*version);
            }
            Request::Multi(ops) => {
                for o in ops {
                    encode_multi_op(&mut w, o);
                }
                w.int(-1).bool(true).int(-1);
            }
            Request::SetWatches {
                relative_zxid,
                data,
                exist,
                child,
            } => {
                w.long(*relative_zxid)
                    .strings(data)
                    .strings(exist)
                    .strings(child);
            }
            Request::Auth { scheme, auth } => {
                w.int(0).ustring(scheme).buffer(Some(auth));
            }
            Request::Ping | Request::WhoAmI | Request::CloseSession | Request::Unknown(_) => {}
        }
        w.into_frame()
    }

    pub fn opcode(&self) -> i32 {
        match self {
            Request::Create { opcode, .. } | Request::GetChildren { opcode, .. } => *opcode,
            Request::Delete { .. } => opcode::DELETE,
            Request::Exists { .. } => opcode::EXISTS,
            Request::GetData { .. } => opcode::GET_DATA,
            Request::SetData { .. } => opcode::SET_DATA,
            Request::GetAcl { .. } => opcode::GET_ACL,
            Request::SetAcl { .. } => opcode::SET_ACL,
            Request::Sync { .. } => opcode::SYNC,
            Request::Ping => opcode::PING,
            Request::Check { .. } => opcode::CHECK,
            Request::Multi(_) => opcode::MULTI,
            Request::SetWatches { .. } => opcode::SET_WATCHES,
            Request::Auth { .. } => opcode::AUTH,
            Request::GetAllChildrenNumber { .. } => opcode::GET_ALL_CHILDREN_NUMBER,
            Request::WhoAmI => opcode::WHO_AM_I,
            Request::CloseSession => opcode::CLOSE_SESSION,
            Request::Unknown(op) => *op,
        }
    }
}

fn encode_multi_op(w: &mut Writer, o: &MultiOp) {
    match o {
        MultiOp::Create {
            opcode,
            path,
            data,
            acl,
            flags,
        } => {
            w.int(*opcode)
                .bool(false)
                .int(-1)
                .ustring(path)
                .buffer(data.as_deref());
            write_acls(w, acl);
            w.int(*flags);
        }
        MultiOp::Delete { path, version } => {
            w.int(opcode::DELETE)
                .bool(false)
                .int(-1)
                .ustring(path)
                .int(*version);
        }
        MultiOp::SetData {
            path,
            data,
            version,
        } => {
            w.int(opcode::SET_DATA)
                .bool(false)
                .int(-1)
                .ustring(path)
                .buffer(data.as_deref())
                .int(*version);
        }
        MultiOp::Check { path, version } => {
            w.int(opcode::CHECK)
                .bool(false)
                .int(-1)
                .ustring(path)
                .int(*version);
        }
    }
}

/// One result inside a multi response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    Create { path: String },
    Create2 { path: String, stat: Stat },
    Delete,
    SetData { stat: Stat },
    Check,
    Error { err: i32 },
}

/// Writes a multi response body: one (header, result) per op, then the end marker.
pub fn write_multi_response(w: &mut Writer, results: &[MultiResult]) {
    for res in results {
        match res {
            MultiResult::Create { path } => {
                w.int(opcode::CREATE).bool(false).int(0).ustring(path);
            }
            MultiResult::Create2 { path, stat } => {
                w.int(opcode::CREATE2).bool(false).int(0).ustring(path);
                stat.write(w);
            }
            MultiResult::Delete => {
                w.int(opcode::DELETE).bool(false).int(0);
            }
            MultiResult::SetData { stat } => {
                w.int(opcode::SET_DATA).bool(false).int(0);
                stat.write(w);
            }
            MultiResult::Check => {
                w.int(opcode::CHECK).bool(false).int(0);
            }
            MultiResult::Error { err } => {
                w.int(opcode::ERROR).bool(false).int(*err).int(*err);
            }
        }
    }
    w.int(-1).bool(true).int(-1);
}

/// `WatcherEvent`, sent with reply header xid -1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherEvent {
    pub event_type: i32,
    pub state: i32,
    pub path: String,
}

impl WatcherEvent {
    pub fn write(&self, w: &mut Writer) {
        w.int(self.event_type).int(self.state).ustring(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_path() -> impl Strategy<Value = String> {
        "(/[a-z0-9_]{1,6}){1,3}"
    }

    fn arb_request() -> impl Strategy<Value = Request> {
        let data = prop::option::of(prop::collection::vec(any::<u8>(), 0..16));
        prop_oneof![
            (arb_path(), data.clone(), 0i32..4).prop_map(|(p, d, f)| Request::Create {
                opcode: 1,
                path: p,
                data: d,
                acl: vec![Acl::open()],
                flags: f
            }),
            (arb_path(), any::<i32>()).prop_map(|(p, v)| Request::Delete {
                path: p,
                version: v
            }),
            (arb_path(), any::<bool>()).prop_map(|(p, w)| Request::Exists { path: p, watch: w }),
            (arb_path(), any::<bool>()).prop_map(|(p, w)| Request::GetData { path: p, watch: w }),
            (arb_path(), data.clone(), any::<i32>()).prop_map(|(p, d, v)| Request::SetData {
                path: p,
                data: d,
                version: v
            }),
            (arb_path(), any::<bool>()).prop_map(|(p, w)| Request::GetChildren {
                opcode: 12,
                path: p,
                watch: w
            }),
            arb_path().prop_map(|p| Request::Sync { path: p }),
            Just(Request::Ping),
            Just(Request::CloseSession),
            (any::<i64>(), prop::collection::vec(arb_path(), 0..3)).prop_map(|(z, v)| {
                Request::SetWatches {
                    relative_zxid: z,
                    data: v.clone(),
                    exist: v.clone(),
                    child: v,
                }
            }),
            prop::collection::vec(
                prop_oneof![
                    (arb_path(), data.clone()).prop_map(|(p, d)| MultiOp::Create {
                        opcode: 1,
                        path: p,
                        data: d,
                        acl: vec![Acl::open()],
                        flags: 0
                    }),
                    (arb_path(), any::<i32>()).prop_map(|(p, v)| MultiOp::Check {
                        path: p,
                        version: v
                    }),
                    (arb_path(), any::<i32>()).prop_map(|(p, v)| MultiOp::Delete {
                        path: p,
                        version: v
                    }),
                    (arb_path(), data, any::<i32>()).prop_map(|(p, d, v)| MultiOp::SetData {
                        path: p,
                        data: d,
                        version: v
                    }),
                ],
                0..4
            )
            .prop_map(Request::Multi),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip(req in arb_request(), xid in any::<i32>()) {
            let frame = req.encode(xid);
            let (h, back) = Request::decode(&frame[4..]).expect("decodes");
            prop_assert_eq!(h.xid, xid);
            prop_assert_eq!(back, req);
        }

        #[test]
        fn connect_round_trips(pv in any::<i32>(), z in any::<i64>(), t in any::<i32>(), s in any::<i64>(),
                               pw in prop::collection::vec(any::<u8>(), 0..16), ro in prop::option::of(any::<bool>())) {
            let req = ConnectRequest { protocol_version: pv, last_zxid_seen: z, timeout_ms: t, session_id: s, password: pw.clone(), read_only: ro };
            prop_assert_eq!(ConnectRequest::decode(&req.encode()[4..]).expect("decodes"), req);
            let resp = ConnectResponse { protocol_version: pv, timeout_ms: t, session_id: s, password: pw, read_only: ro };
            prop_assert_eq!(ConnectResponse::decode(&resp.encode()[4..]).expect("decodes"), resp);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = Request::decode(&bytes);
            let _ = ConnectRequest::decode(&bytes);
        }

        #[test]
        fn huge_lengths_are_refused(xid in any::<i32>(), len in 1_000i32..i32::MAX) {
            let mut frame = Vec::new();
            frame.extend_from_slice(&xid.to_be_bytes());
            frame.extend_from_slice(&14i32.to_be_bytes());
            frame.extend_from_slice(&1i32.to_be_bytes());
            frame.push(0);
            frame.extend_from_slice(&(-1i32).to_be_bytes());
            frame.extend_from_slice(&len.to_be_bytes());
            prop_assert!(Request::decode(&frame).is_err());
        }
    }

    #[test]
    fn stat_is_68_bytes_and_kafka_connect_is_45() {
        let mut w = Writer::new();
        Stat::default().write(&mut w);
        assert_eq!(w.buf.len(), Stat::WIRE_BYTES);
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 30000,
            session_id: 0,
            password: vec![0; 16],
            read_only: Some(false),
        };
        assert_eq!(req.encode().len(), 4 + 45);
        let mut w = Writer::new();
        write_multi_response(
            &mut w,
            &[
                MultiResult::Error { err: 0 },
                MultiResult::Error { err: -101 },
            ],
        );
        assert_eq!(w.buf.len(), 2 * 13 + 9);
    }
}
