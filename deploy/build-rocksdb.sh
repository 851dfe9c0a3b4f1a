#!/usr/bin/env bash
# Builds RocksDB once, as a static library with the CPU's CRC-32C and carry-less-multiply
# instructions, and prints the directory holding `librocksdb.a` (for ROCKSDB_LIB_DIR with
# ROCKSDB_STATIC=1; with RAFTKA_ROCKSDB=static the Makefile does this for every cargo command).
#
# Why: Debian's librocksdb is built PORTABLE without SSE 4.2, so RocksDB checksums every WAL
# record, every flushed block and every block read with a table-driven CRC-32C loop in
# software — a quarter of a broker's CPU on the produce path (docs/benchmarks.md, Profile).
# The source is the one the `librocksdb-sys` crate of Cargo.lock bundles (so headers,
# bindings and library agree), compiled by that crate's own build script with the CPU
# features this machine has (HAVE_SSE42 / HAVE_PCLMUL / HAVE_AVX2 ...) and LZ4.
#
# The result is cached outside the clone, keyed by the crate version and the feature set:
#   ${RAFTKA_CACHE:-~/.cache/raftka}/rocksdb/<librocksdb-sys version>-<features>/librocksdb.a
# A cold build compiles RocksDB's C++ once (~12 min on 2 cores); later calls print the path.
# `build-rocksdb.sh --dir` prints the path without building.
# The Makefile links it with RAFTKA_ROCKSDB=static; the default (system) links Debian's
# librocksdb.so. Not yet defined here, unlike Debian's CMake build: ROCKSDB_FALLOCATE_PRESENT,
# ROCKSDB_RANGESYNC_PRESENT and the other platform probes (README › RocksDB).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${RAFTKA_CACHE:-$HOME/.cache/raftka}/rocksdb"

# The crate version from Cargo.lock (the `name = "librocksdb-sys"` entry's next line).
version="$(awk '/^name = "librocksdb-sys"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$repo/Cargo.lock")"
[ -n "$version" ] || { echo "build-rocksdb: librocksdb-sys not found in Cargo.lock" >&2; exit 1; }

# Only the features this CPU has: a library built here runs here (and on anything newer).
flags="$(grep -m1 '^flags' /proc/cpuinfo || true)"
features=()
tag=""
for f in sse4_2:sse4.2 pclmulqdq:pclmulqdq avx2:avx2 bmi1:bmi1 abm:lzcnt; do
  cpu="${f%%:*}" rust="${f#*:}"
  if grep -qw "$cpu" <<<"$flags"; then
    features+=("+$rust")
    tag="$tag-${rust//./}"
  fi
done
dir="$cache/$version${tag:--portable}-lz4"
# `--dir`: print where the library is (or will be) without building it.
if [ "${1:-}" = --dir ] || [ -f "$dir/librocksdb.a" ]; then
  echo "$dir"
  exit 0
fi

mkdir -p "$cache"
# One build at a time (two make runs on a cold machine): the second waits, then finds it done.
exec 9>"$cache/.lock"
flock 9
if [ -f "$dir/librocksdb.a" ]; then
  echo "$dir"
  exit 0
fi
build="$cache/build"
log="$cache/build.log"
rustflags=""
[ ${#features[@]} -eq 0 ] || rustflags="-C target-feature=$(IFS=,; echo "${features[*]}")"
echo "build-rocksdb: compiling RocksDB $version with ${features[*]:-no CPU extensions} (once; log: $log)" >&2
start=$(date +%s)
(
  cd "$repo"
  # ROCKSDB_COMPILE makes librocksdb-sys build its bundled source even though
  # .cargo/config.toml names Debian's library directory. LZ4 comes from Cargo.toml's
  # `rocksdb` features (the column families other than the log use it).
  env -u ROCKSDB_LIB_DIR -u ROCKSDB_STATIC ROCKSDB_COMPILE=1 \
    RUSTFLAGS="$rustflags" CARGO_TARGET_DIR="$build" \
    CARGO_PROFILE_RELEASE_DEBUG=false \
    cargo build --release --locked -p librocksdb-sys
) >"$log" 2>&1 || { tail -30 "$log" >&2; echo "build-rocksdb: failed (log: $log)" >&2; exit 1; }
lib="$(ls -t "$build"/release/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -1)"
[ -n "$lib" ] || { echo "build-rocksdb: no librocksdb.a under $build" >&2; exit 1; }
mkdir -p "$dir.tmp"
# Without debug info (the release profile's `debug = 1` would give the C++ full DWARF: 1 GB).
strip --strip-debug -o "$dir.tmp/librocksdb.a" "$lib" 2>/dev/null || cp "$lib" "$dir.tmp/librocksdb.a"
rm -rf "$dir" && mv "$dir.tmp" "$dir"
rm -rf "$build"
echo "build-rocksdb: done in $(( $(date +%s) - start )) s: $dir/librocksdb.a" >&2
echo "$dir"
