package hostconfig

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// BuildOptions are what building plugins needs beyond the file.
type BuildOptions struct {
	// Logger is given to the swarm, mDNS and external plugins (nil: the
	// swarm's and plugins' own defaults). Config.Logger builds the one the
	// log section describes.
	Logger *slog.Logger
	// OnPluginEvent, when set, receives the lifecycle events of external
	// plugins (started, crashed, restarted, ...). It must not block.
	OnPluginEvent func(remote.Event)
}

// Logger builds the logger the log section describes, writing to w.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Log.Level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// NodeOptions turns the node section into swarm options (no plugins).
// Every option is passed explicitly, defaults included.
func (c *Config) NodeOptions() []framework.Option {
	n := c.Node
	opts := []framework.Option{
		framework.WithListenHost(n.Host),
		framework.WithPreferredPort(n.PreferredPort),
		framework.WithMaxPeers(n.MaxPeers),
		framework.WithMaxClientSockets(n.MaxClientSockets),
		framework.WithMaxServerSockets(n.MaxServerSockets),
		framework.WithConnectTimeout(n.ConnectTimeout),
		framework.WithRequeue(n.Queue.Requeue...),
		framework.WithForgetUnresponsive(n.Queue.ForgetUnresponsive),
		framework.WithForgetBanned(n.Queue.ForgetBanned),
		framework.WithMultiplex(n.Queue.Multiplex),
		// each forwarded stream is a session of its own, often many from
		// one peer at once: inbound handshakes may run up to maxPeers, from
		// one IP too (never below the engine's defaults)
		framework.WithHandshakeLimits(framework.HandshakeLimits{
			Pending:      max(framework.DefaultPendingHandshakes, n.MaxPeers),
			PendingPerIP: max(framework.DefaultPendingHandshakesPerIP, n.MaxPeers),
		}),
	}
	if n.Port != 0 {
		opts = append(opts, framework.WithPort(n.Port))
	}
	return opts
}

// LoadKey reads the swarm's key pair from the key file (node.key), or,
// when there is none, generates one and writes it there with mode 0600;
// created says which. A key file that group or others may read is refused
// (chmod 600 it). The error wraps secure.ErrBadKey for a bad file.
func (c *Config) LoadKey() (kp secure.KeyPair, created bool, err error) {
	kp, created, err = secure.LoadOrCreateKeyFile(c.Node.Key)
	if err != nil {
		return kp, false, fmt.Errorf("node.key: %w", err)
	}
	return kp, created, nil
}

// Plugins are the constructed plugins of a config. Until they are handed to
// a swarm (which closes them in Swarm.Close) the caller owns them: Close
// them if the swarm is never built.
type Plugins struct {
	Discoveries []framework.Discovery
	Transports  []framework.Transport
	Validators  []framework.PeerValidator
}

// Options returns the swarm options that add the plugins.
func (p *Plugins) Options() []framework.Option {
	var opts []framework.Option
	if len(p.Discoveries) > 0 {
		opts = append(opts, framework.WithDiscovery(p.Discoveries...))
	}
	if len(p.Transports) > 0 {
		opts = append(opts, framework.WithTransport(p.Transports...))
	}
	if len(p.Validators) > 0 {
		opts = append(opts, framework.WithValidators(p.Validators...))
	}
	return opts
}

