// Command unixtransport is a dwebswarm transport plugin that carries
// connections over unix-domain sockets, for swarms whose peers all run on
// one machine. Port P is the socket DIR/P.sock; a dialler binds its own
// socket DIR/P.dial.sock for a free P, so that the acceptor learns the
// dialler's true port from the kernel. Every address is 127.0.0.1:P.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/sdk"
)

func main() {
	dir := flag.String("dir", cmp.Or(os.Getenv("UNIXTRANSPORT_DIR"), filepath.Join(os.TempDir(), "dwebswarm-unix")), "directory of the sockets (env UNIXTRANSPORT_DIR)")
	flag.Parse()
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "unixtransport:", err)
		os.Exit(1)
	}
	sdk.ServeTransport(transport{*dir})
}

type transport struct{ dir string }

// addr is every address of this transport: the machine's loopback and a port.
func addr(port int) net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port} }

func (t transport) Name() string { return "unix" }

func (t transport) sock(port int, suffix string) string {
	return filepath.Join(t.dir, strconv.Itoa(port)+suffix+".sock")
}

// thisMachine refuses hosts that are not this machine: a peer found
// elsewhere must never be dialled to a local socket of the same port.
func thisMachine(host string) error {
	if ip := net.ParseIP(strings.Trim(host, "[]")); host == "localhost" || ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) || host == "" {
		return nil
	}
	return fmt.Errorf("unix transport reaches only this machine, not %q: %w", host, syscall.EHOSTUNREACH)
}

// pick calls try with port, or with random ports until one is free.
func pick(port int, try func(int) error) (int, error) {
	if port != 0 {
		return port, try(port)
	}
	for range 100 {
		p := 49152 + rand.IntN(16384)
		if err := try(p); !errors.Is(err, syscall.EADDRINUSE) {
			return p, err
		}
	}
	return 0, fmt.Errorf("no free port found: %w", syscall.EADDRINUSE)
}

func (t transport) Listen(ctx context.Context, host string, port int) (framework.Listener, error) {
	if err := thisMachine(host); err != nil {
		return nil, err
	}
	var ul *net.UnixListener
	port, err := pick(port, func(p int) (err error) {
		ua := &net.UnixAddr{Net: "unix", Name: t.sock(p, "")}
		if ul, err = net.ListenUnix("unix", ua); errors.Is(err, syscall.EADDRINUSE) && !listening(ua.Name) {
			os.Remove(ua.Name) // left by a crashed listener: reclaim it
			ul, err = net.ListenUnix("unix", ua)
		}
		return err
	})
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%w: %w", framework.ErrPortInUse, err)
	}
	if err != nil {
		return nil, err
	}
	return listener{ul, addr(port)}, nil
}

func (t transport) Dial(ctx context.Context, peer framework.Peer) (net.Conn, error) {
	if err := thisMachine(peer.Host); err != nil {
		return nil, err
	}
	var c net.Conn
	local, err := pick(0, func(p int) (err error) {
		d := net.Dialer{LocalAddr: &net.UnixAddr{Net: "unix", Name: t.sock(p, ".dial")}}
		if c, err = d.DialContext(ctx, "unix", t.sock(peer.Port, "")); err != nil && !errors.Is(err, syscall.EADDRINUSE) {
			os.Remove(t.sock(p, ".dial")) // bound by us before connect failed
		}
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("unix: nothing listens on port %d: %w", peer.Port, syscall.ECONNREFUSED)
	}
	if err != nil {
		return nil, err
	}
	return &conn{c.(*net.UnixConn), addr(local), addr(peer.Port), t.sock(local, ".dial")}, nil
}

// listening reports whether a socket listens on path, from the kernel's
// table (Linux); a test connection would show up at a live listener.
func listening(path string) bool {
	b, _ := os.ReadFile("/proc/net/unix")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 8 && f[3] == "00010000" && strings.HasSuffix(line, " "+path) {
			return true
		}
	}
	return false
}

type listener struct {
	*net.UnixListener
	addr net.Addr
}

func (l listener) Addr() net.Addr { return l.addr }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	port := 0 // the dialler's port, from the name of the socket it bound
	if ra, ok := c.RemoteAddr().(*net.UnixAddr); ok && ra != nil {
		port, _ = strconv.Atoi(strings.TrimSuffix(filepath.Base(ra.Name), ".dial.sock"))
	}
	return &conn{c, l.addr, addr(port), ""}, nil
}

// conn reports the transport's addresses; it is not the bare *net.UnixConn,
// so the SDK relays it (see README.md).
type conn struct {
	*net.UnixConn
	local, remote net.Addr
	bound         string // the dialler's socket file, removed at Close
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

func (c *conn) Close() error {
	os.Remove(c.bound) // "" for accepted conns: a no-op
	return c.UnixConn.Close()
}
