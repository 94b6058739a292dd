/**
 * The browser's swarmseed client: a js-libp2p node that dials daemons over
 * WebRTC-direct, fetches blocks and whole files by CID, checks every block
 * against its CID, signs receipts for what it verified, and falls back to
 * the CDN over HTTP when no daemon delivers.
 *
 * With `relay: true` it also meets other browsers: `listen(daemonAddrs)`
 * reserves a slot on a daemon's circuit relay v2 and listens for
 * private-to-private `/webrtc` connections there, and `connect()` dials such
 * `/p2p-circuit/webrtc/p2p/<browser>` addresses. The relay carries only the
 * WebRTC offer and answer; blocks then flow between the browsers directly.
 * Blocks this client verified are kept in memory (`keepBytes`) and served
 * on `/swarmseed/blocks/1.0.0` to any peer, exactly as a daemon serves them.
 *
 * The hls.js loader (`loader.ts`) builds on `fetchFile` and the events
 * this class dispatches.
 */
import { createLibp2p, type Libp2p } from 'libp2p'
import { webRTC, webRTCDirect } from '@libp2p/webrtc'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { webSockets } from '@libp2p/websockets'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Connection, PrivateKey, Stream } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'

import * as blocks from './blocks.js'
import { ReceiptSender } from './sender.js'
import { fileCid } from './unixfs.js'
import { DAG_PB, MAX_BLOCK, RAW, CHUNK, links, parseCid, verifyBlock } from './verify.js'
import { Reader } from './wire.js'
import { BlockServer, HeldBlocks } from './serve.js'
import { blockFromGateway } from './gateways.js'

export interface ClientOptions {
  /** The browser's Ed25519 identity; a fresh one when absent. */
  privateKey?: PrivateKey
  /** Longest wait for one block from one daemon, in ms. */
  blockTimeoutMs?: number
  /** Longest wait for one dial, in ms. */
  dialTimeoutMs?: number
  /** Blocks of one file asked for at once. */
  parallel?: number
  /** How long receipts wait for company before they are sent, in ms. */
  receiptLingerMs?: number
  /** Turns receipts off (they are on by default). */
  receipts?: boolean
  /**
   * Meets other browsers: adds the private-to-private `/webrtc` and circuit
   * relay v2 transports and identify, so that `listen()` can reserve a slot
   * on a daemon's relay and `connect()` can dial `/p2p-circuit/webrtc`
   * addresses. Off by default.
   */
  relay?: boolean
  /** ICE servers for `/webrtc` connections, and for WebRTC-direct ones
   * under Node.js (browsers use none for WebRTC-direct); @libp2p/webrtc's
   * public STUN servers when absent. Pass `[]` on a LAN or in tests. */
  iceServers?: RTCIceServer[]
  /** With `relay`: bytes of verified blocks kept in memory and served to
   * other peers; the oldest go first. 64 MiB by default, 0 keeps none. */
  keepBytes?: number
  /** Trustless gateways (`https://seeder.example`, whose `/ipfs/{cid}` a
   * daemon serves) to take blocks from over HTTP, each checked against its
   * CID, with receipts sent back to them. Peers and gateways are asked
   * fastest first. */
  gateways?: string[]
}

export interface FetchOptions {
  /** The video the content belongs to, named in receipts. */
  video?: string
  /** The file's size when known (a CID map gives it); checked. */
  size?: number
  /** Upper bound when the size is unknown. */
  maxSize?: number
  signal?: AbortSignal
}

/** Counters a page can show; `bytesFromP2p` counts verified block bytes. */
export interface Stats {
  bytesFromP2p: number
  bytesFromCdn: number
  blocksFromP2p: number
  filesFromP2p: number
  filesFromCdn: number
  /** Blocks whose bytes failed their CID, and so were thrown away. */
  refusedBlocks: number
  refusedBytes: number
  /** Block requests a provider turned away busy: past its per-peer limit,
   * or holding this client to one request at a time because it owes
   * receipts. */
  busyAnswers: number
  receiptsSent: number
  receiptsAccepted: number
  receiptsRefused: number
  /** Receipts that never got an answer (stream failures). */
  receiptsLost: number
  verdicts: Record<string, number>
  /** Per daemon peer id: verified bytes and refused blocks. */
  peers: Record<string, { bytes: number, refused: number }>
  /** Blocks and bytes this client served to other peers. */
  blocksServed: number
  bytesServed: number
  /** Block requests it answered with "not found". */
  blocksNotFound: number
}

