package selfaddr

import (
	"net"
	"testing"
)

func TestIsLocal(t *testing.T) {
	for _, h := range []string{"127.0.0.1", "127.1.2.3", "::1", "0.0.0.0", "::", "::ffff:127.0.0.1"} {
		if !IsLocal(h) {
			t.Errorf("%s not local", h)
		}
	}
	for _, h := range []string{"192.0.2.1", "2001:db8::1", "example.com", ""} {
		if IsLocal(h) {
			t.Errorf("%s local", h)
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !IsLocal(ipn.IP.String()) {
			t.Errorf("interface address %s not local", ipn.IP)
		}
	}
}
