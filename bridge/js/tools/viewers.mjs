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
import { now, play, runAll } from './playback.mjs'

// js-libp2p uses Promise.withResolvers (Node.js 22); Debian's node is 20.
Promise.withResolvers ??= function () {
  let resolve, reject
  const promise = new this((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}
const { SwarmseedClient } = await import('../dist/node/client.js')

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'))

await runAll(cfg, async () => {
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
    await play(cfg, out, t0, async seg => (await client.fetchFile(seg.cid, { size: seg.size, video: cfg.video })).length)
    await client.flushReceipts()
  } catch (e) {
    out.error = String(e?.message ?? e)
  } finally {
    await client?.stop().catch(() => {})
  }
  return out
})
