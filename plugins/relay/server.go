package relay

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
)

// Announcer lists an allocation under an infohash (the DHT: see
// [DHTAnnouncer]). AnnounceInfohash returns a function that stops the
// announcement, and calls flushed (when not nil) once the first round of
// announcing completed.
type Announcer interface {
	AnnounceInfohash(ih [20]byte, port int, flushed func()) (stop func(), err error)
}

// Limits bound what a relay gives its clients. Zero fields take the
// defaults of [DefaultLimits]; a negative field means no limit.
type Limits struct {
	// Clients: reservations held at once (total).
	Clients int
	// Sessions: relayed connections open at once (total).
	Sessions int
	// SessionsPerClient: relayed connections open at once to one client.
	SessionsPerClient int
	// BytesPerClient: bytes relayed (both directions, all its connections)
	// for one reservation; the connection that crosses it is cut, and
	// further ones are refused.
	BytesPerClient int64
	// SessionDuration: a relayed connection is cut after this long.
	SessionDuration time.Duration
	// InfohashesPerClient: infohashes one client may have announced.
	InfohashesPerClient int
}

// DefaultLimits returns the limits a relay applies when a field is zero.
func DefaultLimits() Limits {
	return Limits{
		Clients:             256,
		Sessions:            1024,
		SessionsPerClient:   32,
		BytesPerClient:      1 << 30,
		SessionDuration:     time.Hour,
		InfohashesPerClient: 32,
	}
}

func (l Limits) filled() Limits {
	d := DefaultLimits()
	if l.Clients == 0 {
		l.Clients = d.Clients
	}
	if l.Sessions == 0 {
		l.Sessions = d.Sessions
	}
	if l.SessionsPerClient == 0 {
		l.SessionsPerClient = d.SessionsPerClient
	}
	if l.BytesPerClient == 0 {
		l.BytesPerClient = d.BytesPerClient
	}
	if l.SessionDuration == 0 {
		l.SessionDuration = d.SessionDuration
	}
	if l.InfohashesPerClient == 0 {
		l.InfohashesPerClient = d.InfohashesPerClient
	}
	return l
}

func over(n, limit int) bool { return limit >= 0 && n > limit }

// ServerConfig configures a relay [Server].
type ServerConfig struct {
	// KeyPair is the relay's static key (required): clients may pin it.
	KeyPair secure.KeyPair
	// Listen is the control address clients reserve at ("host:port";
	// "127.0.0.1:0" when empty).
	Listen string
	// AllocHost is the host allocations are bound on (default: Listen's).
	AllocHost string
	// Announcer lists allocations and the relay itself on the DHT; nil:
	// nothing is announced (clients still get their ports).
	Announcer Announcer
	// Limits; zero fields take DefaultLimits.
	Limits Limits
	// ListenFunc binds a listener (default net.Listen); a test binds in a
	// network namespace with it.
	ListenFunc func(network, addr string) (net.Listener, error)
	// KeepAlive and Timeout of the reservation sessions (0: the secure
	// package's defaults, 5 s and 15 s).
	KeepAlive, Timeout time.Duration
	// Clock runs the session-duration limit and the sessions' keep-alives.
	Clock clockwork.Clock
	// Logger: nil = discard.
	Logger *slog.Logger
	// OnAnnounced, when set, is called once per announced infohash when
	// its first announcement round completed (port 0: the relay's own
	// listing under the relay topic's infohash).
	OnAnnounced func(ih [20]byte, port int)
	// OnLimit, when set, is called each time a limit refuses or cuts
	// something, with the limit's kind ("clients", "sessions",
	// "sessions-per-client", "bytes", "duration", "infohashes") and the
	// client's key (zero for "clients" before the key is known).
	OnLimit func(kind string, client secure.PublicKey)

	observe func(dir string, b []byte) // tests: every relayed chunk
}

// Stats are a relay's counters.
type Stats struct {
	Clients       int    // reservations held now
	Sessions      int    // relayed connections open now
	SessionsTotal uint64 // relayed connections opened since start
	BytesRelayed  uint64 // bytes forwarded, both directions
	Announced     int    // infohashes announced now (all clients)
	// limits hit, by kind
	LimitClients, LimitSessions, LimitSessionsPerClient uint64
	LimitBytes, LimitDuration, LimitInfohashes          uint64
}

