package dht

import (
	"encoding/hex"
	"testing"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

func TestInfohash(t *testing.T) {
	var tp framework.Topic
	for i := range tp {
		tp[i] = byte(i)
	}
	// Computed independently: sha256(b"dwebswarm:topic:" + bytes(range(32)))[:20]
	const want = "ee8ff7b95cff45aff30c2c442b9fa7f8e97e6c72"
	if got := Infohash(tp); hex.EncodeToString(got[:]) != want {
		t.Fatalf("Infohash = %x, want %s", got, want)
	}
	if Infohash(tp) == Infohash(framework.Topic{}) {
		t.Fatal("distinct topics collide")
	}
}
