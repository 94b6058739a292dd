/**
 * Trustless gateways (`/ipfs/{cid}` on daemons with an HTTP(S) name) as a
 * source of blocks: raw blocks by CID, which the client checks as it
 * checks blocks from peers, and receipts for them posted back to the
 * gateway (`POST /api/v1/proofs/receipts`).
 *
 * The request names this client's peer id in `X-Swarmseed-Peer`, so the
 * daemon records the block as owed a receipt, and the answer names the
 * provider and its epoch, which the receipt carries.
 */
import type { CID } from 'multiformats/cid'
import { MAX_BLOCK } from './verify.js'

export interface GatewayBlock {
  data: Uint8Array
  /** The daemon's peer id and open epoch, when it takes receipts. */
  provider?: string
  epoch?: number
}

/** One raw block from the gateway at `base`; null when it does not hold it. */
export async function blockFromGateway (base: string, cid: CID, receiver: string | undefined, timeoutMs: number): Promise<GatewayBlock | null> {
  const headers: Record<string, string> = { accept: 'application/vnd.ipld.raw' }
  if (receiver !== undefined) headers['x-swarmseed-peer'] = receiver
  const res = await fetch(`${base.replace(/\/+$/, '')}/ipfs/${cid.toString()}?format=raw`, {
    headers,
    credentials: 'omit',
    // A block from the browser's HTTP cache was not sent again, so no
    // receipt is owed for it; the client keeps what it reuses itself.
    cache: receiver === undefined ? 'default' : 'no-store',
    signal: AbortSignal.timeout(timeoutMs)
  })
  if (res.status === 404 || res.status === 412) return null
  if (!res.ok) throw new Error(`${base}: HTTP ${res.status}`)
  const length = Number(res.headers.get('content-length') ?? '0')
  if (length > MAX_BLOCK) throw new Error(`${base}: a block of ${length} bytes`)
  const data = new Uint8Array(await res.arrayBuffer())
  if (data.length > MAX_BLOCK) throw new Error(`${base}: a block of ${data.length} bytes`)
  const provider = res.headers.get('x-swarmseed-provider') ?? undefined
  const epoch = Number(res.headers.get('x-swarmseed-epoch'))
  return { data, provider, epoch: Number.isSafeInteger(epoch) ? epoch : undefined }
}

/** Posts signed receipts; the daemon's verdict for each, in order, named as
 * `VERDICTS` names them. */
export async function postReceipts (base: string, signed: Uint8Array[]): Promise<string[]> {
  const receipts = signed.map(toBase64)
  const res = await fetch(`${base.replace(/\/+$/, '')}/api/v1/proofs/receipts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    credentials: 'omit',
    body: JSON.stringify({ receipts })
  })
  if (!res.ok) throw new Error(`${base}: receipts answered HTTP ${res.status}`)
  const answer = await res.json() as { verdicts?: unknown }
  if (!Array.isArray(answer.verdicts) || answer.verdicts.length !== signed.length) {
    throw new Error(`${base}: malformed receipt verdicts`)
  }
  return answer.verdicts.map(v => String(v).replaceAll('_', '-'))
}

function toBase64 (bytes: Uint8Array): string {
  let s = ''
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  }
  return btoa(s)
}
