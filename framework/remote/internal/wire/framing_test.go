package wire

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// Frames survive any split of the stream into reads, and an oversized
// frame is dropped whole without desynchronizing what follows.
func TestFrameReaderSplitsAndDropsOversized(t *testing.T) {
	const maxLen = 100
	var stream []byte
	var want [][]byte
	for i := range 200 {
		n := (i * 37) % (maxLen + 1)
		m := bytes.Repeat([]byte{byte(i)}, n)
		if i%17 == 5 {
			stream = appendFrame(stream, make([]byte, maxLen+1+i)) // dropped
			want = append(want, nil)
		}
		stream = appendFrame(stream, m)
		want = append(want, m)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	fr := newFrameReader(maxLen, frameHeader+maxLen)
	var got [][]byte
	for rest := stream; ; {
		for {
			m, ok, bad := fr.next()
			if !ok {
				break
			}
			if bad {
				got = append(got, nil)
				continue
			}
			got = append(got, append([]byte{}, m...))
		}
		if len(rest) == 0 {
			break
		}
		sp := fr.space()
		if len(sp) == 0 {
			t.Fatal("no space to read into while no frame is complete")
		}
		n := min(len(sp), len(rest), 1+rng.IntN(2*maxLen))
		copy(sp, rest[:n])
		fr.wrote(n)
		rest = rest[n:]
	}
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) || (got[i] == nil) != (want[i] == nil) {
			t.Fatalf("frame %d: got %d bytes, want %d", i, len(got[i]), len(want[i]))
		}
	}
}
