# syntax=docker/dockerfile:1
# Builds a static cybereason-connector binary and runs it as a non-root user
# on a distroless base, which works with a read-only root filesystem.
#
#   docker build --build-arg VERSION=0.1.0 -t cybereason-connector:0.1.0 .

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-trimpath

COPY go.mod go.sum ./
RUN go mod download

COPY . .
ARG VERSION=devel
RUN go build -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/cybereason-connector ./cmd/cybereason-connector \
 && /out/cybereason-connector version

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cybereason-connector /usr/local/bin/cybereason-connector
# 65532 is the "nonroot" user of the distroless images; the Kubernetes
# manifests run the pod with the same numeric ids.
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/cybereason-connector"]
CMD ["run"]
