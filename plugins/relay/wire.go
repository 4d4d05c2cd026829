package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// Protocol constants (see doc.go for the wire format).
const (
	// Version is the relay protocol version a client sends in RESERVE.
	Version = 1

	msgReserve    = 1 // C→R: version(1)
	msgReserved   = 2 // R→C: port(2)
	msgAnnounce   = 3 // C→R: infohash(20)
	msgUnannounce = 4 // C→R: infohash(20)
	msgAnnounced  = 5 // R→C: infohash(20) status(1)
	msgRefused    = 6 // R→C: reason (UTF-8)
	msgIncoming   = 7 // R→C: token(16) dialler-address (UTF-8)

	statusOK    = 0
	statusLimit = 1
	statusError = 2

	maxBody = 512

	tokenSize = 16
)

// connectBackMagic opens a connect-back connection (client → relay, in
// clear, then the token). A Noise handshake starts with a 2-byte length of
// about 80, so its first byte is never 0xFF.
var connectBackMagic = [4]byte{0xFF, 'D', 'R', 'C'}

// TopicName is the string the relay topic is made from.
const TopicName = "dwebswarm relay v1"

// Topic is the reserved relay topic: a reservation session proves it in
// the Noise handshake, and relays announce its DHT infohash with their
// control port so that clients can find them.
var Topic = framework.TopicFromString(TopicName)

// Sentinel errors.
var (
	// ErrRefused: the relay refused the reservation (a limit, a bad
	// request); the error says why.
	ErrRefused = errors.New("relay: refused")
	// ErrProtocol: a malformed relay message.
	ErrProtocol = errors.New("relay: protocol error")
	// ErrNoRelay: no relay could be reserved at.
	ErrNoRelay = errors.New("relay: no relay available")
	// ErrDialUnsupported: the relay transport only accepts; diallers reach
	// a relayed peer through the relay's address with their own transports.
	ErrDialUnsupported = errors.New("relay: the relay transport does not dial")
)

func writeMsg(w io.Writer, typ byte, body []byte) error {
	if len(body) > maxBody {
		return fmt.Errorf("%w: message body of %d bytes", ErrProtocol, len(body))
	}
	b := make([]byte, 3+len(body))
	b[0] = typ
	binary.BigEndian.PutUint16(b[1:3], uint16(len(body)))
	copy(b[3:], body)
	_, err := w.Write(b)
	return err
}

func readMsg(r io.Reader) (typ byte, body []byte, err error) {
	var h [3]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint16(h[1:3]))
	if n > maxBody {
		return 0, nil, fmt.Errorf("%w: message body of %d bytes", ErrProtocol, n)
	}
	body = make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return h[0], body, nil
}
