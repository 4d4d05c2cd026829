// Package swarmfx is the go.uber.org/fx wiring of dwebswarm-go, and the only
// package of the module that imports fx: the engine (package framework), the
// built-in plugins (plugins/...) and the plugin SDK know nothing of it, and
// users without fx build swarms with their plain constructors
// (framework.New, tcp.New, ...) and lose nothing.
//
// # Modules
//
// Every module here is a function returning an [fx.Option], and each takes
// the plugin's configuration as its argument (TCP has none):
//
//	fx.New(
//		swarmfx.Default(),                   // Engine() + TCP()
//		swarmfx.Static(static.Config{Peers: peers}),
//		swarmfx.Supply(framework.WithMaxPeers(64)),
//	)
//
// One shape for all, chosen because the out-of-process modules
// ([RemoteTransport], ...) need one configuration per plugin binary and so
// cannot read a single Config from the graph; the built-ins follow them. To
// build a plugin's configuration inside the graph instead, provide the
// plugin yourself with its plain constructor and [ProvideTransport] or
// [ProvideDiscovery].
//
// [Engine] provides the *framework.Swarm from [Params] and ties it to the
// fx lifecycle: Start on start, Close on stop. Calling Join inside fx.Invoke
// fails with "call Start before Join" (Invoke runs before any OnStart hook):
// join from an OnStart hook appended after the swarm's own.
//
// # Value groups and validators
//
// Transports and discoveries arrive through the value groups named
// [GroupTransports] and [GroupDiscoveries] (tags [TagTransports],
// [TagDiscoveries]), in no particular order: the engine orders them by
// (Order, Name). Swarm options arrive through [GroupOptions] ([Supply]).
//
// Validators run in the order the user lists them, so they are not a value
// group: their modules ([CIDR], [DHTPrivate], [RateLimit], [BanList],
// [RemoteValidator]) provide typed values (*validators.CIDR, ...), and
// [Validators], given once, lists them in order.
//
// fx.Replace does not act on value groups: to replace a built-in (TCP by an
// out-of-process transport, say) leave its module out.
package swarmfx
