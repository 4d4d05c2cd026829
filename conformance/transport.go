package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// TransportFactory returns a fresh transport for one check. It is called
// once or more per check; t.Cleanup releases what it started (a plugin
// process, say). The suite starts a transport that is a
// [framework.Starter] as the swarm would (a factory that must start it
// elsewhere, say in a network namespace, returns it started: Start again is
// a no-op). Transports are exercised on loopback only: they listen on
// LoopbackHost and dial the addresses their own listeners report.
type TransportFactory func(t *T) (framework.Transport, error)

// LoopbackHost is the address transports listen on during the checks.
const LoopbackHost = "127.0.0.1"

// Bounds of the transport checks.
const (
	// TransportFast bounds what must happen "promptly" or "fast": a dial
	// to a closed port, a dial with a done context, Accept after Close.
	TransportFast = 2 * time.Second
	// TransportBulk is the size sent each way by the integrity check.
	TransportBulk = 64 << 20
	// TransportConcurrent is the number of simultaneous connections.
	TransportConcurrent = 100
)

// Names of the transport checks.
const (
	CheckTransportName          = "transport_name_is_short_and_stable"
	CheckTransportRoundTrip     = "listen_dial_round_trip"
	CheckTransportListenAddr    = "listener_addr_reports_bound_port"
	CheckTransportIntegrity     = "data_intact_64mib_both_ways"
	CheckTransportHalfClose     = "half_close_reads_eof_and_writes_back"
	CheckTransportConcurrent    = "concurrent_100_connections"
	CheckTransportClosedPort    = "dial_closed_port_fails_fast"
	CheckTransportCancel        = "dial_done_context_returns_ctx_err"
	CheckTransportCloseAccept   = "listener_close_unblocks_accept"
	CheckTransportAddresses     = "conn_addresses_are_true"
	CheckTransportPortInUse     = "taken_port_wraps_err_port_in_use"
	CheckTransportCloseReleases = "conn_close_reaches_other_side"
)

// TransportChecks returns the transport checks, in the order they run.
func TransportChecks(f TransportFactory) []Check {
	return []Check{
		{CheckTransportName, "Name returns the connection type reported in ConnInfo.Type: a short, stable, lowercase name.", func(t *T) { transportName(t, f) }},
		{CheckTransportRoundTrip, "Listen binds host:port; Accept returns connections dialled by peers; Dial connects to peer.Addr().", func(t *T) { transportRoundTrip(t, f) }},
		{CheckTransportListenAddr, "Listen(ctx, host, port) binds host:port (port 0: the transport picks) and returns a listener whose Addr reports the bound port.", func(t *T) { transportListenAddr(t, f) }},
		{CheckTransportIntegrity, "Data arrives intact and in order (64 MiB each way at once).", func(t *T) { transportIntegrity(t, f) }},
		{CheckTransportHalfClose, "When the conn supports CloseWrite, the other side reads io.EOF after it and can still write back (half-close).", func(t *T) { transportHalfClose(t, f) }},
		{CheckTransportConcurrent, "A listener serves 100 connections dialled at once, each carrying its own data.", func(t *T) { transportConcurrent(t, f) }},
		{CheckTransportClosedPort, "Dial fails fast when nothing listens at the address.", func(t *T) { transportClosedPort(t, f) }},
		{CheckTransportCancel, "Dial returns ctx.Err() (wrapped) promptly when ctx is done.", func(t *T) { transportCancel(t, f) }},
		{CheckTransportCloseAccept, "Close on the listener makes a blocked Accept return an error promptly.", func(t *T) { transportCloseAccept(t, f) }},
		{CheckTransportAddresses, "Connections are net.Conns whose RemoteAddr is the true peer address (and LocalAddr the true local one).", func(t *T) { transportAddresses(t, f) }},
		{CheckTransportPortInUse, "A port that is taken fails with an error wrapping framework.ErrPortInUse.", func(t *T) { transportPortInUse(t, f) }},
		{CheckTransportCloseReleases, "Connections are net.Conns: closing one ends it for the other side, whose Read returns promptly (a handed-off socket must not stay open elsewhere).", func(t *T) { transportCloseReaches(t, f) }},
	}
}

// RunTransportSuite runs every transport check as a subtest of t.
func RunTransportSuite(t *testing.T, f TransportFactory, opts ...Option) {
	t.Helper()
	RunChecks(t, TransportChecks(f), opts...)
}

