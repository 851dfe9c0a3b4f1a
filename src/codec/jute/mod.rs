//! ZooKeeper's jute wire format, sans-io: primitives, the connect handshake (3.4 and 3.5+
//! clients, with or without the read-only byte), request and reply headers, the per-op records of
//! `zookeeper.jute`, `Stat`, watcher events and error codes. Imports nothing above `codec`.

mod primitives;
mod records;

pub use primitives::{Reader, Writer};
pub use records::*;

/// Why a frame could not be decoded. Any of these closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JuteError {
    #[error("frame truncated")]
    Truncated,
    #[error("invalid length {0}")]
    BadLength(i32),
    #[error("null string")]
    NullString,
    #[error("string is not UTF-8")]
    BadUtf8,
    #[error("trailing bytes after the record")]
    Trailing,
}

/// Opcodes (`ZooDefs.OpCode`).
pub mod opcode {
    pub const NOTIFICATION: i32 = 0;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const GET_ALL_CHILDREN_NUMBER: i32 = 104;
    pub const AUTH: i32 = 100;
    pub const SET_WATCHES: i32 = 101;
    pub const SET_WATCHES2: i32 = 105;
    pub const WHO_AM_I: i32 = 107;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

/// Special xids.
pub mod xid {
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

/// ZooKeeper error codes (`KeeperException.Code`) the facade sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ErrorCode {
    Ok = 0,
    SystemError = -1,
    RuntimeInconsistency = -2,
    MarshallingError = -5,
    Unimplemented = -6,
    OperationTimeout = -7,
    BadArguments = -8,
    NoNode = -101,
    NoAuth = -102,
    BadVersion = -103,
    NoChildrenForEphemerals = -108,
    NodeExists = -110,
    NotEmpty = -111,
    SessionExpired = -112,
    InvalidAcl = -114,
    AuthFailed = -115,
    SessionMoved = -118,
    /// ZooKeeper 3.7+'s QUOTAEXCEEDED: the stored znode data budget is used up.
    QuotaExceeded = -125,
}

impl ErrorCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Watcher event types.
pub mod event_type {
    pub const NODE_CREATED: i32 = 1;
    pub const NODE_DELETED: i32 = 2;
    pub const NODE_DATA_CHANGED: i32 = 3;
    pub const NODE_CHILDREN_CHANGED: i32 = 4;
}

/// Keeper state `SyncConnected`.
pub const STATE_SYNC_CONNECTED: i32 = 3;
