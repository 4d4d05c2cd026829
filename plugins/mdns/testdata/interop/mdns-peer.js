// A third-party mDNS peer for the interop tests of plugins/mdns, built on
// npm's multicast-dns. It prints one JSON object per line on stdout.
//
//   node mdns-peer.js browse  <service> <iface-ip> <ms>
//       queries PTR <service>.local and prints every instance it sees
//   node mdns-peer.js publish <service> <iface-ip> <ms> <instance> <target> <ip> <port> <txt>...
//       announces the instance and answers PTR queries for <service>.local
//
// It exits by itself after <ms> milliseconds.
'use strict'

const mdnsFactory = require('multicast-dns')

const [mode, service, ifaceIP, msArg, ...rest] = process.argv.slice(2)
const svcName = service + '.local'
const lower = (s) => String(s).toLowerCase()
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

// bind: multicast-dns would bind the interface address, which hears no multicast.
const m = mdnsFactory({ interface: ifaceIP, bind: '0.0.0.0', multicast: true, loopback: true, reuseAddr: true })
m.on('error', (err) => out({ event: 'error', error: String(err) }))
setTimeout(() => { m.destroy(); process.exit(0) }, Number(msArg) || 5000)

if (mode === 'browse') {
  m.on('response', (res, rinfo) => {
    const all = [...res.answers, ...res.additionals]
    for (const r of all) {
      if (r.type !== 'PTR' || lower(r.name) !== lower(svcName)) continue
      const inst = r.data
      const srv = all.find((x) => x.type === 'SRV' && lower(x.name) === lower(inst))
      const txt = all.find((x) => x.type === 'TXT' && lower(x.name) === lower(inst))
      const addrs = srv
        ? all.filter((x) => (x.type === 'A' || x.type === 'AAAA') && lower(x.name) === lower(srv.data.target)).map((x) => x.data)
        : []
      out({
        event: 'instance',
        instance: inst,
        port: srv ? srv.data.port : 0,
        target: srv ? srv.data.target : '',
        txt: txt ? txt.data.map((b) => b.toString()) : [],
        addrs,
        from: rinfo.address + ':' + rinfo.port
      })
    }
  })
  const query = () => m.query({ questions: [{ name: svcName, type: 'PTR' }] })
  m.on('ready', () => { out({ event: 'ready' }); query(); setTimeout(query, 1000) })
} else if (mode === 'publish') {
  const [instance, target, ip, port, ...txt] = rest
  const fqdn = instance + '.' + svcName
  const records = () => ({
    answers: [{ name: svcName, type: 'PTR', ttl: 4500, data: fqdn }],
    additionals: [
      { name: fqdn, type: 'SRV', ttl: 120, flush: true, data: { port: Number(port), target } },
      { name: fqdn, type: 'TXT', ttl: 120, flush: true, data: txt },
      { name: target, type: 'A', ttl: 120, flush: true, data: ip }
    ]
  })
  m.on('query', (q) => {
    for (const question of q.questions) {
      if (question.type === 'PTR' && lower(question.name) === lower(svcName)) {
        out({ event: 'query' })
        m.respond(records())
      }
    }
  })
  m.on('ready', () => { out({ event: 'ready' }); m.respond(records()) })
} else {
  out({ event: 'error', error: 'unknown mode ' + mode })
  process.exit(2)
}
