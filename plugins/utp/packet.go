package utp

import (
	"encoding/binary"
	"errors"
)

// Packet types (the high nibble of a header's first byte).
const (
	stData   = 0 // payload carrying data
	stFin    = 1 // the sender has no more data; its seq_nr is the last one
	stState  = 2 // ack only (no payload, does not consume a seq_nr)
	stReset  = 3 // the connection is dead
	stSyn    = 4 // opens a connection
	numTypes = 5
)

// version is the uTP protocol version of BEP 29.
const version = 1

// headerLen is the size of the fixed header.
const headerLen = 20

// extSelectiveAck is the selective-ack extension id of BEP 29.
const extSelectiveAck = 1

// extDatagram is our extension (not in BEP 29): 4 bytes, big-endian, the
// largest datagram the sender reads. SYNs and SYN-ACKs carry it; a peer
// that sent none gets datagrams of Config.PacketSize at most (see
// newConn). libutp drops a packet whose first extension is not 0, 1 or 2
// but skips unknown ones further down the chain, so it follows an
// extension 2 (libutp's "extension bits", 8 bytes, all zero here;
// libtorrent and anacrolix/utp skip it).
const (
	extDatagram = 0x44
	extBits     = 2
)

// extDatagramLen is what the extDatagram chain adds to a header.
const extDatagramLen = 2 + 8 + 2 + 4

// maxSackBytes bounds the selective-ack bitmask we send (256 packets beyond
// ack_nr+1).
const maxSackBytes = 32

var (
	errShort      = errors.New("utp: packet shorter than a header")
	errVersion    = errors.New("utp: not a version 1 packet")
	errType       = errors.New("utp: unknown packet type")
	errExtension  = errors.New("utp: malformed extension")
	errSackLength = errors.New("utp: selective ack length not a positive multiple of 4")
)

// header is a parsed uTP header (BEP 29):
//
//	0       4       8               16              24              32
//	+-------+-------+---------------+---------------+---------------+
//	| type  | ver   | extension     | connection_id                 |
//	+-------+-------+---------------+---------------+---------------+
//	| timestamp_microseconds                                        |
//	+---------------+---------------+---------------+---------------+
//	| timestamp_difference_microseconds                             |
//	+---------------+---------------+---------------+---------------+
//	| wnd_size                                                      |
//	+---------------+---------------+---------------+---------------+
//	| seq_nr                        | ack_nr                        |
//	+---------------+---------------+---------------+---------------+
//
// followed by a chain of extensions (next extension type, length, data),
// of which only the selective ack (type 1: a bitmask whose bit i says that
// packet ack_nr+2+i arrived; bit 0 is the least significant bit of the
// first byte) is understood; others are skipped.
type header struct {
	typ    uint8
	connID uint16
	ts     uint32 // sender's clock, µs
	tsDiff uint32 // sender's clock minus our last timestamp it saw, µs
	wnd    uint32 // bytes the sender can still receive
	seq    uint16
	ack    uint16
	sack   []byte // selective-ack bitmask (nil: none); aliases the packet
	// maxDgram is the extDatagram extension: the largest datagram the
	// sender reads (0: absent).
	maxDgram uint32
}

// parseHeader parses b. The payload (what follows the header and its
// extensions) is returned as a sub-slice of b.
func parseHeader(b []byte) (h header, payload []byte, err error) {
	if len(b) < headerLen {
		return h, nil, errShort
	}
	if b[0]&0xf != version {
		return h, nil, errVersion
	}
	h.typ = b[0] >> 4
	if h.typ >= numTypes {
		return h, nil, errType
	}
	ext := b[1]
	h.connID = binary.BigEndian.Uint16(b[2:])
	h.ts = binary.BigEndian.Uint32(b[4:])
	h.tsDiff = binary.BigEndian.Uint32(b[8:])
	h.wnd = binary.BigEndian.Uint32(b[12:])
	h.seq = binary.BigEndian.Uint16(b[16:])
	h.ack = binary.BigEndian.Uint16(b[18:])
	rest := b[headerLen:]
	for n := 0; ext != 0; n++ {
		if len(rest) < 2 || n >= 16 {
			return h, nil, errExtension
		}
		next, l := rest[0], int(rest[1])
		if len(rest) < 2+l {
			return h, nil, errExtension
		}
		data := rest[2 : 2+l]
		if ext == extSelectiveAck {
			if l == 0 || l%4 != 0 {
				return h, nil, errSackLength
			}
			h.sack = data
		}
		if ext == extDatagram && l == 4 {
			h.maxDgram = binary.BigEndian.Uint32(data)
		}
		ext, rest = next, rest[2+l:]
	}
	return h, rest, nil
}

// putHeader writes h (and its extensions, if any) at the start of b,
// which must have room for headerLen + 2+len(h.sack) + extDatagramLen
// bytes, and
// returns the number of bytes written.
func putHeader(b []byte, h *header) int {
	b[0] = h.typ<<4 | version
	b[1] = 0
	binary.BigEndian.PutUint16(b[2:], h.connID)
	binary.BigEndian.PutUint32(b[4:], h.ts)
	binary.BigEndian.PutUint32(b[8:], h.tsDiff)
	binary.BigEndian.PutUint32(b[12:], h.wnd)
	binary.BigEndian.PutUint16(b[16:], h.seq)
	binary.BigEndian.PutUint16(b[18:], h.ack)
	n := headerLen
	next := &b[1] // where the type of the next extension goes
	if len(h.sack) > 0 {
		*next = extSelectiveAck
		b[n], b[n+1] = 0, byte(len(h.sack))
		next = &b[n]
		n += 2 + copy(b[n+2:], h.sack)
	}
	if h.maxDgram != 0 {
		*next = extBits
		b[n], b[n+1] = extDatagram, 8
		clear(b[n+2 : n+10])
		n += 10
		b[n], b[n+1] = 0, 4
		binary.BigEndian.PutUint32(b[n+2:], h.maxDgram)
		n += 6
	}
	return n
}

// seqLess reports whether a comes before b in 16-bit sequence space.
func seqLess(a, b uint16) bool { return int16(a-b) < 0 }
