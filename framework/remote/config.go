package remote

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire"
)

// Defaults of [Config] and [RestartPolicy].
const (
	DefaultCallTimeout  = 10 * time.Second
	DefaultStartTimeout = 10 * time.Second
	DefaultMaxRestarts  = 5
	DefaultMinBackoff   = 50 * time.Millisecond
	DefaultMaxBackoff   = 5 * time.Second
	DefaultStableAfter  = time.Minute
	DefaultHungAfter    = 3
)

// Config says how to run one plugin binary.
type Config struct {
	// Path of the plugin binary (required).
	Path string `json:"path" yaml:"path"`
	// Args are passed to the binary (e.g. ["plugin", "serve", "tcp"]).
	Args []string `json:"args,omitempty" yaml:"args,omitempty"`
	// Env adds KEY=VALUE entries to the host's environment for the plugin.
	Env []string `json:"env,omitempty" yaml:"env,omitempty"`
	// SHA256, when set, pins the binary: 64 hex characters. A binary with
	// another checksum is refused with an error wrapping ErrChecksum (checked
	// at every start, restarts included, by go-plugin's SecureConfig).
	SHA256 string `json:"sha256,omitempty" yaml:"sha256,omitempty"`
	// Name overrides the name the plugin reports (to run a plugin beside a
	// built-in of the same name).
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// CallTimeout bounds every call to the plugin (default 10 s); a
	// caller's earlier deadline wins. Accept on a listener kept in the
	// plugin is the one unbounded call: Close ends it.
	CallTimeout time.Duration `json:"call_timeout,omitempty" yaml:"call_timeout,omitempty"`
	// StartTimeout bounds exec + handshake + the first Info call (default 10 s).
	StartTimeout time.Duration `json:"start_timeout,omitempty" yaml:"start_timeout,omitempty"`
	// Restart says how a crashed plugin is restarted.
	Restart RestartPolicy `json:"restart,omitempty" yaml:"restart,omitempty"`
	// Logger receives the host's reports about the plugin and the plugin's
	// own log lines (default slog.Default()).
	Logger *slog.Logger `json:"-" yaml:"-"`
	// OnEvent, when set, is called for every lifecycle event of the plugin
	// (started, crashed, restarted, gave up, hung). It is called from the
	// supervising goroutine and must not block.
	OnEvent func(Event) `json:"-" yaml:"-"`

	// handoff overrides the platform's hand-off mode (tests).
	handoff wire.HandoffMode
}

// RestartPolicy bounds restarts: after a crash the plugin is restarted after
// MinBackoff, doubling up to MaxBackoff per failed attempt; after
// MaxRestarts restarts without a stable run (StableAfter) the host gives up
// and calls fail with ErrUnavailable.
type RestartPolicy struct {
	MaxRestarts int           `json:"max_restarts,omitempty" yaml:"max_restarts,omitempty"` // 0: default 5; negative: never restart
	MinBackoff  time.Duration `json:"min_backoff,omitempty" yaml:"min_backoff,omitempty"`
	MaxBackoff  time.Duration `json:"max_backoff,omitempty" yaml:"max_backoff,omitempty"`
	StableAfter time.Duration `json:"stable_after,omitempty" yaml:"stable_after,omitempty"`
	// HungAfter consecutive call timeouts make the host kill the plugin
	// (which then restarts like a crash). 0: default 3; negative: never.
	HungAfter int `json:"hung_after,omitempty" yaml:"hung_after,omitempty"`
}

// EventKind says what happened to a plugin.
type EventKind int

// Event kinds.
const (
	EventStarted       EventKind = iota + 1 // the first instance is up
	EventCrashed                            // the running instance exited
	EventRestarted                          // a new instance is up after a crash
	EventRestartFailed                      // a restart attempt failed (Err says why)
	EventGaveUp                             // too many crashes: no more restarts
	EventHung                               // repeated timeouts: the host killed the instance
)

func (k EventKind) String() string {
	switch k {
	case EventStarted:
		return "started"
	case EventCrashed:
		return "crashed"
	case EventRestarted:
		return "restarted"
	case EventRestartFailed:
		return "restart-failed"
	case EventGaveUp:
		return "gave-up"
	case EventHung:
		return "hung"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event reports a plugin lifecycle change.
type Event struct {
	Kind       EventKind
	PluginKind string // the plugin kind: "transport", "discovery" or "validator"
	Plugin     string // the plugin's name
	Path       string // the binary
	PID        int    // the instance concerned (0 if none started)
	Attempt    int    // restart attempt, from 1 (restart events)
	Err        error  // why, for crashes and failures
	Time       time.Time
}

// normalize fills defaults and checks the config.
func (c Config) normalize() (Config, error) {
	if strings.TrimSpace(c.Path) == "" {
		return c, fmt.Errorf("%w: %w: empty plugin path", ErrStart, ErrBinaryMissing)
	}
	if c.SHA256 != "" {
		b, err := hex.DecodeString(c.SHA256)
		if err != nil || len(b) != 32 {
			return c, fmt.Errorf("%w: sha256 %q: want 64 hex characters", ErrStart, wire.Clip(c.SHA256, 80))
		}
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	r := &c.Restart
	if r.MaxRestarts == 0 {
		r.MaxRestarts = DefaultMaxRestarts
	}
	if r.MinBackoff <= 0 {
		r.MinBackoff = DefaultMinBackoff
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = DefaultMaxBackoff
	}
	if r.MaxBackoff < r.MinBackoff {
		r.MaxBackoff = r.MinBackoff
	}
	if r.StableAfter <= 0 {
		r.StableAfter = DefaultStableAfter
	}
	if r.HungAfter == 0 {
		r.HungAfter = DefaultHungAfter
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Args = append([]string(nil), c.Args...)
	c.Env = append([]string(nil), c.Env...)
	return c, nil
}