// newTransport calls the factory or stops the check.
func newTransport(t *T, f TransportFactory) framework.Transport {
	tr, err := f(t)
	if err != nil {
		t.Fatalf("factory: %v", err)
	}
	if tr == nil {
		t.Fatalf("factory returned a nil transport")
	}
	start(t, tr)
	return tr
}

// start starts plugin p as Swarm.Start would, when it is a
// [framework.Starter], or stops the check.
func start(t *T, p any) {
	if st, ok := framework.As[framework.Starter](p); ok {
		if err := st.Start(t.Context()); err != nil {
			t.Fatalf("Start: %v", err)
		}
	}
}

// listen listens on LoopbackHost:port and closes the listener at the end.
func listen(t *T, tr framework.Transport, port int) framework.Listener {
	l, err := tr.Listen(t.Context(), LoopbackHost, port)
	if err != nil {
		t.Fatalf("Listen(%s, %d): %v", LoopbackHost, port, err)
	}
	if l == nil {
		t.Fatalf("Listen returned a nil listener")
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// portOf returns the port of addr, or 0.
func portOf(a net.Addr) int {
	if a == nil {
		return 0
	}
	switch x := a.(type) {
	case *net.TCPAddr:
		return x.Port
	case *net.UDPAddr:
		return x.Port
	}
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// hostPortOf parses addr into a comparable "ip:port" (IPv4-mapped IPv6
// unmapped), or its raw String when it does not parse.
func hostPortOf(a net.Addr) string {
	if a == nil {
		return "<nil>"
	}
	h, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(h); ip != nil {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		h = ip.String()
	}
	return net.JoinHostPort(h, p)
}

func peerAt(l framework.Listener) framework.Peer {
	return framework.Peer{Host: LoopbackHost, Port: portOf(l.Addr())}
}

// dial dials l and closes the conn at the end.
func dial(t *T, tr framework.Transport, l framework.Listener) net.Conn {
	c, err := tr.Dial(t.Context(), peerAt(l))
	if err != nil {
		t.Fatalf("Dial(%s): %v", peerAt(l).Addr(), err)
	}
	if c == nil {
		t.Fatalf("Dial returned a nil conn")
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// acceptOne accepts one connection in the background.
func acceptOne(t *T, l framework.Listener) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Errorf("Accept: %v", err)
			close(ch)
			return
		}
		t.Cleanup(func() { c.Close() })
		ch <- c
	}()
	return ch
}

func recvConn(t *T, ch <-chan net.Conn) net.Conn {
	select {
	case c, ok := <-ch:
		if !ok {
			t.FailNow()
		}
		return c
	case <-t.Context().Done():
		t.Fatalf("no connection accepted before the deadline")
		return nil
	}
}

// pair returns a dialled and the matching accepted connection.
func pair(t *T, tr framework.Transport) (client, server net.Conn, l framework.Listener) {
	l = listen(t, tr, 0)
	ch := acceptOne(t, l)
	client = dial(t, tr, l)
	server = recvConn(t, ch)
	return client, server, l
}

// deadlineFrom sets a read/write deadline on c at the check's deadline, so
// blocked I/O ends with the check.
func deadlineFrom(t *T, c net.Conn) {
	if d, ok := t.Context().Deadline(); ok {
		_ = c.SetDeadline(d)
	}
}

func transportName(t *T, f TransportFactory) {
	tr := newTransport(t, f)
	checkName(t, tr.Name())
	if a, b := tr.Name(), tr.Name(); a != b {
		t.Errorf("Name is not stable: %q then %q", a, b)
	}
	if a, b := tr.Name(), newTransport(t, f).Name(); a != b {
		t.Errorf("Name differs between instances: %q and %q", a, b)
	}
}

// checkName applies the naming rule shared by all plugin kinds.
func checkName(t *T, n string) {
	switch {
	case n == "":
		t.Errorf("Name is empty")
	case len(n) > 32:
		t.Errorf("Name %q is longer than 32 bytes", n)
	default:
		for _, r := range n {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
				t.Errorf("Name %q has %q: want lowercase letters, digits, '-', '_' or '.'", n, r)
				return
			}
		}
	}
}

func transportRoundTrip(t *T, f TransportFactory) {
	tr := newTransport(t, f)
	c, s, _ := pair(t, tr)
	deadlineFrom(t, c)
	deadlineFrom(t, s)
	ping, pong := []byte("ping from the dialler"), []byte("pong from the acceptor")
	if _, err := c.Write(ping); err != nil {
		t.Fatalf("client write: %v", err)
	}
	got := make([]byte, len(ping))
	if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, ping) {
		t.Fatalf("server read %q, %v; want %q", got, err, ping)
	}
	if _, err := s.Write(pong); err != nil {
		t.Fatalf("server write: %v", err)
	}
	got = make([]byte, len(pong))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, pong) {
		t.Fatalf("client read %q, %v; want %q", got, err, pong)
	}
}

