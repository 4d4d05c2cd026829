package wire

import (
	"errors"
	"log/slog"
	"net"
	"os"

	"golang.org/x/sys/windows"
)

// DefaultHandoff on Windows, which cannot pass sockets to another process
// the way SCM_RIGHTS does: the plugin connects back and every connection is
// relayed.
const DefaultHandoff = HandoffConnect

var errNoFDPassing = errors.New("fd passing is not supported on windows")

const (
	oobSpace     = 0
	msgTruncated = 0
)

// NewFDChannel fails: there is no fd channel on windows.
func NewFDChannel(HandoffMode, *slog.Logger) (*FDChan, *os.File, error) {
	return nil, nil, errNoFDPassing
}

func closeFD(int) {}

func parseRights([]byte) []int { return nil }

func socketType(*os.File) (int, bool, error) { return 0, false, errNoFDPassing }

func openFDSender() *FDSender {
	return &FDSender{err: errors.New("no fd channel on windows: was the plugin started by a dwebswarm host?")}
}

func (s *FDSender) sendFD(uint64, int) error { return errNoFDPassing }

func (s *FDSender) sendPair(uint64, int, int) (*net.UnixConn, error) { return nil, errNoFDPassing }

// IsConnReset reports a connection reset, aborted or broken pipe.
func IsConnReset(err error) bool {
	return errors.Is(err, windows.WSAECONNRESET) || errors.Is(err, windows.WSAECONNABORTED) ||
		errors.Is(err, windows.ERROR_BROKEN_PIPE) || errors.Is(err, windows.ERROR_NO_DATA)
}
