/**
 * An hls.js loader that takes segments from swarmseed daemons.
 *
 * A segment (or init section, or byte range) is fetched from the daemons
 * through a `SwarmseedClient` only when its CID is trusted (DESIGN §3):
 *
 * 1. its URI names the CID (`ipfs://CID`, or `…/ipfs/CID` on any host);
 * 2. a CID map names it, signed by a key in `trustedPublishers` (the
 *    signature is checked with the key inside the publisher's peer id);
 * 3. a CID map named by the master playlist
 *    (`#EXT-X-SESSION-DATA:DATA-ID="io.swarmseed.cidmap",URI="…"`) and served
 *    from the master's own origin: trusted as the origin is.
 *
 * Anything else, and anything the daemons do not deliver within
 * `peerTimeoutMs`, comes from the CDN through hls.js's own loader. Every
 * byte taken from a daemon is checked against its CID by the client; a
 * segment with a trusted CID that comes from the CDN instead is checked
 * against that CID here, and refused (hls.js sees a load error) when it
 * does not match.
 *
 * hls.js is not bundled: the page passes its `Hls` class, whose
 * `DefaultConfig.loader` does the HTTP work.
 */
import type {
  FragmentLoaderContext,
  HlsConfig,
  Loader,
  LoaderCallbacks,
  LoaderConfiguration,
  LoaderContext,
  LoaderResponse,
  LoaderStats,
  NullableNetworkDetails
} from 'hls.js'
import { peerIdFromString } from '@libp2p/peer-id'

import type { SwarmseedClient } from './client.js'
import { fileCid } from './unixfs.js'
import { parseCid } from './verify.js'

/** The session-data id that names a CID map in master playlists. */
export const SESSION_DATA_ID = 'io.swarmseed.cidmap'

/** A CID map as `daemon/src/cidmap.rs` writes it. */
export interface CidMap {
  v: number
  video: string
  url: string
  created_ms: number
  renditions: Array<{ playlist: string, segments: Array<{ key: string, cid: string, size: number }> }>
  publisher?: string
  signature?: string
}

export interface LoaderOptions {
  client: SwarmseedClient
  /** Peer ids whose signed CID maps are trusted. */
  trustedPublishers?: string[]
  /** CID maps (objects, or URLs to fetch) handed over by the page; they must be signed by a trusted publisher. */
  cidMaps?: Array<CidMap | string>
  /** Longest wait for the daemons per segment before the CDN is asked, in ms. */
  peerTimeoutMs?: number
  /** The video named in receipts when no map names it. */
  video?: string
}

/** Segment bytes handed to hls.js, by where they came from. */
export interface LoaderStatsBySource {
  bytesFromP2p: number
  bytesFromCdn: number
  segmentsFromP2p: number
  segmentsFromCdn: number
  /** Segments with a trusted CID that the daemons did not deliver in time (or at all). */
  fallbacks: number
  /** Segments with no trusted CID, which went straight to the CDN. */
  untrusted: number
  /** Segments the CDN sent that did not match their trusted CID: refused,
   * never handed to hls.js. */
  refusedFromCdn: number
  /** Maps accepted, with the reason they are trusted. */
  maps: Array<{ url?: string, video: string, segments: number, trust: 'publisher' | 'origin' }>
  /** Maps refused, with the reason. */
  refusedMaps: Array<{ url?: string, reason: string }>
}

interface Trusted { cid: string, size?: number, video: string }

type Ctor<T extends LoaderContext> = new (config: HlsConfig) => Loader<T>

/** What `swarmseedLoader` returns: the class for hls.js and its shared state. */
export interface SwarmseedLoader extends EventTarget {
  /** Pass as `config.loader` (it handles playlists too, and reads the master's session data). */
  loader: Ctor<LoaderContext>
  stats: LoaderStatsBySource
  /** Adds a map; resolves with whether it was trusted. `masterUrl` is the playlist that named it, if any. */
  addMap: (map: CidMap | string, masterUrl?: string) => Promise<boolean>
  /**
   * For a loader used as `fLoader` only: takes the map the master playlist
   * names from hls.js's `MANIFEST_LOADED` session data.
   */
  attach: (hls: { on: (event: any, listener: (event: any, data: any) => void) => void }) => void
  /** The trusted CID of a segment URL (with hls.js's exclusive range end), if any. */
  lookup: (url: string, rangeStart?: number, rangeEnd?: number) => Trusted | undefined
}

