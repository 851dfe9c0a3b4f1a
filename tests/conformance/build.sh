#!/usr/bin/env bash
# Builds librdkafka's integration test runner (`tests/test-runner`) from the librdkafka source
# that the rdkafka-sys crate vendors (the version pinned in Cargo.lock). The registry copy is
# never modified: it is copied into a cache dir outside the clone and built there. Idempotent: a
# second run only checks the stamp and prints the runner's directory.
#
#   tests/conformance/build.sh        # prints the librdkafka tests/ dir (holding test-runner)
#
# Environment: RAFTKA_CONFORMANCE_DIR (default ~/.cache/raftka/conformance), CARGO_HOME
# (default ~/.cargo). Needs the Debian packages of `make deps-conformance` (compiler, zlib, zstd,
# lz4, OpenSSL, Cyrus SASL, libcurl headers, rapidjson).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${RAFTKA_CONFORMANCE_DIR:-$HOME/.cache/raftka/conformance}
cargo_home=${CARGO_HOME:-$HOME/.cargo}

version=$(awk '/^name = "rdkafka-sys"/ { getline; gsub(/version = |"/, ""); print; exit }' "$repo/Cargo.lock")
[ -n "$version" ] || { echo "conformance-build: rdkafka-sys not found in Cargo.lock" >&2; exit 1; }

dest="$cache/librdkafka-$version"
# One build at a time (make test's subset and make conformance may start together): the
# second waits for the first, then finds its stamp.
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9
runner="$dest/tests/test-runner"
stamp="$dest/.raftka-stamp"
if [ -x "$runner" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
  echo "$dest/tests"
  exit 0
fi

find_src() {
  for d in "$cargo_home"/registry/src/*/"rdkafka-sys-$version"/librdkafka; do
    [ -f "$d/tests/test.c" ] && { echo "$d"; return 0; }
  done
  return 1
}
src=$(find_src) || {
  echo "conformance-build: rdkafka-sys $version not in $cargo_home/registry; running cargo fetch" >&2
  (cd "$repo" && cargo fetch >&2)
  src=$(find_src) || { echo "conformance-build: librdkafka source still missing after cargo fetch" >&2; exit 1; }
}

echo "conformance-build: copying $src to $dest" >&2
mkdir -p "$cache"
# Built in place; the stamp is written last, so an interrupted build starts over.
rm -rf "$dest"
cp -a "$src" "$dest"
chmod -R u+w "$dest"
cd "$dest"
log="$cache/build-$version.log"
echo "conformance-build: configure and build (a few minutes; log in $log)" >&2
{
  # No --install-deps: everything comes from Debian packages (make deps-conformance).
  ./configure --disable-gssapi
  make -j"$(nproc)" libs
  make -j"$(nproc)" -C tests build
} >"$log" 2>&1 || { tail -30 "$log" >&2; echo "conformance-build: failed, see $log" >&2; exit 1; }
echo "$version" > "$stamp"
echo "$dest/tests"
