package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire"
	pb "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire/proto"
)

// proc supervises one configured plugin: it starts instances, notices when
// one dies, restarts with backoff and maps call failures to errors.
type proc struct {
	cfg  Config
	kind string
	log  *slog.Logger
	// probe: start completes the handshake but asks no service for its
	// Info ([Probe] asks each one).
	probe bool

	// onRestart, when set, runs (in its own goroutine) after a restart, so
	// the adapter can restore state (re-join topics).
	onRestart func(*instance)
	// prepare, when set, runs on a restarted instance before it is
	// published (calls wait for it): the shared UDP socket is handed over
	// there. An error fails the restart attempt.
	prepare func(*instance) error

	info *pb.PluginInfo // of the first instance (name, order)

	mu       sync.Mutex
	name     string
	cur      *instance
	changed  chan struct{} // closed and replaced when cur, closed or failed change
	closed   bool
	failed   error // set when the host gave up
	restarts int   // restarts since the last stable run
	closeCh  chan struct{}
	wg       sync.WaitGroup
}

// instance is one running plugin process.
type instance struct {
	p       *proc
	client  *plugin.Client
	conn    *grpc.ClientConn
	fds     *wire.FDChan
	dir     string
	pid     int
	process *os.Process
	started time.Time
	info    *pb.PluginInfo
	hung    atomic.Int32
	stderr  *tailBuffer

	killOnce sync.Once
}

func newProc(cfg Config, kind string) (*proc, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	p := &proc{cfg: cfg, kind: kind, changed: make(chan struct{}), closeCh: make(chan struct{})}
	p.log = cfg.Logger.With("component", "dwebswarm-plugin", "kind", kind, "path", cfg.Path)
	inst, err := p.start()
	if err != nil {
		return nil, err
	}
	p.info = inst.info
	p.name = inst.info.GetName()
	if cfg.Name != "" {
		p.name = cfg.Name
	}
	p.log = p.log.With("plugin", p.name)
	p.cur = inst
	p.watch(inst)
	p.log.Debug("plugin started", "pid", inst.pid)
	p.emit(Event{Kind: EventStarted, PID: inst.pid})
	return p, nil
}

func (p *proc) emit(ev Event) {
	ev.PluginKind, ev.Path, ev.Time = p.kind, p.cfg.Path, time.Now()
	p.mu.Lock()
	ev.Plugin = p.name
	p.mu.Unlock()
	if p.cfg.OnEvent != nil {
		p.cfg.OnEvent(ev)
	}
}

func (p *proc) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// pluginEnv is the host's environment without variables that belong to the
// plugin protocol (a host that is itself a plugin must not leak its own),
// plus the configured ones and the per-plugin socket directory.
func (p *proc) pluginEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PLUGIN_") || strings.HasPrefix(k, MagicCookieKey) {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, p.cfg.Env...)
	return append(env, plugin.EnvUnixSocketDir+"="+dir)
}