function newStats (): LoaderStats {
  return {
    aborted: false,
    loaded: 0,
    retry: 0,
    total: 0,
    chunkCount: 0,
    bwEstimate: 0,
    loading: { start: 0, first: 0, end: 0 },
    parsing: { start: 0, end: 0 },
    buffering: { start: 0, first: 0, end: 0 }
  }
}

/** Copies `from` into `to` in place: hls.js keeps a reference to `to`. */
function copyStats (to: LoaderStats, from: LoaderStats): void {
  to.aborted = from.aborted
  to.loaded = from.loaded
  to.retry = from.retry
  to.total = from.total
  to.chunkCount = from.chunkCount
  to.bwEstimate = from.bwEstimate
  Object.assign(to.loading, from.loading)
  Object.assign(to.parsing, from.parsing)
  Object.assign(to.buffering, from.buffering)
}

function normalize (url: string, base?: string): string {
  try {
    return new URL(url, base).href
  } catch {
    return url
  }
}

function keyOf (url: string, rangeStart?: number, rangeEnd?: number): string {
  const u = normalize(url)
  if (rangeEnd !== undefined && rangeEnd > 0 && rangeStart !== undefined) {
    return `${u} bytes=${rangeStart}+${rangeEnd - rangeStart}`
  }
  return u
}

