// peer.mjs: one node of the third-party BEP 5 implementation bittorrent-dht
// (npm, v11.0.12), driven by interop_test.go through JSON lines.
//
// Usage: node peer.mjs BOOTSTRAP_HOST:PORT [MAX_LIFETIME_MS]
//
// The node binds 127.0.0.1 and knows exactly one bootstrap node, which must
// be a loopback address (bittorrent-dht would otherwise bootstrap from the
// public mainline routers). As a second safety net, the UDP socket refuses
// to send anything to a non-loopback address (a "violation" event, counted
// in "stats"), and host names are never resolved.
//
// stdin, one JSON object per line:
//   {"cmd":"lookup","infohash":HEX}            get_peers traversal
//   {"cmd":"announce","infohash":HEX,"port":N} lookup, then announce_peer
//   {"cmd":"stats"}
//   {"cmd":"quit"}                             (so does the end of stdin)
// stdout, one JSON object per line:
//   {"event":"ready","port":N,"id":HEX,"nodes":N}
//   {"event":"peer","infohash":HEX,"host":IP,"port":N,"from":{"host":IP,"port":N}|null}
//      (from is null when the peer came from this node's own store)
//   {"event":"lookup_done","infohash":HEX,"visited":N,"error":STR|null}
//   {"event":"announced","infohash":HEX,"port":N,"stored":N,"error":STR|null}
//   {"event":"stats","nodes":N,"ports":[N...],"violations":N}
//      (ports: the routing table's nodes)
//   {"event":"violation","address":STR,"port":N}
//   {"event":"warning","message":STR}
//   {"event":"fatal","message":STR}                     (then exit 1)
import dgram from 'node:dgram'
import net from 'node:net'
import readline from 'node:readline'
import DHT from 'bittorrent-dht'

function out (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function fatal (message) {
  out({ event: 'fatal', message: String(message) })
  process.exit(1)
}

function isLoopbackIPv4 (host) {
  return typeof host === 'string' && net.isIPv4(host) && host.startsWith('127.')
}

const [bootstrap, lifetimeArg] = process.argv.slice(2)
if (!bootstrap) fatal('usage: node peer.mjs BOOTSTRAP_HOST:PORT [MAX_LIFETIME_MS]')
const bootHost = bootstrap.slice(0, bootstrap.lastIndexOf(':'))
const bootPort = Number(bootstrap.slice(bootstrap.lastIndexOf(':') + 1))
if (!isLoopbackIPv4(bootHost) || !Number.isInteger(bootPort) || bootPort < 1 || bootPort > 65535) {
  fatal(`bootstrap ${bootstrap} is not a loopback IPv4 host:port`)
}

// Never outlive the test, even if it is killed without closing our stdin.
const lifetime = Number(lifetimeArg || 60000)
setTimeout(() => fatal(`max lifetime ${lifetime} ms reached`), lifetime).unref()

// The UDP socket, with a send guard: k-rpc-socket calls
// socket.send(buf, offset, length, port, address, cb).
let violations = 0
const socket = dgram.createSocket('udp4')
const send = socket.send.bind(socket)
socket.send = (...args) => {
  const port = args.length >= 5 ? args[3] : args[1]
  const address = args.length >= 5 ? args[4] : args[2]
  if (!isLoopbackIPv4(address)) {
    violations++
    out({ event: 'violation', address: String(address), port })
    const cb = args[args.length - 1]
    if (typeof cb === 'function') process.nextTick(cb, new Error(`refusing to send to non-loopback ${address}`))
    return
  }
  return send(...args)
}

const dht = new DHT({
  socket, // reaches k-rpc-socket through k-rpc
  // k-rpc-socket resolves host names (DNS) before querying; claim every
  // host is an IP so that names go straight to the send guard instead.
  isIP: () => true,
  bootstrap: [`${bootHost}:${bootPort}`], // never the public routers
  host: '127.0.0.1', // our own announces are stored as 127.0.0.1
  timeout: 1000 // k-rpc-socket query timeout (default 2000 ms)
})
// Bind in this tick, before bittorrent-dht's bootstrap (next tick) sends
// anything: an unbound dgram socket would bind to 0.0.0.0 on its first send.
dht.listen(0, '127.0.0.1')

dht.on('warning', err => out({ event: 'warning', message: String(err && err.message) }))
dht.on('error', err => fatal(err && err.message))
dht.on('peer', (peer, infoHash, from) => {
  out({
    event: 'peer',
    infohash: Buffer.from(infoHash).toString('hex'),
    host: peer.host,
    port: peer.port,
    from: from ? { host: from.address || from.host, port: from.port } : null
  })
})

let listening = false
let ready = false
function maybeReady () {
  if (!listening || !ready) return
  const addr = dht.address()
  if (addr.address !== '127.0.0.1') fatal(`bound to ${addr.address}, not 127.0.0.1`)
  out({ event: 'ready', port: addr.port, id: dht.nodeId.toString('hex'), nodes: dht.nodes.count() })
}
dht.once('listening', () => { listening = true; maybeReady() })
dht.once('ready', () => { ready = true; maybeReady() })

function infohash (cmd) {
  if (typeof cmd.infohash !== 'string' || !/^[0-9a-f]{40}$/.test(cmd.infohash)) {
    throw new Error(`bad infohash ${cmd.infohash}`)
  }
  return Buffer.from(cmd.infohash, 'hex')
}

let quitting = false
function quit () {
  if (quitting) return
  quitting = true
  dht.destroy(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', line => {
  if (!line.trim()) return
  let cmd
  try {
    cmd = JSON.parse(line)
    switch (cmd.cmd) {
      case 'lookup': {
        const ih = infohash(cmd)
        dht.lookup(ih, (err, visited) => {
          out({ event: 'lookup_done', infohash: cmd.infohash, visited: visited || 0, error: err ? err.message : null })
        })
        break
      }
      case 'announce': {
        const ih = infohash(cmd)
        if (!Number.isInteger(cmd.port) || cmd.port < 1 || cmd.port > 65535) throw new Error(`bad port ${cmd.port}`)
        dht.announce(ih, cmd.port, (err, stored) => {
          out({ event: 'announced', infohash: cmd.infohash, port: cmd.port, stored: stored || 0, error: err ? err.message : null })
        })
        break
      }
      case 'stats':
        out({ event: 'stats', nodes: dht.nodes.count(), ports: dht.nodes.toArray().map(n => n.port), violations })
        break
      case 'quit':
        quit()
        break
      default:
        throw new Error(`unknown command ${cmd.cmd}`)
    }
  } catch (err) {
    fatal(`${err.message} (line ${JSON.stringify(line)})`)
  }
})
rl.on('close', quit)
