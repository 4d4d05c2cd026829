//go:build linux

package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/dwebswarm/dwebswarm-go/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func nsExists(ns string) bool {
	_, err := os.Stat(netnsDir + "/" + ns)
	return err == nil
}

func TestLANAddressesAndIsolation(t *testing.T) {
	lab := New(t)
	nw, hosts := lab.LAN(2)
	a, b := hosts[0], hosts[1]
	if !nw.IPv4.Contains(a.IPv4()) || !nw.IPv6.Contains(b.IPv6()) || a.IPv4() == b.IPv4() {
		t.Fatalf("addresses: a=%s b=%s net=%s/%s", a.IPv4(), b.IPv4(), nw.IPv4, nw.IPv6)
	}
	a.MustDo(func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		var names []string
		for _, ifc := range ifs {
			names = append(names, ifc.Name)
		}
		if strings.Join(names, ",") != "lo,eth0" {
			return fmt.Errorf("interfaces in host: %v", names)
		}
		return nil
	})
	// The caller's namespace is untouched: no eth0 with a lab address here.
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range addrs {
		if strings.HasPrefix(ad.String(), a.IPv4().String()+"/") {
			t.Fatalf("lab address %s visible in the machine's namespace", ad)
		}
	}
	out, err := b.Run(context.Background(), "ip", "-br", "addr", "show", "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), b.IPv4().String()) || !strings.Contains(string(out), b.IPv6().String()) {
		t.Fatalf("ip addr in b: %s", out)
	}
}

// TestUnicastBothFamilies dials TCP from b to a over IPv4 and IPv6.
func TestUnicastBothFamilies(t *testing.T) {
	lab := New(t)
	_, hosts := lab.LAN(2)
	a, b := hosts[0], hosts[1]
	for _, addr := range []netip.Addr{a.IPv4(), a.IPv6()} {
		var ln net.Listener
		a.MustDo(func() (err error) {
			ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
			return err
		})
		accepted := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Close()
			}
			accepted <- err
		}()
		b.MustDo(func() error {
			d := net.Dialer{Timeout: 5 * time.Second}
			c, err := d.Dial("tcp", ln.Addr().String())
			if err != nil {
				return err
			}
			return c.Close()
		})
		if err := <-accepted; err != nil {
			t.Fatal(err)
		}
		ln.Close()
	}
}

// TestMulticastBothFamilies sends a multicast datagram from b and receives
// it in a, over IPv4 and IPv6, through the bridge.
func TestMulticastBothFamilies(t *testing.T) {
	lab := New(t)
	_, hosts := lab.LAN(3)
	a, b := hosts[0], hosts[1]
	cases := []struct {
		network string
		group   string
	}{{"udp4", "239.255.77.77"}, {"udp6", "ff02::7777"}}
	for _, tc := range cases {
		t.Run(tc.network, func(t *testing.T) {
			group := net.ParseIP(tc.group)
			var rc net.PacketConn
			a.MustDo(func() error {
				ifc, err := net.InterfaceByName("eth0")
				if err != nil {
					return err
				}
				c, err := net.ListenMulticastUDP(tc.network, ifc, &net.UDPAddr{IP: group, Port: 47777})
				rc = c
				return err
			})
			defer rc.Close()
			b.MustDo(func() error {
				ifc, err := net.InterfaceByName("eth0")
				if err != nil {
					return err
				}
				c, err := net.ListenPacket(tc.network, ":0")
				if err != nil {
					return err
				}
				defer c.Close()
				dst := &net.UDPAddr{IP: group, Port: 47777}
				if tc.network == "udp4" {
					if err := ipv4.NewPacketConn(c).SetMulticastInterface(ifc); err != nil {
						return err
					}
				} else {
					if err := ipv6.NewPacketConn(c).SetMulticastInterface(ifc); err != nil {
						return err
					}
					dst.Zone = "eth0"
				}
				_, err = c.WriteTo([]byte("hello lab"), dst)
				return err
			})
			buf := make([]byte, 64)
			_ = rc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, src, err := rc.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			if string(buf[:n]) != "hello lab" {
				t.Fatalf("got %q from %v", buf[:n], src)
			}
		})
	}
}

