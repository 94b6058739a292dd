/**
 * Byte-level helpers for swarmseed's stream protocols: unsigned varints, a
 * reader over a libp2p stream, and writes of at most 16 KiB.
 *
 * The formats match `daemon/src/swarm/wire.rs` and
 * `daemon/src/receipts/wire.rs`.
 */

/** Largest single write: WebRTC carries one message per write, and
 * rust-libp2p resets streams whose messages are larger. */
export const FRAME = 16 * 1024

export function varint (v: number): Uint8Array {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`)
  const out: number[] = []
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80)
    v = Math.floor(v / 0x80)
  }
  out.push(v)
  return Uint8Array.from(out)
}

export function concat (parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0)
  const out = new Uint8Array(total)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** What the reader needs of a stream: its chunks, in order. */
export type Chunks = AsyncIterable<Uint8Array | { subarray: () => Uint8Array }>

/** Reads exact byte counts from a stream that yields chunks. */
export class Reader {
  private readonly it: AsyncIterator<Uint8Array | { subarray: () => Uint8Array }>
  private buf: Uint8Array = new Uint8Array(0)

  constructor (source: Chunks) {
    this.it = source[Symbol.asyncIterator]()
  }

  private async fill (): Promise<void> {
    const next = await this.it.next()
    if (next.done === true) throw new Error('stream ended early')
    const chunk = next.value instanceof Uint8Array ? next.value : next.value.subarray()
    this.buf = this.buf.length === 0 ? chunk : concat([this.buf, chunk])
  }

  async exact (n: number): Promise<Uint8Array> {
    if (n === 0) return new Uint8Array(0)
    if (this.buf.length >= n) return this.take(n)
    // Gather chunks and copy once, for large blocks.
    const parts: Uint8Array[] = [this.buf]
    let have = this.buf.length
    this.buf = new Uint8Array(0)
    while (have < n) {
      const next = await this.it.next()
      if (next.done === true) throw new Error('stream ended early')
      const chunk = next.value instanceof Uint8Array ? next.value : next.value.subarray()
      parts.push(chunk)
      have += chunk.length
    }
    const all = concat(parts)
    this.buf = all.subarray(n)
    return all.subarray(0, n)
  }

  private take (n: number): Uint8Array {
    const out = this.buf.subarray(0, n)
    this.buf = this.buf.subarray(n)
    return out
  }

  /** Stops reading: the stream's listeners are removed. */
  release (): void {
    this.it.return?.().catch(() => {})
  }

  async byte (): Promise<number> {
    if (this.buf.length === 0) await this.fill()
    return this.take(1)[0]
  }

  async varint (): Promise<number> {
    let v = 0
    let mul = 1
    for (let i = 0; i < 8; i++) {
      const b = await this.byte()
      v += (b & 0x7f) * mul
      if (b < 0x80) {
        if (!Number.isSafeInteger(v)) throw new Error('varint too large')
        return v
      }
      mul *= 0x80
    }
    throw new Error('malformed varint')
  }
}

/** What the writer needs of a stream (a libp2p `Stream`). */
export interface Sink {
  send: (data: Uint8Array) => boolean
  onDrain: (options?: { signal?: AbortSignal }) => Promise<void>
}

/** Sends `data` in writes of at most FRAME bytes, waiting for the stream to
 * drain when it asks to. */
export async function write (s: Sink, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length; at += FRAME) {
    if (!s.send(data.subarray(at, at + FRAME))) await s.onDrain()
  }
}
