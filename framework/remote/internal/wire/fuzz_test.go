package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/dwebswarm/dwebswarm-go/framework"
	pb "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire/proto"
)

// FuzzDecodePluginReplies feeds arbitrary bytes, as a plugin could send
// them, to every host-side decoder: wire messages after protobuf decoding,
// and raw fd-channel datagrams. Nothing may panic; whatever decodes must
// hold the decoders' promises (a dialable peer of the joined topic, a
// non-empty error message, a known hand-off kind).
func FuzzDecodePluginReplies(f *testing.F) {
	topic := framework.TopicFromString("fuzz")
	addr := &pb.Addr{Network: "tcp", Address: "127.0.0.1:80"}
	seeds := []proto.Message{
		&pb.ConnReply{Conn: &pb.ConnHandoff{Kind: pb.Handoff_HANDOFF_FD, Token: 7, Local: addr, Remote: addr}},
		&pb.ConnReply{Error: &pb.Error{Code: pb.Error_PORT_IN_USE, Message: "taken", Errno: 98}},
		&pb.DiscoveryEvent{Event: &pb.DiscoveryEvent_Peer{Peer: &pb.Peer{Host: "::1", Port: 9, Topic: topic[:], Referrer: &pb.Referrer{Host: "1.2.3.4", Port: 6881, Id: make([]byte, 20)}}}},
		&pb.ListenReply{Kind: pb.Handoff_HANDOFF_REMOTE, ListenerId: 3, Addr: &pb.Addr{Network: "unix", Address: "/tmp/x"}},
		&pb.PluginInfo{ProtocolVersion: ProtocolVersion, Kind: KindTransport, Name: "tcp"},
		&pb.ValidateReply{Rejection: &pb.Error{Code: pb.Error_REJECTED, Message: "no"}},
	}
	for i, m := range seeds {
		b, _ := proto.Marshal(m)
		f.Add(byte(i), b)
	}
	f.Add(byte(6), encodeFDMessage(fdMsgRelayEnd, 5, []byte("\x01boom")))
	f.Add(byte(6+16), encodeFDMessage(fdMsgFD, 5, nil))
	f.Fuzz(func(t *testing.T, which byte, b []byte) {
		switch which % 7 {
		case 0:
			var m pb.ConnReply
			if proto.Unmarshal(b, &m) != nil {
				return
			}
			checkError(t, m.GetError())
			if kind, local, remote, err := CheckHandoff(m.GetConn(), 7); err == nil {
				if local == nil || remote == nil || (kind != pb.Handoff_HANDOFF_FD && kind != pb.Handoff_HANDOFF_RELAY) {
					t.Fatalf("accepted hand-off %v %v %v", kind, local, remote)
				}
			} else if !errors.Is(err, ErrBadReply) {
				t.Fatalf("error %v does not wrap ErrBadReply", err)
			}
		case 1:
			var m pb.DiscoveryEvent
			if proto.Unmarshal(b, &m) != nil {
				return
			}
			if p, err := DecodePeerFor(m.GetPeer(), topic); err == nil {
				if p.Validate() != nil || p.Topic != topic {
					t.Fatalf("accepted peer %+v", p)
				}
				if p.Referrer != nil && len(p.Referrer.ID) > MaxReferrerID {
					t.Fatalf("referrer id of %d bytes", len(p.Referrer.ID))
				}
			}
			checkError(t, m.GetJoined().GetError())
		case 2:
			var m pb.ListenReply
			if proto.Unmarshal(b, &m) != nil {
				return
			}
			checkError(t, m.GetError())
			if a, err := AddrFromProto(m.GetAddr()); err == nil {
				_ = AddrPort(a)
				_ = a.String() + a.Network()
			}
		case 3:
			var m pb.PluginInfo
			if proto.Unmarshal(b, &m) != nil {
				return
			}
			if err := CheckInfo(&m, KindTransport); err == nil && (m.GetName() == "" || m.GetKind() != KindTransport) {
				t.Fatalf("accepted info %v", &m)
			}
		case 4:
			var m pb.ValidateReply
			if proto.Unmarshal(b, &m) != nil {
				return
			}
			checkError(t, m.GetRejection())
		case 5:
			var m pb.Peer
			if proto.Unmarshal(b, &m) != nil {
				return
			}
			if p, err := PeerFromProto(&m); err == nil {
				// a decoded peer survives the round trip unchanged
				q, err := PeerFromProto(PeerToProto(p))
				if err != nil || q.Addr() != p.Addr() || q.Topic != p.Topic || q.Local != p.Local || q.PrivateNet != p.PrivateNet {
					t.Fatalf("round trip %+v -> %+v, %v", p, q, err)
				}
			}
		case 6:
			m, err := parseFDMessage(b, int(which>>4))
			if err == nil && (m.token == 0 || (m.typ != fdMsgFD && m.typ != fdMsgRelayEnd) || len(m.text) > MaxErrorLen) {
				t.Fatalf("accepted fd message %+v", m)
			}
		}
	})
}

func checkError(t *testing.T, e *pb.Error) {
	err := DecodeError(e)
	if (e == nil) != (err == nil) {
		t.Fatalf("DecodeError(%v) = %v", e, err)
	}
	if err != nil && (err.Error() == "" || len(err.Error()) > MaxErrorLen) {
		t.Fatalf("error message of %d bytes", len(err.Error()))
	}
}

// FuzzDecodeDatagram feeds arbitrary relay messages of the shared UDP
// socket to the header decoder: nothing panics, whatever decodes names a
// valid address with the family the first byte says, its payload is the
// rest of the message, and encoding it again gives the same bytes.
func FuzzDecodeDatagram(f *testing.F) {
	for _, ap := range []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.1:6881"),
		netip.MustParseAddrPort("[::1]:1"),
		netip.MustParseAddrPort("[::ffff:10.0.0.1]:65535"),
	} {
		b := make([]byte, PktHeaderMax+5)
		copy(b[PktHeaderMax:], "hello")
		f.Add(b[PutDatagramHeader(b, ap):])
	}
	f.Add([]byte{})
	f.Add([]byte{4, 0, 1, 127, 0, 0})
	f.Add([]byte{6, 0, 1, 0, 0, 0, 0})
	f.Add([]byte{5, 0, 1, 1, 2, 3, 4, 'x'})
	f.Fuzz(func(t *testing.T, msg []byte) {
		ap, payload, err := DecodeDatagram(msg)
		if err != nil {
			if !errors.Is(err, ErrBadDatagram) {
				t.Fatalf("error %v does not wrap ErrBadDatagram", err)
			}
			return
		}
		if !ap.Addr().IsValid() || (msg[0] == pktFamily4) != ap.Addr().Is4() {
			t.Fatalf("decoded %v from family %d", ap, msg[0])
		}
		if len(payload) > MaxDatagram || !bytes.Equal(payload, msg[len(msg)-len(payload):]) {
			t.Fatalf("payload of %d bytes from a message of %d", len(payload), len(msg))
		}
		b := make([]byte, PktHeaderMax+len(payload))
		copy(b[PktHeaderMax:], payload)
		if again := b[PutDatagramHeader(b, ap):]; !bytes.Equal(again, msg) {
			t.Fatalf("re-encoded %x, want %x", again, msg)
		}
	})
}
