package hostconfig

import (
	"reflect"
	"slices"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// Changes is what a reload changes (see [Diff]).
type Changes struct {
	// TopicsAdded and TopicsRemoved are topics to join and to leave.
	TopicsAdded, TopicsRemoved []Topic
	// TopicsChanged are topics in both files whose announce or lookup
	// changed (the new entry): join them again, which replaces the join.
	TopicsChanged []Topic
	// ServicesAdded and ServicesRemoved are services to start and stop, by
	// name; a service whose topic or address changed is in both.
	ServicesAdded, ServicesRemoved []Service
	// AccessChanged are services kept running (not in ServicesAdded) whose
	// allow list changed, allow file contents included (the new entry):
	// replace their allow list in place.
	AccessChanged []Service
	// Restart names the sections that differ but only take effect on a
	// restart: "node", "discoveries", "transports", "validators", "log",
	// "metrics", "relay" (the relay, relays and relayWhen keys). A daemon logs them on reload.
	Restart []string
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	return len(c.TopicsAdded)+len(c.TopicsRemoved)+len(c.TopicsChanged)+len(c.ServicesAdded)+len(c.ServicesRemoved)+len(c.AccessChanged)+len(c.Restart) == 0
}

// Diff compares two configs for a reload (SIGHUP): topics by their 32
// bytes, services by name. A nil old config counts as empty (everything is added; Restart stays
// empty). Entries keep
// the order of their file. Positions and spelling (hex vs the same topic
// hashed from a name) do not count as changes.
func Diff(old, new *Config) Changes {
	fresh := old == nil
	if fresh {
		old = &Config{}
	}
	if new == nil {
		new = &Config{}
	}
	var ch Changes
	oldT := map[framework.Topic]Topic{}
	for _, t := range old.topics {
		oldT[t.Topic] = t
	}
	newT := map[framework.Topic]bool{}
	for _, t := range new.topics {
		newT[t.Topic] = true
		o, ok := oldT[t.Topic]
		switch {
		case !ok:
			ch.TopicsAdded = append(ch.TopicsAdded, t)
		case o.Announce != t.Announce || o.Lookup != t.Lookup:
			ch.TopicsChanged = append(ch.TopicsChanged, t)
		}
	}
	for _, t := range old.topics {
		if !newT[t.Topic] {
			ch.TopicsRemoved = append(ch.TopicsRemoved, t)
		}
	}
	// a service's allow list is not compared: the daemon replaces it on
	// the running service (forward.Manager.SetAllow), see Changes
	sameService := func(a, b Service) bool {
		return a.Topic == b.Topic && a.Serve == b.Serve && a.Connect == b.Connect && a.ServerKey == b.ServerKey && a.PeerKey == b.PeerKey
	}
	oldS := map[string]Service{}
	for _, s := range old.services {
		oldS[s.Name] = s
	}
	newS := map[string]Service{}
	for _, s := range new.services {
		newS[s.Name] = s
		if o, ok := oldS[s.Name]; !ok || !sameService(o, s) {
			ch.ServicesAdded = append(ch.ServicesAdded, s)
		} else if o.Restricted != s.Restricted || !sameKeys(o.Allow, s.Allow) {
			ch.AccessChanged = append(ch.AccessChanged, s)
		}
	}
	for _, s := range old.services {
		if n, ok := newS[s.Name]; !ok || !sameService(s, n) {
			ch.ServicesRemoved = append(ch.ServicesRemoved, s)
		}
	}
	if fresh {
		return ch
	}
	if !reflect.DeepEqual(old.Node, new.Node) {
		ch.Restart = append(ch.Restart, "node")
	}
	for _, sec := range []struct {
		name     string
		old, new []Plugin
	}{{"discoveries", old.Discoveries, new.Discoveries}, {"transports", old.Transports, new.Transports}, {"validators", old.Validators, new.Validators}} {
		if !samePlugins(sec.old, sec.new) {
			ch.Restart = append(ch.Restart, sec.name)
		}
	}
	if old.Log != new.Log {
		ch.Restart = append(ch.Restart, "log")
	}
	if old.Metrics != new.Metrics {
		ch.Restart = append(ch.Restart, "metrics")
	}
	if old.Relay != new.Relay || !slices.Equal(old.Relays, new.Relays) || old.RelayWhen != new.RelayWhen {
		ch.Restart = append(ch.Restart, "relay")
	}
	return ch
}

func samePlugins(a, b []Plugin) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.Pos, y.Pos, x.node, y.node, x.index, y.index = Pos{}, Pos{}, nil, nil, 0, 0
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// sameKeys reports whether a and b hold the same keys, in any order.
func sameKeys(a, b []secure.PublicKey) bool {
	set := make(map[secure.PublicKey]bool, len(a))
	for _, k := range a {
		set[k] = true
	}
	other := make(map[secure.PublicKey]bool, len(b))
	for _, k := range b {
		if !set[k] {
			return false
		}
		other[k] = true
	}
	return len(other) == len(set)
}
