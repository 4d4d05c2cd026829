package dht_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht/dhttest"
)

// slowNodes are KRPC nodes that answer no get_peers until every one of
// them has been asked: with alpha 3 and four nodes, the fourth is asked
// only once a query gave up its traversal slot unanswered — a soft timeout.
// Then every (re)sent get_peers is answered, with a token, and
// announce_peer is recorded.
type slowNodes struct {
	mu        sync.Mutex
	asked     map[string]bool
	announced map[string]bool
	all       chan struct{} // closed when every node was asked
	n         int
	wg        sync.WaitGroup
}

func startSlowNodes(t *testing.T, n int) (*slowNodes, []string) {
	s := &slowNodes{asked: map[string]bool{}, announced: map[string]bool{}, all: make(chan struct{}), n: n}
	var addrs []string
	var conns []*net.UDPConn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		s.wg.Wait()
	})
	for range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		addrs = append(addrs, c.LocalAddr().String())
		s.wg.Add(1)
		go s.serve(c)
	}
	return s, addrs
}

func (s *slowNodes) serve(c *net.UDPConn) {
	defer s.wg.Done()
	self := c.LocalAddr().String()
	id := krpc.ID{byte(c.LocalAddr().(*net.UDPAddr).Port), 0x5a}
	tok := "slow-token"
	buf := make([]byte, 4096)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		var m krpc.Msg
		if bencode.Unmarshal(buf[:n], &m) != nil || m.Y != "q" || m.A == nil {
			continue
		}
		r := krpc.Return{ID: id}
		switch m.Q {
		case "get_peers":
			s.mu.Lock()
			s.asked[self] = true
			if len(s.asked) == s.n {
				select {
				case <-s.all:
				default:
					close(s.all)
				}
			}
			s.mu.Unlock()
			select {
			case <-s.all:
			default:
				continue // not yet: this send goes unanswered
			}
			r.Token = &tok
		case "announce_peer":
			s.mu.Lock()
			s.announced[self] = true
			s.mu.Unlock()
		default:
			continue
		}
		b, err := bencode.Marshal(krpc.Msg{T: m.T, Y: "r", R: &r})
		if err == nil {
			_, _ = c.WriteToUDPAddrPort(b, from)
		}
	}
}

// TestSoftTimeoutLateRepliesAreAnnouncedTo: a round whose first three
// queries go unanswered gives their slots to the next node (the soft
// timeout) instead of waiting QueryTries × QueryTimeout for each; the
// replies those queries get afterwards still count, and the round
// announces to every node that answered with a token, the late ones
// included. Without soft timeouts the fourth node is asked only after the
// first three queries failed, and only it is announced to.
func TestSoftTimeoutLateRepliesAreAnnouncedTo(t *testing.T) {
	nodes, addrs := startSlowNodes(t, 4)
	pc, err := dhttest.ListenLoopback(0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dht.ListenNode(dht.Config{
		PacketConn: pc, Bootstrap: addrs, SendRate: -1, NoMaintenance: true, Ephemeral: dht.Bool(true),
		// Ten sends 250 ms apart: the late queries' resends are answered
		// once the fourth node was asked, even on a starved CPU.
		QueryTimeout: 250 * time.Millisecond, QueryTries: 10,
		FastRelookups: []time.Duration{}, RoundMin: time.Hour, RoundMax: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(); pc.Close() })
	s := join(t, d, framework.JoinRequest{Topic: topic(t.Name()), Announce: true, Port: 40077})
	waitSignal(t, s.flushCh, time.Minute, "the announce round")
	nodes.mu.Lock()
	announced := len(nodes.announced)
	nodes.mu.Unlock()
	st := d.Stats()
	t.Logf("announced to %d of 4; %d queries late, %d late replies", announced, st.QueriesLate, st.LateReplies)
	if announced != 4 {
		t.Errorf("announced to %d of the 4 nodes that answered with a token, want 4", announced)
	}
	// The traversal may start with two queries or three (the bootstrap
	// nodes arrive one by one): at least one went late, and every late
	// query was answered.
	if st.QueriesLate < 1 || st.LateReplies != st.QueriesLate {
		t.Errorf("%d queries late, %d late replies; want ≥ 1, all answered", st.QueriesLate, st.LateReplies)
	}
}
