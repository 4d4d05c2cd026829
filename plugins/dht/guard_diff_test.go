package dht

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// sameAsReference fails t if the guard and its reference parser
// (guard_ref_test.go) disagree on b: on validKRPC, and on whether b starts
// with a bencode value and where that ends.
func sameAsReference(t *testing.T, b []byte) {
	t.Helper()
	if got, want := validKRPC(b), refValidKRPC(b); got != want {
		t.Fatalf("validKRPC(%q) = %v, reference %v", b, got, want)
	}
	_, n, ok := scanBencode(b, 0, 0)
	_, refN, refOK := refParseBencode(b, 0)
	if ok != refOK || (ok && n != refN) {
		t.Fatalf("scanBencode(%q) = %d %v, reference %d %v", b, n, ok, refN, refOK)
	}
}

// FuzzValidKRPCReference: the allocation-free guard accepts exactly what
// the original tree-building parser accepted.
func FuzzValidKRPCReference(f *testing.F) {
	for _, m := range append(append([]string{}, validMessages...), invalidMessages...) {
		f.Add([]byte(m))
	}
	// dictionaries around the switch to the duplicate-key map
	for _, c := range [][3]int{{15, -1, 0}, {16, -1, 0}, {17, 16, 0}, {20, 19, 17}, {20, 3, 18}} {
		f.Add([]byte(manyKeyDict(c[0], c[1], c[2])))
	}
	f.Fuzz(func(t *testing.T, b []byte) { sameAsReference(t, b) })
}

// manyKeyDict is a KRPC query whose "a" dictionary has n keys; when dup ≥
// 0, key dup repeats key of (a duplicate).
func manyKeyDict(n, dup, of int) string {
	var sb strings.Builder
	sb.WriteString("d1:ad2:id20:abcdefghij0123456789")
	for i := 1; i < n; i++ {
		k := fmt.Sprintf("k%03d", i)
		if i == dup {
			k = fmt.Sprintf("k%03d", of)
			if of == 0 {
				k = "id"
			}
		}
		fmt.Fprintf(&sb, "%d:%si%de", len(k), k, i)
	}
	sb.WriteString("e1:q4:ping1:t2:aa1:y1:qe")
	return sb.String()
}

// The duplicate-key map of a dictionary with thousands of keys aliases the
// packet: a hostile 64 KiB packet costs a map, not an allocation per key
// (review of issue 16: 8 330 allocations per packet).
func TestValidKRPCManyKeysAllocations(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("d1:ad2:id20:abcdefghij0123456789")
	for i := 0; sb.Len() < 65000; i++ {
		k := fmt.Sprint(i)
		fmt.Fprintf(&sb, "%d:%si0e", len(k), k)
	}
	sb.WriteString("e1:q4:ping1:t2:aa1:y1:qe")
	b := []byte(sb.String())
	sameAsReference(t, b)
	if allocs := testing.AllocsPerRun(5, func() { validKRPC(b) }); allocs > 256 { // the map's growth, not one per key
		t.Fatalf("%v allocations for one packet of many keys", allocs)
	}
	for _, c := range [][3]int{{17, 16, 0}, {20, 19, 17}, {40, 39, 1}} {
		m := []byte(manyKeyDict(c[0], c[1], c[2]))
		sameAsReference(t, m)
		if validKRPC(m) {
			t.Errorf("%d keys with key %d repeating key %d: accepted", c[0], c[1], c[2])
		}
	}
	if m := []byte(manyKeyDict(40, -1, 0)); !validKRPC(m) {
		t.Error("40 distinct keys: refused")
	}
}

// genBencode writes a random bencode-like value: mostly well formed and
// KRPC-shaped, with occasional corruptions of every rule the parsers check
// (integers, string lengths, key types, duplicates, nesting, truncation).
func genBencode(rng *rand.Rand, sb *strings.Builder, depth int) {
	keys := []string{"t", "y", "q", "a", "r", "e", "id", "ip", "values", "nodes", "nodes6", "token", "target", "k", "k"}
	str := func() string {
		switch rng.IntN(8) {
		case 0:
			return "q"
		case 1:
			return "r"
		case 2:
			return "e"
		case 3:
			return strings.Repeat("x", 20)
		case 4:
			return strings.Repeat("n", 26*rng.IntN(3))
		case 5:
			return strings.Repeat("6", []int{6, 18, 5, 0}[rng.IntN(4)])
		default:
			return strings.Repeat("s", rng.IntN(40))
		}
	}
	switch k := rng.IntN(10); {
	case depth > 9 || k < 3:
		s := str()
		switch rng.IntN(30) {
		case 0:
			fmt.Fprintf(sb, "0%d:%s", len(s), s) // leading zero
		case 1:
			fmt.Fprintf(sb, "%d:%s", len(s)+1, s) // overlong
		case 2:
			fmt.Fprintf(sb, "%d%s", len(s), s) // no colon
		default:
			fmt.Fprintf(sb, "%d:%s", len(s), s)
		}
	case k < 5:
		ints := []string{"i0e", "i1e", "i-1e", "i201e", "i-0e", "i01e", "ie", "i-e", "i12345678901234567890e", "i1234567890123456789e", "i1"}
		sb.WriteString(ints[rng.IntN(len(ints))])
	case k < 7:
		sb.WriteByte('l')
		for range rng.IntN(4) {
			genBencode(rng, sb, depth+1)
		}
		sb.WriteByte('e')
	default:
		sb.WriteByte('d')
		n := rng.IntN(6)
		if rng.IntN(20) == 0 {
			n = 14 + rng.IntN(6) // around dictIndexAt
		}
		for i := range n {
			switch rng.IntN(20) {
			case 0:
				genBencode(rng, sb, depth+1) // a key of any type
			case 1:
				fmt.Fprintf(sb, "3:k%02d", i%100)
			default:
				if n > 8 {
					fmt.Fprintf(sb, "3:k%02d", rng.IntN(40)) // duplicates likely
				} else {
					key := keys[rng.IntN(len(keys))]
					fmt.Fprintf(sb, "%d:%s", len(key), key)
				}
			}
			genBencode(rng, sb, depth+1)
		}
		sb.WriteByte('e')
	}
}

