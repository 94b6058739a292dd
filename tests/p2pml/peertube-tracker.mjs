// PeerTube's private WebTorrent tracker, for the tests: the server PeerTube
// runs (@peertube/bittorrent-tracker-server) behind the filter PeerTube puts
// in front of it (server/core/controllers/tracker.ts), at /tracker/socket.
//
//   node peertube-tracker.mjs --video JSON [--video JSON …] [--reject-too-many]
//
// Each JSON is {"playlistUrl": …, "files": N, "audioOnly": bool,
// "generation": "fork" | "2.2"}: the instance computes the info_hashes its
// viewers may use from these, as PeerTube's server does, and lets no other
// in. As PeerTube does, an unknown info_hash blocks the address for three
// minutes (its socket is closed, later upgrades get 403), and with
// --reject-too-many more than 15 announces (answers included) per address
// and info_hash in 5 minutes are refused.
//
// A line `videos JSON-ARRAY` on stdin replaces the videos, as an instance
// that regenerated a playlist recomputes its info_hashes; the new ones are
// printed again (`allowed <hex>`, then `allowed-end`).
//
// Prints `allowed <hex>` for each published info_hash, then
// `listening <port>`, then one JSON line per announce the filter saw:
// {"ip", "info_hash" (hex), "peer_id", "event", "offers", "answer",
//  "accepted", "reason"}. Runs until stdin closes.
import http from 'node:http'
import crypto from 'node:crypto'
import { WebSocketServer } from 'ws'
import { Server } from '@peertube/bittorrent-tracker-server'

const BLOCK_MS = 3 * 60 * 1000
const WINDOW_MS = 5 * 60 * 1000
const PER_IP_INFOHASH = 15

const out = (line) => process.stdout.write(line + '\n')
process.stdout.on('error', () => process.exit(0))

// PeerTube's VideoStreamingPlaylistModel.buildP2PMediaLoaderInfoHashes,
// ≤ 7.0 (SHA-1 of "2" + url + "+V" + i) and 7.1–8.x (the hex of Base64 of
// MD5 bytes 1..15 of "v2-" + url + "-main-" + i, plus secondary-0).
function published (video) {
  const hashes = []
  for (let i = 0; i < video.files; i++) {
    if (video.generation === 'fork') {
      hashes.push(crypto.createHash('sha1').update(`2${video.playlistUrl}+V${i}`).digest('hex'))
    } else {
      hashes.push(v2(`v2-${video.playlistUrl}-main-${i}`))
    }
  }
  if (video.generation !== 'fork' && video.audioOnly) hashes.push(v2(`v2-${video.playlistUrl}-secondary-0`))
  return hashes
}
function v2 (input) {
  const md5 = crypto.createHash('md5').update(input).digest()
  return Buffer.from(md5.subarray(1).toString('base64'), 'utf-8').toString('hex')
}

const videos = []
for (let i = 0; i < process.argv.length; i++) {
  if (process.argv[i] === '--video') videos.push(JSON.parse(process.argv[i + 1]))
}
let allowed = new Set(videos.flatMap(published))
for (const h of allowed) out(`allowed ${h}`)
const rejectTooMany = process.argv.includes('--reject-too-many')

const blocked = new Map()
let perIpInfohash = new Map()
setInterval(() => { perIpInfohash = new Map() }, WINDOW_MS).unref()

const tracker = new Server({
  http: false,
  udp: false,
  ws: false,
  filter (infoHash, params, cb) {
    const ip = params.ip
    const key = `${ip}-${infoHash}`
    perIpInfohash.set(key, (perIpInfohash.get(key) ?? 0) + 1)
    const entry = {
      ip,
      info_hash: infoHash,
      // Hex by now; peers' ids are printable text.
      peer_id: params.peer_id ? Buffer.from(params.peer_id, 'hex').toString('latin1') : null,
      event: params.event ?? null,
      offers: Array.isArray(params.offers) ? params.offers.length : 0,
      answer: !!params.answer,
    }
    const refuse = (reason) => {
      out(JSON.stringify({ ...entry, accepted: false, reason }))
      cb(new Error(reason))
    }
    if (rejectTooMany && perIpInfohash.get(key) > PER_IP_INFOHASH) {
      return refuse(`Too many requests (${perIpInfohash.get(key)} of ip ${ip} for torrent ${infoHash}`)
    }
    if (!allowed.has(infoHash)) {
      refuse(`Unknown infoHash ${infoHash} requested by ip ${ip}`)
      if (params.type === 'ws') {
        blocked.set(ip, Date.now() + BLOCK_MS)
        setTimeout(() => params.socket.close(), 0)
      }
      return
    }
    out(JSON.stringify({ ...entry, accepted: true }))
    cb()
  },
})
tracker.on('warning', (err) => process.stderr.write(`tracker warning: ${err?.message ?? err}\n`))
tracker.on('error', (err) => process.stderr.write(`tracker error: ${err?.message ?? err}\n`))

const server = http.createServer((_req, res) => {
  res.writeHead(404)
  res.end()
})
const wss = new WebSocketServer({ noServer: true, clientTracking: false })
server.on('upgrade', (request, socket, head) => {
  const ip = request.socket.remoteAddress
  if ((blocked.get(ip) ?? 0) > Date.now()) {
    socket.write('HTTP/1.1 403 Forbidden\r\n\r\n')
    socket.destroy()
    return
  }
  if (request.url !== '/tracker/socket') {
    socket.destroy()
    return
  }
  wss.handleUpgrade(request, socket, head, (ws) => {
    ws.ip = ip
    tracker.onWebSocketConnection(ws)
  })
})
server.listen(0, '127.0.0.1', () => out(`listening ${server.address().port}`))

const stop = () => {
  server.close()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.stdin.on('end', stop)
process.stdin.on('close', stop)
let pending = ''
process.stdin.on('data', (chunk) => {
  pending += chunk.toString()
  let nl
  while ((nl = pending.indexOf('\n')) >= 0) {
    const line = pending.slice(0, nl).trim()
    pending = pending.slice(nl + 1)
    if (line.startsWith('videos ')) {
      allowed = new Set(JSON.parse(line.slice(7)).flatMap(published))
      for (const h of allowed) out(`allowed ${h}`)
      out('allowed-end')
    }
  }
})
