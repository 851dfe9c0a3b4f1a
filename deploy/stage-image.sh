#!/usr/bin/env bash
# Stages the build context of deploy/Dockerfile: a minimal root filesystem holding the raftka
# release binary, every shared library `ldd` lists for it, the dynamic loader, and the few files
# a `FROM scratch` image needs (passwd/group for the non-root user, nsswitch.conf, the default
# server.properties, an empty /data and a world-writable /tmp).
#
# Nothing is pulled from a registry: the libraries are the build host's (Debian 12) own, the same
# ones the binary was linked against. `make image` runs this script, then `docker build`.
#
# Usage: deploy/stage-image.sh [BINARY] [STAGE_DIR]
#   BINARY     default: $CARGO_TARGET_DIR/release/raftka (CARGO_TARGET_DIR defaults to
#              ~/.cache/raftka/target, as in the Makefile)
#   STAGE_DIR  default: deploy/.stage (gitignored; wiped and recreated)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/raftka/target}"
bin="${1:-$target_dir/release/raftka}"
stage="${2:-$here/.stage}"
uid=10001
gid=10001

die() { echo "stage-image: $*" >&2; exit 1; }

[ -x "$bin" ] || die "no executable at $bin (build it with: cargo build --release --bin raftka)"
command -v ldd >/dev/null || die "ldd not found"

rm -rf "$stage"
root="$stage/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc/raftka" "$root/tmp" "$stage/data"

# The binary, without its DWARF line tables (the release profile keeps them; symbols stay, so
# backtraces still name functions). Falls back to a plain copy when strip is missing.
if command -v strip >/dev/null; then
  strip --strip-debug -o "$root/usr/local/bin/raftka" "$bin"
else
  cp "$bin" "$root/usr/local/bin/raftka"
fi
chmod 0755 "$root/usr/local/bin/raftka"

# Every library ldd resolves (transitively) plus the loader, each copied (symlinks dereferenced)
# to the path the loader will look for it at.
ldd_out="$(ldd "$bin")" || die "ldd failed on $bin (not a dynamic executable?)"
if grep -q 'not found' <<<"$ldd_out"; then
  die "unresolved libraries:"$'\n'"$(grep 'not found' <<<"$ldd_out")"
fi
copy_lib() {
  local path="$1"
  [ -e "$path" ] || die "library $path listed by ldd does not exist"
  mkdir -p "$root$(dirname "$path")"
  cp -L "$path" "$root$path"
}
libs=()
while read -r line; do
  case "$line" in
    *"=> /"*) path="${line#*=> }"; path="${path%% (*}" ;;  # libfoo.so.1 => /lib/.../libfoo.so.1 (0x...)
    /*)       path="${line%% (*}" ;;                        # /lib64/ld-linux-x86-64.so.2 (0x...)
    *)        continue ;;                                   # linux-vdso.so.1 (0x...)
  esac
  copy_lib "$path"
  libs+=("$path")
done <<<"$ldd_out"

# glibc resolves host names through NSS. Since glibc 2.34 the files/dns modules are built into
# libc, but older hosts dlopen() them, so ship them when present (a few kB).
libc_dir="$(dirname "$(grep -o '/[^ ]*/libc\.so\.6' <<<"$ldd_out" | head -1)")"
for extra in libnss_files.so.2 libnss_dns.so.2 libresolv.so.2; do
  [ -e "$libc_dir/$extra" ] && copy_lib "$libc_dir/$extra"
done

# Every library the binary needs must be there; a missing one would only fail at run time, so
# check now. Linked against Debian's librocksdb (RAFTKA_ROCKSDB=system), RocksDB and the codecs
# it links (zlib/snappy/lz4/zstd) are shared libraries; the default static RocksDB
# (deploy/build-rocksdb.sh) and the Kafka record codecs are inside the binary itself.
wanted=(libc.so libgcc_s ld-linux)
if grep -q librocksdb <<<"$ldd_out"; then
  wanted+=(librocksdb libz libsnappy liblz4 libzstd)
else
  grep -qa rocksdb_open_column_families "$bin" \
    || die "$bin links no librocksdb and holds no RocksDB of its own"
  wanted+=(libstdc++)
fi
for want in "${wanted[@]}"; do
  found=0
  for l in "${libs[@]}"; do
    case "$(basename "$l")" in "$want"*) found=1 ;; esac
  done
  [ "$found" = 1 ] || die "expected a $want* library in ldd's output for $bin; got:"$'\n'"$ldd_out"
done

# Non-root user 10001 (numeric in the Dockerfile; these entries only give it a name).
cat >"$root/etc/passwd" <<EOF
root:x:0:0:root:/root:/sbin/nologin
raftka:x:$uid:$gid:raftka:/data:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
EOF
cat >"$root/etc/group" <<EOF
root:x:0:
raftka:x:$gid:
nogroup:x:65534:
EOF
# Docker bind-mounts /etc/hosts and /etc/resolv.conf; look names up in that order.
cat >"$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF

# Defaults for `docker run -p 9092:9092 -p 2181:2181 raftka`. RAFTKA_CONFIG points here, so
# mounting another file over it (or setting RAFTKA_CONFIG to another path) replaces these, and
# RAFTKA_* variables override single keys (flags > environment > file).
cat >"$root/etc/raftka/server.properties" <<'EOF'
# raftka container defaults (see README.md, "Docker"). Replace this file by mounting your own
# at /etc/raftka/server.properties, or override single keys with RAFTKA_* variables.
listeners=PLAINTEXT://0.0.0.0:9092
# What clients are told to connect to: the host side of `-p 9092:9092`.
advertised.listeners=PLAINTEXT://localhost:9092
zk.listen=0.0.0.0:2181
raft.listen=0.0.0.0:9193
http.listen=0.0.0.0:9644
log.dirs=/data
EOF

chmod 1777 "$root/tmp"
chmod 0755 "$stage/data"
cp "$here/Dockerfile" "$stage/Dockerfile"

size="$(du -sh "$root" | cut -f1)"
echo "stage-image: staged $bin and ${#libs[@]} libraries in $stage ($size)"
