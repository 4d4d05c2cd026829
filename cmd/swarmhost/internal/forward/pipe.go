package forward

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// copyBufSize is the buffer of each direction of a forwarded connection.
const copyBufSize = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

type closeWriter interface{ CloseWrite() error }

// link is one forwarded connection: a local TCP connection and the swarm
// connection it is piped to. One side may be attached later (while the
// other side's dial runs); closing the link closes whatever is attached and
// anything attached afterwards.
type link struct {
	mu            sync.Mutex
	closed        bool
	local, remote net.Conn
}

// attach sets the missing side. It returns false (and closes c) when the
// link is already closed.
func (l *link) attach(c net.Conn) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Close()
		return false
	}
	if l.local == nil {
		l.local = c
	} else {
		l.remote = c
	}
	l.mu.Unlock()
	return true
}

// close closes both sides; safe to call more than once and concurrently.
func (l *link) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	a, b := l.local, l.remote
	l.mu.Unlock()
	if a != nil {
		a.Close()
	}
	if b != nil {
		b.Close()
	}
}

// pipe copies both directions until both end, then closes both sides.
// A direction that ends with EOF half-closes its destination (CloseWrite),
// so the other direction goes on; an error in either direction, or a
// destination that cannot half-close, closes both sides at once. in counts
// bytes from remote to local, out from local to remote.
func (l *link) pipe(in, out *atomic.Uint64) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.copyHalf(l.remote, l.local, out)
	}()
	l.copyHalf(l.local, l.remote, in)
	wg.Wait()
	l.close()
}

func (l *link) copyHalf(dst, src net.Conn, n *atomic.Uint64) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	// readerOnly hides src's WriterTo so our buffer (and counter) is used
	_, err := io.CopyBuffer(counter{dst, n}, readerOnly{src}, *bp)
	if err != nil {
		l.close()
		return
	}
	cw, ok := dst.(closeWriter)
	if !ok || cw.CloseWrite() != nil {
		l.close()
	}
}

type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(b []byte) (int, error) { return r.r.Read(b) }

// counter counts the bytes written through it.
type counter struct {
	w io.Writer
	n *atomic.Uint64
}

func (c counter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(uint64(n))
	return n, err
}
