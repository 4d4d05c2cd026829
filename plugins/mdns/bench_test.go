//go:build linux

package mdns

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/netlab"
)

func leave(b *testing.B, d *Discovery, t framework.Topic) {
	if err := d.Leave(context.Background(), t); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkJoinToPeer: A announces; B joins (lookup) and finds A through
// its first query. ns/op is B's Join → Peer.
func BenchmarkJoinToPeer(b *testing.B) {
	lab := netlab.New(b)
	_, hs := lab.LAN(2)
	a, bb := newIn(b, hs[0], Config{}), newIn(b, hs[1], Config{})
	i := 0
	for b.Loop() {
		b.StopTimer()
		topic := topicN("bench join", i)
		i++
		join(b, a, topic, true, false, 4000).waitFlushed(b, 2*time.Second)
		b.StartTimer()
		join(b, bb, topic, false, true, 0).waitPeer(b, time.Second)
		b.StopTimer()
		leave(b, a, topic)
		leave(b, bb, topic)
		b.StartTimer()
	}
}

// BenchmarkAnnounceToPeer: B looks up first; A joins (announce) and B finds
// it through A's announcement. ns/op is A's Join → B's Peer.
func BenchmarkAnnounceToPeer(b *testing.B) {
	lab := netlab.New(b)
	_, hs := lab.LAN(2)
	a, bb := newIn(b, hs[0], Config{}), newIn(b, hs[1], onlyFirstQuery())
	i := 0
	for b.Loop() {
		b.StopTimer()
		topic := topicN("bench announce", i)
		i++
		sb := join(b, bb, topic, false, true, 0)
		sb.waitFlushed(b, 2*time.Second)
		b.StartTimer()
		join(b, a, topic, true, false, 4000)
		sb.waitPeer(b, time.Second)
		b.StopTimer()
		leave(b, a, topic)
		leave(b, bb, topic)
		b.StartTimer()
	}
}

// BenchmarkJoinToConnection: A announces and listens on TCP; B joins, finds
// A by mDNS only and connects. ns/op is B's Join → TCP connection.
func BenchmarkJoinToConnection(b *testing.B) {
	lab := netlab.New(b)
	_, hs := lab.LAN(2)
	a, bb := newIn(b, hs[0], Config{}), newIn(b, hs[1], Config{})
	var ln net.Listener
	hs[0].MustDo(func() (err error) { ln, err = net.Listen("tcp4", ":0"); return err })
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	// A long-lived dialer thread inside B: no namespace switch per dial.
	dials := make(chan string)
	dialed := make(chan error)
	go func() {
		_ = hs[1].Do(func() error {
			for addr := range dials {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err == nil {
					c.Close()
				}
				dialed <- err
			}
			return nil
		})
	}()
	defer close(dials)
	i := 0
	for b.Loop() {
		b.StopTimer()
		topic := topicN("bench conn", i)
		i++
		join(b, a, topic, true, false, port).waitFlushed(b, 2*time.Second)
		b.StartTimer()
		p := join(b, bb, topic, false, true, 0).waitPeer(b, time.Second)
		dials <- p.Addr()
		if err := <-dialed; err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		leave(b, a, topic)
		leave(b, bb, topic)
		b.StartTimer()
	}
}

// BenchmarkIdle10Topics: two swarms each announce and look up 10 topics;
// after the join bursts, packets sent per minute by one swarm's host and
// the CPU of the process (both swarms) are measured over a bounded window
// (DWS_MDNS_IDLE_SECONDS, default 20 s; the steady-state query period is
// 30–60 s, so use 120+ for a stable figure). It runs once, whatever b.N.
func BenchmarkIdle10Topics(b *testing.B) {
	window := 20 * time.Second
	if s, err := strconv.Atoi(os.Getenv("DWS_MDNS_IDLE_SECONDS")); err == nil && s > 0 {
		window = time.Duration(s) * time.Second
	}
	lab := netlab.New(b)
	_, hs := lab.LAN(2)
	a, bb := newIn(b, hs[0], Config{}), newIn(b, hs[1], Config{})
	var sinks []*sink
	for i := range 10 {
		sinks = append(sinks, join(b, a, topicN("idle", i), true, true, 4000+i))
		sinks = append(sinks, join(b, bb, topicN("idle", i), true, true, 5000+i))
	}
	for _, s := range sinks {
		s.waitUpdates(b, 3, 10*time.Second) // the 0, 1 and 3 s queries are done
	}
	tx0, rx0 := linkPackets(b, hs[0])
	cpu0 := cpuTime()
	b.ResetTimer()
	time.Sleep(window) // measuring idle cost: there is nothing to wait for
	b.StopTimer()
	cpu := cpuTime() - cpu0
	tx1, rx1 := linkPackets(b, hs[0])
	perMin := float64(time.Minute) / float64(window)
	b.ReportMetric(float64(tx1-tx0)*perMin, "tx-pkts/min")
	b.ReportMetric(float64(rx1-rx0)*perMin, "rx-pkts/min")
	b.ReportMetric(100*float64(cpu)/float64(window)/2, "cpu%/swarm")
	b.ReportMetric(window.Seconds(), "window-s")
}

// linkPackets reads the packet counters of eth0 in host h.
func linkPackets(b *testing.B, h *netlab.Host) (tx, rx uint64) {
	out, err := h.Run(context.Background(), "ip", "-s", "-j", "link", "show", "dev", "eth0")
	if err != nil {
		b.Fatal(err)
	}
	var links []struct {
		Stats64 struct {
			RX struct{ Packets uint64 } `json:"rx"`
			TX struct{ Packets uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		b.Fatalf("ip -s -j link: %v: %s", err, out)
	}
	return links[0].Stats64.TX.Packets, links[0].Stats64.RX.Packets
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
