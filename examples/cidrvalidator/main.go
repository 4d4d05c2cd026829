// Command cidrvalidator is a dwebswarm PeerValidator plugin that accepts or
// rejects peers by their IP address, from an allow/deny list in a file:
//
//	# comments and blank lines are ignored
//	deny  10.0.0.0/8
//	allow 10.1.0.0/16     # never reached for 10.1.x.x: the first match wins
//	allow 192.0.2.7       # a bare address is a /32 (or /128)
//
// The first rule that contains the peer's address decides. A peer that no
// rule matches is accepted, unless the list has an allow rule: then it is
// an allow list, and anything it does not allow is rejected. Peers whose
// host is not an IP address (a host name) are rejected: they cannot be
// checked without a DNS lookup the validator must not make.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/sdk"
)

type rule struct {
	allow  bool
	prefix netip.Prefix
	text   string // as written, for the rejection reason
	line   int
}

type validator struct {
	rules     []rule
	allowList bool // some rule allows: unmatched peers are rejected
}

func main() {
	path := flag.String("file", os.Getenv("CIDRVALIDATOR_FILE"), "allow/deny list (default $CIDRVALIDATOR_FILE)")
	flag.Parse()
	v, err := load(*path)
	if err != nil { // the host reports this line when the plugin fails to start
		fmt.Fprintln(os.Stderr, "cidrvalidator:", err)
		os.Exit(1)
	}
	sdk.ServeValidator(v)
}

// load reads the list, with the file and line of the first bad entry.
func load(path string) (*validator, error) {
	if path == "" {
		return nil, fmt.Errorf("no list: give -file PATH or set CIDRVALIDATOR_FILE")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	v := &validator{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 || fields[0] != "allow" && fields[0] != "deny" {
			return nil, fmt.Errorf("%s:%d: %q: want \"allow CIDR\" or \"deny CIDR\"", path, n, strings.TrimSpace(text))
		}
		p, err := netip.ParsePrefix(fields[1])
		if a, aerr := netip.ParseAddr(fields[1]); err != nil && aerr == nil && a.Zone() == "" {
			p, err = a.Unmap().Prefix(a.Unmap().BitLen()) // a bare address
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %q is not a CIDR prefix or an IP address", path, n, fields[1])
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		v.rules = append(v.rules, rule{fields[0] == "allow", p.Masked(), strings.Join(fields, " "), n})
		v.allowList = v.allowList || fields[0] == "allow"
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func (v *validator) Name() string { return "cidr" }

func (v *validator) Validate(_ context.Context, p framework.Peer) error {
	a, err := netip.ParseAddr(p.Host)
	if err != nil {
		return fmt.Errorf("%w: cidr: host %q is not an IP address", framework.ErrRejected, p.Host)
	}
	a = a.WithZone("").Unmap()
	for _, r := range v.rules {
		if r.prefix.Contains(a) {
			if r.allow {
				return nil
			}
			return fmt.Errorf("%w: cidr: %s denied by %q (line %d)", framework.ErrRejected, a, r.text, r.line)
		}
	}
	if v.allowList {
		return fmt.Errorf("%w: cidr: %s is not in the allow list", framework.ErrRejected, a)
	}
	return nil
}