// start execs the binary, completes the handshake and checks Info.
func (p *proc) start() (*instance, error) {
	path := p.cfg.Path
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %w: %s does not exist", ErrStart, ErrBinaryMissing, path)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrStart, path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%w: %w: %s is a directory", ErrStart, ErrBinaryMissing, path)
	}
	dir, err := os.MkdirTemp("", "dwebswarm-plugin-")
	if err != nil {
		return nil, fmt.Errorf("%w: socket directory: %w", ErrStart, err)
	}
	mode := p.cfg.handoff
	if mode == 0 {
		mode = wire.DefaultHandoff
	}
	var fds *wire.FDChan
	var childEnd *os.File // fd modes: the plugin's end, its fd 3
	var connectTo string  // wire.HandoffConnect: where the plugin connects back
	if mode == wire.HandoffConnect {
		fds, connectTo, err = wire.NewConnectChan(p.log)
	} else {
		fds, childEnd, err = wire.NewFDChannel(mode, p.log)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w: %w", ErrStart, err)
	}
	cmd := exec.Command(path, p.cfg.Args...)
	cmd.Env = p.pluginEnv(dir)
	if childEnd != nil {
		cmd.ExtraFiles = []*os.File{childEnd} // fd 3 in the plugin
	}
	if connectTo != "" {
		cmd.Env = append(cmd.Env, connectTo)
	}
	stderr := &tailBuffer{max: 4096}
	cc := &plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           newHCLogger(p.log),
		StartTimeout:     p.cfg.StartTimeout,
		Stderr:           stderr,
		SkipHostEnv:      true,
	}
	for _, v := range SupportedVersions {
		cc.VersionedPlugins[v] = hostPluginSet()
	}
	if p.cfg.SHA256 != "" {
		sum, _ := hex.DecodeString(p.cfg.SHA256)
		cc.SecureConfig = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	client := plugin.NewClient(cc)
	inst := &instance{p: p, client: client, dir: dir, stderr: stderr, started: time.Now()}
	fail := func(err error) (*instance, error) {
		client.Kill()
		fds.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	rpc, err := client.Client()
	if childEnd != nil {
		childEnd.Close() // the plugin has its copy (or never will)
	}
	if err != nil {
		client.Kill() // waits for go-plugin's goroutines: stderr is complete
		return fail(p.startError(err, stderr))
	}
	inst.process = cmd.Process
	if rc := client.ReattachConfig(); rc != nil {
		inst.pid = rc.Pid
	}
	if err := fds.AwaitControl(p.cfg.StartTimeout); err != nil {
		return fail(fmt.Errorf("%w: %w: %s: %w", ErrStart, ErrHandshake, path, err))
	}
	raw, err := rpc.Dispense(p.kind)
	if err != nil {
		return fail(fmt.Errorf("%w: dispense %s: %w", ErrStart, p.kind, err))
	}
	conn, ok := raw.(*grpc.ClientConn)
	if !ok {
		return fail(fmt.Errorf("%w: dispense %s returned %T", ErrStart, p.kind, raw))
	}
	inst.conn = conn
	inst.fds = fds
	if p.probe {
		return inst, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.StartTimeout)
	defer cancel()
	info, err := inst.infoCall(ctx)
	if err != nil {
		inst.kill()
		if s, ok := status.FromError(err); ok && s.Code() == codes.Unimplemented {
			return nil, fmt.Errorf("%w: %w: %s does not serve a %s (its plugin set has no %q)", ErrStart, ErrIncompatible, path, p.kind, p.kind)
		}
		if errors.Is(err, ErrBadReply) {
			return nil, fmt.Errorf("%w: %w: %s: %w", ErrStart, ErrIncompatible, path, err)
		}
		return nil, fmt.Errorf("%w: %w: %s: Info: %w", ErrStart, ErrHandshake, path, err)
	}
	inst.info = info
	return inst, nil
}

func (inst *instance) infoCall(ctx context.Context) (*pb.PluginInfo, error) {
	var info *pb.PluginInfo
	var err error
	switch inst.p.kind {
	case KindTransport:
		info, err = pb.NewTransportClient(inst.conn).Info(ctx, &pb.Empty{})
	case KindDiscovery:
		info, err = pb.NewDiscoveryClient(inst.conn).Info(ctx, &pb.Empty{})
	case KindValidator:
		info, err = pb.NewValidatorClient(inst.conn).Info(ctx, &pb.Empty{})
	}
	if err != nil {
		return nil, err
	}
	if err := wire.CheckInfo(info, inst.p.kind); err != nil {
		return nil, err
	}
	return info, nil
}

var pluginVersionRE = regexp.MustCompile(`Plugin version: (\S+), Client versions: (\[[^\]]*\])`)

// startError turns go-plugin's start errors into clear ones.
func (p *proc) startError(err error, stderr *tailBuffer) error {
	path := p.cfg.Path
	msg := err.Error()
	tail := stderr.String()
	withTail := func(s string) string {
		if tail != "" {
			s += "; plugin stderr: " + strings.TrimSpace(tail)
		}
		return s
	}
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		got := "unknown"
		if b, err := os.ReadFile(path); err == nil {
			sum := sha256.Sum256(b)
			got = hex.EncodeToString(sum[:])
		}
		return fmt.Errorf("%w: %w: %s has sha256 %s, the configuration pins %s; refusing to start it", ErrStart, ErrChecksum, path, got, strings.ToLower(p.cfg.SHA256))
	case strings.Contains(msg, "incompatible API version"):
		if m := pluginVersionRE.FindStringSubmatch(msg); m != nil {
			return fmt.Errorf("%w: %w: %s speaks dwebswarm plugin protocol version %s, this host speaks %s; rebuild the plugin with a compatible SDK (github.com/dwebswarm/dwebswarm-go/framework/remote/sdk)", ErrStart, ErrIncompatible, path, m[1], m[2])
		}
		return fmt.Errorf("%w: %w: %s: %s", ErrStart, ErrIncompatible, path, msg)
	case strings.Contains(msg, "incompatible core API version"):
		return fmt.Errorf("%w: %w: %s uses another go-plugin core protocol: %s", ErrStart, ErrIncompatible, path, firstLine(msg))
	case strings.Contains(msg, "unsupported plugin protocol"):
		return fmt.Errorf("%w: %w: %s does not speak gRPC: %s", ErrStart, ErrIncompatible, path, msg)
	case strings.Contains(msg, "Failed to read any lines from plugin's stdout"):
		return fmt.Errorf("%w: %w: %s", ErrStart, ErrHandshake, withTail(path+" exited before completing the handshake"))
	case strings.Contains(msg, "Unrecognized remote plugin message"):
		line := strings.TrimSpace(strings.TrimPrefix(firstLine(msg), "Unrecognized remote plugin message:"))
		return fmt.Errorf("%w: %w: %s is not a dwebswarm plugin, or is broken: it printed %q on stdout instead of the go-plugin handshake line", ErrStart, ErrHandshake, path, wire.Clip(line, 200))
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return fmt.Errorf("%w: %w: %s did not complete the handshake within %v", ErrStart, ErrHandshake, path, p.cfg.StartTimeout)
	case strings.Contains(msg, "plugin exited before we could connect"):
		return fmt.Errorf("%w: %w: %s", ErrStart, ErrHandshake, withTail(path+" exited before completing the handshake"))
	}
	return fmt.Errorf("%w: %s: %s", ErrStart, path, withTail(msg))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// watch waits for the instance's end and handles it as a crash unless the
// host ended it.
func (p *proc) watch(inst *instance) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		select {
		case <-inst.fds.Dead():
		case <-p.closeCh:
			return
		}
		p.crashed(inst)
	}()
}