// Server is a blind relay: it gives each client (a swarm behind a NAT) an
// allocation, a port on the relay's address announced under the client's
// infohashes, and forwards every connection made to it, unread, inside
// the client's reservation session. See the package documentation.
type Server struct {
	cfg       ServerConfig
	lim       Limits
	ln        net.Listener
	clock     clockwork.Clock
	log       *slog.Logger
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	stopRelay func()

	mu       sync.Mutex
	closed   bool
	clients  map[*serverClient]struct{}
	sessions int
	conns    map[net.Conn]struct{}            // control connections
	pending  map[[tokenSize]byte]*pendingConn // waiting for a connect-back

	sessionsTotal, bytes                  atomic.Uint64
	limClients, limSessions, limPerClient atomic.Uint64
	limBytes, limDuration, limInfohashes  atomic.Uint64
}

type serverClient struct {
	s      *Server
	key    secure.PublicKey
	ctrl   *secure.Conn
	wmu    sync.Mutex
	alloc  net.Listener
	port   int
	remote string
	done   chan struct{} // closed when the reservation ends

	mu        sync.Mutex
	announced map[[20]byte]func()
	sessions  int
	bytes     atomic.Int64 // budget taken (see take)
	overBytes atomic.Bool
}

// NewServer binds the control listener and starts serving.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.KeyPair.Public.IsZero() {
		return nil, fmt.Errorf("%w: relay server needs a key pair", ErrProtocol)
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.ListenFunc == nil {
		cfg.ListenFunc = net.Listen
	}
	if cfg.AllocHost == "" {
		h, _, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("relay: listen address %q: %w", cfg.Listen, err)
		}
		cfg.AllocHost = h
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := cfg.ListenFunc("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("relay: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, lim: cfg.Limits.filled(), ln: ln, clock: cfg.Clock, log: cfg.Logger,
		ctx: ctx, cancel: cancel, clients: map[*serverClient]struct{}{}, conns: map[net.Conn]struct{}{},
		pending: map[[tokenSize]byte]*pendingConn{}}
	if cfg.Announcer != nil {
		stop, err := cfg.Announcer.AnnounceInfohash(dht.Infohash(Topic), ln.Addr().(*net.TCPAddr).Port, s.flushed(dht.Infohash(Topic), 0))
		if err != nil {
			ln.Close()
			cancel()
			return nil, fmt.Errorf("relay: announce: %w", err)
		}
		s.stopRelay = stop
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func (s *Server) hit(n *atomic.Uint64, kind string, client secure.PublicKey) {
	n.Add(1)
	if f := s.cfg.OnLimit; f != nil {
		f(kind, client)
	}
}

func (s *Server) flushed(ih [20]byte, port int) func() {
	if s.cfg.OnAnnounced == nil {
		return nil
	}
	return func() { s.cfg.OnAnnounced(ih, port) }
}

// Addr is the control address clients reserve at.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// PublicKey is the relay's static public key.
func (s *Server) PublicKey() secure.PublicKey { return s.cfg.KeyPair.Public }

// Stats returns the relay's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Clients: len(s.clients), Sessions: s.sessions}
	for c := range s.clients {
		c.mu.Lock()
		st.Announced += len(c.announced)
		c.mu.Unlock()
	}
	s.mu.Unlock()
	st.SessionsTotal = s.sessionsTotal.Load()
	st.BytesRelayed = s.bytes.Load()
	st.LimitClients = s.limClients.Load()
	st.LimitSessions = s.limSessions.Load()
	st.LimitSessionsPerClient = s.limPerClient.Load()
	st.LimitBytes = s.limBytes.Load()
	st.LimitDuration = s.limDuration.Load()
	st.LimitInfohashes = s.limInfohashes.Load()
	return st
}

// Close stops the relay: every reservation and relayed connection ends.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	clients := make([]*serverClient, 0, len(s.clients))
	for c := range s.clients {
		clients = append(clients, c)
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	err := s.ln.Close()
	if s.stopRelay != nil {
		s.stopRelay()
	}
	for _, c := range clients {
		c.close()
	}
	s.wg.Wait()
	return err
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("relay accept", "err", err)
			select {
			case <-s.ctx.Done():
				return
			case <-s.clock.After(10 * time.Millisecond):
			}
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(nc)
			s.mu.Lock()
			delete(s.conns, nc)
			s.mu.Unlock()
		}()
	}
}

