package utp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/internal/udpmux"
)

// A connection advertises at most a quarter of its UDP socket's receive
// buffer (issue 16): libutp puts a whole window in flight in bursts, and
// with our 4 MiB window on a 208 KiB socket the kernel dropped its
// datagrams whenever our read loop fell behind; a libutp dialler whose
// seq_nr is in the upper half never fast-retransmits, so each loss cost
// it 1–1.5 s.
func TestWindowBoundedBySocketBuffer(t *testing.T) {
	cfg := Config{}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	raw, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	rcv := udpmux.KernelReadBuffer(raw)
	if rcv <= 0 || rcv >= cfg.ReadBuffer {
		t.Fatalf("SO_RCVBUF %d", rcv)
	}
	for _, tc := range []struct {
		name string
		pc   net.PacketConn
		buf  int
	}{
		{"UDP socket", raw, rcv},
		{"PacketConn without SyscallConn", &recordingPC{}, defaultSocketBuffer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := socketReadBuffer(tc.pc); got != tc.buf {
				t.Fatalf("socketReadBuffer = %d, want %d", got, tc.buf)
			}
			s := &socket{pc: tc.pc, cfg: &cfg, conns: make(map[connKey]*Conn), done: make(chan struct{})}
			s.wndCap = windowCap(socketReadBuffer(tc.pc), &cfg)
			c := newConn(s, connKey{netip.MustParseAddrPort("127.0.0.1:9"), 1}, 2, true)
			c.mu.Lock()
			h := c.header(stState, c.seqNr)
			c.mu.Unlock()
			if limit := max(tc.buf/4, 2*cfg.LoopbackPacketSize); int(h.wnd) > limit {
				t.Fatalf("advertised window %d on a socket buffering %d bytes (limit %d)", h.wnd, tc.buf, limit)
			}
		})
	}
}

// lossSetup returns an accepted connection with n full packets in flight
// that the peer never received, an SRTT of srtt and a wide-open window.
func lossSetup(t *testing.T, n int, srtt time.Duration) (*Conn, *recordingPC, time.Time) {
	t.Helper()
	s, pc := recordingSocket(t, Config{})
	from := netip.MustParseAddrPort("127.0.0.1:7000")
	c, _ := acceptFrom(t, s, pc, from, 0)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.srtt, c.rttvar, c.rttSet = srtt, srtt/2, true
	c.rto = minRTO
	c.cwnd, c.ssthresh, c.peerWnd = 1<<20, 1<<20, 1<<20
	now := time.Now()
	c.unsent.push(make([]byte, n*c.mss))
	for len(c.inflight) < n {
		before := len(c.inflight)
		c.pump(now)
		if len(c.inflight) == before {
			t.Fatalf("only %d packets went out", before)
		}
	}
	return c, pc, now
}

// peerAck is the peer's ack of ack, with libutp's empty selective ack
// (it attaches one, all zeroes, while it holds data out of order).
func peerAck(c *Conn, ack uint16, now time.Time) {
	h := header{typ: stState, connID: c.key.id, seq: c.ackNr + 1, ack: ack, wnd: 1 << 20, sack: make([]byte, 4)}
	c.receive(&h, nil, now)
}

// After a window lost at its head (libutp's socket buffer overflowed; its
// acks carry an empty selective ack, which no loss rule counts), the ack
// of the probe shows that every packet sent before the probe is gone: they
// are all resent at once, not one per probe timeout (a stall of minutes
// once the SRTT was inflated, issue 16).
func TestProbeAckResendsWhatItOvertook(t *testing.T) {
	const n = 60
	srtt := 10 * time.Millisecond
	c, pc, sent := lossSetup(t, n, srtt)
	c.mu.Lock()
	first := c.inflight[0].seq
	probeAt := sent.Add(3 * srtt)
	c.onPTO(probeAt)
	c.mu.Unlock()
	mark := len(pc.datagrams())
	peerAck(c, first, probeAt.Add(srtt))

	resent := map[uint16]bool{}
	for _, d := range pc.datagrams()[mark:] {
		h, _, err := parseHeader(d)
		if err != nil {
			t.Fatal(err)
		}
		if h.typ == stData && seqLess(h.seq, first+n) {
			resent[h.seq] = true
		}
	}
	if len(resent) != n-1 {
		t.Fatalf("the probe's ack made %d of the %d packets it overtook go out again", len(resent), n-1)
	}
}

