// Package remotepb holds the generated protobuf and gRPC code of the
// dwebswarm plugin protocol (remote.proto). Do not edit the .pb.go files:
// change remote.proto and run `go generate` in this directory.
package remotepb

//go:generate sh gen.sh
