package udpmux

import (
	"math/bits"
	"net/netip"
	"sync"
)

// maxGSOBytes bounds one segmented send (the largest UDP payload, less
// room for the IPv6 header).
const maxGSOBytes = 65000

// writeBatch sends msgs to one address (see Conn.WriteBatch).
func (m *Mux) writeBatch(msgs [][]byte, to netip.AddrPort) (int, error) {
	sent := 0
	for len(msgs) > 0 {
		k := 1
		if haveOffload && !m.noGSO.Load() {
			k = gsoRun(msgs)
		}
		if k == 1 {
			if _, err := m.conn.WriteToUDPAddrPort(msgs[0], to); err != nil {
				return sent, err
			}
		} else if err := m.writeGSO(msgs[:k], to); err != nil {
			return sent, err
		}
		sent += k
		msgs = msgs[k:]
	}
	return sent, nil
}

// gsoRun returns how many of msgs, from the first, one segmented send can
// carry: datagrams the size of the first, the last of them possibly
// shorter, within maxGSOSegments and maxGSOBytes.
func gsoRun(msgs [][]byte) int {
	seg := len(msgs[0])
	if seg == 0 {
		return 1
	}
	total, k := 0, 0
	for k < len(msgs) && k < maxGSOSegments {
		l := len(msgs[k])
		if l > seg || l == 0 || total+l > maxGSOBytes {
			break
		}
		total += l
		k++
		if l < seg {
			break // a shorter datagram ends the run
		}
	}
	return max(k, 1)
}

var gsoBufs = sync.Pool{New: func() any { b := make([]byte, 0, maxGSOBytes); return &b }}

// writeGSO sends msgs (a gsoRun) in one UDP_SEGMENT send. When the kernel
// refuses it, segmentation is switched off for the socket and msgs go one
// by one.
func (m *Mux) writeGSO(msgs [][]byte, to netip.AddrPort) error {
	if m.seg != nil {
		err := m.seg.sendSegments(msgs, to)
		if err == nil {
			return nil
		}
		if err != errNoSegSend {
			return m.writeEach(msgs, to)
		}
	}
	bp := gsoBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	for _, b := range msgs {
		buf = append(buf, b...)
	}
	var oobBuf [64]byte
	oob := gsoOOB(oobBuf[:], len(msgs[0]))
	_, _, err := m.conn.WriteMsgUDPAddrPort(buf, oob, to)
	*bp = buf[:0]
	gsoBufs.Put(bp)
	if err == nil {
		return nil
	}
	return m.writeEach(msgs, to)
}

// writeEach sends msgs one by one after a segmented send failed; when the
// first goes, the kernel refuses segmentation, which is switched off for
// the socket.
func (m *Mux) writeEach(msgs [][]byte, to netip.AddrPort) error {
	for i, b := range msgs {
		if _, err := m.conn.WriteToUDPAddrPort(b, to); err != nil {
			return err
		}
		if i == 0 {
			m.noGSO.Store(true) // plain sends work: the kernel refuses GSO
		}
	}
	return nil
}

// received datagrams, pooled by power-of-two size class from 2 KiB (DHT
// messages, uTP packets of 1 400 bytes) to 64 KiB
var recvPools [6]sync.Pool

const minPooled = 2048

func recvClass(n int) int {
	if n <= minPooled {
		return 0
	}
	return bits.Len(uint(n-1)) - 11
}

// newPacket copies b into a pooled packet.
func newPacket(b []byte, from netip.AddrPort) *packet {
	k := recvClass(len(b))
	p, _ := recvPools[k].Get().(*packet)
	if p == nil {
		p = &packet{data: make([]byte, 0, minPooled<<k)}
	}
	p.data = append(p.data[:0], b...)
	p.from = from
	return p
}

// free returns p to its pool.
func (p *packet) free() {
	recvPools[recvClass(cap(p.data))].Put(p)
}
