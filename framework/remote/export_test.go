package remote

// SocketDir returns the PLUGIN_UNIX_SOCKET_DIR of the running instance.
func SocketDir(x interface{ PID() int }) string {
	var p *proc
	switch v := x.(type) {
	case *Transport:
		p = v.p
	case *Discovery:
		p = v.p
	case *Validator:
		p = v.p
	}
	if inst := p.current(); inst != nil {
		return inst.dir
	}
	return ""
}
