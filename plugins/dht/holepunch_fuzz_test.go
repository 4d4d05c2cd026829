package dht

import (
	"testing"

	"github.com/anacrolix/dht/v2/krpc"
)

func FuzzParsePunch(f *testing.F) {
	f.Add([]byte("\x7f\x00\x00\x01\x10\x00"), []byte("01234567890123456789"), false)
	f.Add([]byte(""), []byte(""), true)
	f.Add(make([]byte, 18), make([]byte, 20), true)
	f.Fuzz(func(t *testing.T, token, ih []byte, implied bool) {
		var a krpc.MsgArgs
		copy(a.InfoHash[:], ih)
		a.Token = string(token)
		a.ImpliedPort = implied
		req, err := parsePunch(&krpc.Msg{A: &a})
		if err != nil {
			return
		}
		if !req.addr.IsValid() || req.addr.Port() == 0 || req.addr.Addr().IsUnspecified() {
			t.Fatalf("accepted unusable address %v", req.addr)
		}
		if back, err := decodeCompact(encodeCompact(req.addr)); err != nil || back != req.addr {
			t.Fatalf("round trip %v -> %v %v", req.addr, back, err)
		}
	})
	_, _ = parsePunch(nil)
}
