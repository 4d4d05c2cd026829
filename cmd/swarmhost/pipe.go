package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

const pipeHelp = `usage: swarmhost pipe [flags] TOPIC
       swarmhost pipe [flags] --peer-key KEY [TOPIC]
       swarmhost pipe [flags] --announce

Joins TOPIC (64 hex digits, or a name, hashed with SHA-256; name:TEXT forces
a name; hex-like text of another length is an error), or with --peer-key
looks for the swarm whose public key is KEY, wherever it is (a session that
proves another key is refused); sends stdin to the
first pipe that connects and writes what it sends to stdout (the two pipes
first agree on one connection with a short handshake). Half-closes when
stdin ends. The swarm's identity is --key FILE (created, mode 0600, if
missing), else a new key pair for this run; its public key is logged at
start. An announcing pipe is findable by that key; --announce without TOPIC
is findable by key only. Sessions are encrypted unless --plaintext (both ends must agree).
Exits 0 when both directions are done, 1 on failure (why is
logged at warn), 2 on bad usage or a port in use, 130 on Ctrl-C. Logs go to
stderr.

examples:
  swarmhost pipe --announce --port 4000 my-topic          # be findable
  echo hi | swarmhost pipe --peer 127.0.0.1:4000 my-topic  # find and send
  swarmhost pipe --announce --key server.key              # findable by key
  swarmhost pipe --peer-key KEY                           # reach it by key

flags:
`

