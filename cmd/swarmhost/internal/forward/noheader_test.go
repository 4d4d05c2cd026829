package forward

import (
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// TestReadHeaderNoByte: a stream that ends before its first byte, however
// it ends, is ErrNoHeader (a race loser), still an ErrBadHeader; one that
// ends later is not.
func TestReadHeaderNoByte(t *testing.T) {
	for _, r := range []io.Reader{
		strings.NewReader(""),
		iotest.ErrReader(syscall.ECONNRESET),
		iotest.ErrReader(net.ErrClosed),
	} {
		_, err := ReadHeader(r)
		if !errors.Is(err, ErrNoHeader) || !errors.Is(err, ErrBadHeader) {
			t.Errorf("%v: want ErrNoHeader wrapping ErrBadHeader", err)
		}
	}
	if _, err := ReadHeader(strings.NewReader("DW")); errors.Is(err, ErrNoHeader) || !errors.Is(err, ErrBadHeader) {
		t.Errorf("2 bytes then EOF: %v, want ErrBadHeader but not ErrNoHeader", err)
	}
}

// TestRaceLoserIsNotLoggedAsBadHeader: an inbound connection reset before
// its first byte (a dialler that kept another transport's connection) is
// logged at debug at most, never as "bad forwarding header".
func TestRaceLoserIsNotLoggedAsBadHeader(t *testing.T) {
	var logs logBuf
	// plaintext: with sessions a race loser never completes a handshake
	// and never reaches the manager
	sw := newSwarm(t, framework.WithPlaintext())
	newManager(t, sw, Options{Logger: testLogger(&logs)})
	gone := watchDisconnections(t, sw)
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(sw.Port()))
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetLinger(0) // close with a reset
	c.Close()
	gone.wait(t, 1)
	if strings.Contains(logs.String(), "bad forwarding header") {
		t.Fatalf("race loser logged as an error:\n%s", logs.String())
	}
}
