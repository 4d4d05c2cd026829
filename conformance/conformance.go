package conformance

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Check is one named rule of a plugin contract, runnable outside `go test`.
// Name is a stable identifier (lowercase words joined by underscores) that
// tools print, match and list as known failures; Rule is the sentence of the
// contract (framework/interfaces.go or the swarm semantics) it checks.
type Check struct {
	Name string
	Rule string
	Run  func(t *T)
}

// DefaultCheckTimeout bounds one check when the caller gives no deadline.
const DefaultCheckTimeout = 60 * time.Second

// T records the outcome of one check, like a tiny testing.T. Errorf and
// Logf may be called from any goroutine; Fatalf and FailNow only from the
// goroutine running the check (they stop it with runtime.Goexit).
type T struct {
	name string
	ctx  context.Context

	mu       sync.Mutex
	failed   bool
	errs     []string
	logs     []string
	cleanups []func()
	logf     func(string) // optional live sink for logs (testing.T)
}

// Name is the name of the running check.
func (t *T) Name() string { return t.name }

// Context is done when the check's deadline passes or its runner gives up;
// use it to bound every wait.
func (t *T) Context() context.Context { return t.ctx }

// Errorf records a failure and continues.
func (t *T) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	t.mu.Lock()
	t.failed = true
	t.errs = append(t.errs, msg)
	t.mu.Unlock()
}

// Fatalf records a failure and stops the check.
func (t *T) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	runtime.Goexit()
}

// FailNow stops the check, marking it failed.
func (t *T) FailNow() {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	runtime.Goexit()
}

// Logf records a message shown with the result (and live under go test).
func (t *T) Logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	t.mu.Lock()
	t.logs = append(t.logs, msg)
	f := t.logf
	t.mu.Unlock()
	if f != nil {
		f(msg)
	}
}

// Failed reports whether the check has failed so far.
func (t *T) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

// Cleanup registers f to run when the check ends, last registered first
// (factories use it to close what they created).
func (t *T) Cleanup(f func()) {
	t.mu.Lock()
	t.cleanups = append(t.cleanups, f)
	t.mu.Unlock()
}

// Result is the outcome of one check.
type Result struct {
	Name     string        `json:"name"`
	Rule     string        `json:"rule,omitempty"`
	Passed   bool          `json:"passed"`
	Reason   string        `json:"reason,omitempty"` // the failures, "; "-joined
	Logs     []string      `json:"logs,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// String is the one-line form "PASS name (12ms)" or "FAIL name: reason".
func (r Result) String() string {
	d := r.Duration.Round(time.Millisecond)
	if r.Passed {
		return fmt.Sprintf("PASS %s (%v)", r.Name, d)
	}
	return fmt.Sprintf("FAIL %s (%v): %s", r.Name, d, r.Reason)
}

// Run runs one check with a fresh T, bounded by ctx (DefaultCheckTimeout
// when ctx has no deadline). Cleanups run before Run returns. A check that
// panics fails with the panic as its reason. A check that ignores its
// deadline is reported as failed after a grace period and abandoned.
func Run(ctx context.Context, c Check) Result {
	return run(ctx, c, nil)
}

func run(ctx context.Context, c Check, logf func(string)) Result {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCheckTimeout)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := &T{name: c.Name, ctx: ctx, logf: logf}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer t.runCleanups()
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("panic: %v", r)
			}
		}()
		c.Run(t)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// the check should have noticed its context; give it a moment to
		// wind down and run its cleanups
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("check did not return within 10s after its deadline (%v)", context.Cause(ctx))
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return Result{
		Name:     c.Name,
		Rule:     c.Rule,
		Passed:   !t.failed,
		Reason:   strings.Join(t.errs, "; "),
		Logs:     append([]string(nil), t.logs...),
		Duration: time.Since(start),
	}
}

func (t *T) runCleanups() {
	for {
		t.mu.Lock()
		n := len(t.cleanups)
		if n == 0 {
			t.mu.Unlock()
			return
		}
		f := t.cleanups[n-1]
		t.cleanups = t.cleanups[:n-1]
		t.mu.Unlock()
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("cleanup panicked: %v", r)
				}
			}()
			f()
		}()
	}
}

// RunAll runs checks one after another and returns their results in order.
// Each check gets its own deadline of perCheck (0: DefaultCheckTimeout).
func RunAll(ctx context.Context, checks []Check, perCheck time.Duration) []Result {
	if perCheck <= 0 {
		perCheck = DefaultCheckTimeout
	}
	out := make([]Result, 0, len(checks))
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, perCheck)
		out = append(out, Run(cctx, c))
		cancel()
	}
	return out
}

// Option adjusts how a Run*Suite function runs under go test.
type Option func(*suiteConfig)

type suiteConfig struct {
	known    map[string]string
	only     map[string]bool
	perCheck time.Duration
}

// ExpectFail declares a known failure: the named check must fail (the
// subtest then passes and logs reason), and the subtest fails if the check
// unexpectedly passes, so that the list of known failures stays exact. Use it
// to keep CI green while a contract violation is being fixed; the reason
// should say what is wrong.
func ExpectFail(check, reason string) Option {
	return func(c *suiteConfig) {
		if c.known == nil {
			c.known = map[string]string{}
		}
		c.known[check] = reason
	}
}

// Only restricts the suite to the named checks.
func Only(checks ...string) Option {
	return func(c *suiteConfig) {
		if c.only == nil {
			c.only = map[string]bool{}
		}
		for _, n := range checks {
			c.only[n] = true
		}
	}
}

// PerCheckTimeout bounds each check (default DefaultCheckTimeout).
func PerCheckTimeout(d time.Duration) Option {
	return func(c *suiteConfig) { c.perCheck = d }
}

// RunChecks runs checks as subtests of t, one subtest per check named after
// it. The Run*Suite functions call it; it is exported for suites built from
// a filtered or extended list of checks.
func RunChecks(t *testing.T, checks []Check, opts ...Option) {
	t.Helper()
	var cfg suiteConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.perCheck <= 0 {
		cfg.perCheck = DefaultCheckTimeout
	}
	names := map[string]bool{}
	for _, c := range checks {
		names[c.Name] = true
	}
	for n := range cfg.known {
		if !names[n] {
			t.Errorf("conformance: ExpectFail names unknown check %q", n)
		}
	}
	for n := range cfg.only {
		if !names[n] {
			t.Errorf("conformance: Only names unknown check %q", n)
		}
	}
	for _, c := range checks {
		if cfg.only != nil && !cfg.only[c.Name] {
			continue
		}
		t.Run(c.Name, func(st *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.perCheck)
			defer cancel()
			r := run(ctx, c, func(s string) { st.Log(s) })
			reason, known := cfg.known[c.Name]
			switch {
			case known && r.Passed:
				st.Errorf("known failure %q passed: remove the ExpectFail (%s)", c.Name, reason)
			case known:
				st.Logf("known failure (%s): %s", reason, r.Reason)
			case !r.Passed:
				st.Errorf("rule: %s\nfailed: %s", c.Rule, r.Reason)
			}
		})
	}
}
