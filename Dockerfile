# syntax=docker/dockerfile:1
# chatprep worker image: a static binary on distroless, running as non-root.
# Build: docker build -t chatprep-worker --build-arg VERSION=$(git describe --always) .

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/worker ./worker

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/worker /worker
# 65532 is distroless's "nonroot"; the root file system can be mounted read-only
# (the worker writes nothing to disk).
USER 65532:65532
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["/worker", "healthcheck"]
ENTRYPOINT ["/worker"]
CMD ["run"]
