package secure

import "testing"

// A responder that was reached through a relay says so in msg2: both
// sides report the session relayed; without the flag neither does.
func TestRelayedFlagReachesTheInitiator(t *testing.T) {
	topics := func() [][32]byte { return [][32]byte{topicA} }
	c, s := mustPair(t, topicA, Config{KeyPair: mustKey(t)}, Config{KeyPair: mustKey(t), Topics: topics, Relayed: true}, nil)
	if !c.Relayed() || !s.Relayed() {
		t.Fatalf("relayed: initiator %v, responder %v", c.Relayed(), s.Relayed())
	}
	c2, s2 := mustPair(t, topicA, Config{KeyPair: mustKey(t)}, Config{KeyPair: mustKey(t), Topics: topics}, nil)
	if c2.Relayed() || s2.Relayed() {
		t.Fatal("a direct session reported relayed")
	}
}

// The flag is inside msg2's encrypted payload: a relay that strips the
// trailing byte breaks the handshake instead of hiding the relay.
func TestRelayedFlagCannotBeStripped(t *testing.T) {
	topics := func() [][32]byte { return [][32]byte{topicA} }
	strip := func(dir, i int, msg []byte) ([]byte, bool) {
		if dir == 1 && i == 0 { // msg2, length prefix included
			out := append([]byte(nil), msg[:len(msg)-1]...)
			out[0], out[1] = byte((len(out)-2)>>8), byte(len(out)-2)
			return out, false
		}
		return msg, false
	}
	c, _ := handshake(t, Config{KeyPair: mustKey(t), Topic: topicA}, Config{KeyPair: mustKey(t), Topics: topics, Relayed: true}, strip)
	if c.err == nil {
		t.Fatal("the initiator accepted a msg2 with its flag stripped")
	}
}
