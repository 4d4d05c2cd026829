package remote

import "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire"

// procOf is the supervised process of an adapter.
func procOf(x interface{ PID() int }) *proc {
	switch v := x.(type) {
	case *Transport:
		return v.p
	case *Discovery:
		return v.p
	case *Validator:
		return v.p
	}
	return nil
}

// SocketDir returns the PLUGIN_UNIX_SOCKET_DIR of the running instance.
func SocketDir(x interface{ PID() int }) string {
	if inst := procOf(x).current(); inst != nil {
		return inst.dir
	}
	return ""
}

var handoffModes = map[string]wire.HandoffMode{"seqpacket": wire.HandoffSeqpacket, "stream": wire.HandoffStream, "connect": wire.HandoffConnect}

// WithHandoff returns cfg with the hand-off mode forced to mode
// ("seqpacket", "stream" or "connect"; "" keeps the platform's).
func WithHandoff(cfg Config, mode string) Config {
	cfg.handoff = handoffModes[mode]
	return cfg
}

// HandoffPassesFDs reports whether mode ("" for the platform's) hands
// kernel sockets to the host by fd.
func HandoffPassesFDs(mode string) bool {
	if m, ok := handoffModes[mode]; ok {
		return m.PassesFDs()
	}
	return wire.DefaultHandoff.PassesFDs()
}

// DefaultHandoff names the platform's hand-off mode.
func DefaultHandoff() string { return wire.DefaultHandoff.String() }

// HandoffOf names the hand-off mode of x's running instance.
func HandoffOf(x interface{ PID() int }) string {
	if inst := procOf(x).current(); inst != nil {
		return inst.fds.Mode().String()
	}
	return ""
}
