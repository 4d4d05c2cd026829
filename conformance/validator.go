package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/swarmtest"
)

// ValidatorCase is a fresh validator and what it is declared to decide: the
// author knows the policy, the suite checks that the validator and the
// engine honour it. Each peer is validated at most once per check (a rate
// limiter may count validations), except Reject peers, which may be
// validated repeatedly and must stay rejected.
type ValidatorCase struct {
	Validator framework.PeerValidator
	// Accept lists at least two peers (distinct addresses) Validate must
	// accept with nil.
	Accept []framework.Peer
	// Reject lists at least one peer (distinct addresses) Validate must
	// reject with an error.
	Reject []framework.Peer
}

// ValidatorFactory makes a fresh validator for one check (release anything
// it starts with t.Cleanup); the suite starts one that is a
// [framework.Starter] as the swarm would. Peers' Topic fields are ignored: the suite sets
// them. Through the swarm the peers are never really dialled: the suite's
// transport records dials and fails them, so addresses outside loopback are
// safe to list.
type ValidatorFactory func(t *T) (ValidatorCase, error)

// Bounds of the validator checks.
const (
	// ValidatorFast bounds one Validate call ("it is fast").
	ValidatorFast = 250 * time.Millisecond
	// ValidatorSwarmWait bounds what the checks wait for in the swarm.
	ValidatorSwarmWait = 10 * time.Second
	// ValidatorQuiet is how long the swarm is watched for a dial that must
	// not happen.
	ValidatorQuiet = 500 * time.Millisecond
)

// Names of the validator checks.
const (
	CheckValidatorName        = "validator_name_is_short_and_stable"
	CheckValidatorDecides     = "accepts_with_nil_rejects_with_error"
	CheckValidatorFast        = "validate_is_fast"
	CheckValidatorConcurrent  = "safe_for_concurrent_use"
	CheckValidatorNoPanic     = "no_panic_on_unusual_peers"
	CheckValidatorBeforeDial  = "consulted_for_every_peer_before_any_dial"
	CheckValidatorRejected    = "rejected_peer_reported_and_never_dialled"
	CheckValidatorContainment = "errors_and_panics_contained"
)

// ValidatorChecks returns the validator checks, in the order they run.
func ValidatorChecks(f ValidatorFactory) []Check {
	return []Check{
		{CheckValidatorName, "Name returns a short stable lowercase name.", func(t *T) { validatorName(t, f) }},
		{CheckValidatorDecides, "Validate returns nil to accept; any error rejects the peer.", func(t *T) { validatorDecides(t, f) }},
		{CheckValidatorFast, "Validate is fast (each call within 250 ms).", func(t *T) { validatorFast(t, f) }},
		{CheckValidatorConcurrent, "Validate is safe for concurrent use: concurrent calls decide as sequential ones.", func(t *T) { validatorConcurrent(t, f) }},
		{CheckValidatorNoPanic, "Validate returns (nil or an error) for any peer the swarm can be handed — IPv6, host names, odd referrers — without panicking.", func(t *T) { validatorNoPanic(t, f) }},
		{CheckValidatorBeforeDial, "Validate is consulted for every discovered peer before any dial (through a real swarm).", func(t *T) { validatorBeforeDial(t, f) }},
		{CheckValidatorRejected, "Any error rejects the peer, the error is the reason reported in the peer-rejected event, and a rejected peer is never dialled.", func(t *T) { validatorRejected(t, f) }},
		{CheckValidatorContainment, "The engine contains a validator's errors and panics as rejections: the swarm keeps validating and dialling other peers.", func(t *T) { validatorContainment(t, f) }},
	}
}

// RunValidatorSuite runs every validator check as a subtest of t.
func RunValidatorSuite(t *testing.T, f ValidatorFactory, opts ...Option) {
	t.Helper()
	RunChecks(t, ValidatorChecks(f), opts...)
}

func newCase(t *T, f ValidatorFactory) ValidatorCase {
	c, err := f(t)
	if err != nil {
		t.Fatalf("factory: %v", err)
	}
	if c.Validator == nil {
		t.Fatalf("factory returned a nil validator")
	}
	start(t, c.Validator)
	if len(c.Accept) < 2 || len(c.Reject) < 1 {
		t.Fatalf("factory must declare at least 2 Accept and 1 Reject peers (got %d and %d)", len(c.Accept), len(c.Reject))
	}
	seen := map[string]bool{}
	for _, p := range append(append([]framework.Peer(nil), c.Accept...), c.Reject...) {
		if err := p.Validate(); err != nil {
			t.Fatalf("factory declared an undiallable peer: %v", err)
		}
		if seen[p.Addr()] {
			t.Fatalf("factory declared %s twice", p.Addr())
		}
		seen[p.Addr()] = true
	}
	return c
}