/** A daemon (or, over `/webrtc`, a browser) this client can ask for blocks. */
interface Provider {
  peer: string
  addr: Multiaddr
  /** Browsers keep no receipt ledger, so their blocks earn no receipts. */
  browser: boolean
}

export class NoProviderError extends Error {
  constructor (cid: CID) {
    super(`no daemon delivered ${cid.toString()}`)
    this.name = 'NoProviderError'
  }
}

/** Stream opens per block and daemon before the next daemon is asked. */
const STREAM_TRIES = 3

/**
 * Outbound streams per protocol and connection. A finished block stream is
 * closed without waiting for the daemon's FIN_ACK, which rust-libp2p never
 * sends, so it counts as open until its close times out (about 10 s): at
 * 60 Mbit/s that is some 75 streams, past js-libp2p's default of 64.
 */
const MAX_OUTBOUND_STREAMS = 1024

export class SwarmseedClient extends EventTarget {
  readonly node: Libp2p
  readonly peerId: string
  readonly stats: Stats = {
    bytesFromP2p: 0,
    bytesFromCdn: 0,
    blocksFromP2p: 0,
    filesFromP2p: 0,
    filesFromCdn: 0,
    refusedBlocks: 0,
    refusedBytes: 0,
    busyAnswers: 0,
    receiptsSent: 0,
    receiptsAccepted: 0,
    receiptsRefused: 0,
    receiptsLost: 0,
    verdicts: {},
    peers: {},
    blocksServed: 0,
    bytesServed: 0,
    blocksNotFound: 0
  }
  /** Verified blocks by CID, served to other peers. */
  readonly held: HeldBlocks

  private providers: Provider[] = []
  /** Daemons that sent bytes failing their CID; never asked again. */
  private readonly refused = new Set<string>()
  private readonly receipts?: ReceiptSender
  private readonly opts: Required<Omit<ClientOptions, 'privateKey' | 'iceServers'>>
  private turn = 0
  /** Trustless gateways; dropped when one sends bytes that fail a CID. */
  private gateways: string[]
  /** Verified bytes per ms of each peer and gateway, smoothed. */
  private readonly speed = new Map<string, number>()

  private constructor (node: Libp2p, key: PrivateKey, opts: ClientOptions) {
    super()
    this.node = node
    this.peerId = node.peerId.toString()
    this.opts = {
      blockTimeoutMs: opts.blockTimeoutMs ?? 10_000,
      dialTimeoutMs: opts.dialTimeoutMs ?? 15_000,
      parallel: opts.parallel ?? 4,
      receiptLingerMs: opts.receiptLingerMs ?? 50,
      receipts: opts.receipts ?? true,
      relay: opts.relay ?? false,
      keepBytes: opts.keepBytes ?? 64 * 1024 * 1024,
      gateways: opts.gateways ?? []
    }
    this.gateways = [...this.opts.gateways]
    // Only a client that other browsers can reach keeps blocks to serve.
    this.held = new HeldBlocks(this.opts.relay ? this.opts.keepBytes : 0)
    if (this.opts.receipts) {
      this.receipts = new ReceiptSender({
        key,
        receiver: this.peerId,
        lingerMs: this.opts.receiptLingerMs,
        open: async (peer, protocol) => await this.open(peer, protocol),
        stats: this.stats,
        emit: (type, detail) => this.emit(type, detail)
      })
    }
  }

