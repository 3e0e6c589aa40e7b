# The cutover gateway as a container image.
#
#   docker build --build-arg CUTOVER_VERSION=$(git describe --tags --always) \
#                --build-arg CUTOVER_REVISION=$(git rev-parse HEAD) -t cutover .
#   docker run -v $PWD/cutover.yaml:/etc/cutover/cutover.yaml:ro -p 8080:8080 cutover
#
# The build stage runs deploy/build.sh, the same script .ci/run runs and
# checks, so CI proves these build commands without a container engine.
# deploy/kubernetes/dockerfile_test.go (a module of its own) holds this file to the
# Kubernetes manifests and to the code: ports, paths, user.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# .git is not sent to the build (.dockerignore): the version comes from here.
ARG CUTOVER_VERSION=dev
ARG CUTOVER_REVISION=unknown
RUN CUTOVER_VERSION="${CUTOVER_VERSION}" CUTOVER_REVISION="${CUTOVER_REVISION}" \
    sh deploy/build.sh /out/cutover && \
    mkdir -p /out/data

# Static, no shell, no package manager; runs as uid 65532 ("nonroot").
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cutover /usr/local/bin/cutover
# The data directory (retry queue, statistics) must be writable by nonroot
# when no volume is mounted over it.
COPY --from=build --chown=65532:65532 /out/data /var/lib/cutover
USER 65532:65532
# Flags read these variables; mount the configuration at this path.
ENV CUTOVER_CONFIG=/etc/cutover/cutover.yaml \
    CUTOVER_DATA_DIR=/var/lib/cutover \
    CUTOVER_LOG_FORMAT=json
# 8080: the proxy (listen). 9090: the admin listener (admin.listen), which the
# configuration must move off loopback, with admin.auth, to be reached.
EXPOSE 8080 9090
VOLUME ["/var/lib/cutover"]
# Exec form: cutover is PID 1 and gets SIGTERM itself; server.drain_delay
# keeps it serving while endpoints are removed, with no shell `sleep`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/cutover"]
CMD ["serve"]
