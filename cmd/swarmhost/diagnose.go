package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/hostconfig"
	"github.com/dwebswarm/dwebswarm-go/framework"
)

// errReported marks an error already logged at warn: the command exits
// non-zero without printing it again.
var errReported = errors.New("reported")

// diagnosis watches a swarm's events to say, when no peer connected, why:
// which dials failed and how, which peers were rejected, whether the DHT
// answered.
type diagnosis struct {
	sub       *framework.Subscription
	nf        nodeFlags
	done      chan struct{}
	mu        sync.Mutex
	found     int
	dials     map[string]map[string]int // addr → failure kind → count
	addrs     []string                  // dialled addresses, first failure first
	rejected  map[string]int            // reason → count
	rejectOrd []string
}

func newDiagnosis(sw *framework.Swarm, nf nodeFlags) *diagnosis {
	d := &diagnosis{sub: sw.Subscribe(), nf: nf, done: make(chan struct{}), dials: map[string]map[string]int{}, rejected: map[string]int{}}
	go d.run()
	return d
}

func (d *diagnosis) run() {
	defer close(d.done)
	for ev := range d.sub.C() {
		d.mu.Lock()
		switch e := ev.(type) {
		case *framework.PeerEvent:
			d.found++
		case *framework.PeerRejectedEvent:
			r := errString(e.Reason)
			if d.rejected[r] == 0 {
				d.rejectOrd = append(d.rejectOrd, r)
			}
			d.rejected[r]++
		case *framework.DialFailedEvent:
			a := e.Peer.Addr()
			if d.dials[a] == nil {
				d.dials[a] = map[string]int{}
				d.addrs = append(d.addrs, a)
			}
			d.dials[a][dialFailure(e.Err)]++
		}
		d.mu.Unlock()
	}
}

// close ends the subscription and waits for the reader.
func (d *diagnosis) close() {
	d.sub.Close()
	<-d.done
}

// dialFailure names how a dial failed, briefly.
func dialFailure(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, framework.ErrSelf):
		return "reached ourselves"
	case err == nil:
		return "failed"
	}
	return "failed: " + err.Error()
}

func errString(err error) string {
	if err == nil {
		return "rejected"
	}
	return err.Error()
}

// usesDHT reports whether the swarm runs the built-in DHT discovery.
func (f nodeFlags) usesDHT() bool { return slices.Contains(hostconfig.SplitList(f.discovery), "dht") }

// bootstrapList is the DHT's bootstrap nodes as the user gave them.
func (f nodeFlags) bootstrapList() string {
	if b := f.plugin.Bootstrap; len(b) > 0 {
		return strings.Join(b, ", ")
	}
	return "the public routers"
}

// explain says why no peer connected, in one line.
func (d *diagnosis) explain(c framework.Connectivity) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var parts []string
	for _, a := range d.addrs {
		kinds := d.dials[a]
		names := make([]string, 0, len(kinds))
		for k := range kinds {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			parts = append(parts, fmt.Sprintf("%s to %s %s", plural(kinds[k], "dial"), a, k))
		}
	}
	for _, r := range d.rejectOrd {
		parts = append(parts, fmt.Sprintf("%s rejected: %s", plural(d.rejected[r], "peer"), r))
	}
	if d.nf.usesDHT() && !c.Bootstrapped {
		parts = append(parts, "no DHT node answered "+d.nf.bootstrapList())
	}
	if len(parts) == 0 {
		switch {
		case d.found == 0:
			parts = append(parts, "no peer found by "+d.nf.discovery+" discovery")
		default:
			parts = append(parts, fmt.Sprintf("%s found, none connected", plural(d.found, "peer")))
		}
	}
	return strings.Join(parts, "; ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// logFlushed logs that the topic is flushed: with the DHT's fields when the
// DHT runs (in process, or in a plugin that reports its connectivity), and
// a warning when no DHT node answered the built-in one.
func logFlushed(log *slog.Logger, nf nodeFlags, c framework.Connectivity) {
	if !nf.usesDHT() {
		if c.Bootstrapped { // a plugin's DHT reported its connectivity
			log.Info("flushed", "discovery", nf.discovery, "bootstrapped", c.Bootstrapped, "public", c.PublicAddrs, "holepunchable", c.Holepunchable)
			return
		}
		log.Info("flushed", "discovery", nf.discovery)
		return
	}
	if !c.Bootstrapped {
		log.Warn("flushed, but no DHT node answered " + nf.bootstrapList() + ": lookups find nothing until one does")
		return
	}
	log.Info("flushed", "bootstrapped", c.Bootstrapped, "public", c.PublicAddrs, "holepunchable", c.Holepunchable)
}
