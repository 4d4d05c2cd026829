package main

import (
	"fmt"
	"strings"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote"
	"github.com/dwebswarm/dwebswarm-go/plugins/validators"
)

// validatorFactories builds the built-in validators by name; arg is what
// follows "name:" in --validator, and order its position in the chain.
var validatorFactories = map[string]func(arg string, f nodeFlags, order int) (framework.PeerValidator, error){
	"dht-private": func(arg string, _ nodeFlags, order int) (framework.PeerValidator, error) {
		return validators.NewDHTPrivate(validators.DHTPrivateConfig{Enabled: true, Order: order, Exempt: splitList(strings.ReplaceAll(arg, ";", ","))})
	},
	"ratelimit": func(_ string, _ nodeFlags, order int) (framework.PeerValidator, error) {
		return validators.NewRateLimit(validators.RateLimitConfig{Order: order})
	},
	"banlist": func(arg string, _ nodeFlags, order int) (framework.PeerValidator, error) {
		if arg == "" {
			return nil, fmt.Errorf("%w: banlist needs a file: banlist:PATH", framework.ErrInvalidOption)
		}
		return validators.OpenBanList(validators.BanListConfig{Path: arg, Order: order})
	},
	"cidr": func(_ string, f nodeFlags, order int) (framework.PeerValidator, error) {
		if len(f.allow)+len(f.deny) == 0 {
			return nil, fmt.Errorf("%w: cidr needs --allow or --deny prefixes", framework.ErrInvalidOption)
		}
		return validators.NewCIDR(validators.CIDRConfig{Allow: f.allow, Deny: f.deny, Order: order})
	},
}

// pluginPrefix names an out-of-process plugin binary in a plugin list:
// "plugin:/path/to/binary ARGS...".
const pluginPrefix = "plugin:"

// pluginConfig turns "PATH ARGS..." into a plugin configuration.
func pluginConfig(spec string) remote.Config {
	f := strings.Fields(spec)
	if len(f) == 0 {
		return remote.Config{}
	}
	return remote.Config{Path: f[0], Args: f[1:]}
}

// validatorOptions builds the --validator chain, in the order given.
func (f nodeFlags) validatorOptions() ([]framework.Option, error) {
	var opts []framework.Option
	for i, item := range splitList(f.validator) {
		name, arg, _ := strings.Cut(item, ":")
		if path, ok := strings.CutPrefix(item, pluginPrefix); ok {
			v, err := remote.NewValidator(pluginConfig(path))
			if err != nil {
				return nil, fmt.Errorf("validator %s: %w", item, err)
			}
			opts = append(opts, framework.WithValidators(orderedValidator{v, i + 1}))
			continue
		}
		mk, ok := validatorFactories[name]
		if !ok {
			return nil, fmt.Errorf("%w: validator %q (known: %s, or plugin:PATH)", framework.ErrUnknownPlugin, name, names(validatorFactories))
		}
		v, err := mk(arg, f, i+1)
		if err != nil {
			return nil, fmt.Errorf("validator %s: %w", name, err)
		}
		opts = append(opts, framework.WithValidators(v))
	}
	if len(f.allow)+len(f.deny) > 0 && !strings.Contains(f.validator, "cidr") {
		return nil, fmt.Errorf("%w: --allow/--deny need the cidr validator (--validator cidr,...)", framework.ErrInvalidOption)
	}
	return opts, nil
}

// orderedValidator places an out-of-process validator in the chain.
type orderedValidator struct {
	framework.PeerValidator
	order int
}

func (o orderedValidator) Order() int { return o.order }
