package observe

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework/remote"
)

// Plugin states reported in [PluginStatus.State].
const (
	PluginInProcess  = "in-process" // a built-in plugin: runs inside the daemon
	PluginStarting   = "starting"   // registered, no lifecycle event yet
	PluginRunning    = "running"    // an instance is up
	PluginCrashed    = "crashed"    // the instance exited; a restart follows
	PluginRestarting = "restarting" // a restart attempt failed; more follow
	PluginHung       = "hung"       // killed after repeated timeouts; a restart follows
	PluginGaveUp     = "gave-up"    // too many crashes: calls fail from now on
)

type pluginKey struct{ kind, name string }

// pluginState is one plugin's record.
type pluginState struct {
	PluginStatus
	events map[string]uint64 // lifecycle events by kind
}

func (p *pluginState) up() bool {
	return p.State == PluginInProcess || p.State == PluginRunning
}

// PluginTracker keeps the swarm's plugins and the lifecycle of the
// out-of-process ones, for /status and the plugin metrics. Create it before
// the plugins, point every remote.Config.OnEvent at [PluginTracker.OnEvent],
// and register every plugin with [PluginTracker.Add]. Safe for concurrent
// use.
type PluginTracker struct {
	mu      sync.Mutex
	plugins map[pluginKey]*pluginState
}

// NewPluginTracker returns an empty tracker.
func NewPluginTracker() *PluginTracker {
	return &PluginTracker{plugins: make(map[pluginKey]*pluginState)}
}

func (t *PluginTracker) getLocked(kind, name string) *pluginState {
	k := pluginKey{kind, name}
	p := t.plugins[k]
	if p == nil {
		p = &pluginState{PluginStatus: PluginStatus{Name: name, Kind: kind, State: PluginInProcess}, events: map[string]uint64{}}
		t.plugins[k] = p
	}
	return p
}

// Add registers a plugin: kind is "transport", "discovery" or "validator",
// name the plugin's Name(), path the binary of an out-of-process plugin (""
// for a built-in). Adding a plugin already known (from its events) only
// fills in its path.
func (t *PluginTracker) Add(kind, name, path string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, known := t.plugins[pluginKey{kind, name}]
	p := t.getLocked(kind, name)
	if path != "" {
		p.Path = path
		if !p.External {
			p.External = true
			if !known {
				p.State = PluginStarting
			}
		}
	}
}

// OnEvent records a lifecycle event of an out-of-process plugin. Its type is
// remote.Config.OnEvent's: it never blocks.
func (t *PluginTracker) OnEvent(ev remote.Event) {
	if ev.Kind == 0 {
		return
	}
	kind, name := ev.PluginKind, ev.Plugin
	if kind == "" {
		kind = "plugin"
	}
	if name == "" {
		name = "(unnamed)"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.getLocked(kind, name)
	p.External = true
	if ev.Path != "" {
		p.Path = ev.Path
	}
	p.events[ev.Kind.String()]++
	switch ev.Kind {
	case remote.EventStarted:
		p.State, p.PID = PluginRunning, ev.PID
	case remote.EventCrashed:
		p.State, p.PID = PluginCrashed, 0
	case remote.EventRestarted:
		p.State, p.PID = PluginRunning, ev.PID
		p.Restarts++
	case remote.EventRestartFailed:
		p.State = PluginRestarting
	case remote.EventGaveUp:
		p.State, p.PID = PluginGaveUp, 0
	case remote.EventHung:
		p.State = PluginHung
	}
	if ev.Err != nil {
		p.LastError = ev.Err.Error()
	}
	at := ev.Time
	if at.IsZero() {
		at = time.Now()
	}
	p.LastEvent, p.LastEventAt = ev.Kind.String(), &at
}

// snapshot returns a sorted copy of every plugin's record.
func (t *PluginTracker) snapshot() []pluginState {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]pluginState, 0, len(t.plugins))
	for _, p := range t.plugins {
		c := *p
		c.events = make(map[string]uint64, len(p.events))
		for k, v := range p.events {
			c.events[k] = v
		}
		if p.LastEventAt != nil {
			at := *p.LastEventAt
			c.LastEventAt = &at
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b pluginState) int {
		return cmp.Or(cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// Status returns every plugin's status, sorted by kind then name.
func (t *PluginTracker) Status() []PluginStatus {
	snap := t.snapshot()
	out := make([]PluginStatus, len(snap))
	for i, p := range snap {
		out[i] = p.PluginStatus
	}
	return out
}

func kindOrder(kind string) int {
	switch kind {
	case remote.KindTransport:
		return 0
	case remote.KindDiscovery:
		return 1
	case remote.KindValidator:
		return 2
	}
	return 3
}
