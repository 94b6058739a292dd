/**
 * Receipts (DESIGN §5): after a block from a daemon passes its CID check,
 * the browser signs `{v, cid, seq, bytes, epoch, video, time_ms, provider,
 * receiver}` with its own Ed25519 libp2p key and sends it back on
 * `/swarmseed/receipts/1.0.0`.
 *
 * Encoding, as in `proofs/src/receipt.rs` and `proofs/src/envelope.rs`:
 * the body is canonical DAG-CBOR (keys sorted by length, then bytes, which
 * `@ipld/dag-cbor` does); the envelope is DAG-CBOR `{sig, body}` where `sig`
 * is the Ed25519 signature over `"swarmseed/receipt/v1\n"` followed by the
 * body's bytes.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { concat } from './wire.js'

export const PROTOCOL = '/swarmseed/receipts/1.0.0'
export const MAX_BATCH = 256
const DOMAIN = new TextEncoder().encode('swarmseed/receipt/v1\n')

export interface Receipt {
  v: 1
  cid: string
  seq: number
  bytes: number
  epoch: number
  video: string
  time_ms: number
  provider: string
  receiver: string
}

export interface Signer {
  sign: (data: Uint8Array) => Uint8Array | Promise<Uint8Array>
}

export function encodeBody (r: Receipt): Uint8Array {
  for (const k of ['seq', 'bytes', 'epoch', 'time_ms'] as const) {
    if (!Number.isSafeInteger(r[k]) || r[k] < 0) throw new RangeError(`receipt ${k} out of range: ${r[k]}`)
  }
  return dagCbor.encode(r)
}

/** The signed envelope's bytes, as `SignedReceipt::open` takes them. */
export async function sealReceipt (key: Signer, r: Receipt): Promise<Uint8Array> {
  const body = encodeBody(r)
  const sig = await key.sign(concat([DOMAIN, body]))
  return dagCbor.encode({ sig, body: r })
}

/** The provider's answer to one receipt (`daemon/src/receipts/wire.rs`). */
export const VERDICTS = [
  'accepted', 'malformed', 'bad-signature', 'not-for-us', 'replayed', 'over-claim', 'late', 'unavailable'
] as const
export type Verdict = typeof VERDICTS[number] | 'unknown'

/** A source of seq numbers that only grows: microseconds since the Unix
 * epoch at the start, then +1 per receipt. */
export class SeqCounter {
  private last: number
  constructor () {
    this.last = Date.now() * 1000
  }

  next (): number {
    this.last = Math.max(this.last + 1, Date.now() * 1000)
    return this.last
  }
}