// crashed handles the death of inst: report, then restart with backoff.
func (p *proc) crashed(inst *instance) {
	p.mu.Lock()
	if p.cur != inst || p.closed {
		p.mu.Unlock()
		return
	}
	p.cur = nil
	if time.Since(inst.started) >= p.cfg.Restart.StableAfter {
		p.restarts = 0
	}
	p.notifyLocked()
	p.mu.Unlock()
	inst.kill()
	cause := inst.fds.Err()
	if tail := strings.TrimSpace(inst.stderr.String()); tail != "" {
		cause = fmt.Errorf("%w; stderr: %s", cause, wire.Clip(tail, 512))
	}
	p.log.Warn("plugin crashed", "pid", inst.pid, "err", cause)
	p.emit(Event{Kind: EventCrashed, PID: inst.pid, Err: cause})

	backoff := p.cfg.Restart.MinBackoff
	for attempt := 1; ; attempt++ {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		if p.cfg.Restart.MaxRestarts < 0 || p.restarts >= p.cfg.Restart.MaxRestarts {
			p.failed = fmt.Errorf("%w: plugin %s crashed %d times without a stable run; not restarting it", ErrUnavailable, p.name, p.restarts+1)
			if p.cfg.Restart.MaxRestarts < 0 {
				p.failed = fmt.Errorf("%w: plugin %s crashed and restarts are off", ErrUnavailable, p.name)
			}
			p.notifyLocked()
			p.mu.Unlock()
			p.log.Error("plugin given up", "err", p.failed)
			p.emit(Event{Kind: EventGaveUp, PID: inst.pid, Err: p.failed})
			return
		}
		p.restarts++
		p.mu.Unlock()
		select {
		case <-time.After(backoff):
		case <-p.closeCh:
			return
		}
		backoff = min(2*backoff, p.cfg.Restart.MaxBackoff)
		next, err := p.start()
		if err == nil && p.prepare != nil {
			if err = p.prepare(next); err != nil {
				next.kill()
			}
		}
		if err != nil {
			p.log.Warn("plugin restart failed", "attempt", attempt, "err", err)
			p.emit(Event{Kind: EventRestartFailed, Attempt: attempt, Err: err})
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			next.kill()
			return
		}
		p.cur = next
		p.notifyLocked()
		p.mu.Unlock()
		p.watch(next)
		p.log.Info("plugin restarted", "pid", next.pid, "attempt", attempt)
		p.emit(Event{Kind: EventRestarted, PID: next.pid, Attempt: attempt})
		if p.onRestart != nil {
			p.onRestart(next)
		}
		return
	}
}

// gracefulKill bounds go-plugin's graceful shutdown of a plugin.
const gracefulKill = 3 * time.Second

// kill ends the instance's process at once (SIGKILL to the process this
// host started; TerminateProcess on Windows) and releases its resources. It is safe to call more than once
// and from any goroutine.
func (inst *instance) kill() { inst.end(false) }

// end ends the instance: gracefully (go-plugin's shutdown, then SIGKILL
// after gracefulKill) or at once.
func (inst *instance) end(graceful bool) {
	inst.killOnce.Do(func() {
		if !graceful && inst.process != nil && !inst.client.Exited() {
			_ = inst.process.Kill()
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			inst.client.Kill()
		}()
		select {
		case <-done:
		case <-time.After(gracefulKill):
			if inst.process != nil && !inst.client.Exited() {
				_ = inst.process.Kill()
			}
			<-done
		}
		if inst.fds != nil {
			inst.fds.Close()
		}
		os.RemoveAll(inst.dir)
	})
}

func (inst *instance) dead() bool {
	select {
	case <-inst.fds.Dead():
		return true
	default:
		return false
	}
}