// serveConn sorts a connection to the control port: a connect-back
// (magic, token) or a reservation (a Noise handshake).
func (s *Server) serveConn(nc net.Conn) {
	_ = nc.SetReadDeadline(time.Now().Add(15 * time.Second)) // a socket deadline: wall clock
	var head [4]byte
	if _, err := io.ReadFull(nc, head[:]); err != nil {
		nc.Close()
		return
	}
	if head == connectBackMagic {
		var tok [tokenSize]byte
		if _, err := io.ReadFull(nc, tok[:]); err != nil {
			nc.Close()
			return
		}
		_ = nc.SetReadDeadline(time.Time{})
		s.mu.Lock()
		p := s.pending[tok]
		delete(s.pending, tok)
		s.mu.Unlock()
		if p == nil {
			nc.Close()
			return
		}
		p.back <- nc // buffered: the waiter owns it now
		return
	}
	_ = nc.SetReadDeadline(time.Time{})
	s.serveControl(&prefixConn{Conn: nc, head: head[:]})
}

// prefixConn gives back the bytes serveConn read to tell the kinds apart.
type prefixConn struct {
	net.Conn
	head []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// serveControl runs one reservation: handshake, RESERVE, allocation, then
// the control messages until the session ends.
func (s *Server) serveControl(nc net.Conn) {
	ctx, cancel := context.WithTimeout(s.ctx, 15*time.Second)
	sc, err := secure.Server(ctx, nc, secure.Config{
		KeyPair:   s.cfg.KeyPair,
		Topics:    func() [][32]byte { return [][32]byte{Topic} },
		KeepAlive: s.cfg.KeepAlive,
		Timeout:   s.cfg.Timeout,
		Clock:     s.clock,
	})
	cancel()
	if err != nil {
		nc.Close()
		s.log.Debug("relay handshake", "remote", nc.RemoteAddr().String(), "err", err)
		return
	}
	defer sc.Close()
	stop := context.AfterFunc(s.ctx, func() { sc.Close() })
	defer stop()
	_ = sc.SetReadDeadline(time.Now().Add(15 * time.Second)) // a socket deadline: wall clock
	typ, body, err := readMsg(sc)
	_ = sc.SetReadDeadline(time.Time{})
	if err != nil || typ != msgReserve || len(body) < 1 {
		_ = writeMsg(sc, msgRefused, []byte("expected RESERVE"))
		return
	}
	if body[0] != Version {
		_ = writeMsg(sc, msgRefused, []byte("unsupported version "+strconv.Itoa(int(body[0]))))
		return
	}
	c := &serverClient{s: s, key: sc.RemotePublicKey(), ctrl: sc, remote: nc.RemoteAddr().String(),
		announced: map[[20]byte]func(){}, done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	full := over(len(s.clients)+1, s.lim.Clients)
	if !full {
		s.clients[c] = struct{}{}
	}
	s.mu.Unlock()
	if full {
		s.hit(&s.limClients, "clients", c.key)
		_ = writeMsg(sc, msgRefused, []byte("relay full: client limit"))
		return
	}
	defer c.close()

	ln, err := s.cfg.ListenFunc("tcp", net.JoinHostPort(s.cfg.AllocHost, "0"))
	if err != nil {
		_ = writeMsg(sc, msgRefused, []byte("no allocation"))
		return
	}
	c.alloc = ln
	c.port = ln.Addr().(*net.TCPAddr).Port
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], uint16(c.port))
	if err := c.send(msgReserved, p[:]); err != nil {
		return
	}
	s.log.Info("relay reservation", "client", c.key.Short(), "remote", c.remote, "port", c.port)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.acceptLoop()
	}()
	for {
		typ, body, err := readMsg(sc)
		if err != nil {
			return
		}
		switch typ {
		case msgAnnounce, msgUnannounce:
			if len(body) != 20 {
				return
			}
			var ih [20]byte
			copy(ih[:], body)
			if typ == msgAnnounce {
				st := c.announce(ih)
				if err := c.send(msgAnnounced, append(ih[:], st)); err != nil {
					return
				}
			} else {
				c.unannounce(ih)
			}
		default:
			s.log.Debug("relay: unknown control message", "client", c.key.Short(), "type", typ)
			return
		}
	}
}

