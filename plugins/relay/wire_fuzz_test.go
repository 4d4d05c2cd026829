package relay

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadMsg: any byte stream a peer sends the control channel is read
// as whole messages of at most maxBody bytes, or ends with an error; what
// writeMsg writes reads back the same.
func FuzzReadMsg(f *testing.F) {
	f.Add([]byte{msgReserve, 0, 1, Version})
	f.Add([]byte{msgAnnounce, 0, 20})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for range 64 { // bounded: every message consumes ≥ 3 bytes
			typ, body, err := readMsg(r)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrProtocol) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(body) > maxBody {
				t.Fatalf("body of %d bytes over maxBody %d", len(body), maxBody)
			}
			var w bytes.Buffer
			if err := writeMsg(&w, typ, body); err != nil {
				t.Fatal(err)
			}
			typ2, body2, err := readMsg(&w)
			if err != nil || typ2 != typ || !bytes.Equal(body2, body) {
				t.Fatalf("round trip: %v %v %v", typ2, body2, err)
			}
		}
	})
}