// acquire returns the running instance, waiting (within ctx) while a
// restart is under way.
func (p *proc) acquire(ctx context.Context) (*instance, error) {
	for {
		p.mu.Lock()
		inst, ch, closed, failed := p.cur, p.changed, p.closed, p.failed
		p.mu.Unlock()
		switch {
		case closed:
			return nil, fmt.Errorf("%w: plugin %s is closed", ErrUnavailable, p.name)
		case failed != nil:
			return nil, failed
		case inst != nil && !inst.dead():
			return inst, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: plugin %s is restarting: %w", ErrUnavailable, p.name, ctx.Err())
		}
	}
}

// current returns the running instance or nil.
func (p *proc) current() *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// call runs fn against the running instance with the call timeout and turns
// every failure into an error of this package (or the caller's ctx error).
func (p *proc) call(ctx context.Context, method string, fn func(ctx context.Context, inst *instance) error) error {
	cctx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
	defer cancel()
	inst, err := p.acquire(cctx)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("plugin %s: %s: %w", p.name, method, ctx.Err())
		}
		return err
	}
	err = fn(cctx, inst)
	if err == nil {
		inst.hung.Store(0)
		return nil
	}
	return p.mapErr(ctx, cctx, method, inst, err)
}

func (p *proc) mapErr(parent, cctx context.Context, method string, inst *instance, err error) error {
	if wire.IsPluginError(err) || errors.Is(err, ErrBadReply) || errors.Is(err, ErrCrashed) {
		inst.hung.Store(0)
		return err // the plugin's own answer, or a checked protocol violation
	}
	if parent.Err() != nil {
		return fmt.Errorf("plugin %s: %s: %w", p.name, method, parent.Err())
	}
	s, isStatus := status.FromError(err)
	timedOut := cctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (isStatus && s.Code() == codes.DeadlineExceeded)
	if inst.dead() {
		return fmt.Errorf("%w: plugin %s exited during %s", ErrUnavailable, p.name, method)
	}
	if timedOut {
		n := inst.hung.Add(1)
		if h := p.cfg.Restart.HungAfter; h > 0 && int(n) >= h {
			p.log.Error("plugin hung: killing it", "pid", inst.pid, "timeouts", n)
			p.emit(Event{Kind: EventHung, PID: inst.pid, Err: fmt.Errorf("%d calls in a row timed out", n)})
			go inst.kill() // the watcher then restarts it like a crash
		}
		return fmt.Errorf("%w: plugin %s did not answer %s within %v: %w", ErrTimeout, p.name, method, p.cfg.CallTimeout, context.DeadlineExceeded)
	}
	if !isStatus {
		return fmt.Errorf("plugin %s: %s: %w", p.name, method, err)
	}
	inst.hung.Store(0)
	switch s.Code() {
	case codes.Unavailable, codes.Canceled:
		return fmt.Errorf("%w: plugin %s: %s: %s", ErrUnavailable, p.name, method, s.Message())
	case codes.Aborted:
		return fmt.Errorf("plugin %s: %s: %s", p.name, method, wire.Clip(s.Message(), wire.MaxErrorLen))
	case codes.Unimplemented:
		return wire.BadReply("plugin %s does not implement %s", p.name, method)
	}
	return wire.BadReply("plugin %s: %s: %v: %s", p.name, method, s.Code(), wire.Clip(s.Message(), wire.MaxErrorLen))
}

// close stops supervising and ends the running instance.
func (p *proc) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.closeCh)
	inst := p.cur
	p.cur = nil
	p.notifyLocked()
	p.mu.Unlock()
	p.wg.Wait()
	if inst != nil {
		inst.end(true)
	}
}

func (p *proc) pid() int {
	if inst := p.current(); inst != nil {
		return inst.pid
	}
	return 0
}

// tailBuffer keeps the last max bytes written (the plugin's raw stderr).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// newHCLogger adapts go-plugin's hclog output to slog: hclog writes JSON
// lines, which are re-emitted with their level, message and fields.
func newHCLogger(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "go-plugin",
		Level:      hclog.Info,
		Output:     &slogWriter{l: l},
		JSONFormat: true,
	})
}

type slogWriter struct{ l *slog.Logger }

func (w *slogWriter) Write(b []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			w.l.Info(string(line))
			continue
		}
		lvl := slog.LevelInfo
		switch m["@level"] {
		case "trace", "debug":
			lvl = slog.LevelDebug
		case "warn":
			lvl = slog.LevelWarn
		case "error":
			lvl = slog.LevelError
		}
		msg, _ := m["@message"].(string)
		var attrs []any
		for k, v := range m {
			if !strings.HasPrefix(k, "@") {
				attrs = append(attrs, k, v)
			}
		}
		w.l.Log(context.Background(), lvl, msg, attrs...)
	}
	return len(b), nil
}

var _ io.Writer = (*slogWriter)(nil)
