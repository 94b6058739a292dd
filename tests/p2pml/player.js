// The test player: stock hls.js with stock p2p-media-loader (the import map
// in player.html picks 2.3.1 or 2.2.2). Nothing of either library is
// changed or wrapped; the page only configures them and records what their
// public events report, in `window.p2pmlTest`, for the tests to read.
//
// Query parameters (all but `manifest` optional):
//   manifest   the multivariant (or media) playlist URL
//   tracker    a tracker URL, repeatable → core `announceTrackers`; none
//              means no tracker at all, never the library's public defaults
//   http       core `simultaneousHttpDownloads` (library default: 2)
//   swarmId    core `swarmId`
//   level      pin hls.js to this level index (levels sorted by bitrate)
//   core       JSON object merged over the core config (any p2pml key)
//   hls        JSON object merged over the hls.js config
//   p2pml      `2.2` or `2.3` (read by player.html)
//   peertubeSha256  a segments-sha256.json URL: validate every segment with
//              PeerTube 8.x's SegmentValidator, as its player does
//   debug      `debug` namespaces, e.g. `p2pml-core:*` (read by player.html)
import Hls from 'hls.js'
import { HlsJsP2PEngine } from 'p2p-media-loader-hlsjs'

const started = performance.now()
const since = () => Math.round(performance.now() - started)
const message = (e) => (e === undefined ? undefined : String(e?.message ?? e))

const test = {
  version: new URLSearchParams(location.search).get('p2pml') === '2.2' ? '2.2' : '2.3',
  hlsVersion: Hls.version,
  ready: false,
  setupError: null,
  config: null,
  currentTime: 0,
  paused: true,
  ended: false,
  readyState: 0,
  level: null,
  // One entry per `onSegmentLoaded`: the source and peer of the attempt that
  // completed the segment. A segment can be resumed from another source
  // (the request keeps its bytes and asks the next source for the rest), so
  // `bytes` is the segment's length, not what that source sent: per-source
  // byte totals are `bytesFromHttp`/`bytesFromP2P`, from the chunk events.
  segments: [],
  // Every download attempt started (`onSegmentStart`): HTTP attempts are the
  // requests the CDN sees for segments.
  starts: [],
  httpRequests: 0,
  p2pRequests: 0,
  bytesFromHttp: 0,
  bytesFromP2P: 0,
  bytesFromPeer: {},
  bytesUploaded: 0,
  bytesUploadedToPeer: {},
  peersConnected: [],
  peers: [],
  aborts: [],
  errors: [],
  trackerErrors: [],
  trackerWarnings: [],
  // hls.js's own view: each fragment it received, whoever loaded it.
  fragments: [],
  // PeerTube's validator's answers, with ?peertubeSha256=.
  validations: { ok: 0, mismatch: [], unknown: [] },
  snapshot () {
    const { snapshot, ...rest } = test
    return JSON.parse(JSON.stringify({ ...rest, ...playback() }))
  },
}
window.p2pmlTest = test

const video = document.getElementById('video')
function playback () {
  return {
    currentTime: video.currentTime,
    paused: video.paused,
    ended: video.ended,
    readyState: video.readyState,
  }
}
for (const e of ['timeupdate', 'playing', 'pause', 'ended', 'waiting']) {
  video.addEventListener(e, () => Object.assign(test, playback()))
}

const range = (r) => (r ? { start: r.start, end: r.end } : null)
// Loads in flight by URL, from `onSegmentStart`: `onSegmentLoaded` names
// only the URL, so its byte range (EXT-X-BYTERANGE segments share a URL)
// is the started one of that URL whose length matches.
const inFlight = new Map()
function takeStarted (url, bytes) {
  const list = inFlight.get(url) ?? []
  let i = list.findIndex((s) => s.byteRange && s.byteRange.end - s.byteRange.start + 1 === bytes)
  if (i < 0) i = list.findIndex((s) => !s.byteRange)
  if (i < 0) i = 0
  const [s] = list.splice(i, 1)
  if (list.length === 0) inFlight.delete(url)
  return s
}

