package hostconfig

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/mdns"
	"github.com/dwebswarm/dwebswarm-go/plugins/static"
	"github.com/dwebswarm/dwebswarm-go/plugins/tcp"
	"github.com/dwebswarm/dwebswarm-go/plugins/utp"
	"github.com/dwebswarm/dwebswarm-go/plugins/validators"
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
	}
	if n.Port != 0 {
		opts = append(opts, framework.WithPort(n.Port))
	}
	return opts
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

// BuildPlugins constructs the plugins, built-ins through their packages
// and external ones through framework/remote (which starts their
// processes). On error, what was built is closed again; the error names
// the entry's position.
func (c *Config) BuildPlugins(bo BuildOptions) (*Plugins, error) {
	ps := &Plugins{}
	fail := func(p Plugin, err error) (*Plugins, error) {
		ps.Close()
		return nil, fmt.Errorf("%s:%d:%d: %s %s: %w", c.File, p.Pos.Line, p.Pos.Column, p.Kind, p.label(), err)
	}
	for _, p := range c.Discoveries {
		d, err := p.discovery(bo)
		if err != nil {
			return fail(p, err)
		}
		ps.Discoveries = append(ps.Discoveries, d)
	}
	for _, p := range c.Transports {
		t, err := p.transport(bo)
		if err != nil {
			return fail(p, err)
		}
		ps.Transports = append(ps.Transports, t)
	}
	for _, p := range c.Validators {
		v, err := p.validator(bo)
		if err != nil {
			return fail(p, err)
		}
		ps.Validators = append(ps.Validators, v)
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

func (p Plugin) discovery(bo BuildOptions) (framework.Discovery, error) {
	if p.Remote != nil {
		return remote.NewDiscovery(p.remoteConfig(bo))
	}
	switch o := p.Options.(type) {
	case dht.Config:
		return dht.NewPlugin(o)
	case mdns.Config:
		if bo.Logger != nil {
			o.Logger = bo.Logger
		}
		return mdns.New(o)
	case static.Config:
		return static.New(o)
	}
	return nil, fmt.Errorf("%w: no discovery %q", framework.ErrUnknownPlugin, p.Name)
}

func (p Plugin) transport(bo BuildOptions) (framework.Transport, error) {
	if p.Remote != nil {
		return remote.NewTransport(p.remoteConfig(bo))
	}
	switch o := p.Options.(type) {
	case TCPOptions:
		t := tcp.New()
		t.KeepAlive = o.KeepAlive
		return t, nil
	case utp.Config:
		return utp.NewWithConfig(o)
	}
	return nil, fmt.Errorf("%w: no transport %q", framework.ErrUnknownPlugin, p.Name)
}

func (p Plugin) validator(bo BuildOptions) (framework.PeerValidator, error) {
	if p.Remote != nil {
		return remote.NewValidator(p.remoteConfig(bo))
	}
	switch o := p.Options.(type) {
	case validators.CIDRConfig:
		return validators.NewCIDR(o)
	case validators.DHTPrivateConfig:
		return validators.NewDHTPrivate(o)
	case validators.RateLimitConfig:
		return validators.NewRateLimit(o)
	case validators.BanListConfig:
		return validators.OpenBanList(o)
	}
	return nil, fmt.Errorf("%w: no validator %q", framework.ErrUnknownPlugin, p.Name)
}
