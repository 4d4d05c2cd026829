package dht

import (
	"fmt"
	"testing"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
)

var validMessages = []string{
	"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
	"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
	"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
	"d1:rd2:id20:0123456789abcdefghij5:nodes26:abcdefghijklmnopqrstuvwxyze1:t2:aa1:y1:re",
	"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
	"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
	"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
	"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
	"d2:ip6:\x7f\x00\x00\x01\x1a\xe11:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
}

var invalidMessages = []string{
	"", "d", "de", "le", "i1e", "x",
	"d1:q13:announce_peer1:t2:aa1:y1:qe",
	"d1:q3:put1:t2:aa1:y1:qe",
	"d2:ip1:x1:t2:aa1:y1:re",
	"d2:ip0:1:t2:aa1:y1:re",
	"d1:rd2:id20:xxxxxxxxxxxxxxxxxxxx6:valuesl1:xee1:t2:aa1:y1:re",
	"d1:rd2:id20:xxxxxxxxxxxxxxxxxxxx6:valuesi1ee1:t2:aa1:y1:re",
	"d1:rd2:id20:xxxxxxxxxxxxxxxxxxxx5:nodes3:abce1:t2:aa1:y1:re",
	"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",
	"d1:ei5e1:t2:aa1:y1:ee",
	"d1:t2:aa1:y1:ze",
	"d1:y1:qe",
	"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:q1:y1:qe", // duplicate key
	"di1ei2ee",
	"d1:ti01e1:y1:qe",
	"d1:t2:aa1:y1:qi-0ee",
}

func TestValidKRPC(t *testing.T) {
	for _, m := range validMessages {
		if !validKRPC([]byte(m)) {
			t.Errorf("rejected valid %q", m)
		}
		var msg krpc.Msg
		if err := bencode.Unmarshal([]byte(m), &msg); err != nil {
			t.Errorf("seed %q does not decode: %v", m, err)
		}
	}
	for _, m := range invalidMessages {
		if validKRPC([]byte(m)) {
			t.Errorf("accepted invalid %q", m)
		}
	}
	deep := ""
	for range 20 {
		deep += "l"
	}
	if validKRPC([]byte("d1:t" + deep)) {
		t.Error("accepted deep nesting")
	}
}

// FuzzValidKRPC checks the guard's promise: whatever it accepts, the
// anacrolix decoder handles without panicking, and a query it accepts has
// arguments (so the query handlers cannot dereference nil).
func FuzzValidKRPC(f *testing.F) {
	for _, m := range append(append([]string{}, validMessages...), invalidMessages...) {
		f.Add([]byte(m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !validKRPC(b) {
			return
		}
		var m krpc.Msg
		err := bencode.Unmarshal(b, &m)
		if _, ok := err.(bencode.ErrUnusedTrailingBytes); ok {
			err = nil
		}
		if err != nil {
			return
		}
		if m.Y == "q" && m.A == nil {
			t.Fatalf("accepted query without arguments: %q", b)
		}
		if m.R == nil {
			return
		}
		for _, v := range m.R.Values {
			if len(v.IP) != 4 && len(v.IP) != 16 {
				t.Fatalf("accepted value %v", v)
			}
		}
	})
}

func TestParseHostPort(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:6881", "[::1]:1", "router.example:65535"} {
		if _, _, err := parseHostPort(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "x", ":1", "a:0", "a:65536", "a:-1", "a:b", "a b:1", "[::1:1"} {
		if _, _, err := parseHostPort(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseHostPort(f *testing.F) {
	for _, s := range []string{"127.0.0.1:6881", "[::1]:1", "router.example.com:6881", ":0", "a:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, port, err := parseHostPort(s)
		if err != nil {
			return
		}
		if host == "" || port < 1 || port > 65535 {
			t.Fatalf("%q -> %q %d", s, host, port)
		}
	})
}

// TestValidKRPCCheap: the guard runs on every packet; an ordinary query,
// reply or error must not allocate at all (a 10 000-node testnet spent 7 %
// of its CPU in the guard's map, then 6 % in its per-dictionary slices).
func TestValidKRPCCheap(t *testing.T) {
	for _, m := range validMessages {
		b := []byte(m)
		if n := testing.AllocsPerRun(100, func() { validKRPC(b) }); n != 0 {
			t.Errorf("%v allocations for %q, want 0", n, m)
		}
	}
}

// TestValidKRPCManyKeys: duplicate keys are found in large dictionaries too
// (past dictIndexAt, where the check switches to a map).
func TestValidKRPCManyKeys(t *testing.T) {
	mk := func(dupAt int) string {
		s := "d"
		for i := range 40 {
			k := fmt.Sprintf("k%02d", i)
			if i == dupAt {
				k = "k00"
			}
			s += fmt.Sprintf("%d:%si1e", len(k), k)
		}
		return s + "1:t2:aa1:y1:e1:ei1ee" // not valid KRPC ("y" is "e" with an int "e"), but parsed fully
	}
	for _, dup := range []int{-1, 3, dictIndexAt - 1, dictIndexAt, 39} {
		b := []byte(mk(dup))
		tok, next, ok := scanBencode(b, 0, 0)
		if want := dup < 0; ok != want {
			t.Errorf("duplicate at %d: parsed %v, want %v", dup, ok, want)
		}
		if ok && (tok.kind != 'd' || next != len(b)) {
			t.Errorf("duplicate at %d: %+v, next %d of %d", dup, tok, next, len(b))
		}
		if v, _, refOK := refParseBencode(b, 0); refOK != ok || (ok && len(v.dict) != 43) {
			t.Errorf("duplicate at %d: reference parsed %v with %d keys", dup, refOK, len(v.dict))
		}
	}
}
