package dht

import "net/netip"

// ObserveMapping records that reporter saw the node at ap, as a reply's
// "ip" does (tests fake a NAT that maps per destination).
func (d *Node) ObserveMapping(reporter string, ap netip.AddrPort) { d.mapping.observed(reporter, ap) }
