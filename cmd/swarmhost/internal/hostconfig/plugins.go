package hostconfig

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/plugins/dht"
	"github.com/dwebswarm/dwebswarm-go/plugins/mdns"
	"github.com/dwebswarm/dwebswarm-go/plugins/static"
	"github.com/dwebswarm/dwebswarm-go/plugins/validators"
)

// Kind is a plugin kind.
type Kind string

// Plugin kinds.
const (
	KindDiscovery Kind = "discovery"
	KindTransport Kind = "transport"
	KindValidator Kind = "validator"
)

const (
	kindDiscovery = KindDiscovery
	kindTransport = KindTransport
	kindValidator = KindValidator
)

func (k Kind) section() string {
	switch k {
	case KindDiscovery:
		return "discoveries"
	case KindTransport:
		return "transports"
	}
	return "validators"
}

// implementedBy reports whether x is a plugin of kind k: a
// framework.Discovery, Transport or PeerValidator.
func (k Kind) implementedBy(x any) bool {
	var ok bool
	switch k {
	case KindDiscovery:
		_, ok = x.(framework.Discovery)
	case KindTransport:
		_, ok = x.(framework.Transport)
	case KindValidator:
		_, ok = x.(framework.PeerValidator)
	}
	return ok
}

// Plugin is one entry of discoveries, transports or validators: a built-in
// (Name and Options) or an external binary (Remote).
type Plugin struct {
	Kind Kind
	// Name is the built-in's name, or for an external plugin its
	// Remote.Name (may be empty: the plugin reports its own).
	Name string
	// Options is the built-in's configuration, a value of its registry
	// entry's OptionsType (for dht, a dht.Config with node.bootstrap,
	// ephemeral and adaptiveAfter folded in). Validators run in list order.
	Options any
	// Remote configures an external plugin binary; nil for built-ins.
	Remote *remote.Config
	Pos    Pos

	node  *yaml.Node
	index int
}

// TCPOptions configures the tcp transport.
type TCPOptions struct {
	// KeepAlive is the TCP keep-alive period (0: Go's default; negative:
	// off). In YAML: a duration, or off.
	KeepAlive time.Duration `hostconfig:"off"`
}

func defaultTransport() Plugin {
	return Plugin{Kind: KindTransport, Name: "tcp", Options: TCPOptions{}}
}

// plugins decodes a plugin list; ok is false when anything in it was wrong.
func (d *decoder) plugins(v *yaml.Node, kind Kind) []Plugin {
	sec := kind.section()
	items, ok := d.list(v, sec, "[{name: tcp}]")
	if !ok {
		return nil
	}
	out := []Plugin{}
	seen := map[string]int{}
	for i, it := range items {
		path := fmt.Sprintf("%s[%d]", sec, i)
		if it.Kind == yaml.ScalarNode && !isNull(it) {
			d.errf(it, fmt.Sprintf("write - name: %s", clip(it.Value)), "%s: want a mapping with name: or plugin:, got %s", path, describe(it))
			continue
		}
		var nameN, optsN, plugN *yaml.Node
		if !d.mapping(it, path, fields{
			"name":    func(_, v *yaml.Node) { nameN = v },
			"options": func(_, v *yaml.Node) { optsN = v },
			"plugin":  func(_, v *yaml.Node) { plugN = v },
		}, map[string]string{
			"path":   "an external plugin is written plugin: {path: ..., args: [...]}",
			"args":   "an external plugin is written plugin: {path: ..., args: [...]}",
			"option": `did you mean "options"?`,
		}) {
			continue
		}
		p := Plugin{Kind: kind, Pos: posOf(it), node: it, index: i}
		switch {
		case nameN != nil && plugN != nil:
			d.errf(plugN, "name: picks a built-in; plugin: runs a binary: keep one", "%s: both name and plugin", path)
			continue
		case nameN == nil && plugN == nil:
			d.errf(it, fmt.Sprintf("name: one of %s, or plugin: {path: BINARY}", strings.Join(BuiltinNames(kind), ", ")), "%s: neither name nor plugin", path)
			continue
		case plugN != nil:
			if optsN != nil {
				d.errf(optsN, "pass settings to a binary with plugin.args", "%s: options apply to built-ins only", path)
			}
			rc, ok := d.remote(plugN, path+".plugin")
			if !ok {
				continue
			}
			p.Remote, p.Name = rc, rc.Name
			out = append(out, p)
			continue
		}
		name, ok := d.nonEmpty(nameN, path+".name")
		if !ok {
			continue
		}
		b, ok := LookupBuiltin(name)
		if !ok || b.Kind != kind {
			hint := didYouMean(name, BuiltinNames(kind), kind.section()) + ", or plugin: {path: BINARY} for an external one"
			if ok {
				hint = fmt.Sprintf("%s is a %s: list it under %s", name, b.Kind, b.Kind.section())
			}
			d.add(nameN, framework.ErrUnknownPlugin, hint, "%s: unknown %s %q", path, kind, clip(name))
			continue
		}
		if kind != KindValidator {
			if first, dup := seen[name]; dup {
				d.errf(nameN, fmt.Sprintf("it is already %s[%d]; list each once", sec, first), "%s: duplicate %s %q", path, kind, name)
				continue
			}
			seen[name] = i
		}
		if optsN == nil && b.required != "" {
			d.errf(it, b.required, "%s: %s needs options", path, name)
			continue
		}
		before := len(d.errs)
		opts := b.decode(d, optsN, path+".options")
		if len(d.errs) > before {
			continue
		}
		p.Name, p.Options = name, opts
		out = append(out, p)
	}
	return out
}