// genKRPC writes a random KRPC-shaped message: the fields the guard
// checks, each usually right, sometimes of a random (often wrong) value,
// sometimes missing.
func genKRPC(rng *rand.Rand, sb *strings.Builder) {
	field := func(key, good string) {
		switch rng.IntN(12) {
		case 0: // missing
		case 1:
			fmt.Fprintf(sb, "%d:%s", len(key), key)
			genBencode(rng, sb, 1)
		default:
			fmt.Fprintf(sb, "%d:%s%s", len(key), key, good)
		}
	}
	id := "20:" + strings.Repeat("i", 20)
	sb.WriteByte('d')
	switch rng.IntN(3) {
	case 0:
		field("a", "d"+func() string {
			var a strings.Builder
			a.WriteString("2:id" + id)
			if rng.IntN(2) == 0 {
				a.WriteString("6:target" + id)
			}
			return a.String()
		}()+"e")
		field("q", "4:ping")
		field("t", "2:aa")
		field("y", "1:q")
	case 1:
		field("ip", "6:abcdef")
		var r strings.Builder
		r.WriteString("d2:id" + id)
		if rng.IntN(2) == 0 {
			fmt.Fprintf(&r, "5:nodes%d:%s", 26*rng.IntN(3), strings.Repeat("n", 26*rng.IntN(3)))
		}
		if rng.IntN(3) == 0 {
			r.WriteString("6:nodes638:" + strings.Repeat("m", 38))
		}
		if rng.IntN(3) == 0 {
			r.WriteString("6:valuesl6:abcdef18:" + strings.Repeat("v", 18) + "e")
		}
		r.WriteByte('e')
		field("r", r.String())
		field("t", "2:aa")
		field("y", "1:r")
	default:
		field("e", "li201e5:erroree")
		field("t", "2:aa")
		field("y", "1:e")
	}
	sb.WriteByte('e')
}

// TestValidKRPCReference runs the differential check of
// FuzzValidKRPCReference over generated messages in every test run.
func TestValidKRPCReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 1))
	accepted := 0
	for range 30000 {
		var sb strings.Builder
		if rng.IntN(3) == 0 {
			genBencode(rng, &sb, 0)
		} else {
			genKRPC(rng, &sb)
		}
		b := []byte(sb.String())
		if rng.IntN(4) == 0 && len(b) > 0 {
			b = b[:rng.IntN(len(b))] // truncated
		}
		if rng.IntN(4) == 0 {
			b = append(b, "junk"...) // trailing bytes
		}
		sameAsReference(t, b)
		if validKRPC(b) {
			accepted++
		}
	}
	for _, m := range append(append([]string{}, validMessages...), invalidMessages...) {
		for i := range len(m) + 1 {
			sameAsReference(t, []byte(m[:i]))
		}
	}
	t.Logf("%d of 30000 generated messages valid", accepted)
	if accepted < 100 {
		t.Errorf("only %d generated messages valid: the generator explores too little", accepted)
	}
}

// BenchmarkValidKRPC: the guard's cost per packet (run with -benchmem):
// the current scanner and the reference tree-building parser.
func BenchmarkValidKRPC(b *testing.B) {
	msgs := map[string]string{
		"ping-query":      validMessages[0],
		"ping-reply":      validMessages[1],
		"find_node-reply": "d1:rd2:id20:0123456789abcdefghij5:nodes208:" + strings.Repeat("n", 208) + "5:token8:aoeusnthe1:t2:aa1:v4:LT\x01\x021:y1:re",
	}
	for _, name := range []string{"ping-query", "ping-reply", "find_node-reply"} {
		m := []byte(msgs[name])
		if !validKRPC(m) {
			b.Fatalf("%s invalid", name)
		}
		b.Run("scan/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				validKRPC(m)
			}
		})
		b.Run("reference/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				refValidKRPC(m)
			}
		})
	}
}