func runPipe(ctx context.Context, args []string, s stdio) int {
	fs := flag.NewFlagSet("pipe", flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() { fmt.Fprint(s.err, pipeHelp); fs.PrintDefaults() }
	var nf nodeFlags
	addNodeFlags(fs, &nf, "static")
	announce := fs.Bool("announce", false, "also announce: be connectable (default: look up only)")
	var peerKey secure.PublicKey
	fs.Func("peer-key", "reach the swarm with this public `KEY` (as its log or `swarmhost key` shows it), found by its key", func(v string) error {
		k, err := secure.ParsePublicKey(v)
		peerKey = k
		return err
	})
	fs.StringVar(&nf.relays, "relay", "", "comma-separated relays to reserve at (`KEY@HOST:PORT` or HOST:PORT, see swarmhost relay): the swarm is then also reachable through one")
	fs.StringVar(&nf.relayWhen, "relay-when", "unpunchable", "reserve at a relay only while the DHT reports this swarm not hole-punchable or a dialler that cannot hole punch asks for one (unpunchable; without --discovery dht: always), or always")
	var idf identityFlags
	addIdentityFlags(fs, &idf)
	var timeout time.Duration
	fs.Func("timeout", "give up when no peer connected within this `DURATION`, e.g. 30s (0, the default: wait forever)", durationFlag(&timeout))
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(pos) > 1 || len(pos) == 0 && peerKey.IsZero() && !*announce {
		fmt.Fprintln(s.err, "swarmhost pipe: want one TOPIC, or --peer-key KEY, or --announce")
		fs.Usage()
		return 2
	}
	log, err := newLogger(s.err, *logLevel)
	if err != nil {
		fmt.Fprintln(s.err, "swarmhost pipe:", err)
		return 2
	}
	target := pipeTarget{peerKey: peerKey, announce: *announce}
	if len(pos) == 1 {
		if target.topic, err = framework.ParseTopicArg(pos[0]); err != nil {
			fmt.Fprintln(s.err, "swarmhost pipe:", err)
			return 2
		}
		target.hasTopic = true
	}
	if idf.plaintext && !peerKey.IsZero() {
		fmt.Fprintln(s.err, "swarmhost pipe: --peer-key needs sessions: plaintext swarms have no key")
		return 2
	}
	kp, err := idf.keyPair(s)
	if err != nil {
		fmt.Fprintln(s.err, "swarmhost pipe:", err)
		return 2
	}
	if peerKey == kp.Public {
		fmt.Fprintln(s.err, "swarmhost pipe: --peer-key is this pipe's own key")
		return 2
	}
	return exitCode(ctx, "pipe", pipe(ctx, log, nf, pipeIdentity{kp, idf.plaintext}, target, timeout, s), s)
}

// pipeTarget is what a pipe joins: a topic, a peer by key, or both; an
// announcing pipe without topic is findable by key only.
type pipeTarget struct {
	topic    framework.Topic
	hasTopic bool
	peerKey  secure.PublicKey // zero: none
	announce bool
}

// joinTopic is the topic whose flush the pipe logs.
func (t pipeTarget) joinTopic(self secure.PublicKey) framework.Topic {
	switch {
	case t.hasTopic:
		return t.topic
	case !t.peerKey.IsZero():
		return framework.PeerTopic(t.peerKey)
	default:
		return framework.PeerTopic(self)
	}
}

// join makes sw join what t names.
func (t pipeTarget) join(ctx context.Context, sw *framework.Swarm) error {
	if t.hasTopic {
		if err := sw.Join(ctx, t.topic, framework.Announce(t.announce)); err != nil {
			return err
		}
	}
	if !t.peerKey.IsZero() {
		return sw.JoinPeer(ctx, t.peerKey)
	}
	return nil
}

var errNoPeer = errors.New("no peer connected")

// pipeIdentity is the pipe's key pair and session mode.
type pipeIdentity struct {
	kp        secure.KeyPair
	plaintext bool
}

func pipe(ctx context.Context, log *slog.Logger, nf nodeFlags, id pipeIdentity, target pipeTarget, timeout time.Duration, s stdio) error {
	opts, plugins, err := nf.options()
	if err != nil {
		return err
	}
	opts = append(opts, framework.WithLogger(log))
	opts = append(opts, identityOptions(id.kp, id.plaintext)...)
	if target.announce && !target.hasTopic {
		opts = append(opts, framework.WithFindable(framework.FindableAlways))
	}
	topic := target.joinTopic(id.kp.Public)
	var sw *framework.Swarm
	var relays []string
	if nf.relays != "" {
		relays = strings.Split(nf.relays, ",")
	}
	rc, err := relayClient(log, id.kp, relays, nf.relayWhen, nil, func() framework.Connectivity { return sw.Connectivity() }, plugins.Discoveries)
	if err != nil {
		plugins.Close()
		return err
	}
	if rc != nil {
		opts = append(opts, rc.Options()...)
	}
	sw, err = framework.New(opts...)
	if err != nil {
		plugins.Close()
		return err
	}
	defer sw.Close()
	if err := sw.Start(ctx); err != nil {
		return err
	}
	events := sw.Subscribe()
	defer events.Close()
	diag := newDiagnosis(sw, nf)
	defer diag.close()
	attrs := []any{"port", sw.Port(), "topic", topic.String(), "announce", target.announce, "public_key", id.kp.Public.String(), "mode", mode(id.plaintext)}
	if !target.peerKey.IsZero() {
		attrs = append(attrs, "peer_key", target.peerKey.String())
	}
	log.Info("listening", attrs...)
	if err := target.join(ctx, sw); err != nil {
		return err
	}
	go func() {
		if sw.Flushed(ctx, topic) == nil {
			logFlushed(log, nf, sw.Connectivity())
		}
	}()

	waitCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	// one peer only: the pipes agree on one connection (see pipehello.go)
	// and close the others, then and later
	agree := newPipeAgreement(log)
	defer agree.stop()
	go func() {
		for ev := range events.C() {
			if e, ok := ev.(*framework.ConnectionEvent); ok {
				agree.add(e.Conn)
			}
		}
	}()
	nc, err := agree.wait(waitCtx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			log.Warn(fmt.Sprintf("%v within %v on topic %s: %s", errNoPeer, timeout, topic.Short(), diag.explain(sw.Connectivity())))
			return fmt.Errorf("%w: %w", errNoPeer, errReported)
		}
		return err
	}
	conn := nc.(*framework.Conn)
	attrs = []any{"remote", conn.RemoteAddr().String(), "type", conn.Type(), "client", conn.Client(), "path", conn.Path()}
	if conn.Session() != nil {
		attrs = append(attrs, "remote_key", conn.RemotePublicKey().String())
	}
	log.Info("connected", attrs...)

	var wg sync.WaitGroup
	var sendErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, sendErr = io.Copy(conn, s.in)
		if err := conn.CloseWrite(); err != nil && sendErr == nil {
			sendErr = err
		}
	}()
	_, recvErr := io.Copy(s.out, conn)
	if recvErr == nil {
		// the peer is done sending; wait for stdin unless ctx ends first
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			conn.Close()
			return ctx.Err()
		}
	} else {
		conn.Close()
	}
	conn.Close()
	return errors.Join(recvErr, sendErr)
}
