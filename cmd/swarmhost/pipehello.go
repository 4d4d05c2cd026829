package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
)

// The pipe handshake makes two pipes agree on one connection when more than
// one connects them: the dialler's transport race can still deliver its
// loser to the acceptor (the dialler closes it without a byte written), and
// two pipes that both announce dial each other. The rule:
//
//  1. On every connection it gets, a pipe sends a hello: pipeMagic and a
//     random nonce of its own, then reads the peer's hello. A connection
//     that ends before a full hello (the dialler's race loser) is dropped.
//  2. The pipe with the smaller nonce chooses: it keeps the first connection
//     whose hello arrived and writes pipeChosen on it.
//  3. The other pipe keeps the connection on which pipeChosen arrives.
//  4. Every other connection, then or later, is closed.
//
// Only after that does either side write data, so it does not matter which
// side speaks first, and a side with nothing to send (empty stdin) still
// agrees on the connection. The handshake costs one round trip. A pipe
// speaks to pipes: a peer that sends no hello is never chosen.
const (
	pipeMagic  = "DWSPIPE1"
	pipeNonce  = 16
	pipeHello  = len(pipeMagic) + pipeNonce
	pipeChosen = byte('K')
)

// errPipeHandshake marks a connection dropped by the handshake.
var errPipeHandshake = errors.New("pipe handshake")

// pipeAgreement runs the handshake on every candidate connection and
// yields the chosen one.
type pipeAgreement struct {
	nonce  [pipeNonce]byte
	log    *slog.Logger
	chosen chan pipeResult // receives the chosen connection, once

	mu    sync.Mutex
	done  bool // a connection was chosen, or the agreement was stopped
	cands map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newPipeAgreement(log *slog.Logger) *pipeAgreement {
	a := &pipeAgreement{log: log, chosen: make(chan pipeResult, 1), cands: make(map[net.Conn]struct{})}
	rand.Read(a.nonce[:])
	return a
}

// add starts the handshake on c (or closes it if one was chosen already).
func (a *pipeAgreement) add(c net.Conn) {
	a.mu.Lock()
	if a.done {
		a.mu.Unlock()
		c.Close()
		return
	}
	a.cands[c] = struct{}{}
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		if err := a.handshake(c); err != nil {
			a.log.Debug("connection dropped by the pipe handshake", "remote", c.RemoteAddr().String(), "err", err)
			a.drop(c)
		}
	}()
}

type pipeResult struct {
	c   net.Conn
	err error
}

// wait returns the chosen connection, or ctx's error.
func (a *pipeAgreement) wait(ctx context.Context) (net.Conn, error) {
	select {
	case r := <-a.chosen:
		if r.err != nil {
			r.c.Close()
			return nil, fmt.Errorf("%w: %w", errPipeHandshake, r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stop closes every connection not chosen (and the chosen one if wait did
// not return it) and waits for the handshakes.
func (a *pipeAgreement) stop() {
	a.mu.Lock()
	a.done = true
	rest := a.cands
	a.cands = nil
	a.mu.Unlock()
	for c := range rest {
		c.Close()
	}
	a.wg.Wait()
	select {
	case r := <-a.chosen:
		r.c.Close()
	default:
	}
}

func (a *pipeAgreement) drop(c net.Conn) {
	a.mu.Lock()
	delete(a.cands, c)
	a.mu.Unlock()
	c.Close()
}

// claim makes c the connection, unless one was chosen already, and closes
// the others.
func (a *pipeAgreement) claim(c net.Conn) bool {
	a.mu.Lock()
	if a.done {
		a.mu.Unlock()
		return false
	}
	a.done = true
	delete(a.cands, c)
	rest := a.cands
	a.cands = nil
	a.mu.Unlock()
	for o := range rest {
		o.Close()
	}
	return true
}

func (a *pipeAgreement) handshake(c net.Conn) error {
	// send and read the hellos at once: a transport without buffers
	// (net.Pipe) would block both writers
	hello := append([]byte(pipeMagic), a.nonce[:]...)
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(hello)
		wrote <- err
	}()
	var b [pipeHello]byte
	_, err := io.ReadFull(c, b[:])
	if err != nil {
		c.Close() // ends the write too
	}
	if werr := <-wrote; err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	if !bytes.Equal(b[:len(pipeMagic)], []byte(pipeMagic)) {
		return fmt.Errorf("%w: the peer is not a pipe (magic %q)", errPipeHandshake, b[:len(pipeMagic)])
	}
	switch bytes.Compare(a.nonce[:], b[len(pipeMagic):]) {
	case 0:
		return fmt.Errorf("%w: connected to ourselves", errPipeHandshake)
	case -1: // we choose: the first connection with the peer's hello
		if !a.claim(c) {
			return fmt.Errorf("%w: another connection was chosen", errPipeHandshake)
		}
		_, err := c.Write([]byte{pipeChosen})
		a.chosen <- pipeResult{c, err}
		return nil
	default: // the peer chooses
		var k [1]byte
		if _, err := io.ReadFull(c, k[:]); err != nil {
			return err
		}
		if k[0] != pipeChosen {
			return fmt.Errorf("%w: mark 0x%02x", errPipeHandshake, k[0])
		}
		if !a.claim(c) {
			return fmt.Errorf("%w: another connection was chosen", errPipeHandshake)
		}
		a.chosen <- pipeResult{c, nil}
		return nil
	}
}
