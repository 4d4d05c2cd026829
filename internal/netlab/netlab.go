//go:build linux

// Package netlab builds throw-away virtual networks out of Linux network
// namespaces for tests: hosts (one namespace each) plugged by veth pairs
// into networks (a bridge in a namespace of its own), with IPv4 and IPv6
// addresses and working multicast. Nothing is created in the machine's own
// namespace, so traffic of a test (mDNS multicast included) never reaches a
// real interface.
//
// A lab needs root and iproute2's `ip`; [New] fails the test (it never
// skips) when either is missing. Everything a lab creates is named
// "dwslab-<pid>-<run>-…" and removed by t.Cleanup, even when the test fails
// or panics; namespaces left behind by a run that was killed are removed by
// the next lab created on the machine (their pid no longer exists).
//
// The API grows by adding hosts, networks and links one at a time, so a NAT
// lab is the same calls plus routes and forwarding:
//
//	lab := netlab.New(t)
//	lan := lab.AddNetwork("lan", netlab.NetworkConfig{})
//	a, b := lab.AddHost("a"), lab.AddHost("b")
//	lab.Connect(a, lan)
//	lab.Connect(b, lan)
//	err := a.Do(func() error { /* sockets opened here live in a's namespace */ })
//
// For the common case, [Lab.LAN] makes N hosts on one network.
package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/internal/testenv"
	"golang.org/x/sys/unix"
)

// NamePrefix starts the name of every namespace a lab creates.
const NamePrefix = "dwslab-"

// netnsDir is where `ip netns` keeps its named namespaces.
const netnsDir = "/run/netns"

// cmdTimeout bounds every `ip` invocation.
const cmdTimeout = 20 * time.Second

// Lab is a set of namespaces created for one test. Its methods fail the test
// (t.Fatal) on error, so they must be called from the test's goroutine.
type Lab struct {
	tb     testing.TB
	prefix string // NamePrefix + pid + "-" + run id + "-"

	mu     sync.Mutex
	hosts  []*Host
	nets   []*Network
	nsList []string // every namespace created, in creation order
	closed bool
}

// Host is a network namespace that plays one machine.
type Host struct {
	lab    *Lab
	Name   string // short name given to AddHost
	NS     string // namespace name (for `ip netns exec`)
	ifaces []*Iface
}

// Network is a layer-2 segment: a bridge in a namespace of its own with
// multicast snooping off, so multicast reaches every port.
type Network struct {
	lab   *Lab
	Name  string       // short name given to AddNetwork
	NS    string       // namespace that holds the bridge
	IPv4  netip.Prefix // subnet hosts get IPv4 addresses from
	IPv6  netip.Prefix // subnet hosts get IPv6 addresses from
	ports int          // veths plugged so far
}

// Iface is one host's link to a network.
type Iface struct {
	Host    *Host
	Network *Network
	Name    string       // interface name inside the host ("eth0", "eth1", …)
	IPv4    netip.Prefix // address/prefix length
	IPv6    netip.Prefix // address/prefix length (no DAD: usable at once)
}

// NetworkConfig configures AddNetwork. Zero fields get defaults: IPv4
// 198.18.<n>.0/24 (RFC 2544 benchmarking range, never a real LAN) and IPv6
// fd64:6477:7331:<n>::/64 (unique local), n being the network's index in the
// lab; MTU 1500.
type NetworkConfig struct {
	IPv4 netip.Prefix
	IPv6 netip.Prefix
	MTU  int
}

// New creates an empty lab and registers its removal with tb.Cleanup. When
// not running as root or when `ip` is missing, the test skips with one line
// that says so — or fails under CI=true (see internal/testenv). The first
// lab of a process also removes namespaces left behind by dead processes.
func New(tb testing.TB) *Lab {
	tb.Helper()
	testenv.Require(tb, Available())
	sweepOnce.Do(func() {
		if err := SweepStale(); err != nil {
			tb.Logf("netlab: removing leftovers of earlier runs: %v", err)
		}
	})
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	l := &Lab{
		tb:     tb,
		prefix: fmt.Sprintf("%s%d-%s-", NamePrefix, os.Getpid(), hex.EncodeToString(rnd[:])),
	}
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("netlab: cleanup: %v", err)
		}
	})
	return l
}

// Available reports why a lab cannot be built here (not root, no `ip`), or nil.
func Available() error {
	if err := testenv.Root(); err != nil {
		return err
	}
	return testenv.Tool("ip", "iproute2")
}

// Prefix returns the prefix of every namespace name of this lab.
func (l *Lab) Prefix() string { return l.prefix }

