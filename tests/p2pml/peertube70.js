// PeerTube 7.0's player, as far as P2P goes: the options its
// hls-options-builder.ts (v7.0.1) gives the fork's Engine, its
// SegmentValidator, and hls.js 1.5. Nothing of the libraries is changed;
// the page records what their events report in `window.ptTest`.
//
// Query parameters:
//   manifest   the video's playlistUrl (also the fork's swarmId, as in PeerTube)
//   sha256     its segmentsSha256Url
//   tracker    a WebSocket tracker, repeatable (PeerTube's trackerUrls, ws only)
//   level      pin hls.js to this level, so the page stays in one swarm
//   hls        JSON merged over the hls.js config
//   retry      keep retrying a fragment that failed (hls.js 1.5 gives up on
//              errors without an HTTP status, as the fork reports them, and
//              switches level instead)
import Hls from 'hls.js'
import { Engine, initHlsJsPlayer } from '@peertube/p2p-media-loader-hlsjs'
import { Events } from '@peertube/p2p-media-loader-core'

const started = performance.now()
const since = () => Math.round(performance.now() - started)
const message = (e) => (e === undefined ? undefined : String(e?.message ?? e))

const test = {
  hlsVersion: Hls.version,
  ready: false,
  setupError: null,
  // One entry per segment the Engine loaded: `method` "p2p" or "http".
  segments: [],
  bytes: { http: 0, p2p: 0 },
  validations: { ok: 0, failed: [] },
  peers: [],
  errors: [],
  snapshot () {
    const { snapshot, ...rest } = test
    const video = document.getElementById('video')
    return JSON.parse(JSON.stringify({ ...rest, currentTime: video.currentTime, paused: video.paused }))
  },
}
window.ptTest = test

// PeerTube 7.0's SegmentValidator (client/src/assets/player/shared/
// p2p-media-loader/segment-validator.ts): throws unless the segment's
// SHA-256 is the one its file name and byte range have in the JSON.
function segmentValidator (sha256Url) {
  let json = null
  const load = () => (json = fetch(sha256Url).then((r) => r.json()).catch(() => ({})))
  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
  const validate = async (segment, method, peerId, retry = 1) => {
    if (!json) load()
    const filename = segment.url.split('?')[0].split('/').pop()
    const value = (await json)[filename]
    if (!value && retry > 10) {
      test.validations.failed.push({ id: segment.id, method, reason: 'unknown file' })
      throw new Error(`Unknown segment name ${filename} in segment validator`)
    }
    if (!value) {
      await wait(500)
      load()
      return validate(segment, method, peerId, retry + 1)
    }
    let expected
    if (typeof value === 'string') {
      expected = value
    } else {
      const captured = /bytes=(\d+)-(\d+)/.exec(segment.range)
      expected = value[captured[1] + '-' + captured[2]]
    }
    const digest = await crypto.subtle.digest('SHA-256', segment.data)
    const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('')
    if (expected === undefined || hex !== expected) {
      test.validations.failed.push({ id: segment.id, method, peerId: peerId ?? null, range: segment.range ?? null })
      throw new Error(`Hashes does not correspond for segment ${filename}/${segment.range}`)
    }
    test.validations.ok++
  }
  return validate
}

try {
  const params = new URLSearchParams(location.search)
  const manifest = params.get('manifest')
  const sha256 = params.get('sha256')
  if (!manifest || !sha256) throw new Error('need ?manifest= and ?sha256=')
  const level = params.has('level') ? Number(params.get('level')) : null
  // hls-options-builder.ts @ v7.0.1, VOD.
  const loader = {
    trackerAnnounce: params.getAll('tracker').filter((t) => t.startsWith('ws')),
    // getRtcConfig(stunServers): the test instance lists none.
    rtcConfig: { iceServers: [] },
    simultaneousHttpDownloads: 1,
    httpFailedSegmentTimeout: 1000,
    segmentValidator: segmentValidator(sha256),
    // No redundancies: the RedundancyUrlManager keeps the URL.
    segmentUrlBuilder: (segment) => segment.url,
    useP2P: true,
    consumeOnly: false,
    requiredSegmentsPriority: 3,
    skipSegmentBuilderPriority: 1,
    cachedSegmentExpiration: 86400000,
    cachedSegmentsCount: 100,
    httpDownloadMaxPriority: 9,
    httpDownloadProbability: 0.06,
    httpDownloadProbabilitySkipIfNoPeers: true,
    p2pDownloadMaxPriority: 50,
  }
  const engine = new Engine({ loader, segments: { swarmId: manifest, forwardSegmentCount: 50 } })
  engine.on(Events.SegmentLoaded, (segment, peerId) => {
    test.segments.push({ id: segment.id, url: segment.url, range: segment.range ?? null, method: peerId ? 'p2p' : 'http', peerId: peerId ?? null, bytes: segment.data?.byteLength ?? null, at: since() })
  })
  engine.on(Events.SegmentError, (segment, error, peerId) => {
    test.errors.push({ kind: 'segment', id: segment.id, peerId: peerId ?? null, message: message(error), at: since() })
  })
  engine.on(Events.PieceBytesDownloaded, (method, _segment, bytes) => {
    test.bytes[method] = (test.bytes[method] ?? 0) + bytes
  })
  engine.on(Events.PeerConnect, (peer) => test.peers.push({ id: peer.id, at: since() }))

  const json = params.get('hls') ? JSON.parse(params.get('hls')) : {}
  const retry = params.has('retry')
    ? {
        fragLoadPolicy: {
          default: {
            maxTimeToFirstByteMs: 60000,
            maxLoadTimeMs: 120000,
            timeoutRetry: { maxNumRetry: 20, retryDelayMs: 500, maxRetryDelayMs: 2000 },
            errorRetry: { maxNumRetry: 50, retryDelayMs: 500, maxRetryDelayMs: 2000, shouldRetry: (_config, n) => n < 50 },
          },
        },
      }
    : {}
  const hls = new Hls({
    capLevelToPlayerSize: true,
    liveSyncDurationCount: 5,
    ...(level === null ? {} : { startLevel: level }),
    ...retry,
    ...json,
    loader: engine.createLoaderClass(),
  })
  const video = document.getElementById('video')
  // The video.js player PeerTube passes, as far as the fork uses it:
  // this ties the Engine's priorities to what hls.js plays.
  initHlsJsPlayer({ on: () => {}, off: () => {}, media: video }, hls)
  hls.on(Hls.Events.ERROR, (_e, d) => {
    test.errors.push({ kind: 'hls', details: d.details, fatal: !!d.fatal, at: since() })
  })
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    if (level !== null) hls.currentLevel = level
  })
  window.hls = hls
  hls.loadSource(manifest)
  hls.attachMedia(video)
  video.muted = true
  video.play().catch((e) => test.errors.push({ kind: 'play', message: message(e), at: since() }))
  test.ready = true
} catch (e) {
  test.setupError = message(e) + (e?.stack ? `\n${e.stack}` : '')
}