// Karn's rule: an ack covering a resent packet gives no RTT sample. The
// packets after it that it acks as well waited at the peer, out of order,
// since they were first sent; sampling them made the SRTT 1.3 s (issue 16).
func TestNoRTTSampleFromARepairAck(t *testing.T) {
	const n = 20
	srtt := 10 * time.Millisecond
	c, _, sent := lossSetup(t, n, srtt)
	c.mu.Lock()
	first := c.inflight[0].seq
	probeAt := sent.Add(5 * time.Second) // the peer sat on the rest for 5 s
	c.onPTO(probeAt)
	c.mu.Unlock()
	peerAck(c, first+n-1, probeAt.Add(srtt)) // the repair completes the window
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.inflight) != 0 {
		t.Fatalf("%d packets still in flight", len(c.inflight))
	}
	if c.srtt > 2*srtt {
		t.Fatalf("SRTT %v after a repair ack (was %v)", c.srtt, srtt)
	}
}

// echoAck is the peer's ack of ack sent when the last packet it had was
// the one stamped echo: uTP's timestamps give echo = ts - tsDiff.
func echoAck(c *Conn, ack uint16, echo uint32, now time.Time) {
	const lead = 123456 // the peer's clock minus ours, µs
	h := header{typ: stState, connID: c.key.id, seq: c.ackNr + 1, ack: ack, wnd: 1 << 20, ts: echo + lead, tsDiff: lead}
	c.receive(&h, nil, now)
}

// resentBelow counts the data packets below end sent since mark.
func resentBelow(t *testing.T, pc *recordingPC, mark int, end uint16) int {
	t.Helper()
	n := 0
	for _, d := range pc.datagrams()[mark:] {
		h, _, err := parseHeader(d)
		if err != nil {
			t.Fatal(err)
		}
		if h.typ == stData && seqLess(h.seq, end) {
			n++
		}
	}
	return n
}

