package remote

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

var handoffModes = map[string]handoffMode{"seqpacket": handoffSeqpacket, "stream": handoffStream, "connect": handoffConnect}

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
		return m.passesFDs()
	}
	return defaultHandoff.passesFDs()
}

// DefaultHandoff names the platform's hand-off mode.
func DefaultHandoff() string { return defaultHandoff.String() }

// HandoffOf names the hand-off mode of x's running instance.
func HandoffOf(x interface{ PID() int }) string {
	if inst := procOf(x).current(); inst != nil {
		return inst.fds.mode.String()
	}
	return ""
}