// remote decodes an external plugin: {path, args, sha256, name, env,
// callTimeout, startTimeout, restart}.
func (d *decoder) remote(v *yaml.Node, path string) (*remote.Config, bool) {
	rc := &remote.Config{}
	var pathN, shaN *yaml.Node
	good := d.mapping(v, path, fields{
		"path": func(_, v *yaml.Node) {
			pathN = v
			rc.Path, _ = d.nonEmpty(v, path+".path")
		},
		"args": func(_, v *yaml.Node) { rc.Args, _ = d.strList(v, path+".args", `["--flag", "value"]`) },
		"env": func(_, v *yaml.Node) {
			items, ok := d.list(v, path+".env", "[KEY=VALUE]")
			if !ok {
				return
			}
			for i, it := range items {
				s, ok := d.str(it, fmt.Sprintf("%s.env[%d]", path, i))
				if ok && (!strings.Contains(s, "=") || strings.HasPrefix(s, "=")) {
					d.errf(it, "write KEY=VALUE", "%s.env[%d]: %q is not KEY=VALUE", path, i, clip(s))
					continue
				}
				rc.Env = append(rc.Env, s)
			}
		},
		"sha256": func(_, v *yaml.Node) {
			shaN = v
			s, ok := d.str(v, path+".sha256")
			if !ok {
				return
			}
			if b, err := hex.DecodeString(s); err != nil || len(b) != sha256.Size {
				d.add(v, remote.ErrChecksum, "64 hex characters, as printed by sha256sum BINARY", "%s.sha256: %q is not a SHA-256", path, clip(s))
				return
			}
			rc.SHA256 = strings.ToLower(s)
		},
		"name": func(_, v *yaml.Node) { rc.Name, _ = d.nonEmpty(v, path+".name") },
		"callTimeout": func(_, v *yaml.Node) {
			rc.CallTimeout, _ = d.duration(v, path+".callTimeout", positive, false)
		},
		"startTimeout": func(_, v *yaml.Node) {
			rc.StartTimeout, _ = d.duration(v, path+".startTimeout", positive, false)
		},
		"restart": func(_, v *yaml.Node) {
			r := &rc.Restart
			p := path + ".restart"
			d.mapping(v, p, fields{
				"maxRestarts": func(_, v *yaml.Node) {
					r.MaxRestarts, _ = d.integer(v, p+".maxRestarts", -1, 1<<20, "-1 never restarts; 0 means the default")
				},
				"minBackoff":  func(_, v *yaml.Node) { r.MinBackoff, _ = d.duration(v, p+".minBackoff", positive, false) },
				"maxBackoff":  func(_, v *yaml.Node) { r.MaxBackoff, _ = d.duration(v, p+".maxBackoff", positive, false) },
				"stableAfter": func(_, v *yaml.Node) { r.StableAfter, _ = d.duration(v, p+".stableAfter", positive, false) },
				"hungAfter": func(_, v *yaml.Node) {
					r.HungAfter, _ = d.integer(v, p+".hungAfter", -1, 1<<20, "-1 never kills a hung plugin; 0 means the default")
				},
			}, nil)
		},
	}, map[string]string{
		"checksum": `did you mean "sha256"?`,
		"options":  "pass settings to a binary with args",
		"binary":   `did you mean "path"?`,
	})
	if !good {
		return nil, false
	}
	if pathN == nil {
		d.add(v, remote.ErrBinaryMissing, "add path: /path/to/binary", "%s: missing path", path)
		return nil, false
	}
	if rc.Path == "" {
		return nil, false
	}
	resolved, ok := d.binary(pathN, path+".path", rc.Path)
	if !ok {
		return nil, false
	}
	rc.Path = resolved
	if rc.SHA256 != "" {
		if sum, err := fileSHA256(resolved); err == nil && sum != rc.SHA256 {
			d.add(shaN, remote.ErrChecksum, "the binary changed, or the pin is wrong: its SHA-256 is "+sum, "%s.sha256: does not match %s", path, clip(resolved))
		}
	}
	return rc, true
}