// A probe sent while the peer was only slow to ack (a receiver starved
// of CPU for longer than the probe timeout: on a loaded 2-core machine,
// hundreds of times per 256 MiB) is spurious: the peer's acks, stamped
// before the probe reached it, ack the original. Nothing sent before the
// probe may then be presumed lost, and once the episode is over the
// window halved for it comes back (issue 16: every such probe used to
// resend the rest of the window and halve it, 400–1 700 needless resends
// per 256 MiB on loopback).
func TestSpuriousProbeIsUndone(t *testing.T) {
	const n = 60
	srtt := 200 * time.Microsecond
	c, pc, sent := lossSetup(t, n, srtt)
	c.mu.Lock()
	first := c.inflight[0].seq
	cwnd := c.cwnd
	probeAt := sent.Add(50 * srtt)
	c.onPTO(probeAt)
	if c.cwnd >= cwnd {
		t.Fatalf("the probe did not reduce the window: %d", c.cwnd)
	}
	before := c.inflight[0].firstResend - 1 // stamped before the probe
	c.mu.Unlock()
	mark := len(pc.datagrams())
	// the peer acks half the window, then the rest, from before the
	// probe reached it
	echoAck(c, first+n/2-1, before, probeAt.Add(srtt))
	echoAck(c, first+n-1, before, probeAt.Add(srtt))
	if k := resentBelow(t, pc, mark, first+n); k != 0 {
		t.Fatalf("the original's acks made %d packets go out again", k)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cwnd < cwnd || c.inRecovery {
		t.Fatalf("window %d (was %d), in recovery %v: the spurious probe's reduction stayed", c.cwnd, cwnd, c.inRecovery)
	}
	if got := c.s.spurious.Load(); got != 1 {
		t.Fatalf("%d spurious recoveries counted, want 1", got)
	}
}

// The same ack stamped after the probe reached the peer is a repair: what
// the probe overtook is resent (the rule of TestProbeAckResendsWhatItOvertook,
// with timestamps), and the reduction stays.
func TestProbeAckWithLaterEchoRepairs(t *testing.T) {
	const n = 60
	srtt := 10 * time.Millisecond
	c, pc, sent := lossSetup(t, n, srtt)
	c.mu.Lock()
	first := c.inflight[0].seq
	probeAt := sent.Add(3 * srtt)
	c.onPTO(probeAt)
	probeTS := c.inflight[0].firstResend
	c.mu.Unlock()
	mark := len(pc.datagrams())
	echoAck(c, first, probeTS, probeAt.Add(srtt))
	if k := resentBelow(t, pc, mark, first+n); k != n-1 {
		t.Fatalf("the probe's ack made %d of the %d packets it overtook go out again", k, n-1)
	}
	if got := c.s.spurious.Load(); got != 0 {
		t.Fatalf("%d spurious recoveries counted, want 0", got)
	}
}

// A real loss probed twice: the ack of the first probe echoes a timestamp
// before the second probe's, but not before the first's; the loss was
// real and its reduction stays (review of issue 16: the undo compared
// against the last resend).
func TestSecondProbeDoesNotMakeARealLossSpurious(t *testing.T) {
	c, _, sent := lossSetup(t, 60, 10*time.Millisecond)
	c.mu.Lock()
	first, cwnd := c.inflight[0].seq, c.cwnd
	c.onPTO(sent.Add(30 * time.Millisecond))
	ts1 := c.inflight[0].firstResend
	time.Sleep(2 * time.Millisecond) // the second probe's timestamp is later
	c.onPTO(sent.Add(90 * time.Millisecond))
	c.mu.Unlock()
	echoAck(c, first+59, ts1, sent.Add(130*time.Millisecond))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s.spurious.Load() != 0 || c.cwnd >= cwnd {
		t.Fatalf("a real loss was undone: cwnd %d (was %d)", c.cwnd, cwnd)
	}
}

// An ack soon after the resend, whose timestamp is the resend's, proves
// the resend was needed: the time rule alone (meant for Karn and for what
// the resend overtook) must not undo the reduction.
func TestQuickAckOfANeededResendIsNotSpurious(t *testing.T) {
	c, _, sent := lossSetup(t, 60, 400*time.Millisecond)
	c.mu.Lock()
	first, cwnd := c.inflight[0].seq, c.cwnd
	at := sent.Add(10 * time.Millisecond)
	c.markLost(c.inflight[0])
	c.pump(at)
	ts := c.inflight[0].firstResend
	c.mu.Unlock()
	echoAck(c, first+59, ts, at.Add(50*time.Millisecond))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s.spurious.Load() != 0 || c.cwnd >= cwnd {
		t.Fatalf("undone although the echo proves the resend was needed: cwnd %d", c.cwnd)
	}
}

// Two losses in one episode, one only late and one real: the episode is
// not undone (only an episode whose resends were all unneeded is).
func TestUndoNeedsEveryResendOfTheEpisodeUnneeded(t *testing.T) {
	c, _, sent := lossSetup(t, 60, 10*time.Millisecond)
	c.mu.Lock()
	first, cwnd := c.inflight[0].seq, c.cwnd
	at := sent.Add(20 * time.Millisecond)
	c.markLost(c.inflight[0])
	c.markLost(c.inflight[5])
	c.pump(at)
	before, p5 := c.inflight[0].firstResend-1, c.inflight[5].firstResend
	c.mu.Unlock()
	echoAck(c, first+4, before, at.Add(10*time.Millisecond)) // 0 was only late
	echoAck(c, first+59, p5, at.Add(20*time.Millisecond))    // 5's resend was needed
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s.spurious.Load() != 0 || c.cwnd >= cwnd {
		t.Fatalf("cwnd %d (was %d): a real loss's reduction was undone", c.cwnd, cwnd)
	}
}

// A peer that sends no timestamp_difference gives no evidence: no undo.
func TestNoUndoWithoutTimestamps(t *testing.T) {
	c, _, sent := lossSetup(t, 60, 10*time.Millisecond)
	c.mu.Lock()
	first, cwnd := c.inflight[0].seq, c.cwnd
	probeAt := sent.Add(30 * time.Millisecond)
	c.onPTO(probeAt)
	c.mu.Unlock()
	peerAck(c, first+59, probeAt.Add(time.Millisecond)) // sooner than srtt/4
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s.spurious.Load() != 0 || c.cwnd >= cwnd {
		t.Fatalf("undone without timestamps: cwnd %d", c.cwnd)
	}
}
