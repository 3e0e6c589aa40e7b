#!/bin/sh
# build.sh builds the static cutover binary that the container image ships.
# The Dockerfile runs this very script and .ci/run runs it too (then checks
# the result is static and stamped), so CI proves the image's build commands
# although no container engine runs there.
#
#   deploy/build.sh [OUTPUT]        (default: bin/cutover)
#
# CUTOVER_VERSION and CUTOVER_REVISION override what git says: a container
# build has no .git, so the Dockerfile passes them as build arguments.
# POSIX sh on purpose: the golang image has it, and nothing here needs bash.
set -eu
cd "$(dirname "$0")/.."
out=${1:-bin/cutover}
version=${CUTOVER_VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
revision=${CUTOVER_REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
# CGO off: the runtime image (distroless/static) has no libc.
# -trimpath: no build machine paths in the binary or its panics.
# -buildvcs=false: stamping is ours (below), and a tree without .git must build.
CGO_ENABLED=0 go build -trimpath -buildvcs=false \
	-ldflags "-s -w -X main.version=${version} -X main.revision=${revision}" \
	-o "$out" ./cmd/cutover
echo "built $out: version $version, revision $revision"