func TestCleanupRemovesEverything(t *testing.T) {
	var names []string
	t.Run("inner", func(t *testing.T) {
		lab := New(t)
		_, hosts := lab.LAN(2)
		for _, h := range hosts {
			names = append(names, h.NS)
		}
		names = append(names, lab.nets[0].NS)
		for _, ns := range names {
			if !nsExists(ns) {
				t.Fatalf("namespace %s missing while the lab is up", ns)
			}
		}
	})
	for _, ns := range names {
		if nsExists(ns) {
			t.Errorf("namespace %s left after cleanup", ns)
		}
	}
}

func TestSweepStaleRemovesOnlyDeadOwners(t *testing.T) {
	testenv.Require(t, Available())
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	pidMax, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadPID := pidMax + 1 // no process can have it
	if processAlive(deadPID) {
		t.Fatalf("pid %d reported alive", deadPID)
	}
	stale := fmt.Sprintf("%s%d-dead00-h-x", NamePrefix, deadPID)
	live := fmt.Sprintf("%s%d-live00-h-x", NamePrefix, os.Getpid())
	for _, ns := range []string{stale, live} {
		if err := runIP("netns", "add", ns); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = deleteNS(stale); _ = deleteNS(live) })
	if err := SweepStale(); err != nil {
		t.Fatal(err)
	}
	if nsExists(stale) {
		t.Error("stale namespace survived the sweep")
	}
	if !nsExists(live) {
		t.Error("namespace of a live process was swept")
	}
}

func TestDoPropagatesErrorsAndPanics(t *testing.T) {
	lab := New(t)
	h := lab.AddHost("x")
	want := errors.New("boom")
	if err := h.Do(func() error { return want }); !errors.Is(err, want) {
		t.Fatalf("Do error = %v", err)
	}
	func() {
		defer func() {
			if r := recover(); r != "pan" {
				t.Fatalf("recovered %v", r)
			}
		}()
		_ = h.Do(func() error { panic("pan") })
	}()
	// The thread that ran fn was restored: this goroutine's view is unchanged.
	if _, err := net.InterfaceByName("eth0"); err == nil {
		// the machine may really have an eth0; compare with the host instead
		h.MustDo(func() error {
			if _, err := net.InterfaceByName("eth0"); err == nil {
				return errors.New("unconnected host has eth0")
			}
			return nil
		})
	}
}

func TestRoutingBetweenNetworks(t *testing.T) {
	lab := New(t)
	n1 := lab.AddNetwork("one", NetworkConfig{})
	n2 := lab.AddNetwork("two", NetworkConfig{})
	a, r, b := lab.AddHost("a"), lab.AddHost("r"), lab.AddHost("b")
	lab.Connect(a, n1)
	r1 := lab.Connect(r, n1)
	r2 := lab.Connect(r, n2)
	lab.Connect(b, n2)
	if err := r.EnableForwarding(); err != nil {
		t.Fatal(err)
	}
	if err := a.AddRoute(n2.IPv4, r1.IPv4.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := b.AddRoute(n1.IPv4, r2.IPv4.Addr()); err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	b.MustDo(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(b.IPv4(), 0).String())
		return err
	})
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	a.MustDo(func() error {
		c, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("tcp4", ln.Addr().String())
		if err != nil {
			return err
		}
		return c.Close()
	})
}

func TestOwnerPID(t *testing.T) {
	for _, tc := range []struct {
		in  string
		pid int
		ok  bool
	}{
		{"dwslab-123-abc-h-x", 123, true},
		{"dwslab-0-abc", 0, false},
		{"dwslab-x-abc", 0, false},
		{"dwslab-123", 0, false},
		{"other-123-abc", 0, false},
	} {
		pid, ok := ownerPID(tc.in)
		if pid != tc.pid || ok != tc.ok {
			t.Errorf("ownerPID(%q) = %d, %v", tc.in, pid, ok)
		}
	}
}

func FuzzOwnerPID(f *testing.F) {
	f.Add("dwslab-123-abc-h-x")
	f.Add("dwslab--")
	f.Fuzz(func(t *testing.T, s string) {
		pid, ok := ownerPID(s)
		if ok && (pid <= 0 || !strings.HasPrefix(s, fmt.Sprintf("%s%d-", NamePrefix, pid))) {
			t.Fatalf("ownerPID(%q) = %d", s, pid)
		}
	})
}
