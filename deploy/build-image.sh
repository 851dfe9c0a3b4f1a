#!/usr/bin/env bash
# Builds the raftka image from the release binary: stages the build context
# (deploy/stage-image.sh), then `docker build` on it. No base image and no registry are needed.
#
# Usage: deploy/build-image.sh [TAG] [docker build options...]
#   TAG        default raftka:latest
#   RAFTKA_RELEASE_BIN  the binary (default $CARGO_TARGET_DIR/release/raftka)
#   RAFTKA_IMAGE_STAGE  the staging dir (default deploy/.stage)
# e.g. deploy/build-image.sh raftka:test --no-cache
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tag="${1:-raftka:latest}"
shift || true
target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/raftka/target}"
bin="${RAFTKA_RELEASE_BIN:-$target_dir/release/raftka}"
stage="${RAFTKA_IMAGE_STAGE:-$here/.stage}"

"$here/stage-image.sh" "$bin" "$stage"

# Without the buildx plugin, newer docker CLIs need DOCKER_BUILDKIT=0 to use the classic builder
# (which handles this Dockerfile just as well).
if [ -z "${DOCKER_BUILDKIT:-}" ] && ! docker buildx version >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=0
fi
docker build -t "$tag" "$@" "$stage"
docker image inspect -f 'built {{index .RepoTags 0}}: {{.Size}} bytes' "$tag"
