package dwebswarm_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	dwebswarm "github.com/dwebswarm/dwebswarm-go"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewRejectsBadStaticPeer(t *testing.T) {
	_, err := dwebswarm.New(context.Background(), dwebswarm.StaticPeers("nope"))
	if err == nil {
		t.Fatal("bad static peer accepted")
	}
}
