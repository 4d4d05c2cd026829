package swarmfx_test

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/remotetest"
)

// pluginBin is the test plugin binary (internal/fxplugin), built once.
var pluginBin string

// TestMain builds the plugin, runs the tests and fails on leaked
// goroutines.
func TestMain(m *testing.M) { remotetest.Main(m, "./internal/fxplugin", &pluginBin) }

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

// pluginConfig runs the test plugin with args; onEvent, when not nil,
// receives its lifecycle events.
func pluginConfig(t testing.TB, onEvent func(remote.Event), args ...string) remote.Config {
	return remote.Config{
		Path:         pluginBin,
		Args:         args,
		CallTimeout:  5 * time.Second,
		StartTimeout: 10 * time.Second,
		Logger:       logger(t),
		OnEvent:      onEvent,
	}
}