function listen (engine) {
  engine.addEventListener('onSegmentStart', ({ segment, downloadSource, peerId }) => {
    const entry = { url: segment.url, byteRange: range(segment.byteRange), externalId: segment.externalId, downloadSource, peerId: peerId ?? null, at: since() }
    test.starts.push(entry)
    if (downloadSource === 'http') test.httpRequests++
    else test.p2pRequests++
    const list = inFlight.get(segment.url) ?? []
    // A retry of the same segment replaces the earlier attempt.
    const same = list.findIndex((s) => s.externalId === entry.externalId)
    if (same >= 0) list.splice(same, 1)
    list.push(entry)
    inFlight.set(segment.url, list)
  })
  engine.addEventListener('onSegmentLoaded', ({ segmentUrl, bytesLength, downloadSource, peerId, streamType }) => {
    const s = takeStarted(segmentUrl, bytesLength)
    test.segments.push({
      url: segmentUrl,
      byteRange: s?.byteRange ?? null,
      externalId: s?.externalId ?? null,
      downloadSource,
      peerId: peerId ?? null,
      bytes: bytesLength,
      streamType,
      at: since(),
    })
  })
  engine.addEventListener('onSegmentAbort', ({ segment, downloadSource, peerId, streamType }) => {
    test.aborts.push({ url: segment.url, byteRange: range(segment.byteRange), downloadSource: downloadSource ?? null, peerId: peerId ?? null, streamType, at: since() })
  })
  engine.addEventListener('onSegmentError', ({ segment, error, downloadSource, peerId, streamType }) => {
    test.errors.push({ kind: 'segment', url: segment.url, byteRange: range(segment.byteRange), downloadSource, peerId: peerId ?? null, streamType, type: error?.type, message: message(error?.message), at: since() })
  })
  engine.addEventListener('onChunkDownloaded', (bytes, downloadSource, peerId) => {
    if (downloadSource === 'http') test.bytesFromHttp += bytes
    else {
      test.bytesFromP2P += bytes
      test.bytesFromPeer[peerId] = (test.bytesFromPeer[peerId] ?? 0) + bytes
    }
  })
  engine.addEventListener('onChunkUploaded', (bytes, peerId) => {
    test.bytesUploaded += bytes
    test.bytesUploadedToPeer[peerId] = (test.bytesUploadedToPeer[peerId] ?? 0) + bytes
  })
  engine.addEventListener('onPeerConnect', ({ peerId, streamType }) => {
    test.peers.push({ peerId, streamType, connectedAt: since(), closedAt: null })
    if (!test.peersConnected.includes(peerId)) test.peersConnected.push(peerId)
  })
  engine.addEventListener('onPeerClose', ({ peerId, streamType }) => {
    const p = test.peers.findLast((p) => p.peerId === peerId && p.streamType === streamType && p.closedAt === null)
    if (p) p.closedAt = since()
    if (!test.peers.some((p) => p.peerId === peerId && p.closedAt === null)) {
      test.peersConnected = test.peersConnected.filter((id) => id !== peerId)
    }
  })
  engine.addEventListener('onPeerError', ({ peerId, streamType, error }) => {
    test.errors.push({ kind: 'peer', peerId, streamType, message: message(error), at: since() })
  })
  engine.addEventListener('onTrackerError', ({ streamType, error }) => {
    test.trackerErrors.push({ streamType, message: message(error), at: since() })
  })
  engine.addEventListener('onTrackerWarning', ({ streamType, warning }) => {
    test.trackerWarnings.push({ streamType, message: message(warning), at: since() })
  })
}