// binary finds a plugin binary: a bare name on $PATH, else a path relative
// to the config file's directory. It must be an executable regular file.
func (d *decoder) binary(n *yaml.Node, path, p string) (string, bool) {
	if !strings.ContainsRune(p, filepath.Separator) && !strings.ContainsRune(p, '/') {
		found, err := exec.LookPath(p)
		if err != nil {
			d.add(n, remote.ErrBinaryMissing, "give a path such as ./"+clip(p)+", relative to the config file, or put it on $PATH", "%s: %q not found on $PATH", path, clip(p))
			return "", false
		}
		return found, true
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(d.dir, p)
	}
	st, err := os.Stat(p)
	switch {
	case err != nil:
		d.add(n, remote.ErrBinaryMissing, "build or install the plugin; relative paths are relative to the config file", "%s: plugin binary %s: %v", path, clip(p), unwrapPathErr(err))
		return "", false
	case !st.Mode().IsRegular():
		d.add(n, remote.ErrBinaryMissing, "point at the binary itself", "%s: %s is not a regular file", path, clip(p))
		return "", false
	case st.Mode().Perm()&0o111 == 0:
		d.add(n, remote.ErrBinaryMissing, "chmod +x "+clip(p), "%s: %s is not executable", path, clip(p))
		return "", false
	}
	return p, true
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (d *decoder) dhtOptions(v *yaml.Node, path string) dht.Config {
	var c dht.Config
	var minN, maxN *yaml.Node
	d.mapping(v, path, fields{
		"sendRate":     func(_, v *yaml.Node) { c.SendRate, _ = d.number(v, path+".sendRate") },
		"sendBurst":    func(_, v *yaml.Node) { c.SendBurst, _ = d.integer(v, path+".sendBurst", 1, 1<<20, "") },
		"queryTimeout": func(_, v *yaml.Node) { c.QueryTimeout, _ = d.duration(v, path+".queryTimeout", positive, false) },
		"roundMin":     func(_, v *yaml.Node) { minN = v; c.RoundMin, _ = d.duration(v, path+".roundMin", positive, false) },
		"roundMax":     func(_, v *yaml.Node) { maxN = v; c.RoundMax, _ = d.duration(v, path+".roundMax", positive, false) },
		"fastRelookups": func(_, v *yaml.Node) {
			c.FastRelookups, _ = d.durList(v, path+".fastRelookups", nonNeg)
		},
		"publicIP": func(_, v *yaml.Node) {
			s, ok := d.str(v, path+".publicIP")
			if !ok {
				return
			}
			ip := net.ParseIP(s)
			if ip == nil {
				d.errf(v, "an IPv4 or IPv6 address", "%s.publicIP: %q is not an IP address", path, clip(s))
				return
			}
			c.PublicIP = ip
		},
		"peerStore": func(_, v *yaml.Node) {
			p := path + ".peerStore"
			ps := &c.PeerStore
			d.mapping(v, p, fields{
				"ttl":            func(_, v *yaml.Node) { ps.TTL, _ = d.duration(v, p+".ttl", positive, false) },
				"maxPerInfohash": func(_, v *yaml.Node) { ps.MaxPerInfohash, _ = d.integer(v, p+".maxPerInfohash", 1, 1<<30, "") },
				"maxTotal":       func(_, v *yaml.Node) { ps.MaxTotal, _ = d.integer(v, p+".maxTotal", 1, 1<<30, "") },
				"maxReturned":    func(_, v *yaml.Node) { ps.MaxReturned, _ = d.integer(v, p+".maxReturned", 1, 1<<20, "") },
			}, nil)
		},
	}, map[string]string{
		"bootstrap":     "set node.bootstrap: the DHT reads it from the node section",
		"ephemeral":     "set node.ephemeral: the DHT reads it from the node section",
		"adaptiveAfter": "set node.adaptiveAfter: the DHT reads it from the node section",
		"port":          "the DHT runs on the swarm's port: set node.port",
	})
	if minN != nil && maxN != nil && c.RoundMin > 0 && c.RoundMax > 0 && c.RoundMax < c.RoundMin {
		d.errf(maxN, "roundMax must be at least roundMin", "%s.roundMax: %v < roundMin %v", path, c.RoundMax, c.RoundMin)
	}
	if maxN != nil && minN == nil && c.RoundMax > 0 && c.RoundMax < dht.DefaultRoundMin {
		d.errf(maxN, fmt.Sprintf("roundMin defaults to %v: lower it too", dht.DefaultRoundMin), "%s.roundMax: %v < roundMin %v", path, c.RoundMax, dht.DefaultRoundMin)
	}
	return c
}

func (d *decoder) mdnsOptions(v *yaml.Node, path string) mdns.Config {
	var c mdns.Config
	var minN, maxN *yaml.Node
	d.mapping(v, path, fields{
		"interfaces": func(_, v *yaml.Node) {
			items, ok := d.list(v, path+".interfaces", "[eth0]")
			if !ok {
				return
			}
			for i, it := range items {
				s, ok := d.nonEmpty(it, fmt.Sprintf("%s.interfaces[%d]", path, i))
				if !ok {
					continue
				}
				if _, err := net.InterfaceByName(s); err != nil {
					d.errf(it, "`ip link` lists this host's interfaces", "%s.interfaces[%d]: no interface %q on this host", path, i, clip(s))
					continue
				}
				c.Interfaces = append(c.Interfaces, s)
			}
		},
		"includeLoopback": func(_, v *yaml.Node) { c.IncludeLoopback, _ = d.boolean(v, path+".includeLoopback") },
		"queryBurst":      func(_, v *yaml.Node) { c.QueryBurst, _ = d.durList(v, path+".queryBurst", nonNeg) },
		"announceBurst":   func(_, v *yaml.Node) { c.AnnounceBurst, _ = d.durList(v, path+".announceBurst", nonNeg) },
		"queryIntervalMin": func(_, v *yaml.Node) {
			minN = v
			c.QueryIntervalMin, _ = d.duration(v, path+".queryIntervalMin", positive, false)
		},
		"queryIntervalMax": func(_, v *yaml.Node) {
			maxN = v
			c.QueryIntervalMax, _ = d.duration(v, path+".queryIntervalMax", positive, false)
		},
		"responseWindow": func(_, v *yaml.Node) { c.ResponseWindow, _ = d.duration(v, path+".responseWindow", positive, false) },
		"forgetAfter":    func(_, v *yaml.Node) { c.ForgetAfter, _ = d.duration(v, path+".forgetAfter", positive, false) },
		"noRereport":     func(_, v *yaml.Node) { c.NoRereport, _ = d.boolean(v, path+".noRereport") },
		"ttl":            func(_, v *yaml.Node) { c.TTL, _ = d.duration(v, path+".ttl", positive, false) },
		"limits": func(_, v *yaml.Node) {
			p := path + ".limits"
			l := &c.Limits
			n := func(dst *int, key string) func(_, v *yaml.Node) {
				return func(_, v *yaml.Node) { *dst, _ = d.integer(v, p+"."+key, 1, 1<<20, "") }
			}
			d.mapping(v, p, fields{
				"maxInstancesPerSource":    n(&l.MaxInstancesPerSource, "maxInstancesPerSource"),
				"maxInstancesPerInterface": n(&l.MaxInstancesPerInterface, "maxInstancesPerInterface"),
				"maxInstances":             n(&l.MaxInstances, "maxInstances"),
				"maxPeersPerSource":        n(&l.MaxPeersPerSource, "maxPeersPerSource"),
				"maxPeersPerTopic":         n(&l.MaxPeersPerTopic, "maxPeersPerTopic"),
			}, nil)
		},
	}, map[string]string{"interface": `did you mean "interfaces"?`})
	if minN != nil && maxN != nil && c.QueryIntervalMin > 0 && c.QueryIntervalMax > 0 && c.QueryIntervalMax < c.QueryIntervalMin {
		d.errf(maxN, "queryIntervalMax must be at least queryIntervalMin", "%s.queryIntervalMax: %v < queryIntervalMin %v", path, c.QueryIntervalMax, c.QueryIntervalMin)
	}
	return c
}

func (d *decoder) staticOptions(v *yaml.Node, path string) static.Config {
	var c static.Config
	var peersN *yaml.Node
	d.mapping(v, path, fields{
		"interval": func(_, v *yaml.Node) { c.Interval, _ = d.duration(v, path+".interval", positive, false) },
		"peers": func(_, v *yaml.Node) {
			peersN = v
			items, ok := d.list(v, path+".peers", "[10.0.0.2:49737, {addr: 10.0.0.3:49737, topics: [my-topic]}]")
			if !ok {
				return
			}
			c.Peers = []static.Entry{}
			for i, it := range items {
				p := fmt.Sprintf("%s.peers[%d]", path, i)
				var e static.Entry
				if it.Kind == yaml.ScalarNode {
					if s, ok := d.addr(it, p, hostRequired); ok {
						c.Peers = append(c.Peers, static.Entry{Addr: s})
					}
					continue
				}
				var addrN *yaml.Node
				if !d.mapping(it, p, fields{
					"addr": func(_, v *yaml.Node) { addrN = v; e.Addr, _ = d.addr(v, p+".addr", hostRequired) },
					"topics": func(_, v *yaml.Node) {
						items, ok := d.list(v, p+".topics", "[my-topic]")
						if !ok {
							return
						}
						for j, t := range items {
							if tp, _, ok := d.topic(t, fmt.Sprintf("%s.topics[%d]", p, j)); ok {
								e.Topics = append(e.Topics, tp)
							}
						}
					},
				}, map[string]string{"address": `did you mean "addr"?`, "host": "write addr: HOST:PORT", "port": "write addr: HOST:PORT"}) {
					continue
				}
				if addrN == nil {
					d.add(it, framework.ErrInvalidPeer, "add addr: HOST:PORT", "%s: missing addr", p)
					continue
				}
				if e.Addr != "" {
					c.Peers = append(c.Peers, e)
				}
			}
		},
	}, map[string]string{"peer": `did you mean "peers"?`})
	if peersN == nil {
		d.errf(v, "add peers: [HOST:PORT, ...]", "%s: static needs peers", path)
	}
	return c
}

// prefixes decodes a list of CIDR prefixes (or single addresses), each
// checked by the validators package's own parser.
func (d *decoder) prefixes(v *yaml.Node, path string) []string {
	items, ok := d.list(v, path, "[10.0.0.0/8, 192.0.2.7]")
	if !ok {
		return nil
	}
	out := []string{}
	for i, it := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		s, ok := d.nonEmpty(it, p)
		if !ok {
			continue
		}
		if _, err := validators.NewCIDR(validators.CIDRConfig{Allow: []string{s}}); err != nil {
			d.errf(it, "a prefix such as 10.0.0.0/8 or fd00::/8, or one address", "%s: bad prefix %q", p, clip(s))
			continue
		}
		out = append(out, s)
	}
	return out
}