func (c *serverClient) send(typ byte, body []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return writeMsg(c.ctrl, typ, body)
}

func (c *serverClient) announce(ih [20]byte) byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.announced[ih]; ok {
		return statusOK
	}
	if over(len(c.announced)+1, c.s.lim.InfohashesPerClient) {
		defer c.s.hit(&c.s.limInfohashes, "infohashes", c.key) // after the unlock
		return statusLimit
	}
	stop := func() {}
	if a := c.s.cfg.Announcer; a != nil {
		var err error
		if stop, err = a.AnnounceInfohash(ih, c.port, c.s.flushed(ih, c.port)); err != nil {
			c.s.log.Debug("relay announce", "client", c.key.Short(), "err", err)
			return statusError
		}
	}
	c.announced[ih] = stop
	return statusOK
}

func (c *serverClient) unannounce(ih [20]byte) {
	c.mu.Lock()
	stop := c.announced[ih]
	delete(c.announced, ih)
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// close ends the reservation: its announcements, allocation and session.
func (c *serverClient) close() {
	c.s.mu.Lock()
	_, ok := c.s.clients[c]
	delete(c.s.clients, c)
	c.s.mu.Unlock()
	if !ok {
		return
	}
	close(c.done)
	c.mu.Lock()
	stops := c.announced
	c.announced = map[[20]byte]func(){}
	c.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	if c.alloc != nil {
		c.alloc.Close()
	}
	c.ctrl.Close()
}

// acceptLoop accepts the connections diallers make to the allocation.
func (c *serverClient) acceptLoop() {
	for {
		nc, err := c.alloc.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-c.done:
				return
			case <-c.s.clock.After(10 * time.Millisecond):
			}
			continue
		}
		if !c.admit() {
			nc.Close()
			continue
		}
		c.s.wg.Add(1)
		go func() {
			defer c.s.wg.Done()
			defer c.release()
			c.relay(nc)
		}()
	}
}

// admit takes a session slot for a new relayed connection, or counts the
// limit that refuses it.
func (c *serverClient) admit() bool {
	s := c.s
	if c.overBytes.Load() {
		s.hit(&s.limBytes, "bytes", c.key)
		return false
	}
	s.mu.Lock()
	c.mu.Lock()
	total, mine := over(s.sessions+1, s.lim.Sessions), over(c.sessions+1, s.lim.SessionsPerClient)
	if !total && !mine {
		s.sessions++
		c.sessions++
	}
	c.mu.Unlock()
	s.mu.Unlock()
	switch {
	case total:
		s.hit(&s.limSessions, "sessions", c.key)
		return false
	case mine:
		s.hit(&s.limPerClient, "sessions-per-client", c.key)
		return false
	}
	s.sessionsTotal.Add(1)
	return true
}

func (c *serverClient) release() {
	c.s.mu.Lock()
	c.s.sessions--
	c.s.mu.Unlock()
	c.mu.Lock()
	c.sessions--
	c.mu.Unlock()
}

// pendingConn is a dialler's connection waiting for its client's
// connect-back.
type pendingConn struct {
	back chan net.Conn // capacity 1
}