func transportListenAddr(t *T, f TransportFactory) {
	tr := newTransport(t, f)
	l, err := tr.Listen(t.Context(), LoopbackHost, 0)
	if err != nil {
		t.Fatalf("Listen(port 0): %v", err)
	}
	port := portOf(l.Addr())
	if port < 1 || port > 65535 {
		l.Close()
		t.Fatalf("Listen(port 0).Addr() = %v: no bound port", l.Addr())
	}
	l.Close()
	// the port just freed is asked for explicitly: the listener must
	// report exactly it (another process may grab it in between: retry)
	for range 5 {
		l2, err := tr.Listen(t.Context(), LoopbackHost, port)
		if errors.Is(err, framework.ErrPortInUse) {
			l3, err := tr.Listen(t.Context(), LoopbackHost, 0)
			if err != nil {
				t.Fatalf("Listen(port 0): %v", err)
			}
			port = portOf(l3.Addr())
			l3.Close()
			continue
		}
		if err != nil {
			t.Fatalf("Listen(port %d) just after closing a listener on it: %v", port, err)
		}
		defer l2.Close()
		if got := portOf(l2.Addr()); got != port {
			t.Fatalf("Listen(port %d).Addr() = %v", port, l2.Addr())
		}
		return
	}
	t.Fatalf("could not listen on a port freed just before")
}

// pattern fills b with a reproducible pseudo-random stream.
func pattern(seed uint64, b []byte) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
}

// sendStream writes n bytes of pattern(seed) in chunks and returns their hash.
func sendStream(w io.Writer, seed uint64, n int) ([32]byte, error) {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for n > 0 {
		k := min(n, len(buf), 1+int(r.Uint64N(uint64(len(buf)))))
		pattern(seed+uint64(n), buf[:k])
		h.Write(buf[:k])
		if _, err := w.Write(buf[:k]); err != nil {
			return [32]byte{}, err
		}
		n -= k
	}
	return [32]byte(h.Sum(nil)), nil
}

// recvStream reads exactly n bytes and returns their hash.
func recvStream(r io.Reader, n int) ([32]byte, error) {
	h := sha256.New()
	got, err := io.CopyN(h, r, int64(n))
	if err != nil {
		return [32]byte{}, fmt.Errorf("after %d of %d bytes: %w", got, n, err)
	}
	return [32]byte(h.Sum(nil)), nil
}

func transportIntegrity(t *T, f TransportFactory) {
	tr := newTransport(t, f)
	c, s, _ := pair(t, tr)
	deadlineFrom(t, c)
	deadlineFrom(t, s)
	type res struct {
		what string
		sum  [32]byte
		err  error
	}
	out := make(chan res, 4)
	run := func(what string, fn func() ([32]byte, error)) {
		go func() { sum, err := fn(); out <- res{what, sum, err} }()
	}
	run("client send", func() ([32]byte, error) { return sendStream(c, 1, TransportBulk) })
	run("server send", func() ([32]byte, error) { return sendStream(s, 2, TransportBulk) })
	run("server recv", func() ([32]byte, error) { return recvStream(s, TransportBulk) })
	run("client recv", func() ([32]byte, error) { return recvStream(c, TransportBulk) })
	sums := map[string][32]byte{}
	for range 4 {
		select {
		case r := <-out:
			if r.err != nil {
				c.Close()
				s.Close()
				t.Errorf("%s: %v", r.what, r.err)
			}
			sums[r.what] = r.sum
		case <-t.Context().Done():
			c.Close()
			s.Close()
			t.Fatalf("64 MiB each way did not complete before the deadline")
		}
	}
	if t.Failed() {
		return
	}
	if sums["client send"] != sums["server recv"] {
		t.Errorf("dialler→acceptor: the 64 MiB received differ from those sent")
	}
	if sums["server send"] != sums["client recv"] {
		t.Errorf("acceptor→dialler: the 64 MiB received differ from those sent")
	}
}

type closeWriter interface{ CloseWrite() error }