  static async create (opts: ClientOptions = {}): Promise<SwarmseedClient> {
    const key = opts.privateKey ?? await generateKeyPair('Ed25519')
    if (key.type !== 'Ed25519') throw new Error('receipts need an Ed25519 key')
    const relay = opts.relay ?? false
    const rtcConfiguration = opts.iceServers === undefined ? undefined : { iceServers: opts.iceServers }
    const node = await createLibp2p({
      privateKey: key,
      // A browser cannot listen on its own; daemons have public certhash
      // addresses. `listen()` adds relay addresses later.
      addresses: { listen: [] },
      // WebSocket reaches daemons that listen on `/ws` (or `/wss` behind a
      // proxy), where WebRTC is blocked or slower.
      transports: relay
        ? [webRTCDirect({ rtcConfiguration }), webSockets(), webRTC({ rtcConfiguration }), circuitRelayTransport()]
        : [webRTCDirect({ rtcConfiguration }), webSockets()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      // Daemons ping their peers and close connections that stop answering,
      // which is how a closed tab's connection is noticed. The relay
      // transport and /webrtc need identify (protocols, addresses).
      services: (relay ? { ping: ping(), identify: identify() } : { ping: ping() }) as Record<string, (components: any) => unknown>,
      // The default gater refuses private and loopback addresses, which is
      // where daemons on a LAN or this machine are.
      connectionGater: { denyDialMultiaddr: async () => false }
    })
    if (relay) {
      node.addEventListener('connection:open', evt => {
        if (evt.detail.remoteAddr.toString().includes('/webrtc-direct/')) closeWithoutFinAck(evt.detail)
      })
    }
    await node.start()
    const client = new SwarmseedClient(node, key, opts)
    if (relay) await client.serve()
    return client
  }

  /** Answers `/swarmseed/blocks/1.0.0` from the blocks held in memory. */
  private async serve (): Promise<void> {
    const server = new BlockServer(this.held, this.stats, (type, detail) => this.emit(type, detail))
    await this.node.handle(blocks.PROTOCOL, (stream, connection) => {
      server.handle(stream, connection.remotePeer.toString())
    }, { maxOutboundStreams: MAX_OUTBOUND_STREAMS })
  }

  /**
   * Listens for other browsers through daemons' circuit relays: for each
   * daemon address (its WebRTC-direct address with `/p2p/`), a reservation
   * over `/p2p-circuit`, and `/webrtc` on top. Resolves with this browser's
   * dialable `/p2p-circuit/webrtc/p2p/<id>` addresses once there are any;
   * other browsers pass them to `connect()`. Needs `relay: true`.
   */
  async listen (relays: string[], opts: { timeoutMs?: number } = {}): Promise<string[]> {
    if (!this.opts.relay) throw new Error('listen() needs a client created with { relay: true }')
    const addrs = relays.map(r => multiaddr(r).encapsulate('/p2p-circuit'))
    addrs.push(multiaddr('/webrtc'))
    // libp2p has no public call to add listen addresses to a running node;
    // its transport manager does it.
    const tm = (this.node as unknown as { components: { transportManager: { listen: (addrs: Multiaddr[]) => Promise<void> } } })
      .components.transportManager
    await tm.listen(addrs)
    const deadline = Date.now() + (opts.timeoutMs ?? this.opts.dialTimeoutMs)
    for (;;) {
      const mine = this.webrtcAddrs
      if (mine.length > 0) return mine
      if (Date.now() > deadline) throw new Error('no relay reservation gave a /webrtc address')
      await sleep(50)
    }
  }

  /** The `/p2p-circuit/webrtc/p2p/<id>` addresses other browsers can dial. */
  get webrtcAddrs (): string[] {
    return this.node.getMultiaddrs()
      .map(a => a.toString())
      .filter(a => a.includes('/p2p-circuit/webrtc'))
  }

  private emit (type: string, detail: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { detail }))
  }

  /** Daemons in the order they are asked, without those that lied. */
  get daemons (): string[] {
    return this.providers.map(p => p.peer)
  }

  /**
   * Dials daemons by their WebRTC-direct addresses (with `/certhash/` and
   * `/p2p/`) or WebSocket addresses (`/ws`, `/wss`), as `GET /api/v1/node`
   * lists them in `browser_addrs`, and, with `relay: true`,
   * browsers by their `/p2p-circuit/webrtc/p2p/<id>` addresses (`listen()`
   * gives them). Resolves with one outcome per address; a failed dial does
   * not stop the others.
   */
  async connect (addrs: string[]): Promise<Array<{ addr: string, peer?: string, error?: string }>> {
    return await Promise.all(addrs.map(async addr => {
      try {
        const ma = multiaddr(addr)
        const conn = await this.node.dial(ma, { signal: AbortSignal.timeout(this.opts.dialTimeoutMs) })
        const peer = conn.remotePeer.toString()
        if (!this.refused.has(peer) && !this.providers.some(p => p.peer === peer)) {
          this.providers.push({ peer, addr: ma, browser: isBrowserAddr(ma) })
        }
        this.emit('peer-connected', { peer, addr })
        return { addr, peer }
      } catch (e) {
        return { addr, error: String(e) }
      }
    }))
  }

  private async open (peer: string, protocol: string, signal?: AbortSignal): Promise<Stream> {
    const p = this.providers.find(p => p.peer === peer)
    if (p === undefined) throw new Error(`not connected to ${peer}`)
    signal ??= AbortSignal.timeout(this.opts.dialTimeoutMs)
    // A browser's open `/webrtc` connection, never the relayed (limited)
    // one used to set it up.
    const open = this.node.getConnections().find((c: Connection) =>
      c.remotePeer.toString() === peer && c.status === 'open' && c.limits === undefined)
    const options = { signal, maxOutboundStreams: MAX_OUTBOUND_STREAMS }
    if (open !== undefined) return await open.newStream(protocol, options)
    // Dials the address again.
    return await this.node.dialProtocol(p.addr, protocol, options)
  }

  /** One block from one daemon, checked; null when it does not have it. */
  private async blockFrom (peer: string, cid: CID): Promise<{ data: Uint8Array, epoch: number } | 'busy' | null> {
    const signal = AbortSignal.timeout(this.opts.blockTimeoutMs)
    const stream = await this.open(peer, blocks.PROTOCOL, signal)
    const onAbort = (): void => { stream.abort(new Error('block timed out')) }
    signal.addEventListener('abort', onAbort)
    const reader = new Reader(stream)
    try {
      stream.send(blocks.request(cid))
      const answer = await blocks.readAnswer(reader, MAX_BLOCK)
      if (answer.status === blocks.Status.Busy) return 'busy'
      if (answer.status !== blocks.Status.Ok) return null
      return answer
    } finally {
      signal.removeEventListener('abort', onAbort)
      reader.release()
      // The whole answer is in. rust-libp2p sends no FIN_ACK, so a close
      // would wait for its timeout: start it and do not wait.
      stream.close().catch(() => {})
    }
  }

  private refuse (peer: string, cid: CID, bytes: number): void {
    this.stats.refusedBlocks++
    this.stats.refusedBytes += bytes
    this.peerStats(peer).refused++
    this.refused.add(peer)
    const gone = this.providers.find(p => p.peer === peer)
    this.providers = this.providers.filter(p => p.peer !== peer)
    this.emit('refused', { peer, cid: cid.toString(), bytes })
    if (gone !== undefined) this.node.hangUp(gone.addr).catch(() => {})
  }

  private peerStats (peer: string): { bytes: number, refused: number } {
    this.stats.peers[peer] ??= { bytes: 0, refused: 0 }
    return this.stats.peers[peer]
  }

  /**
   * Fetches one block by CID from the connected daemons and the trustless
   * gateways (see `sources`). Bytes that fail the CID are refused, counted,
   * and their daemon or gateway is dropped; the block is then asked of the
   * next.
   */
  async fetchBlock (cid: string | CID, opts: FetchOptions = {}): Promise<Uint8Array> {
    const c = parseCid(cid)
    if (c.code !== RAW && c.code !== DAG_PB) throw new Error(`unsupported codec 0x${c.code.toString(16)}`)
    for (const source of this.sources()) {
      const got = 'url' in source
        ? await this.fromGateway(source.url, c, opts)
        : await this.fromPeer(source, c, opts)
      if (got !== null) return got
    }
    throw new NoProviderError(c)
  }

  /**
   * Who to ask, in order: the connected daemons, starting with the next in
   * turn so the leaves of a file spread over them; with gateways too, every
   * source by its measured speed, fastest first, one not yet measured
   * before any.
   */
  private sources (): Array<Provider | { url: string }> {
    const start = this.turn++
    const peers = this.providers.map((_, i) => this.providers[(start + i) % this.providers.length])
    if (this.gateways.length === 0) return peers
    const all: Array<Provider | { url: string }> = [...peers, ...this.gateways.map(url => ({ url }))]
    const speed = (s: Provider | { url: string }): number => this.speed.get('url' in s ? s.url : s.peer) ?? Infinity
    return all.sort((a, b) => speed(b) - speed(a))
  }

  private measured (source: string, bytes: number, ms: number): void {
    const now = bytes / Math.max(ms, 0.1)
    const before = this.speed.get(source)
    this.speed.set(source, before === undefined ? now : 0.7 * before + 0.3 * now)
  }

  /** One block from one daemon, with its retries; null to ask the next. */
  private async fromPeer (provider: Provider, c: CID, opts: FetchOptions): Promise<Uint8Array | null> {
    const peer = provider.peer
    for (let attempt = 0; attempt < STREAM_TRIES; attempt++) {
      opts.signal?.throwIfAborted()
      if (this.refused.has(peer)) return null
      let got: Awaited<ReturnType<SwarmseedClient['blockFrom']>>
      const t0 = performance.now()
      try {
        got = await this.blockFrom(peer, c)
      } catch (e) {
        this.emit('block-error', { peer, cid: c.toString(), error: String(e) })
        await sleep(10 << attempt)
        continue
      }
      if (got === 'busy') {
        this.stats.busyAnswers++
        await sleep(20 << attempt)
        continue
      }
      if (got === null) return null
      if (!await verifyBlock(c, got.data)) {
        this.refuse(peer, c, got.data.length)
        return null
      }
      this.measured(peer, got.data.length, performance.now() - t0)
      this.stats.bytesFromP2p += got.data.length
      this.stats.blocksFromP2p++
      this.peerStats(peer).bytes += got.data.length
      this.held.put(c, got.data)
      // Receipts are for daemons' ledgers; a browser keeps none.
      if (!provider.browser) {
        this.receipts?.record({ cid: c.toString(), bytes: got.data.length, epoch: got.epoch, provider: peer, video: opts.video ?? '' })
      }
      this.emit('block', { peer, cid: c.toString(), bytes: got.data.length })
      return got.data
    }
    return null
  }

  /** One block from a trustless gateway, checked; null to ask the next. A
   * gateway that sends bytes failing the CID is never asked again. */
  private async fromGateway (url: string, c: CID, opts: FetchOptions): Promise<Uint8Array | null> {
    opts.signal?.throwIfAborted()
    const t0 = performance.now()
    let got: Awaited<ReturnType<typeof blockFromGateway>>
    try {
      got = await blockFromGateway(url, c, this.opts.receipts ? this.peerId : undefined, this.opts.blockTimeoutMs)
    } catch (e) {
      this.emit('block-error', { gateway: url, cid: c.toString(), error: String(e) })
      return null
    }
    if (got === null) return null
    if (!await verifyBlock(c, got.data)) {
      this.stats.refusedBlocks++
      this.stats.refusedBytes += got.data.length
      this.peerStats(url).refused++
      this.gateways = this.gateways.filter(g => g !== url)
      this.emit('refused', { gateway: url, cid: c.toString(), bytes: got.data.length })
      return null
    }
    this.measured(url, got.data.length, performance.now() - t0)
    this.stats.bytesFromP2p += got.data.length
    this.stats.blocksFromP2p++
    this.peerStats(url).bytes += got.data.length
    this.held.put(c, got.data)
    if (got.provider !== undefined && got.epoch !== undefined) {
      this.receipts?.record({ cid: c.toString(), bytes: got.data.length, epoch: got.epoch, provider: got.provider, video: opts.video ?? '', gateway: url })
    }
    this.emit('block', { gateway: url, cid: c.toString(), bytes: got.data.length })
    return got.data
  }

  /**
   * Fetches a whole file by its root CID: a raw block, or a balanced dag-pb
   * tree walked level by level (as `daemon/src/peers.rs` does), its leaves
   * fetched `parallel` at a time. Every block is checked.
   */
  async fetchFile (root: string | CID, opts: FetchOptions = {}): Promise<Uint8Array> {
    const r = parseCid(root)
    const maxSize = opts.size ?? opts.maxSize ?? 64 * 1024 * 1024
    const fits = (n: number): boolean => opts.size === undefined ? n <= maxSize : n === opts.size
    const first = await this.fetchBlock(r, opts)
    if (r.code === RAW) {
      if (!fits(first.length)) throw new Error(`${r.toString()}: ${first.length} bytes, expected ${opts.size ?? `at most ${maxSize}`}`)
      this.stats.filesFromP2p++
      return first
    }
    const maxLinks = Math.floor(maxSize / CHUNK) + 2
    let level: Uint8Array[] = [first]
    for (let depth = 0; depth < 4; depth++) {
      const next: CID[] = level.flatMap(node => links(node))
      if (next.length === 0 || next.length > maxLinks) throw new Error(`${r.toString()}: malformed DAG`)
      const leaves = next.every(c => c.code === RAW)
      if (!leaves && next.some(c => c.code !== DAG_PB)) throw new Error(`${r.toString()}: mixed DAG level`)
      const got = await inOrder(next, this.opts.parallel, async c => await this.fetchBlock(c, opts))
      if (leaves) {
        const total = got.reduce((n, b) => n + b.length, 0)
        if (!fits(total)) throw new Error(`${r.toString()}: ${total} bytes, expected ${opts.size ?? `at most ${maxSize}`}`)
        const out = new Uint8Array(total)
        let at = 0
        for (const b of got) { out.set(b, at); at += b.length }
        this.stats.filesFromP2p++
        return out
      }
      level = got
    }
    throw new Error(`${r.toString()}: DAG too deep`)
  }

  /**
   * A segment by CID from the daemons, else from `url` over HTTP. Bytes from
   * the CDN are checked against the CID too: no unchecked byte is returned.
   */
  async fetchSegment (cid: string | CID, url: string, opts: FetchOptions = {}): Promise<{ bytes: Uint8Array, source: 'p2p' | 'cdn' }> {
    const c = parseCid(cid)
    if (this.providers.length > 0 || this.gateways.length > 0) {
      try {
        return { bytes: await this.fetchFile(c, opts), source: 'p2p' }
      } catch (e) {
        this.emit('fallback-cdn', { cid: c.toString(), url, reason: String(e) })
      }
    } else {
      this.emit('fallback-cdn', { cid: c.toString(), url, reason: 'no daemon connected' })
    }
    const res = await fetch(url, { signal: opts.signal })
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`)
    const bytes = new Uint8Array(await res.arrayBuffer())
    if (opts.size !== undefined && bytes.length !== opts.size) throw new Error(`${url}: ${bytes.length} bytes, expected ${opts.size}`)
    if ((await fileCid(bytes)).toString() !== c.toString()) throw new Error(`${url}: bytes do not match ${c.toString()}`)
    this.stats.bytesFromCdn += bytes.length
    this.stats.filesFromCdn++
    return { bytes, source: 'cdn' }
  }

  /** Sends the receipts still waiting and resolves once each is answered. */
  async flushReceipts (): Promise<void> {
    await this.receipts?.flush()
  }

  async stop (): Promise<void> {
    await this.flushReceipts().catch(() => {})
    await this.node.stop()
  }
}

/**
 * rust-libp2p's WebRTC sends no FIN_ACK (rust-libp2p #4600), so on a
 * daemon's connection `stream.close()` waits out its timeout and rejects.
 * The circuit relay transport awaits that close after a reservation and
 * takes the rejection for a refused reservation, though the daemon granted
 * it. On connections to daemons, close() here sends the FIN and returns at
 * once; the channel still closes after the timeout.
 */
function closeWithoutFinAck (conn: Connection): void {
  const newStream = conn.newStream.bind(conn)
  const patched: Connection['newStream'] = async (protocols, options) => {
    const stream = await newStream(protocols, options)
    const close = stream.close.bind(stream)
    stream.close = async () => { close().catch(() => {}) }
    return stream
  }
  conn.newStream = patched
}

/** A private-to-private `/webrtc` address: a browser reached via a relay. */
function isBrowserAddr (ma: Multiaddr): boolean {
  return ma.getComponents().some(c => c.name === 'webrtc')
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** Maps `items` with at most `width` calls in flight; results in order. */
async function inOrder<T, R> (items: T[], width: number, f: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  let failed = false
  const worker = async (): Promise<void> => {
    // Once one item fails the whole result does: start no more.
    while (next < items.length && !failed) {
      const i = next++
      try {
        out[i] = await f(items[i])
      } catch (e) {
        failed = true
        throw e
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(Math.max(width, 1), items.length) }, worker))
  return out
}
