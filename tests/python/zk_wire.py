"""A minimal synchronous ZooKeeper (jute) client, for replaying exact op sequences.

Layouts follow zookeeper.jute: every frame is int32 length + payload; requests are
(int xid, int type, body); replies are (int xid, long zxid, int err, body). Strings and buffers
are int32-length-prefixed (-1 = null), vectors are int32-count-prefixed, booleans one byte.
"""

from __future__ import annotations

import socket
import struct

CREATE, DELETE, EXISTS, GET_DATA, SET_DATA, GET_ACL, SET_ACL, GET_CHILDREN = 1, 2, 3, 4, 5, 6, 7, 8
SYNC, PING, GET_CHILDREN2, CHECK, MULTI, CREATE2, CLOSE = 9, 11, 12, 13, 14, 15, -11
OK, NONODE, NODEEXISTS, BADVERSION, NOTEMPTY, BADARGUMENTS = 0, -101, -110, -103, -111, -8
PERSISTENT, EPHEMERAL, PERSISTENT_SEQUENTIAL = 0, 1, 2
OPEN_ACL = [(31, "world", "anyone")]


def _buf(b: bytes | None) -> bytes:
    return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b


def _str(s: str) -> bytes:
    return _buf(s.encode())


def _acl(acls) -> bytes:
    out = struct.pack(">i", len(acls))
    for perms, scheme, ident in acls:
        out += struct.pack(">i", perms) + _str(scheme) + _str(ident)
    return out


class Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def int(self) -> int:
        (v,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return v

    def long(self) -> int:
        (v,) = struct.unpack_from(">q", self.data, self.pos)
        self.pos += 8
        return v

    def bool(self) -> bool:
        v = self.data[self.pos] != 0
        self.pos += 1
        return v

    def buffer(self) -> bytes | None:
        n = self.int()
        if n < 0:
            return None
        v = self.data[self.pos:self.pos + n]
        self.pos += n
        return v

    def string(self) -> str:
        return (self.buffer() or b"").decode()

    def strings(self) -> list[str]:
        return [self.string() for _ in range(self.int())]

    def stat(self) -> dict:
        keys = ["czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
                "ephemeralOwner", "dataLength", "numChildren", "pzxid"]
        fmt = ">qqqqiiiqiiq"
        vals = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return dict(zip(keys, vals))


class ZkWire:
    """One session over one TCP connection; `call` sends a request and returns (err, Reader)."""

    def __init__(self, host: str, port: int, timeout_ms: int = 30000, session_id: int = 0,
                 passwd: bytes = b"\0" * 16, read_only_byte: bool = True):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.xid = 0
        self.events: list[tuple[int, str]] = []
        req = struct.pack(">iqiq", 0, 0, timeout_ms, session_id) + _buf(passwd)
        if read_only_byte:
            req += b"\0"
        assert len(req) == (45 if read_only_byte else 44)
        self._send(req)
        r = Reader(self._recv())
        self.protocol_version, self.timeout_ms, self.session_id = r.int(), r.int(), r.long()
        self.passwd = r.buffer()

    def _send(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def _recv(self) -> bytes:
        head = self._exact(4)
        (n,) = struct.unpack(">i", head)
        return self._exact(n)

    def _exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed by server")
            out += chunk
        return out

    def call(self, op: int, body: bytes = b"") -> tuple[int, Reader]:
        self.xid += 1
        xid = self.xid
        self._send(struct.pack(">ii", xid, op) + body)
        while True:
            r = Reader(self._recv())
            got_xid, self.last_zxid, err = r.int(), r.long(), r.int()
            if got_xid == -1:  # watch notification
                etype, _state, path = r.int(), r.int(), r.string()
                self.events.append((etype, path))
                continue
            assert got_xid == xid, f"reply xid {got_xid} for request {xid}"
            return err, r

    # ---- ops, returning (err, result) -------------------------------------------------------
    def create(self, path, data=None, mode=PERSISTENT, op=CREATE):
        err, r = self.call(op, _str(path) + _buf(data) + _acl(OPEN_ACL) + struct.pack(">i", mode))
        if err:
            return err, None
        return err, (r.string(), r.stat()) if op == CREATE2 else r.string()

    def delete(self, path, version=-1):
        return self.call(DELETE, _str(path) + struct.pack(">i", version))[0], None

    def exists(self, path, watch=False):
        err, r = self.call(EXISTS, _str(path) + bytes([watch]))
        return err, (None if err else r.stat())

    def get_data(self, path, watch=False):
        err, r = self.call(GET_DATA, _str(path) + bytes([watch]))
        return err, (None if err else (r.buffer(), r.stat()))

    def set_data(self, path, data, version=-1):
        err, r = self.call(SET_DATA, _str(path) + _buf(data) + struct.pack(">i", version))
        return err, (None if err else r.stat())

    def get_children(self, path, watch=False):
        err, r = self.call(GET_CHILDREN, _str(path) + bytes([watch]))
        return err, (None if err else r.strings())

    def get_children2(self, path, watch=False):
        err, r = self.call(GET_CHILDREN2, _str(path) + bytes([watch]))
        return err, (None if err else (r.strings(), r.stat()))

    def multi(self, ops):
        """ops: list of ("create", path, data, mode) | ("delete", path, ver) |
        ("set", path, data, ver) | ("check", path, ver). Returns (header err, [(type, err)])."""
        body = b""
        for o in ops:
            if o[0] == "create":
                body += struct.pack(">i?i", CREATE, False, -1) + _str(o[1]) + _buf(o[2]) + _acl(OPEN_ACL) + struct.pack(">i", o[3])
            elif o[0] == "delete":
                body += struct.pack(">i?i", DELETE, False, -1) + _str(o[1]) + struct.pack(">i", o[2])
            elif o[0] == "set":
                body += struct.pack(">i?i", SET_DATA, False, -1) + _str(o[1]) + _buf(o[2]) + struct.pack(">i", o[3])
            elif o[0] == "check":
                body += struct.pack(">i?i", CHECK, False, -1) + _str(o[1]) + struct.pack(">i", o[2])
        body += struct.pack(">i?i", -1, True, -1)
        err, r = self.call(MULTI, body)
        results = []
        while True:
            typ, done, e = r.int(), r.bool(), r.int()
            if done:
                break
            if typ == -1:
                results.append((typ, r.int()))
            elif typ == CREATE:
                results.append((typ, r.string()))
            elif typ == SET_DATA:
                results.append((typ, r.stat()))
            else:
                results.append((typ, e))
        return err, results

    def close_session(self):
        err, _ = self.call(CLOSE)
        self.sock.close()
        return err

    def drop(self):
        """Disconnects without closeSession (like zookeeper-shell, or a crashed client)."""
        self.sock.close()


def four_letter(host: str, port: int, word: str) -> str:
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(word.encode())
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return out.decode()
            out += chunk
