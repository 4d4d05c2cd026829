package main

import (
	"fmt"
	"strings"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/plugins/validators"
)

// validatorFactories builds the built-in validators by name; arg is what
// follows "name:" in --validator.
var validatorFactories = map[string]func(arg string, f nodeFlags) (framework.PeerValidator, error){
	"dht-private": func(arg string, _ nodeFlags) (framework.PeerValidator, error) {
		return validators.NewDHTPrivate(validators.DHTPrivateConfig{Exempt: splitList(strings.ReplaceAll(arg, ";", ","))})
	},
	"ratelimit": func(string, nodeFlags) (framework.PeerValidator, error) {
		return validators.NewRateLimit(validators.RateLimitConfig{})
	},
	"banlist": func(arg string, _ nodeFlags) (framework.PeerValidator, error) {
		if arg == "" {
			return nil, fmt.Errorf("%w: banlist needs a file: banlist:PATH", framework.ErrInvalidOption)
		}
		return validators.OpenBanList(validators.BanListConfig{Path: arg})
	},
	"cidr": func(_ string, f nodeFlags) (framework.PeerValidator, error) {
		if len(f.allow)+len(f.deny) == 0 {
			return nil, fmt.Errorf("%w: cidr needs --allow or --deny prefixes", framework.ErrInvalidOption)
		}
		return validators.NewCIDR(validators.CIDRConfig{Allow: f.allow, Deny: f.deny})
	},
}

// pluginPrefix names an out-of-process plugin binary in a plugin list:
// "plugin:/path/to/binary ARGS...".
const pluginPrefix = "plugin:"

// onPluginEvent, when set (by tests), receives the lifecycle events of the
// out-of-process plugins the flags start.
var onPluginEvent func(remote.Event)

// pluginConfig turns "PATH ARGS..." into a plugin configuration.
func pluginConfig(spec string) remote.Config {
	f := strings.Fields(spec)
	if len(f) == 0 {
		return remote.Config{}
	}
	return remote.Config{Path: f[0], Args: f[1:], OnEvent: onPluginEvent}
}

// validators builds the --validator list, in the order given, into b.
func (f nodeFlags) validators(b *built) error {
	items := splitList(f.validator)
	cidr := false
	for _, item := range items {
		name, _, _ := strings.Cut(item, ":")
		cidr = cidr || (name == "cidr" && !strings.HasPrefix(item, pluginPrefix))
	}
	if len(f.allow)+len(f.deny) > 0 && !cidr {
		return fmt.Errorf("%w: --allow/--deny need the cidr validator (--validator cidr,...)", framework.ErrInvalidOption)
	}
	for _, item := range items {
		if path, ok := strings.CutPrefix(item, pluginPrefix); ok {
			v, err := remote.NewValidator(pluginConfig(path))
			if err != nil {
				return fmt.Errorf("validator %s: %w", item, err)
			}
			b.validators = append(b.validators, v)
			continue
		}
		name, arg, _ := strings.Cut(item, ":")
		mk, ok := validatorFactories[name]
		if !ok {
			return fmt.Errorf("%w: validator %q (known: %s, or plugin:PATH)", framework.ErrUnknownPlugin, name, names(validatorFactories))
		}
		v, err := mk(arg, f)
		if err != nil {
			return fmt.Errorf("validator %s: %w", name, err)
		}
		b.validators = append(b.validators, v)
	}
	return nil
}