/** A CID the URI names: `ipfs://CID` or `…/ipfs/CID`. */
function cidInUri (url: string): string | undefined {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return undefined
  }
  const candidate = u.protocol === 'ipfs:'
    ? (u.hostname !== '' ? u.hostname : u.pathname.replace(/^\/+/, '').split('/')[0])
    : u.pathname.match(/\/ipfs\/([^/?#]+)\/?$/)?.[1]
  if (candidate === undefined || candidate === '') return undefined
  try {
    return parseCid(candidate).toString()
  } catch {
    return undefined
  }
}

/** The URIs of `io.swarmseed.cidmap` session data in a master playlist. */
export function sessionDataMaps (playlist: string): string[] {
  const out: string[] = []
  for (const line of playlist.split(/\r?\n/)) {
    if (!line.startsWith('#EXT-X-SESSION-DATA:')) continue
    const attrs = new Map<string, string>()
    for (const m of line.slice('#EXT-X-SESSION-DATA:'.length).matchAll(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g)) {
      attrs.set(m[1], m[2].replace(/^"|"$/g, ''))
    }
    const uri = attrs.get('URI')
    if (attrs.get('DATA-ID') === SESSION_DATA_ID && uri !== undefined && uri !== '') out.push(uri)
  }
  return out
}

function base64Decode (s: string): Uint8Array {
  const bin = atob(s)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

/**
 * The publisher whose signature the map carries, or null. The signature is
 * Ed25519 over `serde_json::to_vec` of the map without `signature`; fields
 * keep the order the daemon wrote them in, which `JSON.parse` preserves, so
 * `JSON.stringify` gives the same bytes.
 */
export async function verifyMapSignature (map: CidMap): Promise<string | null> {
  if (typeof map.publisher !== 'string' || typeof map.signature !== 'string') return null
  try {
    const { signature, ...unsigned } = map
    const key = peerIdFromString(map.publisher).publicKey
    if (key === undefined) return null
    const ok = await key.verify(new TextEncoder().encode(JSON.stringify(unsigned)), base64Decode(signature))
    return ok ? map.publisher : null
  } catch {
    return null
  }
}

/**
 * Makes the loader class for one player (or several sharing one client and
 * one set of trusted maps).
 *
 * ```js
 * const p2p = swarmseedLoader(Hls, { client, trustedPublishers: ['12D3Koo…'] })
 * const hls = new Hls({ loader: p2p.loader })
 * ```
 */
export function swarmseedLoader (Hls: { DefaultConfig: { loader: Ctor<LoaderContext> } }, opts: LoaderOptions): SwarmseedLoader {
  const Default = Hls.DefaultConfig.loader
  const trusted = new Map<string, Trusted>()
  const pending = new Set<Promise<unknown>>()
  const peerTimeoutMs = opts.peerTimeoutMs ?? 2000
  const publishers = new Set(opts.trustedPublishers ?? [])
  const events = new EventTarget()
  const stats: LoaderStatsBySource = {
    bytesFromP2p: 0,
    bytesFromCdn: 0,
    segmentsFromP2p: 0,
    segmentsFromCdn: 0,
    fallbacks: 0,
    untrusted: 0,
    refusedFromCdn: 0,
    maps: [],
    refusedMaps: []
  }
  const emit = (type: string, detail: unknown): void => { events.dispatchEvent(new CustomEvent(type, { detail })) }

  const addMapNow = async (input: CidMap | string, masterUrl?: string): Promise<boolean> => {
    const url = typeof input === 'string' ? normalize(input, masterUrl) : undefined
    const refuse = (reason: string): boolean => {
      stats.refusedMaps.push({ url, reason })
      emit('map-refused', { url, reason })
      return false
    }
    let map: CidMap
    try {
      if (url !== undefined) {
        const res = await fetch(url)
        if (!res.ok) return refuse(`HTTP ${res.status}`)
        map = await res.json()
      } else {
        map = input as CidMap
      }
    } catch (e) {
      return refuse(String(e))
    }
    if (map?.v !== 1 || !Array.isArray(map.renditions)) return refuse('malformed map')
    let trust: 'publisher' | 'origin'
    const signer = await verifyMapSignature(map)
    if (signer !== null && publishers.has(signer)) {
      trust = 'publisher'
    } else if (url !== undefined && masterUrl !== undefined &&
      new URL(url).origin === new URL(masterUrl).origin &&
      (map.signature === undefined || signer !== null)) {
      // Named by the master and served by its origin: trusted as the
      // origin is (a signature, when there is one, must still hold).
      trust = 'origin'
    } else {
      return refuse(map.signature === undefined ? 'unsigned, and not from the master playlist\'s origin' : signer === null ? 'bad signature' : `publisher ${signer} not trusted`)
    }
    let n = 0
    for (const r of map.renditions) {
      for (const s of r.segments ?? []) {
        if (typeof s.key !== 'string' || typeof s.cid !== 'string') continue
        let cid: string
        try {
          cid = parseCid(s.cid).toString()
        } catch {
          continue
        }
        const [u, range] = s.key.split(' bytes=')
        trusted.set(range === undefined ? normalize(u) : `${normalize(u)} bytes=${range}`, { cid, size: s.size, video: map.video })
        n++
      }
    }
    stats.maps.push({ url, video: map.video, segments: n, trust })
    emit('map', { url, video: map.video, segments: n, trust })
    return true
  }

  const seen = new Set<string>()
  const addMap = async (input: CidMap | string, masterUrl?: string): Promise<boolean> => {
    if (typeof input === 'string') {
      // The same map named twice (by the loader and by `attach`) counts once.
      const url = normalize(input, masterUrl)
      if (seen.has(url)) return true
      seen.add(url)
    }
    const p = addMapNow(input, masterUrl)
    pending.add(p)
    try {
      return await p
    } finally {
      pending.delete(p)
    }
  }

  const lookup = (url: string, rangeStart?: number, rangeEnd?: number): Trusted | undefined => {
    const hit = trusted.get(keyOf(url, rangeStart, rangeEnd))
    if (hit !== undefined) return hit
    const cid = cidInUri(url)
    return cid === undefined ? undefined : { cid, video: opts.video ?? '' }
  }

  for (const m of opts.cidMaps ?? []) void addMap(m)

  const attach = (hls: { on: (event: any, listener: (event: any, data: any) => void) => void }): void => {
    hls.on('hlsManifestLoaded', (_event: unknown, data: { url: string, sessionData?: Record<string, { URI?: string }> | null }) => {
      const uri = data.sessionData?.[SESSION_DATA_ID]?.URI
      if (typeof uri === 'string' && uri !== '') void addMap(uri, data.url)
    })
  }

  class SwarmseedHlsLoader implements Loader<LoaderContext> {
    context: LoaderContext | null = null
    stats: LoaderStats = newStats()
    private readonly config: HlsConfig
    private inner: Loader<LoaderContext> | null = null
    private callbacks: LoaderCallbacks<LoaderContext> | null = null
    private controller: AbortController | null = null
    private timer: ReturnType<typeof setTimeout> | undefined
    /** Bumped on every load and abort, so late answers are dropped. */
    private generation = 0

    constructor (config: HlsConfig) {
      this.config = config
    }

    load (context: LoaderContext, config: LoaderConfiguration, callbacks: LoaderCallbacks<LoaderContext>): void {
      this.abortInternal()
      const gen = ++this.generation
      this.context = context
      this.callbacks = callbacks
      // hls.js holds this object (and has set its retry count): reset it in place.
      const s = this.stats
      const retry = s.retry
      copyStats(s, newStats())
      s.retry = retry
      s.loading.start = performance.now()
      if (context.type === 'media-fragment') {
        void this.loadFragment(gen, context as FragmentLoaderContext, config)
      } else {
        this.viaCdn(gen, context, config, false)
      }
    }

    private async loadFragment (gen: number, context: FragmentLoaderContext, config: LoaderConfiguration): Promise<void> {
      let hit = lookup(context.url, context.rangeStart, context.rangeEnd)
      if (hit === undefined && pending.size > 0) {
        // A map is on its way (the master named one): wait for it, briefly.
        await Promise.race([Promise.allSettled([...pending]), sleep(peerTimeoutMs)])
        if (gen !== this.generation) return
        hit = lookup(context.url, context.rangeStart, context.rangeEnd)
      }
      if (hit === undefined) {
        stats.untrusted++
        this.viaCdn(gen, context, config, true)
        return
      }
      if (opts.client.daemons.length === 0) {
        this.fallback(gen, context, config, hit, 'no daemon connected')
        return
      }
      const controller = new AbortController()
      this.controller = controller
      this.timer = setTimeout(() => { controller.abort(new Error(`no daemon delivered within ${peerTimeoutMs} ms`)) }, peerTimeoutMs)
      let bytes: Uint8Array
      try {
        bytes = await Promise.race([
          opts.client.fetchFile(hit.cid, { size: hit.size, video: hit.video, signal: controller.signal }),
          new Promise<never>((_resolve, reject) => {
            controller.signal.addEventListener('abort', () => { reject(controller.signal.reason) }, { once: true })
          })
        ])
      } catch (e) {
        if (gen !== this.generation) return
        clearTimeout(this.timer)
        this.fallback(gen, context, config, hit, String(e))
        return
      }
      clearTimeout(this.timer)
      if (gen !== this.generation || this.callbacks === null) return
      const s = this.stats
      const now = performance.now()
      s.loading.first = Math.max(s.loading.start, now)
      s.loading.end = s.loading.first
      s.loaded = s.total = bytes.length
      s.chunkCount = 1
      const data = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
        ? bytes.buffer as ArrayBuffer
        : bytes.slice().buffer as ArrayBuffer
      stats.bytesFromP2p += bytes.length
      stats.segmentsFromP2p++
      emit('segment', { url: context.url, cid: hit.cid, bytes: bytes.length, source: 'p2p' })
      const callbacks = this.callbacks
      this.callbacks = null
      const response: LoaderResponse = { url: context.url, data, code: 200 }
      callbacks.onSuccess(response, s, context, null)
    }

    private fallback (gen: number, context: LoaderContext, config: LoaderConfiguration, hit: Trusted, reason: string): void {
      stats.fallbacks++
      emit('fallback-cdn', { url: context.url, cid: hit.cid, reason })
      this.viaCdn(gen, context, config, true, hit)
    }

    /**
     * hls.js's own loader; its stats are copied into ours, which hls.js
     * holds. With `check`, the trusted CID of the segment, the bytes reach
     * hls.js only once they match it.
     */
    private viaCdn (gen: number, context: LoaderContext, config: LoaderConfiguration, segment: boolean, check?: Trusted): void {
      if (gen !== this.generation || this.callbacks === null) return
      const start = this.stats.loading.start
      const inner = new Default(this.config)
      this.inner = inner
      const mine = this.stats
      const sync = (s: LoaderStats): LoaderStats => {
        const retry = mine.retry
        copyStats(mine, s)
        mine.retry = retry
        // Time spent waiting for the daemons counts as loading time.
        mine.loading.start = Math.min(start, s.loading.start > 0 ? s.loading.start : start)
        return mine
      }
      const live = (): LoaderCallbacks<LoaderContext> | null => gen === this.generation ? this.callbacks : null
      const wrapped: LoaderCallbacks<LoaderContext> = {
        onSuccess: async (response, s, ctx, details) => {
          if (check !== undefined) {
            const mismatch = await cdnMismatch(check, response.data)
            if (mismatch !== null) {
              const cb = live()
              if (cb === null) return
              this.callbacks = null
              stats.refusedFromCdn++
              emit('refused-cdn', { url: context.url, cid: check.cid, reason: mismatch })
              cb.onError({ code: 502, text: `the CDN's bytes ${mismatch}` }, ctx, details, sync(s))
              return
            }
          }
          const cb = live()
          if (cb === null) return
          this.callbacks = null
          if (segment) {
            const n = response.data instanceof ArrayBuffer ? response.data.byteLength : 0
            stats.bytesFromCdn += n
            stats.segmentsFromCdn++
            emit('segment', { url: context.url, bytes: n, source: 'cdn' })
          } else if (context.type === 'manifest' && typeof response.data === 'string') {
            for (const uri of sessionDataMaps(response.data)) {
              void addMap(uri, response.url !== '' ? response.url : context.url)
            }
          }
          cb.onSuccess(response, sync(s), ctx, details)
        },
        onError: (error, ctx, details, s) => {
          const cb = live()
          if (cb === null) return
          this.callbacks = null
          cb.onError(error, ctx, details, sync(s))
        },
        onTimeout: (s, ctx, details) => {
          const cb = live()
          if (cb === null) return
          this.callbacks = null
          cb.onTimeout(sync(s), ctx, details)
        }
      }
      const progress = this.callbacks?.onProgress
      // Chunks in progress events would reach hls.js before the check.
      if (progress !== undefined && check === undefined) {
        wrapped.onProgress = (s, ctx, data, details) => {
          if (live() !== null) progress(sync(s), ctx, data, details)
        }
      }
      inner.load(context, config, wrapped)
    }

    getResponseHeader (name: string): string | null {
      return this.inner?.getResponseHeader?.(name) ?? null
    }

    getCacheAge (): number | null {
      return this.inner?.getCacheAge?.() ?? null
    }

    private abortInternal (): void {
      this.generation++
      clearTimeout(this.timer)
      this.controller?.abort(new Error('aborted'))
      this.controller = null
      if (this.inner !== null) {
        this.inner.destroy()
        this.inner = null
      }
    }

    abort (): void {
      const callbacks = this.callbacks
      const context = this.context
      this.abortInternal()
      this.stats.aborted = true
      this.callbacks = null
      if (context !== null) callbacks?.onAbort?.(this.stats, context, null as NullableNetworkDetails)
    }

    destroy (): void {
      this.callbacks = null
      this.abortInternal()
      this.context = null
    }
  }

  return Object.assign(events, { loader: SwarmseedHlsLoader as Ctor<LoaderContext>, stats, addMap, attach, lookup })
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** Why CDN bytes fail the segment's trusted CID, or null when they match. */
async function cdnMismatch (want: Trusted, data: unknown): Promise<string | null> {
  if (!(data instanceof ArrayBuffer)) return 'are not binary'
  const bytes = new Uint8Array(data)
  if (want.size !== undefined && bytes.length !== want.size) {
    return `are ${bytes.length} long, not ${want.size}`
  }
  const got = await fileCid(bytes)
  return got.equals(parseCid(want.cid)) ? null : `do not match ${want.cid} (they are ${got.toString()})`
}