// relay tells the client about a dialler's connection (INCOMING with a
// fresh token), waits for the client to connect back with the token, and
// splices the two connections until both directions end or a limit cuts
// them.
func (c *serverClient) relay(nc net.Conn) {
	s := c.s
	var (
		mu      sync.Mutex
		back    net.Conn
		aborted bool
	)
	abort := func() {
		mu.Lock()
		defer mu.Unlock()
		aborted = true
		nc.Close()
		if back != nil {
			back.Close()
		}
	}
	defer abort()
	if d := s.lim.SessionDuration; d > 0 { // armed before the client hears of it
		timer := s.clock.AfterFunc(d, func() {
			s.hit(&s.limDuration, "duration", c.key)
			abort()
		})
		defer timer.Stop()
	}
	var tok [tokenSize]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return
	}
	p := &pendingConn{back: make(chan net.Conn, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.pending[tok] = p
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, tok)
		s.mu.Unlock()
		select { // a connect-back that arrived after we gave up
		case b := <-p.back:
			b.Close()
		default:
		}
	}()
	if err := c.send(msgIncoming, append(tok[:], nc.RemoteAddr().String()...)); err != nil {
		return
	}
	select {
	case b := <-p.back:
		mu.Lock()
		back = b
		stop := aborted
		mu.Unlock()
		if stop {
			return
		}
	case <-s.clock.After(15 * time.Second):
		s.log.Debug("relay: no connect-back", "client", c.key.Short())
		return
	case <-c.done:
		return
	}
	done := make(chan struct{})
	s.wg.Add(1)
	go func() { // the reservation's end (or the relay's) cuts the connection
		defer s.wg.Done()
		select {
		case <-c.done:
			abort()
		case <-done:
		}
	}()
	inDone := make(chan struct{})
	defer func() { <-inDone; close(done) }()
	go func() {
		defer close(inDone)
		if c.pump(back, nc, "in") {
			abort()
			return
		}
		closeWrite(back) // the client reads EOF and may still send
	}()
	if c.pump(nc, back, "out") {
		abort()
	} else {
		closeWrite(nc)
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// spliceChunk is how many bytes one splice may move before the counters
// are updated.
const spliceChunk = 1 << 20

// pump copies src to dst, counting against the client's byte budget; it
// reports whether the copy must abort the connection (an error or the
// budget), false on a clean EOF. Between TCP connections it splices in the
// kernel (TCPConn.ReadFrom of a LimitedReader), chunk by chunk, taking
// each chunk from the budget before it moves.
func (c *serverClient) pump(dst, src net.Conn, dir string) (abort bool) {
	lim := c.s.lim.BytesPerClient
	tdst, ok := dst.(*net.TCPConn)
	if ok && c.s.cfg.observe == nil {
		for {
			take := int64(spliceChunk)
			if lim >= 0 {
				if take = c.take(take); take == 0 {
					return c.probe(src)
				}
			}
			n, err := tdst.ReadFrom(&io.LimitedReader{R: src, N: take})
			c.s.bytes.Add(uint64(n))
			if lim >= 0 && n < take {
				c.bytes.Add(n - take) // give back what this chunk did not use
			}
			if err != nil {
				return true
			}
			if n < take {
				return false // EOF
			}
		}
	}
	buf := make([]byte, 64<<10)
	for {
		want := int64(len(buf))
		if lim >= 0 {
			if want = c.take(want); want == 0 {
				return c.probe(src)
			}
		}
		n, err := src.Read(buf[:want])
		if lim >= 0 {
			c.bytes.Add(int64(n) - want) // give back what this read did not use
		}
		if n > 0 {
			if f := c.s.cfg.observe; f != nil {
				f(dir, buf[:n])
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return true
			}
			c.s.bytes.Add(uint64(n))
		}
		if err != nil {
			return !errors.Is(err, io.EOF)
		}
	}
}

// probe runs when the budget is spent: one more byte from src crosses the
// limit (abort), EOF ends the direction cleanly.
func (c *serverClient) probe(src net.Conn) (abort bool) {
	var one [1]byte
	n, err := src.Read(one[:])
	if n > 0 {
		c.overLimit()
		return true
	}
	return !errors.Is(err, io.EOF)
}

// take reserves up to want bytes of the client's budget and returns how
// many it got (0 when the budget is spent).
func (c *serverClient) take(want int64) int64 {
	lim := c.s.lim.BytesPerClient
	for {
		used := c.bytes.Load()
		left := lim - used
		if left <= 0 {
			return 0
		}
		got := min(want, left)
		if c.bytes.CompareAndSwap(used, used+got) {
			return got
		}
	}
}

func (c *serverClient) overLimit() {
	if !c.overBytes.Swap(true) {
		c.s.log.Info("relay byte limit", "client", c.key.Short(), "limit", c.s.lim.BytesPerClient)
	}
	c.s.hit(&c.s.limBytes, "bytes", c.key)
}

// DHTAnnouncer announces through a DHT node ([dht.Node.AnnounceInfohash]).
func DHTAnnouncer(n *dht.Node) Announcer { return n }
