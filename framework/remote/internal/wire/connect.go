package wire

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// Where no fds can be passed (Windows, HandoffConnect), the plugin
// connects back to the host instead. The host listens on a fresh loopback
// TCP port for every instance and tells the plugin where, with a secret,
// in the environment:
//
//	DWEBSWARM_PLUGIN_CONNECT=127.0.0.1:PORT/SECRET (32 hex digits)
//
// Every connection starts with a hello, plugin → host:
//
//	+--------------+------+---------------+
//	| secret (16)  | kind | token (8, BE) |
//	+--------------+------+---------------+
//	kind 0 (connectControl): token 0; the instance's control connection,
//	       made before the go-plugin handshake: fd-channel messages
//	       (relay-end), framed, and EOF when the plugin exits
//	kind 1 (connectRelay):   a relayed connection, under its token
//	kind 2 (connectPacket):  the shared UDP socket's relay, under its token;
//	       then every datagram is one frame (packetconn.go's layout)
//
// A connection with a wrong secret or a bad hello is closed. The plugin
// connects and writes the hello before it replies, so the host has the
// connection by the time it reads the reply (or soon after: connectWait).
const (
	// ConnectEnv is the environment variable that tells a plugin where to
	// connect back to its host.
	ConnectEnv     = MagicCookieKey + "_CONNECT"
	connectControl = 0
	connectRelay   = 1
	connectPacket  = 2
	connectHello   = 16 + 1 + 8
	// helloWait bounds how long the host waits for a connection's hello.
	helloWait = 10 * time.Second
	// connectWait bounds the wait, after a reply, for the connection it names.
	connectWait = 5 * time.Second
)

// connectListener is the host side of HandoffConnect.
type connectListener struct {
	ln     net.Listener
	secret [16]byte
	f      *FDChan
	log    *slog.Logger
	ctl    chan net.Conn // the control connection, once
	ready  chan struct{} // closed when the control connection is in
	done   chan struct{} // closed by close

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // before their hello, and the control connection
	closed bool
	wg     sync.WaitGroup
}

// NewConnectChan listens for an instance's connections and returns its
// channel and the environment entry that tells the plugin where to connect.
func NewConnectChan(log *slog.Logger) (*FDChan, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("fd channel: listen for the plugin: %w", err)
	}
	f := newFDChanOf(HandoffConnect, log)
	cl := &connectListener{ln: ln, f: f, log: log, ctl: make(chan net.Conn, 1), ready: make(chan struct{}), done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	if _, err := rand.Read(cl.secret[:]); err != nil {
		ln.Close()
		return nil, "", fmt.Errorf("fd channel: secret: %w", err)
	}
	f.back = cl
	cl.wg.Add(1)
	go cl.accept()
	go cl.control()
	return f, ConnectEnv + "=" + ln.Addr().String() + "/" + hex.EncodeToString(cl.secret[:]), nil
}

// control reads the control connection until the plugin exits.
func (cl *connectListener) control() {
	var c net.Conn
	select {
	case c = <-cl.ctl:
	case <-cl.done:
		close(cl.f.doneRd)
		cl.f.ended(errors.New("fd channel closed before the plugin connected"))
		return
	}
	close(cl.ready)
	cl.f.readFrames(func(b, _ []byte) (int, int, int, error) {
		n, err := c.Read(b)
		return n, 0, 0, err
	})
}

func (cl *connectListener) accept() {
	defer cl.wg.Done()
	for {
		c, err := cl.ln.Accept()
		if err != nil {
			return
		}
		if !cl.track(c) {
			c.Close()
			return
		}
		cl.wg.Add(1)
		go cl.hello(c)
	}
}

func (cl *connectListener) track(c net.Conn) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.closed {
		return false
	}
	cl.conns[c] = struct{}{}
	return true
}

func (cl *connectListener) untrack(c net.Conn) {
	cl.mu.Lock()
	delete(cl.conns, c)
	cl.mu.Unlock()
}

// hello reads a connection's hello and delivers it.
func (cl *connectListener) hello(c net.Conn) {
	defer cl.wg.Done()
	var b [connectHello]byte
	_ = c.SetReadDeadline(time.Now().Add(helloWait))
	_, err := io.ReadFull(c, b[:])
	_ = c.SetReadDeadline(time.Time{})
	if err == nil && subtle.ConstantTimeCompare(b[:16], cl.secret[:]) != 1 {
		err = errors.New("wrong secret")
	}
	kind, token := b[16], binary.BigEndian.Uint64(b[17:])
	if err == nil {
		switch {
		case kind == connectControl && token == 0:
			select {
			case cl.ctl <- c:
				return // stays tracked: close ends it
			default:
				err = errors.New("second control connection")
			}
		case (kind == connectRelay || kind == connectPacket) && token != 0:
			cl.untrack(c)
			cl.f.put(token, Handoff{c: c, kind: kind})
			return
		default:
			err = fmt.Errorf("hello of kind %d, token %d", kind, token)
		}
	}
	cl.untrack(c)
	c.Close()
	cl.log.Warn("refused a connection to the plugin's hand-off port", "from", c.RemoteAddr().String(), "err", err)
}

// awaitControl waits for the control connection, which the plugin makes
// before its go-plugin handshake.
func (cl *connectListener) awaitControl(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-cl.ready:
		return nil
	case <-cl.f.dead:
		return errors.New("the plugin's hand-off channel closed before it connected back")
	case <-t.C:
		return fmt.Errorf("the plugin did not connect back to the host within %v (not built with this SDK?)", d)
	}
}

// close stops listening and closes the control connection and those not
// yet handed over, then waits for the goroutines.
func (cl *connectListener) close() {
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return
	}
	cl.closed = true
	close(cl.done)
	for c := range cl.conns {
		c.Close()
	}
	cl.mu.Unlock()
	cl.ln.Close()
	cl.wg.Wait()
}

// connectDialer is the plugin side of HandoffConnect.
type connectDialer struct {
	addr   string
	secret []byte
}

func parseConnectEnv(v string) (*connectDialer, error) {
	addr, sec, ok := strings.Cut(v, "/")
	b, err := hex.DecodeString(sec)
	if !ok || err != nil || len(b) != 16 {
		return nil, fmt.Errorf("fd channel: bad %s", ConnectEnv)
	}
	return &connectDialer{addr: addr, secret: b}, nil
}

// dial connects to the host and says what the connection is for.
func (d *connectDialer) dial(kind byte, token uint64) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", d.addr, helloWait)
	if err != nil {
		return nil, fmt.Errorf("connect to the host: %w", err)
	}
	b := make([]byte, 0, connectHello)
	b = append(b, d.secret...)
	b = append(b, kind)
	b = binary.BigEndian.AppendUint64(b, token)
	if _, err := c.Write(b); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect to the host: %w", err)
	}
	return c, nil
}

// openConnectSender connects the control connection of HandoffConnect.
func openConnectSender(v string) *FDSender {
	d, err := parseConnectEnv(v)
	if err != nil {
		return &FDSender{mode: HandoffConnect, err: err}
	}
	c, err := d.dial(connectControl, 0)
	if err != nil {
		return &FDSender{mode: HandoffConnect, err: fmt.Errorf("fd channel: %w", err)}
	}
	return &FDSender{mode: HandoffConnect, ctl: c, back: d}
}
