// Headless p2p-media-loader viewers for bench/capacity.py: each one is the
// hand-made peer of p2pml_peer.js (the tracker protocol and data-channel
// commands a p2p-media-loader 2.3 page speaks) over node-datachannel's
// RTCPeerConnection, announcing in one swarm on the seeder's tracker and
// taking every segment from the peer that answers, by its id, as a player
// does. Chromium itself would take the cores the seeder needs.
//
//   node --experimental-websocket bridge/js/tools/p2pml_viewers.mjs CONFIG.json
//
// CONFIG: { tracker, info_hash, segments: [{id, size}], viewers, seg_s,
// ahead, spread_s }. Playback starts when segment 0 is in and runs in real
// time; a viewer asks for no more than `ahead` segments beyond the playhead.
// Prints one JSON line: per viewer, its start time, stalls, segments and
// bytes fetched, and error.

import { readFileSync } from 'node:fs'
import { RTCPeerConnection } from 'node-datachannel/polyfill'
import { now, play, runAll } from './playback.mjs'

globalThis.window = globalThis
globalThis.RTCPeerConnection = RTCPeerConnection
if (typeof WebSocket !== 'function') throw new Error('no WebSocket: run node with --experimental-websocket (Node.js 20)')
await import('./p2pml_peer.js')

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'))

await runAll(cfg, async n => {
  const out = { stalls: 0, stalled_s: 0, error: null, fetched: 0, bytes: 0 }
  const t0 = now()
  let i = null
  try {
    // One 20-character ASCII id per viewer, as the library makes them.
    i = await window.rawPeers.connect(cfg.tracker, cfg.info_hash, `-CAP01-${n}`.padEnd(20, '-').slice(0, 20))
    await play(cfg, out, t0, async (seg, k) => {
      const got = await window.rawPeers.fetchSegments(i, [seg.id], k, 30000)
      if (got.sizes[0] !== seg.size) throw new Error(`segment ${seg.id}: ${got.sizes[0]} bytes, expected ${seg.size}`)
      return got.bytes
    })
  } catch (e) {
    out.error = String(e?.message ?? e)
  } finally {
    if (i !== null) window.rawPeers.close(i)
  }
  return out
})
