package remote_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/remotetest"
)

// pluginBin is the test plugin binary (internal/testplugin), built once.
var pluginBin string

func TestMain(m *testing.M) { remotetest.Main(m, "./internal/testplugin", &pluginBin) }

// events records a plugin's lifecycle events.
type events struct {
	mu  sync.Mutex
	all []remote.Event
	ch  chan remote.Event
}

func newEvents() *events { return &events{ch: make(chan remote.Event, 64)} }

func (e *events) add(ev remote.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
	select {
	case e.ch <- ev:
	default:
	}
}

// wait returns the next event of kind, failing after d.
func (e *events) wait(t *testing.T, kind remote.EventKind, d time.Duration) remote.Event {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-e.ch:
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			e.mu.Lock()
			defer e.mu.Unlock()
			t.Fatalf("no %v event within %v; seen %v", kind, d, e.all)
			return remote.Event{}
		}
	}
}

// testWriter logs through t until the test ends.
type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimSpace(b)))
	}
	return len(b), nil
}

func logger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func config(t testing.TB, args ...string) remote.Config {
	return remote.WithHandoff(remote.Config{
		Path:         pluginBin,
		Args:         args,
		CallTimeout:  5 * time.Second,
		StartTimeout: 10 * time.Second,
		Logger:       logger(t),
		Restart:      remote.RestartPolicy{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond},
	}, testHandoff)
}

func startTransport(t testing.TB, cfg remote.Config) *remote.Transport {
	t.Helper()
	tr, err := remote.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// kill9 kills the plugin process this test started.
func kill9(t *testing.T, pid int) {
	t.Helper()
	if pid <= 0 {
		t.Fatal("no plugin pid")
	}
	p, err := os.FindProcess(pid)
	if err == nil {
		err = p.Kill() // SIGKILL; TerminateProcess on windows
	}
	if err != nil {
		t.Fatalf("kill %d: %v", pid, err)
	}
}

func peerOf(addr net.Addr) framework.Peer {
	return framework.Peer{Host: "127.0.0.1", Port: addr.(*net.TCPAddr).Port}
}

func loopbackListener(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// roundTrip writes msg and reads it back from an echo connection.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("echo %q, want %q", got, msg)
	}
}

func sha256Of(t testing.TB, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func wantErr(t *testing.T, err error, target error, contains ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
	for _, s := range contains {
		if !bytes.Contains([]byte(err.Error()), []byte(s)) {
			t.Fatalf("err = %q, want it to mention %q", err, s)
		}
	}
	t.Logf("error, as the user sees it: %v", err)
}

var bg = context.Background()
