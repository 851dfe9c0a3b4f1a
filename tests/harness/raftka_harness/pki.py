"""Test certificates made with Debian's `openssl` (P-256 keys, no passwords): a CA, and
certificates it signs for servers, clients or both. Files land in one directory as
`<name>.key`, `<name>.crt` and, for use as a raftka keystore, `<name>.pem` (key + certificate).
Shared by the TLS tests, the benchmarks and Jepsen's `--secure` runs."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterable

# The subject alternative names of a server certificate by default.
LOCAL_NAMES = ("DNS:localhost", "IP:127.0.0.1")

_USAGE = {"server": "serverAuth", "client": "clientAuth", "both": "serverAuth,clientAuth"}


def openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr.strip()}")


def make_ca(d: Path, name: str = "ca", days: int = 30) -> Path:
    """A self-signed CA `<name>.crt` / `<name>.key` in `d`."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", str(days),
            "-subj", f"/CN={name}", cwd=d)
    return d / f"{name}.crt"


def make_cert(d: Path, name: str, subject: str, ca: str = "ca", *, days: int = 30,
              usage: str = "server", names: Iterable[str] = LOCAL_NAMES) -> Path:
    """A certificate for `subject` signed by CA `ca` (in `d`). `usage` is `server` (with the
    subject alternative `names`), `client` (clientAuth only) or `both`. `days` may be negative
    (an expired certificate). Returns the `<name>.pem` keystore (key + certificate)."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)
    ext = [f"extendedKeyUsage={_USAGE[usage]}"]
    if usage != "client":
        ext.insert(0, "subjectAltName=" + ",".join(names))
    (d / f"{name}.ext").write_text("\n".join(ext) + "\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", str(days), "-extfile", f"{name}.ext",
            cwd=d)
    pem = d / f"{name}.pem"
    pem.write_text((d / f"{name}.key").read_text() + (d / f"{name}.crt").read_text())
    return pem


def make_pkcs12(d: Path, name: str, password: str, ca: str = "ca") -> Path:
    """`<name>.p12`: the key and certificate of `name` with the CA's certificate."""
    openssl("pkcs12", "-export", "-in", f"{name}.crt", "-inkey", f"{name}.key", "-certfile",
            f"{ca}.crt", "-passout", f"pass:{password}", "-out", f"{name}.p12", cwd=d)
    return d / f"{name}.p12"