// PeerTube 8.x's SegmentValidator (client/src/standalone/player/src/shared/
// p2p-media-loader/segment-validator.ts), bound as its player binds it to
// `validateP2PSegment` and `validateHTTPSegment`. Its answers are kept as
// they are: nothing for a match, `true` for other bytes (which p2p-media-
// loader 2.2 then accepts), `false` for a file or range the JSON lacks.
function peertubeValidator (sha256Url) {
  let json = null
  const load = () => (json = fetch(sha256Url).then((r) => r.json()).catch(() => ({})))
  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
  const validate = async (url, byteRange, data, retry = 1) => {
    if (!json) load()
    const filename = url.split('?')[0].split('/').pop()
    const value = (await json)[filename]
    if (!value && retry > 10) {
      test.validations.unknown.push({ url, byteRange: range(byteRange), at: since() })
      return false
    }
    if (!value) {
      await wait(500)
      load()
      return validate(url, byteRange, data, retry + 1)
    }
    const expected = typeof value === 'string' ? value : value[byteRange.start + '-' + byteRange.end]
    if (expected === undefined) {
      test.validations.unknown.push({ url, byteRange: range(byteRange), at: since() })
      return false
    }
    const digest = await crypto.subtle.digest('SHA-256', data)
    const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('')
    if (hex !== expected) {
      test.validations.mismatch.push({ url, byteRange: range(byteRange), at: since() })
      return true
    }
    test.validations.ok++
  }
  return validate
}

function json (params, name) {
  const text = params.get(name)
  if (!text) return {}
  const value = JSON.parse(text)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`?${name}= must be a JSON object`)
  }
  return value
}

try {
  const params = new URLSearchParams(location.search)
  const manifest = params.get('manifest')
  if (!manifest) throw new Error('no ?manifest=')
  const core = {
    announceTrackers: params.getAll('tracker'),
    // Loopback host candidates only: never a public STUN server.
    rtcConfig: { iceServers: [] },
    ...json(params, 'core'),
  }
  if (params.has('http')) core.simultaneousHttpDownloads = Number(params.get('http'))
  if (params.has('swarmId')) core.swarmId = params.get('swarmId')
  if (params.has('peertubeSha256')) {
    const validate = peertubeValidator(params.get('peertubeSha256'))
    core.validateP2PSegment = validate
    core.validateHTTPSegment = validate
  }
  const level = params.has('level') ? Number(params.get('level')) : null
  const hlsConfig = {
    ...(level === null ? {} : { startLevel: level }),
    ...json(params, 'hls'),
  }
  test.config = { manifest, core, hls: hlsConfig, level }

  const HlsWithP2P = HlsJsP2PEngine.injectMixin(Hls)
  if (!HlsWithP2P.isSupported()) throw new Error('hls.js is not supported here (no MSE)')
  const hls = new HlsWithP2P({
    ...hlsConfig,
    p2p: {
      core,
      onHlsJsCreated (h) {
        listen(h.p2pEngine)
      },
    },
  })
  hls.on(Hls.Events.ERROR, (_e, d) => {
    test.errors.push({ kind: 'hls', type: d.type, details: d.details, fatal: !!d.fatal, url: d.frag?.url ?? d.url ?? null, message: message(d.error), at: since() })
  })
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    // Manual level: both players of a test stay in the same swarm.
    if (level !== null) hls.loadLevel = level
  })
  hls.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => {
    test.level = d.level
  })
  hls.on(Hls.Events.FRAG_LOADED, (_e, d) => {
    test.fragments.push({ url: d.frag.url, byteRange: d.frag.byteRange?.length ? { start: d.frag.byteRange[0], end: d.frag.byteRange[1] - 1 } : null, level: d.frag.level, sn: d.frag.sn, bytes: d.payload?.byteLength ?? null, at: since() })
  })
  Object.assign(window, { hls, video })
  hls.loadSource(manifest)
  hls.attachMedia(video)
  video.muted = true
  video.play().catch((e) => test.errors.push({ kind: 'play', message: message(e), at: since() }))
  test.ready = true
} catch (e) {
  test.setupError = message(e) + (e?.stack ? `\n${e.stack}` : '')
}