// AddHost creates a host namespace with loopback up and IPv6 duplicate
// address detection off (addresses are usable at once).
func (l *Lab) AddHost(name string) *Host {
	l.tb.Helper()
	ns := l.newNS("h-" + name)
	h := &Host{lab: l, Name: name, NS: ns}
	l.must(h.writeSysctl("net/ipv6/conf/all/accept_dad", "0"))
	l.must(h.writeSysctl("net/ipv6/conf/default/accept_dad", "0"))
	l.must(h.writeSysctl("net/ipv6/conf/default/dad_transmits", "0"))
	l.mu.Lock()
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()
	return h
}

// AddNetwork creates a network: a bridge named br0 in a namespace of its own.
func (l *Lab) AddNetwork(name string, cfg NetworkConfig) *Network {
	l.tb.Helper()
	l.mu.Lock()
	idx := len(l.nets)
	l.mu.Unlock()
	if !cfg.IPv4.IsValid() {
		cfg.IPv4 = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(idx), 0}), 24)
	}
	if !cfg.IPv6.IsValid() {
		cfg.IPv6 = netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0x64, 0x64, 0x77, 0x73, 0x31, 0, byte(idx)}), 64)
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	ns := l.newNS("n-" + name)
	n := &Network{lab: l, Name: name, NS: ns, IPv4: cfg.IPv4.Masked(), IPv6: cfg.IPv6.Masked()}
	l.must(l.ip("-n", ns, "link", "add", "br0", "mtu", strconv.Itoa(cfg.MTU), "type", "bridge",
		"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"))
	l.must(l.ip("-n", ns, "link", "set", "br0", "up"))
	l.mu.Lock()
	l.nets = append(l.nets, n)
	l.mu.Unlock()
	return n
}

// Connect plugs h into n with a veth pair (created directly inside the two
// namespaces) and gives h's end the next free IPv4 and IPv6 address of n.
func (l *Lab) Connect(h *Host, n *Network) *Iface {
	l.tb.Helper()
	l.mu.Lock()
	n.ports++
	port := n.ports
	ifname := "eth" + strconv.Itoa(len(h.ifaces))
	l.mu.Unlock()
	v4, ok4 := nthAddr(n.IPv4, port)
	v6, ok6 := nthAddr(n.IPv6, port)
	if !ok4 || !ok6 {
		l.tb.Fatalf("netlab: network %s is full", n.Name)
	}
	peer := "p" + strconv.Itoa(port)
	l.must(l.ip("-n", h.NS, "link", "add", ifname, "type", "veth", "peer", "name", peer, "netns", n.NS))
	l.must(l.ip("-n", n.NS, "link", "set", peer, "master", "br0", "up"))
	ifc := &Iface{
		Host: h, Network: n, Name: ifname,
		IPv4: netip.PrefixFrom(v4, n.IPv4.Bits()),
		IPv6: netip.PrefixFrom(v6, n.IPv6.Bits()),
	}
	l.must(l.ip("-n", h.NS, "addr", "add", ifc.IPv4.String(), "dev", ifname))
	l.must(l.ip("-n", h.NS, "addr", "add", ifc.IPv6.String(), "dev", ifname, "nodad"))
	l.must(l.ip("-n", h.NS, "link", "set", ifname, "up"))
	l.mu.Lock()
	h.ifaces = append(h.ifaces, ifc)
	l.mu.Unlock()
	return ifc
}

// LAN creates a network and n hosts named h0…h(n-1) connected to it.
func (l *Lab) LAN(n int) (*Network, []*Host) {
	l.tb.Helper()
	l.mu.Lock()
	name := "lan" + strconv.Itoa(len(l.nets))
	l.mu.Unlock()
	nw := l.AddNetwork(name, NetworkConfig{})
	hosts := make([]*Host, n)
	for i := range hosts {
		hosts[i] = l.AddHost(name + "h" + strconv.Itoa(i))
		l.Connect(hosts[i], nw)
	}
	return nw, hosts
}

