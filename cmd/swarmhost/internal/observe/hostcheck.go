package observe

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// localHostsOnly guards a listener on a loopback address against DNS
// rebinding: a web page the operator opens can make the browser resolve a
// name of the page's own to 127.0.0.1 and then read /status (topics, peer
// keys and addresses) as same-origin. Such a request carries that name in
// its Host header; h answers only requests whose Host is an IP address,
// "localhost" or a name under ".localhost" (with any port), and refuses
// the others with 403. A listener on any other address was exposed on
// purpose and is not guarded this way (nor against anyone who can reach
// it).
func localHostsOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !localHost(r.Host) {
			http.Error(w, "observe: host "+r.Host+" not allowed: this listener is on a loopback address and answers "+
				"only requests for localhost or an IP address (a guard against DNS rebinding)", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// localHost reports whether a Host header names no DNS name that could
// have been rebound: empty (HTTP/1.0), an IP address, localhost or a
// name under .localhost.
func localHost(host string) bool {
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// isLoopbackListener reports whether ln accepts on a loopback address only.
func isLoopbackListener(ln net.Listener) bool {
	a, ok := ln.Addr().(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}
