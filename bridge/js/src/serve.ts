/**
 * The browser as a provider: blocks it fetched and verified are kept in
 * memory and served on `/swarmseed/blocks/1.0.0`, in the daemon's format
 * (`bridge/src/blocks_wire.rs`): a status byte; for Ok a varint epoch (a
 * browser has no receipt epochs and sends 0), a varint length and the block
 * in writes of at most 16 KiB; for NotFound and Busy a zero length.
 *
 * A browser ignores receipts: it does not speak `/swarmseed/receipts/1.0.0`,
 * and other browsers do not sign receipts for its blocks. Receipts feed a
 * daemon's contribution ledger, which a browser does not keep.
 */
import { CID } from 'multiformats/cid'
import type { Stream } from '@libp2p/interface'
import * as blocks from './blocks.js'
import { Reader, concat, varint, write } from './wire.js'

/** CIDs are well under this (as on the daemon). */
const MAX_CID_LEN = 128
/** Block streams answered at once; more are told Busy. */
const MAX_SERVING = 16
/** Longest a peer may take to send its request, in ms. */
const REQUEST_TIMEOUT_MS = 10_000

/** Verified blocks by CID, the oldest dropped first past `maxBytes`. */
export class HeldBlocks {
  private readonly blocks = new Map<string, Uint8Array>()
  private total = 0

  constructor (private readonly maxBytes: number) {}

  get bytes (): number {
    return this.total
  }

  get count (): number {
    return this.blocks.size
  }

  /** Keeps a block whose bytes were checked against `cid`. */
  put (cid: CID, data: Uint8Array): void {
    if (data.length > this.maxBytes) return
    const key = cid.toString()
    const old = this.blocks.get(key)
    if (old !== undefined) {
      this.blocks.delete(key)
      this.total -= old.length
    }
    this.blocks.set(key, data)
    this.total += data.length
    for (const [k, v] of this.blocks) {
      if (this.total <= this.maxBytes) break
      this.blocks.delete(k)
      this.total -= v.length
    }
  }

  get (cid: CID): Uint8Array | undefined {
    return this.blocks.get(cid.toString())
  }

  has (cid: string): boolean {
    return this.blocks.has(parseKey(cid))
  }
}

function parseKey (cid: string): string {
  return CID.parse(cid).toString()
}

export function answer (status: blocks.Status, data?: Uint8Array): Uint8Array[] {
  if (status !== blocks.Status.Ok || data === undefined) return [Uint8Array.of(status, 0)]
  return [concat([Uint8Array.of(status), varint(0), varint(data.length)]), data]
}

interface ServeStats {
  blocksServed: number
  bytesServed: number
  blocksNotFound: number
}

export class BlockServer {
  private serving = 0

  constructor (
    private readonly held: HeldBlocks,
    private readonly stats: ServeStats,
    private readonly emit: (type: string, detail: unknown) => void
  ) {}

  /** Answers one request on `stream`; never throws. */
  handle (stream: Stream, peer: string): void {
    this.serve(stream, peer).catch(e => {
      stream.abort(e instanceof Error ? e : new Error(String(e)))
    })
  }

  private async serve (stream: Stream, peer: string): Promise<void> {
    const reader = new Reader(stream)
    const timer = setTimeout(() => { stream.abort(new Error('request timed out')) }, REQUEST_TIMEOUT_MS)
    this.serving++
    try {
      const len = await reader.varint()
      if (len === 0 || len > MAX_CID_LEN) throw new Error(`CID of ${len} bytes`)
      const cid = CID.decode(await reader.exact(len))
      clearTimeout(timer)
      const data = this.serving > MAX_SERVING ? undefined : this.held.get(cid)
      const status = this.serving > MAX_SERVING
        ? blocks.Status.Busy
        : data === undefined ? blocks.Status.NotFound : blocks.Status.Ok
      for (const part of answer(status, data)) await write(stream, part)
      if (status === blocks.Status.Ok && data !== undefined) {
        this.stats.blocksServed++
        this.stats.bytesServed += data.length
        this.emit('served', { peer, cid: cid.toString(), bytes: data.length })
      } else if (status === blocks.Status.NotFound) {
        this.stats.blocksNotFound++
      }
      // The reader closes the stream once it has the answer; ours closes
      // after the data is sent, without waiting for the remote's FIN_ACK.
      stream.close().catch(() => {})
    } finally {
      clearTimeout(timer)
      this.serving--
      reader.release()
    }
  }
}
