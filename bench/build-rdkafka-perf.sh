#!/usr/bin/env bash
# Builds librdkafka's `rdkafka_performance` from the librdkafka source that the rdkafka-sys crate
# vendors (the version pinned in Cargo.lock), into a cache dir outside the repo. Idempotent: a
# second run only checks the stamp and prints the binary's path.
#
#   bench/build-rdkafka-perf.sh            # prints the path of the binary on stdout
#   bench/build-rdkafka-perf.sh --ssl      # a second binary with TLS and SASL (OpenSSL, Cyrus)
#
# Environment: RDKAFKA_PERF_DIR (default ~/.cache/raftka/rdkafka_performance), CARGO_TARGET_DIR
# (default ~/.cache/raftka/target), CARGO_HOME (default ~/.cargo).
#
# Fast path: link the example against the static librdkafka.a that the rdkafka-sys cmake build
# already produced in $CARGO_TARGET_DIR/{release,debug}/build/rdkafka-sys-*/out (seconds).
# Fallback: librdkafka's own CMake build with examples on, in $RDKAFKA_PERF_DIR/build (minutes).
#
# --ssl: the rdkafka-sys build has no TLS, so the SASL_SSL rows of `make bench` use
# rdkafka_performance linked against the librdkafka that tests/conformance/build.sh configures
# with OpenSSL and Cyrus SASL (the one `make test` builds; a few minutes if it is not there yet),
# as $out_dir/rdkafka_performance_ssl. The same generator source and version as the plaintext one.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out_dir=${RDKAFKA_PERF_DIR:-$HOME/.cache/raftka/rdkafka_performance}
target_dir=${CARGO_TARGET_DIR:-$HOME/.cache/raftka/target}
cargo_home=${CARGO_HOME:-$HOME/.cargo}

if [ "${1:-}" = "--ssl" ]; then
  tests_dir=$("$repo/tests/conformance/build.sh")
  lib_root=$(dirname "$tests_dir")
  bin="$out_dir/rdkafka_performance_ssl"
  stamp="$out_dir/.stamp-ssl"
  key=$(cat "$lib_root/.raftka-stamp")
  if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$key" ]; then
    echo "$bin"
    exit 0
  fi
  mkdir -p "$out_dir"
  echo "build-rdkafka-perf: linking rdkafka_performance against $lib_root/src/librdkafka.a (TLS, SASL)" >&2
  make -C "$lib_root/examples" rdkafka_performance >"$out_dir/ssl-build.log" 2>&1 \
    || { tail -20 "$out_dir/ssl-build.log" >&2; exit 1; }
  cp "$lib_root/examples/rdkafka_performance" "$bin"
  echo "$key" > "$stamp"
  echo "$bin"
  exit 0
fi

version=$(awk '/^name = "rdkafka-sys"/ { getline; gsub(/version = |"/, ""); print; exit }' "$repo/Cargo.lock")
[ -n "$version" ] || { echo "build-rdkafka-perf: rdkafka-sys not found in Cargo.lock" >&2; exit 1; }

bin="$out_dir/rdkafka_performance"
stamp="$out_dir/.stamp"
if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
  echo "$bin"
  exit 0
fi

src=""
for d in "$cargo_home"/registry/src/*/"rdkafka-sys-$version"/librdkafka; do
  [ -f "$d/examples/rdkafka_performance.c" ] && { src=$d; break; }
done
if [ -z "$src" ]; then
  echo "build-rdkafka-perf: librdkafka source of rdkafka-sys $version not in $cargo_home/registry;" \
       "run 'cargo fetch' (or build the tests once)" >&2
  exit 1
fi
mkdir -p "$out_dir"
echo "build-rdkafka-perf: librdkafka from $src" >&2

# Fast path: an rdkafka-sys build whose CMake tree has the generated config.h (rd.h includes
# "../config.h", which resolves through the generated/dummy include dir).
for profile in release debug; do
  for o in "$target_dir/$profile"/build/rdkafka-sys-*/out; do
    lib="$o/lib/librdkafka.a"
    gen="$o/build/generated"
    [ -f "$lib" ] && [ -f "$gen/config.h" ] || continue
    echo "build-rdkafka-perf: linking against $lib" >&2
    # The cmake-build of rdkafka-sys enables zlib only (no SSL/SASL/zstd/curl) in this repo.
    if cc -O2 -g -DHAVE_CONFIG_H -I"$gen/dummy" -I"$src/src" \
        "$src/examples/rdkafka_performance.c" -o "$bin.tmp" \
        "$lib" -lz -lpthread -lm -ldl -lrt 2>"$out_dir/cc.log"; then
      mv "$bin.tmp" "$bin"
      echo "$version" > "$stamp"
      echo "$bin"
      exit 0
    fi
    echo "build-rdkafka-perf: linking against $lib failed (see $out_dir/cc.log); trying next" >&2
  done
done

# Fallback: librdkafka's own CMake build (out of tree: the registry source stays untouched).
command -v cmake >/dev/null || { echo "build-rdkafka-perf: cmake missing (make deps)" >&2; exit 1; }
echo "build-rdkafka-perf: building librdkafka with CMake in $out_dir/build (a few minutes)" >&2
cmake -S "$src" -B "$out_dir/build" -DCMAKE_BUILD_TYPE=Release -DRDKAFKA_BUILD_STATIC=1 \
  -DRDKAFKA_BUILD_EXAMPLES=1 -DRDKAFKA_BUILD_TESTS=0 -DWITH_SSL=0 -DWITH_SASL=0 -DWITH_ZSTD=0 \
  -DWITH_CURL=0 -DENABLE_LZ4_EXT=0 -DCMAKE_POLICY_VERSION_MINIMUM=3.5 >"$out_dir/cmake.log" 2>&1
cmake --build "$out_dir/build" --target rdkafka_performance -j "$(nproc)" >>"$out_dir/cmake.log" 2>&1
cp "$out_dir/build/examples/rdkafka_performance" "$bin"
echo "$version" > "$stamp"
echo "$bin"