// Close deletes every namespace of the lab (hosts first, then networks);
// veth pairs go with them. It is called by t.Cleanup and safe to call twice.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	list := l.nsList
	l.mu.Unlock()
	var errs []error
	for i := len(list) - 1; i >= 0; i-- {
		if err := deleteNS(list[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Interfaces returns the host's links, in connection order.
func (h *Host) Interfaces() []*Iface {
	h.lab.mu.Lock()
	defer h.lab.mu.Unlock()
	return append([]*Iface(nil), h.ifaces...)
}

// IPv4 returns the host's IPv4 address on its first link.
func (h *Host) IPv4() netip.Addr { return h.first().IPv4.Addr() }

// IPv6 returns the host's IPv6 address on its first link.
func (h *Host) IPv6() netip.Addr { return h.first().IPv6.Addr() }

func (h *Host) first() *Iface {
	ifs := h.Interfaces()
	if len(ifs) == 0 {
		h.lab.tb.Fatalf("netlab: host %s has no interface", h.Name)
	}
	return ifs[0]
}

// Do runs fn on an OS thread switched into the host's namespace: sockets
// fn opens, and interface lists it reads, belong to the host. Goroutines fn
// starts run in the machine's namespace, but sockets keep the namespace they
// were created in. A panic in fn is re-raised in the caller. fn must not
// call t.FailNow (it runs on another goroutine); return an error instead.
func (h *Host) Do(fn func() error) error {
	type result struct {
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		restored := false
		defer func() {
			if restored {
				runtime.UnlockOSThread()
			} // otherwise the thread stays locked and dies with this goroutine
		}()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			restored = true
			done <- result{err: fmt.Errorf("netlab: open own namespace: %w", err)}
			return
		}
		defer orig.Close()
		target, err := os.Open(netnsDir + "/" + h.NS)
		if err != nil {
			restored = true
			done <- result{err: fmt.Errorf("netlab: open namespace of %s: %w", h.Name, err)}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			restored = true
			done <- result{err: fmt.Errorf("netlab: enter namespace of %s: %w", h.Name, err)}
			return
		}
		var res result
		func() {
			defer func() { res.panic = recover() }()
			res.err = fn()
		}()
		restored = unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil
		done <- res
	}()
	res := <-done
	if res.panic != nil {
		panic(res.panic)
	}
	return res.err
}

// MustDo is Do that fails the test when fn returns an error.
func (h *Host) MustDo(fn func() error) {
	h.lab.tb.Helper()
	if err := h.Do(fn); err != nil {
		h.lab.tb.Fatalf("netlab: in %s: %v", h.Name, err)
	}
}

// Command returns a command that runs inside the host (`ip netns exec`).
// Killing it (ctx) kills the program itself: ip execs it.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Run runs a command inside the host and returns its combined output.
func (h *Host) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), h.Name, err, bytes.TrimSpace(out))
	}
	return out, nil
}

// IP runs `ip -n <host> args…`, for routes, addresses and links.
func (h *Host) IP(args ...string) error {
	return h.lab.ip(append([]string{"-n", h.NS}, args...)...)
}

// AddRoute adds a route to dst via gw (an address on a connected network).
func (h *Host) AddRoute(dst netip.Prefix, gw netip.Addr) error {
	return h.IP("route", "add", dst.String(), "via", gw.String())
}

// EnableForwarding turns the host into a router (IPv4 and IPv6).
func (h *Host) EnableForwarding() error {
	if err := h.writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	return h.writeSysctl("net/ipv6/conf/all/forwarding", "1")
}

// writeSysctl writes /proc/sys/<key> inside the host's namespace.
func (h *Host) writeSysctl(key, value string) error {
	return h.Do(func() error {
		return os.WriteFile("/proc/sys/"+key, []byte(value), 0o644)
	})
}

func (l *Lab) newNS(name string) string {
	l.tb.Helper()
	ns := l.prefix + name
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.nsList = append(l.nsList, ns) // before creation: a half-made one is removed too
	}
	l.mu.Unlock()
	if closed {
		l.tb.Fatalf("netlab: lab already closed")
	}
	l.must(l.ip("netns", "add", ns))
	l.must(l.ip("-n", ns, "link", "set", "lo", "up"))
	return ns
}

func (l *Lab) must(err error) {
	l.tb.Helper()
	if err != nil {
		l.tb.Fatalf("netlab: %v", err)
	}
}

func (l *Lab) ip(args ...string) error { return runIP(args...) }

func runIP(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func deleteNS(ns string) error {
	if _, err := os.Stat(netnsDir + "/" + ns); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return runIP("netns", "del", ns)
}

var sweepOnce sync.Once

// SweepStale deletes lab namespaces whose creating process is gone (a run
// that was killed before its cleanup). Namespaces of live processes, other
// test binaries running in parallel included, are left alone.
func SweepStale() error {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		pid, ok := ownerPID(e.Name())
		if !ok || processAlive(pid) {
			continue
		}
		if err := deleteNS(e.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ownerPID extracts the pid from "dwslab-<pid>-…".
func ownerPID(ns string) (int, bool) {
	rest, ok := strings.CutPrefix(ns, NamePrefix)
	if !ok {
		return 0, false
	}
	pidStr, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 || strconv.Itoa(pid) != pidStr {
		return 0, false
	}
	return pid, true
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// nthAddr returns the n-th address of p (n ≥ 1), if it fits in p and is not
// p's last address (the IPv4 broadcast).
func nthAddr(p netip.Prefix, n int) (netip.Addr, bool) {
	a := p.Masked().Addr()
	for range n {
		a = a.Next()
	}
	if !a.IsValid() || !p.Contains(a) || !p.Contains(a.Next()) {
		return netip.Addr{}, false
	}
	return a, true
}