func (d *decoder) cidrOptions(v *yaml.Node, path string) validators.CIDRConfig {
	c := validators.CIDRConfig{}
	before := len(d.errs)
	d.mapping(v, path, fields{
		"allow": func(_, v *yaml.Node) { c.Allow = d.prefixes(v, path+".allow") },
		"deny":  func(_, v *yaml.Node) { c.Deny = d.prefixes(v, path+".deny") },
	}, nil)
	if len(c.Allow)+len(c.Deny) == 0 && len(d.errs) == before {
		d.errf(v, "list prefixes in allow: and/or deny:", "%s: cidr with neither allow nor deny", path)
	}
	return c
}

func (d *decoder) dhtPrivateOptions(v *yaml.Node, path string) validators.DHTPrivateConfig {
	c := validators.DHTPrivateConfig{}
	d.mapping(v, path, fields{
		"exempt": func(_, v *yaml.Node) { c.Exempt = d.prefixes(v, path+".exempt") },
	}, nil)
	return c
}

func (d *decoder) banListOptions(v *yaml.Node, path string) validators.BanListConfig {
	c := validators.BanListConfig{}
	var pathN *yaml.Node
	d.mapping(v, path, fields{
		"path": func(_, v *yaml.Node) {
			pathN = v
			s, ok := d.nonEmpty(v, path+".path")
			if !ok {
				return
			}
			if !filepath.IsAbs(s) {
				s = filepath.Join(d.dir, s)
			}
			dir := filepath.Dir(s)
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				d.errf(v, "create the directory; the file itself is created on the first ban", "%s.path: directory %s does not exist", path, clip(dir))
				return
			}
			if st, err := os.Stat(s); err == nil && !st.Mode().IsRegular() {
				d.errf(v, "point at a file", "%s.path: %s is not a regular file", path, clip(s))
				return
			}
			c.Path = s
		},
	}, nil)
	if pathN == nil && (isNull(v) || v.Kind == yaml.MappingNode) {
		d.errf(v, "add path: FILE; bans survive restarts in it", "%s: banlist needs a path", path)
	}
	return c
}
