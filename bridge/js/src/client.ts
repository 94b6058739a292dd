/**
 * The browser's swarmseed client: a js-libp2p node that dials daemons over
 * WebRTC-direct, fetches blocks and whole files by CID, checks every block
 * against its CID, signs receipts for what it verified, and falls back to
 * the CDN over HTTP when no daemon delivers.
 *
 * Later parts (an hls.js loader, the daemon's web page, a relay) build on
 * `fetchSegment` and the events this class dispatches.
 */
import { createLibp2p, type Libp2p } from 'libp2p'
import { webRTCDirect } from '@libp2p/webrtc'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey, Stream } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'

import * as blocks from './blocks.js'
import { ReceiptSender } from './sender.js'
import { fileCid } from './unixfs.js'
import { DAG_PB, MAX_BLOCK, RAW, CHUNK, links, parseCid, verifyBlock } from './verify.js'
import { Reader } from './wire.js'

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
  receiptsSent: number
  receiptsAccepted: number
  receiptsRefused: number
  /** Receipts that never got an answer (stream failures). */
  receiptsLost: number
  verdicts: Record<string, number>
  /** Per daemon peer id: verified bytes and refused blocks. */
  peers: Record<string, { bytes: number, refused: number }>
}

/** A daemon this client can ask for blocks. */
interface Provider {
  peer: string
  addr: Multiaddr
}

export class NoProviderError extends Error {
  constructor (cid: CID) {
    super(`no daemon delivered ${cid.toString()}`)
    this.name = 'NoProviderError'
  }
}

/** Stream opens per block and daemon before the next daemon is asked. */
const STREAM_TRIES = 3

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
    receiptsSent: 0,
    receiptsAccepted: 0,
    receiptsRefused: 0,
    receiptsLost: 0,
    verdicts: {},
    peers: {}
  }

  private providers: Provider[] = []
  /** Daemons that sent bytes failing their CID; never asked again. */
  private readonly refused = new Set<string>()
  private readonly receipts?: ReceiptSender
  private readonly opts: Required<Omit<ClientOptions, 'privateKey'>>
  private turn = 0

  private constructor (node: Libp2p, key: PrivateKey, opts: ClientOptions) {
    super()
    this.node = node
    this.peerId = node.peerId.toString()
    this.opts = {
      blockTimeoutMs: opts.blockTimeoutMs ?? 10_000,
      dialTimeoutMs: opts.dialTimeoutMs ?? 15_000,
      parallel: opts.parallel ?? 4,
      receiptLingerMs: opts.receiptLingerMs ?? 50,
      receipts: opts.receipts ?? true
    }
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
    const node = await createLibp2p({
      privateKey: key,
      // A browser dials out only; daemons have public certhash addresses.
      addresses: { listen: [] },
      transports: [webRTCDirect()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      // The default gater refuses private and loopback addresses, which is
      // where daemons on a LAN or this machine are.
      connectionGater: { denyDialMultiaddr: async () => false }
    })
    await node.start()
    return new SwarmseedClient(node, key, opts)
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
   * `/p2p/`, as `GET /api/v1/node` lists them). Resolves with one outcome
   * per address; a failed dial does not stop the others.
   */
  async connect (addrs: string[]): Promise<Array<{ addr: string, peer?: string, error?: string }>> {
    return await Promise.all(addrs.map(async addr => {
      try {
        const ma = multiaddr(addr)
        const conn = await this.node.dial(ma, { signal: AbortSignal.timeout(this.opts.dialTimeoutMs) })
        const peer = conn.remotePeer.toString()
        if (!this.refused.has(peer) && !this.providers.some(p => p.peer === peer)) {
          this.providers.push({ peer, addr: ma })
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
    // Reuses the open connection, or dials the address again.
    return await this.node.dialProtocol(p.addr, protocol, { signal: signal ?? AbortSignal.timeout(this.opts.dialTimeoutMs) })
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
   * Fetches one block by CID from the connected daemons, starting with the
   * next in turn. Bytes that fail the CID are refused, counted, and their
   * daemon is dropped; the block is then asked of the next daemon.
   */
  async fetchBlock (cid: string | CID, opts: FetchOptions = {}): Promise<Uint8Array> {
    const c = parseCid(cid)
    if (c.code !== RAW && c.code !== DAG_PB) throw new Error(`unsupported codec 0x${c.code.toString(16)}`)
    const candidates = [...this.providers]
    const start = this.turn++
    for (let i = 0; i < candidates.length; i++) {
      const peer = candidates[(start + i) % candidates.length].peer
      for (let attempt = 0; attempt < STREAM_TRIES; attempt++) {
        opts.signal?.throwIfAborted()
        if (this.refused.has(peer)) break
        let got: Awaited<ReturnType<SwarmseedClient['blockFrom']>>
        try {
          got = await this.blockFrom(peer, c)
        } catch (e) {
          this.emit('block-error', { peer, cid: c.toString(), error: String(e) })
          await sleep(10 << attempt)
          continue
        }
        if (got === 'busy') {
          await sleep(20 << attempt)
          continue
        }
        if (got === null) break
        if (!await verifyBlock(c, got.data)) {
          this.refuse(peer, c, got.data.length)
          break
        }
        this.stats.bytesFromP2p += got.data.length
        this.stats.blocksFromP2p++
        this.peerStats(peer).bytes += got.data.length
        this.receipts?.record({ cid: c.toString(), bytes: got.data.length, epoch: got.epoch, provider: peer, video: opts.video ?? '' })
        this.emit('block', { peer, cid: c.toString(), bytes: got.data.length })
        return got.data
      }
    }
    throw new NoProviderError(c)
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
    if (this.providers.length > 0) {
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
