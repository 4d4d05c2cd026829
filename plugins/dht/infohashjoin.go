package dht

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// AnnounceInfohash announces a raw infohash (one whose topic this node
// never learns) with port, in rounds like a joined topic, until stop is
// called. A relay uses it to list its clients' allocations: the client
// sends the infohash of each topic it announces, the relay announces it
// with the client's allocated port. Several announcements of one infohash
// with different ports coexist. flushed, when not nil, is called once,
// after the first round.
func (d *Node) AnnounceInfohash(ih [20]byte, port int, flushed func()) (stop func(), err error) {
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("%w: dht announce port %d out of range 1-65535", framework.ErrInvalidOption, port)
	}
	// the joins map is keyed by topic: a key no topic's join can take by
	// accident, distinct per (infohash, port)
	h := sha256.New()
	h.Write([]byte("dwebswarm:raw-infohash:"))
	h.Write(ih[:])
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], uint16(port))
	h.Write(p[:])
	var key framework.Topic
	copy(key[:], h.Sum(nil))

	req := framework.JoinRequest{Topic: key, Announce: true, Port: port}
	j := newJoin(d, req, &flushSink{f: flushed})
	j.ih = ih
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, errClosed()
	}
	old := d.joins[key]
	d.joins[key] = j
	d.wg.Add(1)
	d.mu.Unlock()
	if old != nil {
		old.stop()
		<-old.done
	}
	go d.runJoin(j)
	return func() { _ = d.Leave(context.Background(), key) }, nil
}

// flushSink is the sink of an infohash announcement: it reports only the
// first flush.
type flushSink struct {
	once sync.Once
	f    func()
}

func (s *flushSink) Peer(framework.Peer) {}
func (s *flushSink) Updated()            {}
func (s *flushSink) Flushed() {
	if s.f != nil {
		s.once.Do(s.f)
	}
}