// Close closes every plugin that can be closed (external plugins stop
// their processes).
func (p *Plugins) Close() error {
	var errs []error
	for _, d := range p.Discoveries {
		errs = append(errs, d.Close())
	}
	for _, t := range p.Transports {
		if c, ok := t.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	for _, v := range p.Validators {
		if c, ok := v.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// BuildPlugins constructs the plugins of the config (see [Build]); the
// error names the entry's position in the file.
func (c *Config) BuildPlugins(bo BuildOptions) (*Plugins, error) {
	specs := slices.Concat(c.Discoveries, c.Transports, c.Validators)
	return build(specs, bo, func(p Plugin, err error) error {
		return fmt.Errorf("%s:%d:%d: %s %s: %w", c.File, p.Pos.Line, p.Pos.Column, p.Kind, p.label(), err)
	})
}

// Build is the one builder of plugins, used by the YAML config and
// swarmhost's flags alike: it constructs specs in order, built-ins through
// their registry entry and external ones through framework/remote (which
// starts their processes). Validators keep their order. On error, what was
// built is closed again.
func Build(specs []Plugin, bo BuildOptions) (*Plugins, error) {
	return build(specs, bo, func(p Plugin, err error) error { return fmt.Errorf("%s %s: %w", p.Kind, p.label(), err) })
}

func build(specs []Plugin, bo BuildOptions, wrap func(Plugin, error) error) (*Plugins, error) {
	ps := &Plugins{}
	for _, p := range specs {
		x, err := p.build(bo)
		if err != nil {
			ps.Close()
			return nil, wrap(p, err)
		}
		if !p.Kind.implementedBy(x) {
			closeAny(x)
			ps.Close()
			return nil, wrap(p, fmt.Errorf("%w: built a %T, not a %s", framework.ErrInvalidOption, x, p.Kind))
		}
		switch p.Kind {
		case KindDiscovery:
			ps.Discoveries = append(ps.Discoveries, x.(framework.Discovery))
		case KindTransport:
			ps.Transports = append(ps.Transports, x.(framework.Transport))
		default:
			ps.Validators = append(ps.Validators, x.(framework.PeerValidator))
		}
	}
	return ps, nil
}

// SwarmOptions returns every option of the config: the node settings, the
// logger and the constructed plugins. The plugins are returned too: close
// them (Plugins.Close) if framework.New fails; once the swarm exists,
// Swarm.Close closes them.
func (c *Config) SwarmOptions(bo BuildOptions) ([]framework.Option, *Plugins, error) {
	ps, err := c.BuildPlugins(bo)
	if err != nil {
		return nil, nil, err
	}
	opts := c.NodeOptions()
	if bo.Logger != nil {
		opts = append(opts, framework.WithLogger(bo.Logger))
	}
	return append(opts, ps.Options()...), ps, nil
}

// NewSwarm builds (but does not start) the swarm the config describes;
// extra options are applied last. On failure every plugin is closed.
func (c *Config) NewSwarm(bo BuildOptions, extra ...framework.Option) (*framework.Swarm, error) {
	opts, ps, err := c.SwarmOptions(bo)
	if err != nil {
		return nil, err
	}
	sw, err := framework.New(append(opts, extra...)...)
	if err != nil {
		ps.Close()
		return nil, err
	}
	return sw, nil
}

// closeAny closes x if it can be closed.
func closeAny(x any) {
	if c, ok := x.(io.Closer); ok {
		c.Close()
	}
}

func (p Plugin) label() string {
	if p.Remote != nil {
		return "plugin " + p.Remote.Path
	}
	return p.Name
}

func (p Plugin) remoteConfig(bo BuildOptions) remote.Config {
	rc := *p.Remote
	rc.Args = append([]string(nil), rc.Args...)
	rc.Env = append([]string(nil), rc.Env...)
	rc.Logger = bo.Logger
	rc.OnEvent = bo.OnPluginEvent
	return rc
}

// build constructs the plugin: an external one through framework/remote
// (which starts its process), a built-in through its registry entry.
func (p Plugin) build(bo BuildOptions) (any, error) {
	if p.Remote != nil {
		rc := p.remoteConfig(bo)
		switch p.Kind {
		case KindDiscovery:
			return remote.NewDiscovery(rc)
		case KindTransport:
			return remote.NewTransport(rc)
		}
		return remote.NewValidator(rc)
	}
	b, ok := LookupBuiltin(p.Name)
	if !ok || b.Kind != p.Kind {
		return nil, fmt.Errorf("%w: no %s %q", framework.ErrUnknownPlugin, p.Kind, p.Name)
	}
	return b.New(p.Options, bo)
}
