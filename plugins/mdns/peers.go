package mdns

// admitPeerLocked decides whether a remote swarm not yet in st.found, whose
// instance came from src, may be reported: not when src already brought
// MaxPeersPerSource peers of this topic; when the topic holds
// MaxPeersPerTopic, the oldest peer of the source holding the most gives
// way, unless src is that source. Caller holds st.mu and adds id to
// st.found when it returns true.
func (st *topicState) admitPeerLocked(id peerID, src srcKey) bool {
	d := st.d
	lim := &d.cfg.Limits
	if st.peers.count(src) >= lim.MaxPeersPerSource {
		d.stats.peersSourceCap.Add(1)
		return false
	}
	if st.peers.len() >= lim.MaxPeersPerTopic {
		v, ok := st.peers.victim(src)
		if !ok {
			d.stats.peersTopicCap.Add(1)
			return false
		}
		st.dropPeerLocked(v)
		d.stats.peersEvicted.Add(1)
	}
	st.peers.add(id, src)
	return true
}

// dropPeerLocked forgets a reported peer. Caller holds st.mu.
func (st *topicState) dropPeerLocked(id peerID) {
	delete(st.found, id)
	st.peers.remove(id)
}
