#!/bin/sh
# Regenerates remote.pb.go and remote_grpc.pb.go from remote.proto.
#
# Needs protoc (Debian/Ubuntu: apt-get install -y protobuf-compiler). The Go
# plugins are installed at pinned versions into a private GOBIN, so the
# output does not depend on what happens to be on PATH. CI needs protoc only
# to regenerate; building and testing use the committed files.
set -eu
cd "$(dirname "$0")"
PROTOC_GEN_GO_VERSION=v1.36.12      # = google.golang.org/protobuf in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2   # protoc-gen-go-grpc for grpc v1.85
bin="${TMPDIR:-/tmp}/dwebswarm-protoc-bin"
GOBIN="$bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
GOBIN="$bin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"
PATH="$bin:$PATH" protoc \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	remote.proto