func transportHalfClose(t *T, f TransportFactory) {
	tr := newTransport(t, f)
	c, s, _ := pair(t, tr)
	deadlineFrom(t, c)
	deadlineFrom(t, s)
	cw, ok := c.(closeWriter)
	if !ok {
		t.Logf("the dialled conn (%T) has no CloseWrite: half-close is not offered, nothing to check", c)
		return
	}
	if _, err := c.Write([]byte("request")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("the acceptor did not read io.EOF after CloseWrite: %v (read %q)", err, got)
	}
	if string(got) != "request" {
		t.Fatalf("the acceptor read %q, want %q", got, "request")
	}
	if _, err := s.Write([]byte("reply after EOF")); err != nil {
		t.Fatalf("the acceptor cannot write back after reading EOF: %v", err)
	}
	if scw, ok := s.(closeWriter); ok {
		if err := scw.CloseWrite(); err != nil {
			t.Fatalf("acceptor CloseWrite: %v", err)
		}
	} else {
		s.Close()
	}
	back, err := io.ReadAll(c)
	if err != nil || string(back) != "reply after EOF" {
		t.Fatalf("the dialler read %q, %v after its CloseWrite; want %q then EOF", back, err, "reply after EOF")
	}
}

func transportConcurrent(t *T, f TransportFactory) {
	tr := newTransport(t, f)
	l := listen(t, tr, 0)
	var wg sync.WaitGroup
	// the acceptor echoes each connection's first line, prefixed
	wg.Add(1)
	var accMu sync.Mutex
	var accepted []net.Conn
	go func() {
		defer wg.Done()
		for range TransportConcurrent {
			c, err := l.Accept()
			if err != nil {
				t.Errorf("Accept: %v", err)
				return
			}
			accMu.Lock()
			accepted = append(accepted, c)
			accMu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				deadlineFrom(t, c)
				buf := make([]byte, 16)
				if _, err := io.ReadFull(c, buf); err != nil {
					t.Errorf("acceptor read: %v", err)
					return
				}
				if _, err := c.Write(append([]byte("echo"), buf...)); err != nil {
					t.Errorf("acceptor write: %v", err)
				}
			}()
		}
	}()
	defer func() {
		l.Close()
		accMu.Lock()
		for _, c := range accepted {
			c.Close()
		}
		accMu.Unlock()
		wg.Wait()
	}()
	errs := make(chan error, TransportConcurrent)
	var dwg sync.WaitGroup
	for i := range TransportConcurrent {
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			errs <- func() error {
				c, err := tr.Dial(t.Context(), peerAt(l))
				if err != nil {
					return fmt.Errorf("dial %d: %w", i, err)
				}
				defer c.Close()
				deadlineFrom(t, c)
				msg := fmt.Appendf(nil, "conn-%011d", i)
				if _, err := c.Write(msg); err != nil {
					return fmt.Errorf("conn %d write: %w", i, err)
				}
				got := make([]byte, 4+len(msg))
				if _, err := io.ReadFull(c, got); err != nil {
					return fmt.Errorf("conn %d read: %w", i, err)
				}
				if want := append([]byte("echo"), msg...); !bytes.Equal(got, want) {
					return fmt.Errorf("conn %d got %q, want %q (data crossed connections)", i, got, want)
				}
				return nil
			}()
		}()
	}
	dwg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if err != nil {
			n++
			if n <= 3 {
				t.Errorf("%v", err)
			}
		}
	}
	if n > 3 {
		t.Errorf("... %d of %d connections failed", n, TransportConcurrent)
	}
}

// closedPort returns a port on LoopbackHost where the transport just
// listened and now nothing does.
func closedPort(t *T, tr framework.Transport) framework.Peer {
	l, err := tr.Listen(t.Context(), LoopbackHost, 0)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	p := peerAt(l)
	if err := l.Close(); err != nil {
		t.Fatalf("listener Close: %v", err)
	}
	return p
}

func transportClosedPort(t *T, f TransportFactory) {
	tr := newTransport(t, f)
	p := closedPort(t, tr)
	ctx, cancel := context.WithTimeout(t.Context(), 5*TransportFast)
	defer cancel()
	start := time.Now()
	c, err := tr.Dial(ctx, p)
	d := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatalf("Dial(%s) succeeded though nothing listens there", p.Addr())
	}
	if d > TransportFast {
		t.Fatalf("Dial(%s) to a closed port took %v (limit %v): %v", p.Addr(), d.Round(time.Millisecond), TransportFast, err)
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		t.Fatalf("Dial to a closed port only ended with the context: %v", err)
	}
}

