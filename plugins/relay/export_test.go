package relay

// SetObserve installs a hook that sees every chunk the relay forwards.
func SetObserve(cfg *ServerConfig, f func(dir string, b []byte)) { cfg.observe = f }
