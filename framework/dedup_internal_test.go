package framework

import "testing"

func TestDeduplicateTCPBeatsUTP(t *testing.T) {
	for _, cmp := range []int{-1, 1} {
		for _, client := range []bool{true, false} {
			tcp := &Conn{typ: "tcp", client: client}
			utp := &Conn{typ: "utp", client: !client}
			if drop, keep := pickDuplicate(tcp, utp, cmp); drop != utp || keep != tcp {
				t.Errorf("cmp %d client %v: TCP dropped", cmp, client)
			}
			if drop, keep := pickDuplicate(utp, tcp, cmp); drop != utp || keep != tcp {
				t.Errorf("cmp %d client %v (utp first): TCP dropped", cmp, client)
			}
		}
	}
}

// Both sides must drop the same physical connection whatever the order in
// which they deduplicate. Side A has id a < b. Conn 1 is dialled by A.
func TestDeduplicateChoiceIsSymmetricAndKeepsTheSmallerIDsDial(t *testing.T) {
	for _, aFirst := range []bool{true, false} {
		a1, a2 := &Conn{typ: "tcp", client: true}, &Conn{typ: "tcp", client: false}
		b1, b2 := &Conn{typ: "tcp", client: false}, &Conn{typ: "tcp", client: true}
		var dropA, dropB *Conn
		if aFirst {
			dropA, _ = pickDuplicate(a2, a1, -1)
			dropB, _ = pickDuplicate(b2, b1, 1)
		} else {
			dropA, _ = pickDuplicate(a1, a2, -1)
			dropB, _ = pickDuplicate(b1, b2, 1)
		}
		if (dropA == a1) != (dropB == b1) {
			t.Fatalf("order %v: A drops conn %v, B drops conn %v", aFirst, dropA == a1, dropB == b1)
		}
		if dropA != a2 {
			t.Fatal("conn 1 (dialled by the smaller id) should survive, conn 2 be dropped")
		}
	}
}