func transportCancel(t *T, f TransportFactory) {
	tr := newTransport(t, f)
	// a live listener: a transport that ignores ctx would connect
	l := listen(t, tr, 0)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, tc := range []struct {
		what string
		ctx  context.Context
		want error
	}{
		{"a cancelled context", cancelled, context.Canceled},
		{"an expired deadline", expired, context.DeadlineExceeded},
	} {
		start := time.Now()
		c, err := tr.Dial(tc.ctx, peerAt(l))
		d := time.Since(start)
		switch {
		case err == nil:
			c.Close()
			t.Errorf("Dial with %s succeeded; want an error wrapping %v", tc.what, tc.want)
		case !errors.Is(err, tc.want):
			t.Errorf("Dial with %s: %v; want an error wrapping %v", tc.what, err, tc.want)
		case d > TransportFast:
			t.Errorf("Dial with %s took %v (limit %v)", tc.what, d.Round(time.Millisecond), TransportFast)
		}
	}
}

func transportCloseAccept(t *T, f TransportFactory) {
	tr := newTransport(t, f)
	l := listen(t, tr, 0)
	started := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		close(started)
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		errc <- err
	}()
	<-started
	// Accept is (about to be) blocked: nothing dials. Close must end it
	// whether it already blocked or not.
	if err := l.Close(); err != nil {
		t.Errorf("listener Close: %v", err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatalf("Accept returned a connection (nobody dialled) instead of an error after Close")
		}
	case <-time.After(TransportFast):
		t.Fatalf("Accept still blocked %v after the listener closed", TransportFast)
	}
	// and Accept after Close fails at once
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("Accept after Close returned a connection")
		}
	case <-time.After(TransportFast):
		t.Errorf("Accept after Close blocked")
	}
}

func transportAddresses(t *T, f TransportFactory) {
	tr := newTransport(t, f)
	c, s, l := pair(t, tr)
	if got, want := hostPortOf(c.RemoteAddr()), hostPortOf(l.Addr()); got != want {
		t.Errorf("dialled conn RemoteAddr = %s, want the listener's address %s", got, want)
	}
	if got, want := hostPortOf(s.LocalAddr()), hostPortOf(l.Addr()); got != want {
		t.Errorf("accepted conn LocalAddr = %s, want the listener's address %s", got, want)
	}
	if got, want := hostPortOf(s.RemoteAddr()), hostPortOf(c.LocalAddr()); got != want {
		t.Errorf("accepted conn RemoteAddr = %s, want the dialler's LocalAddr %s", got, want)
	}
	if p := portOf(c.LocalAddr()); p < 1 || p > 65535 {
		t.Errorf("dialled conn LocalAddr %v has no port", c.LocalAddr())
	}
	if h, _, err := net.SplitHostPort(hostPortOf(s.RemoteAddr())); err != nil || h != LoopbackHost {
		t.Errorf("accepted conn RemoteAddr %v: want host %s (the dialler is on loopback)", s.RemoteAddr(), LoopbackHost)
	}
}

func transportPortInUse(t *T, f TransportFactory) {
	tr := newTransport(t, f)
	l := listen(t, tr, 0)
	port := portOf(l.Addr())
	l2, err := newTransport(t, f).Listen(t.Context(), LoopbackHost, port)
	if err == nil {
		l2.Close()
		t.Fatalf("Listen on port %d, taken by another listener, succeeded", port)
	}
	if !errors.Is(err, framework.ErrPortInUse) {
		t.Fatalf("Listen on a taken port: %v; want an error wrapping framework.ErrPortInUse", err)
	}
}

func transportCloseReaches(t *T, f TransportFactory) {
	tr := newTransport(t, f)
	c, s, _ := pair(t, tr)
	for _, tc := range []struct {
		what         string
		close, other net.Conn
	}{{"dialler", c, s}} {
		readErr := make(chan error, 1)
		go func() {
			_ = tc.other.SetReadDeadline(time.Now().Add(5 * TransportFast))
			_, err := tc.other.Read(make([]byte, 1))
			readErr <- err
		}()
		if err := tc.close.Close(); err != nil {
			t.Errorf("%s Close: %v", tc.what, err)
		}
		select {
		case err := <-readErr:
			var ne net.Error
			if err == nil {
				t.Errorf("the other side read data after the %s closed", tc.what)
			} else if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("the other side's Read did not end within %v after the %s closed", 5*TransportFast, tc.what)
			}
		case <-t.Context().Done():
			t.Fatalf("deadline")
		}
	}
}