// validate calls Validate with a bound, containing a panic as an error
// the check reports.
func validate(ctx context.Context, v framework.PeerValidator, p framework.Peer) (panicked any, took time.Duration, err error) {
	start := time.Now()
	defer func() {
		took = time.Since(start)
		if r := recover(); r != nil {
			panicked = r
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, framework.DefaultDiscoveryCallTimeout)
	defer cancel()
	return nil, 0, v.Validate(ctx, p)
}

func validatorName(t *T, f ValidatorFactory) {
	a, b := newCase(t, f).Validator, newCase(t, f).Validator
	first, second := a.Name(), a.Name()
	checkName(t, first)
	if first != second || first != b.Name() {
		t.Errorf("Name is not stable: %q, %q, %q", first, second, b.Name())
	}
}

func validatorDecides(t *T, f ValidatorFactory) {
	c := newCase(t, f)
	for _, p := range c.Accept {
		pv, _, err := validate(t.Context(), c.Validator, p)
		switch {
		case pv != nil:
			t.Errorf("Validate(%v) panicked: %v", p, pv)
		case err != nil:
			t.Errorf("Validate(%v) = %v; declared accepted (nil)", p, err)
		}
	}
	for _, p := range c.Reject {
		pv, _, err := validate(t.Context(), c.Validator, p)
		switch {
		case pv != nil:
			t.Errorf("Validate(%v) panicked: %v", p, pv)
		case err == nil:
			t.Errorf("Validate(%v) = nil; declared rejected (an error)", p)
		case err.Error() == "":
			t.Errorf("Validate(%v) rejected with an empty message: the reason must say why", p)
		}
	}
}

func validatorFast(t *T, f ValidatorFactory) {
	c := newCase(t, f)
	var worst time.Duration
	var worstPeer framework.Peer
	for _, p := range append(append([]framework.Peer(nil), c.Accept...), c.Reject...) {
		pv, took, _ := validate(t.Context(), c.Validator, p)
		if pv != nil {
			t.Errorf("Validate(%v) panicked: %v", p, pv)
		}
		if took > worst {
			worst, worstPeer = took, p
		}
	}
	if worst > ValidatorFast {
		t.Errorf("Validate(%v) took %v (limit %v)", worstPeer, worst.Round(time.Millisecond), ValidatorFast)
	}
}

func validatorConcurrent(t *T, f ValidatorFactory) {
	c := newCase(t, f)
	const rejectRounds = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, p := range c.Accept {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if pv, _, err := validate(t.Context(), c.Validator, p); pv != nil || err != nil {
				t.Errorf("concurrent Validate(%v) = %v (panic %v); declared accepted", p, err, pv)
			}
		}()
	}
	for range rejectRounds {
		for _, p := range c.Reject {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if pv, _, err := validate(t.Context(), c.Validator, p); pv != nil || err == nil {
					t.Errorf("concurrent Validate(%v) = %v (panic %v); declared rejected", p, err, pv)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
}

// unusualPeers are peers a validator can be handed: the engine checks only
// that the host is non-empty and the port in range, so host names, IPv6
// (zoned too), IPv4-mapped IPv6 and odd referrers all reach validators.
func unusualPeers(topic framework.Topic) []framework.Peer {
	id := make([]byte, 20)
	return []framework.Peer{
		{Host: "::1", Port: 1},
		{Host: "fe80::1%eth0", Port: 65535},
		{Host: "::ffff:127.0.0.1", Port: 80},
		{Host: "2001:db8::1", Port: 4000, Referrer: &framework.Referrer{Host: "2001:db8::2", Port: 6881, ID: id}},
		{Host: "example.invalid", Port: 4000},
		{Host: "UPPER.example.invalid", Port: 4000, Local: true},
		{Host: "203.0.113.9", Port: 4000, Referrer: &framework.Referrer{}},
		{Host: "203.0.113.10", Port: 4000, Referrer: &framework.Referrer{Host: "not an ip", Port: -1}},
		{Host: "192.0.2.1", Port: 4000, Local: true, Referrer: &framework.Referrer{Host: "192.0.2.2", Port: 6881}},
		{Host: "0.0.0.0", Port: 4000},
		{Host: "255.255.255.255", Port: 4000},
		{Host: "1.2.3.4.5", Port: 4000},
		{Host: strings.Repeat("a", 253), Port: 4000},
		{Host: "xn--nxasmq6b.example", Port: 4000},
	}
}

func validatorNoPanic(t *T, f ValidatorFactory) {
	c := newCase(t, f)
	topic := newTopic()
	for _, p := range unusualPeers(topic) {
		p.Topic = topic
		pv, took, _ := validate(t.Context(), c.Validator, p)
		if pv != nil {
			t.Errorf("Validate(%q port %d, local=%v, referrer=%v) panicked: %v", p.Host, p.Port, p.Local, p.Referrer != nil, pv)
		}
		if took > ValidatorFast {
			t.Errorf("Validate(%q) took %v (limit %v)", p.Host, took.Round(time.Millisecond), ValidatorFast)
		}
	}
}

// seqRecorder timestamps validations and dials on one sequence.
type seqRecorder struct {
	seq atomic.Int64

	mu        sync.Mutex
	validated map[string]int64 // peer key → sequence number when Validate returned
	verdicts  map[string]error
	dials     []dialRec
	dialled   chan string
}

type dialRec struct {
	key string
	seq int64
}

func newSeqRecorder() *seqRecorder {
	return &seqRecorder{validated: map[string]int64{}, verdicts: map[string]error{}, dialled: make(chan string, 1024)}
}

func peerKey(p framework.Peer) string { return p.Addr() + "@" + p.Topic.String() }

// recordingValidator wraps the validator under test and records each call.
type recordingValidator struct {
	framework.PeerValidator
	rec *seqRecorder

	mu      sync.Mutex
	panicOn string // panic (after consulting the inner validator) for this peer key
}

func (v *recordingValidator) panicFor(p framework.Peer) {
	v.mu.Lock()
	v.panicOn = peerKey(p)
	v.mu.Unlock()
}

func (v *recordingValidator) Validate(ctx context.Context, p framework.Peer) error {
	err := v.PeerValidator.Validate(ctx, p)
	k := peerKey(p)
	v.rec.mu.Lock()
	if _, ok := v.rec.validated[k]; !ok {
		v.rec.validated[k] = v.rec.seq.Add(1)
	}
	v.rec.verdicts[k] = err
	v.rec.mu.Unlock()
	v.mu.Lock()
	trigger := k == v.panicOn
	v.mu.Unlock()
	if trigger {
		panic(fmt.Sprintf("conformance: injected panic for %s after consulting the validator", p.Addr()))
	}
	return err
}

// fakeTransport listens nowhere and fails every dial after recording it, so
// peers listed by validator factories are never contacted.
type fakeTransport struct{ rec *seqRecorder }

var errNotDialled = errors.New("conformance: dial recorded, not performed")

func (f *fakeTransport) Name() string { return "conformance-recorder" }

func (f *fakeTransport) Listen(ctx context.Context, host string, port int) (framework.Listener, error) {
	if port == 0 {
		port = 40000 + int(time.Now().UnixNano()%20000)
	}
	return &fakeListener{addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, done: make(chan struct{})}, nil
}

func (f *fakeTransport) Dial(ctx context.Context, p framework.Peer) (net.Conn, error) {
	k := peerKey(p)
	f.rec.mu.Lock()
	f.rec.dials = append(f.rec.dials, dialRec{k, f.rec.seq.Add(1)})
	f.rec.mu.Unlock()
	select {
	case f.rec.dialled <- k:
	default:
	}
	return nil, errNotDialled
}

type fakeListener struct {
	addr net.Addr
	once sync.Once
	done chan struct{}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	<-l.done
	return nil, net.ErrClosed
}

func (l *fakeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *fakeListener) Addr() net.Addr { return l.addr }

// vswarm is a real swarm around the validator under test, with a manual
// discovery and the recording transport.
type vswarm struct {
	t     *T
	sw    *framework.Swarm
	disc  *swarmtest.Discovery
	rec   *seqRecorder
	val   *recordingValidator
	topic framework.Topic
	sub   *framework.Subscription

	mu       sync.Mutex
	rejected map[string]error // peer key → reason
	accepted map[string]bool
	changed  chan struct{}
	done     chan struct{}
}

func newVSwarm(t *T, v framework.PeerValidator) *vswarm {
	rec := newSeqRecorder()
	disc := swarmtest.NewDiscovery()
	val := &recordingValidator{PeerValidator: v, rec: rec}
	sw, err := framework.New(
		framework.WithTransport(&fakeTransport{rec: rec}),
		framework.WithDiscovery(disc),
		framework.WithValidators(val),
		framework.WithListenHost(LoopbackHost),
		framework.WithPreferredPort(0),
		framework.WithRequeue(), // one dial per peer
		framework.WithMaxPeers(1000),
		// the validator under test sees every peer: the engine's own
		// address rule and limits (issue 13) step aside
		framework.WithAllowPrivatePeers(true),
		framework.WithDiscoveryLimits(framework.DiscoveryLimits{PortsPerIP: -1}),
		framework.WithDialLimits(framework.DialLimits{Rate: -1, PerIPRate: -1, PortsPerIP: -1}),
		framework.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	)
	if err != nil {
		t.Fatalf("framework.New: %v", err)
	}
	if err := sw.Start(t.Context()); err != nil {
		t.Fatalf("swarm Start: %v", err)
	}
	vs := &vswarm{t: t, sw: sw, disc: disc, rec: rec, val: val, topic: newTopic(), sub: sw.Subscribe(),
		rejected: map[string]error{}, accepted: map[string]bool{}, changed: make(chan struct{}), done: make(chan struct{})}
	go vs.read()
	t.Cleanup(func() {
		sw.Close()
		vs.sub.Close()
		<-vs.done
	})
	if err := sw.Join(t.Context(), vs.topic); err != nil {
		t.Fatalf("swarm Join: %v", err)
	}
	return vs
}

func (vs *vswarm) read() {
	defer close(vs.done)
	for ev := range vs.sub.C() {
		vs.mu.Lock()
		switch e := ev.(type) {
		case *framework.PeerRejectedEvent:
			vs.rejected[peerKey(e.Peer)] = e.Reason
		case *framework.PeerEvent:
			vs.accepted[peerKey(e.Peer)] = true
		}
		close(vs.changed)
		vs.changed = make(chan struct{})
		vs.mu.Unlock()
	}
}

// emitLater returns p with the swarm's topic, as emit will report it.
func (vs *vswarm) emitLater(p framework.Peer) framework.Peer {
	p.Topic = vs.topic
	return p
}

// emit reports peers (with the swarm's topic) through the manual discovery.
func (vs *vswarm) emit(peers []framework.Peer) []framework.Peer {
	out := make([]framework.Peer, len(peers))
	for i, p := range peers {
		p.Topic = vs.topic
		out[i] = p
	}
	if !vs.disc.Emit(out...) {
		vs.t.Fatalf("the swarm's discovery did not take the peers (topic not joined)")
	}
	return out
}

// awaitOutcome waits until every peer has a peer or peer-rejected event.
func (vs *vswarm) awaitOutcome(peers []framework.Peer) {
	timer := time.NewTimer(ValidatorSwarmWait)
	defer timer.Stop()
	for {
		vs.mu.Lock()
		missing := ""
		for _, p := range peers {
			k := peerKey(p)
			if !vs.accepted[k] && vs.rejected[k] == nil {
				missing = p.Addr()
				break
			}
		}
		ch := vs.changed
		vs.mu.Unlock()
		if missing == "" {
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			vs.t.Fatalf("no peer or peer-rejected event for %s within %v", missing, ValidatorSwarmWait)
		case <-vs.t.Context().Done():
			vs.t.Fatalf("deadline while waiting for %s", missing)
		}
	}
}

// awaitDials waits until every peer in keys has been dialled.
func (vs *vswarm) awaitDials(peers []framework.Peer) {
	want := map[string]bool{}
	for _, p := range peers {
		want[peerKey(p)] = true
	}
	timer := time.NewTimer(ValidatorSwarmWait)
	defer timer.Stop()
	for {
		vs.rec.mu.Lock()
		for _, d := range vs.rec.dials {
			delete(want, d.key)
		}
		vs.rec.mu.Unlock()
		if len(want) == 0 {
			return
		}
		select {
		case <-vs.rec.dialled:
		case <-timer.C:
			var ks []string
			for k := range want {
				ks = append(ks, strings.SplitN(k, "@", 2)[0])
			}
			vs.t.Fatalf("accepted peers %v not dialled within %v", ks, ValidatorSwarmWait)
		case <-vs.t.Context().Done():
			vs.t.Fatalf("deadline while waiting for dials")
		}
	}
}

// quietDials watches for ValidatorQuiet and returns the dials seen.
func (vs *vswarm) quietDials() []dialRec {
	timer := time.NewTimer(ValidatorQuiet)
	defer timer.Stop()
	for {
		select {
		case <-vs.rec.dialled:
		case <-timer.C:
			vs.rec.mu.Lock()
			defer vs.rec.mu.Unlock()
			return append([]dialRec(nil), vs.rec.dials...)
		}
	}
}

func validatorBeforeDial(t *T, f ValidatorFactory) {
	c := newCase(t, f)
	vs := newVSwarm(t, c.Validator)
	// interleave accepted and rejected peers
	var all []framework.Peer
	for i := range max(len(c.Accept), len(c.Reject)) {
		if i < len(c.Accept) {
			all = append(all, c.Accept[i])
		}
		if i < len(c.Reject) {
			all = append(all, c.Reject[i])
		}
	}
	all = vs.emit(all)
	vs.awaitOutcome(all)
	var accepted []framework.Peer
	for _, p := range all {
		vs.mu.Lock()
		ok := vs.accepted[peerKey(p)]
		vs.mu.Unlock()
		if ok {
			accepted = append(accepted, p)
		}
	}
	vs.awaitDials(accepted)
	dials := vs.quietDials()
	vs.rec.mu.Lock()
	defer vs.rec.mu.Unlock()
	for _, p := range all {
		if _, ok := vs.rec.validated[peerKey(p)]; !ok {
			t.Errorf("the validator was not consulted for %s", p.Addr())
		}
	}
	for _, d := range dials {
		v, ok := vs.rec.validated[d.key]
		switch {
		case !ok:
			t.Errorf("%s was dialled without being validated", strings.SplitN(d.key, "@", 2)[0])
		case v > d.seq:
			t.Errorf("%s was dialled before its validation returned", strings.SplitN(d.key, "@", 2)[0])
		}
	}
}

func validatorRejected(t *T, f ValidatorFactory) {
	c := newCase(t, f)
	vs := newVSwarm(t, c.Validator)
	rej := vs.emit(c.Reject)
	acc := vs.emit(c.Accept)
	vs.awaitOutcome(append(append([]framework.Peer(nil), rej...), acc...))
	vs.awaitDials(acc) // positive control: the swarm dials
	dials := vs.quietDials()
	vs.mu.Lock()
	defer vs.mu.Unlock()
	vs.rec.mu.Lock()
	defer vs.rec.mu.Unlock()
	for _, p := range rej {
		k := peerKey(p)
		reason := vs.rejected[k]
		verdict := vs.rec.verdicts[k]
		switch {
		case reason == nil:
			t.Errorf("%s: declared rejected but the swarm emitted peer, not peer-rejected (Validate returned %v)", p.Addr(), verdict)
		case verdict == nil:
			t.Errorf("%s: rejected by the swarm, yet Validate returned nil (reason %v)", p.Addr(), reason)
		case !errors.Is(reason, verdict) && !strings.Contains(reason.Error(), verdict.Error()):
			t.Errorf("%s: peer-rejected reason %q is not the validator's error %q", p.Addr(), reason, verdict)
		}
		for _, d := range dials {
			if d.key == k {
				t.Errorf("%s was rejected yet dialled", p.Addr())
				break
			}
		}
	}
	for _, p := range acc {
		if r := vs.rejected[peerKey(p)]; r != nil {
			t.Errorf("%s: declared accepted but rejected: %v", p.Addr(), r)
		}
	}
}

func validatorContainment(t *T, f ValidatorFactory) {
	c := newCase(t, f)
	vs := newVSwarm(t, c.Validator)
	// the wrapper panics for the first accepted peer after consulting the
	// validator: the engine must turn the panic into a rejection, and go on
	// with the declared rejections (errors) and the other accepted peers
	victim := vs.emitLater(c.Accept[0])
	vs.val.panicFor(victim)
	first := vs.emit(append([]framework.Peer{victim}, c.Reject...))
	rest := vs.emit(c.Accept[1:])
	vs.awaitOutcome(append(append([]framework.Peer(nil), first...), rest...))
	vs.awaitDials(rest)
	dials := vs.quietDials()
	vs.mu.Lock()
	reason := vs.rejected[peerKey(victim)]
	vs.mu.Unlock()
	switch {
	case reason == nil:
		t.Errorf("a panic in Validate for %s was not reported as peer-rejected", victim.Addr())
	case !errors.Is(reason, framework.ErrRejected):
		t.Errorf("peer-rejected reason for a panic does not wrap framework.ErrRejected: %v", reason)
	}
	for _, d := range dials {
		if d.key == peerKey(victim) {
			t.Errorf("%s, whose validation panicked, was dialled", victim.Addr())
		}
	}
	for _, p := range first[1:] {
		vs.mu.Lock()
		r := vs.rejected[peerKey(p)]
		vs.mu.Unlock()
		if r == nil {
			t.Errorf("%s: declared rejected, not reported as peer-rejected after an earlier panic", p.Addr())
		}
	}
	if err := vs.sw.Join(t.Context(), newTopic()); err != nil {
		t.Errorf("the swarm no longer works after a panicking validation: Join: %v", err)
	}
}
