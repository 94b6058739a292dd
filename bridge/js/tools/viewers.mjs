// Headless viewers: each one is the browser client of bridge/js (its
// Node.js build, `npm run build:node`), with a js-libp2p node of its own
// dialing daemons over WebRTC-direct (node-datachannel under @libp2p/webrtc),
// fetching each segment by CID with every block checked and a receipt
// signed for it, as a browser does. Chromium itself would take the cores the
// daemon needs. bench/capacity.py plays them in real time;
// tests/webrtc_churn.rs runs them flat out.
//
//   node bridge/js/tools/viewers.mjs CONFIG.json
//
// CONFIG: { addrs, video, segments: [{cid, size}], viewers, seg_s, ahead,
// spread_s, dial_tries? }. Playback starts when segment 0 is in and runs in real time;
// a viewer fetches no more than `ahead` segments beyond the playhead
// (seg_s 0: no pacing). Prints one JSON line: per viewer, its start time,
// stalls, blocks asked again, segments and bytes fetched, and error.

import { readFileSync } from 'node:fs'

// js-libp2p uses Promise.withResolvers (Node.js 22); Debian's node is 20.
Promise.withResolvers ??= function () {
  let resolve, reject
  const promise = new this((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}
const { SwarmseedClient } = await import('../dist/node/client.js')

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const now = () => performance.now() / 1000

async function viewer (delay) {
  await sleep(delay * 1000)
  const out = { stalls: 0, stalled_s: 0, error: null, block_errors: [], fetched: 0, bytes: 0 }
  const t0 = now()
  let client
  try {
    // No STUN: everything is on loopback.
    client = await SwarmseedClient.create({ iceServers: [] })
    // A block asked again: what it cost is the stall it may cause.
    client.addEventListener('block-error', e => {
      out.block_errors.push({ at_s: +(now() - t0).toFixed(2), error: e.detail.error })
    })
    // A dial that fails is an error of its own, unless the config allows
    // more tries (the tests that are about what follows the dial).
    for (let tries = cfg.dial_tries ?? 1; ; tries--) {
      const dialed = await client.connect(cfg.addrs)
      if (dialed.some(d => d.error === undefined)) break
      if (tries <= 1) throw new Error(`dial: ${JSON.stringify(dialed)}`)
      out.redials = (out.redials ?? 0) + 1
    }
    let started = null
    for (const [i, seg] of cfg.segments.entries()) {
      if (started !== null) {
        const wait = started + (i - cfg.ahead) * cfg.seg_s - now()
        if (wait > 0) await sleep(wait * 1000)
      }
      const got = await client.fetchFile(seg.cid, { size: seg.size, video: cfg.video })
      out.fetched++
      out.bytes += got.length
      const t = now()
      if (started === null) {
        started = t
        out.startup_s = t - t0
      } else if (t > started + i * cfg.seg_s) {
        out.stalls++
        out.stalled_s += t - (started + i * cfg.seg_s)
      }
    }
    await client.flushReceipts()
  } catch (e) {
    out.error = String(e?.message ?? e)
  } finally {
    await client?.stop().catch(() => {})
  }
  return out
}

// The same spread of starts as the Python players, from a fixed seed.
let seed = cfg.viewers
const random = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
const results = await Promise.all(Array.from({ length: cfg.viewers }, () => viewer(random() * cfg.spread_s)))
process.stdout.write(JSON.stringify(results) + '\n')
process.exit(0)
