/**
 * `/swarmseed/blocks/1.0.0`, as `daemon/src/swarm/wire.rs` defines it: one
 * request per stream, a varint length and the CID's bytes. The answer is a
 * status byte; for Ok, a varint epoch (the provider's receipt epoch), then a
 * varint length and the block.
 */
import type { CID } from 'multiformats/cid'
import { Reader, concat, varint } from './wire.js'

export const PROTOCOL = '/swarmseed/blocks/1.0.0'

export const enum Status { Ok = 0, NotFound = 1, Busy = 2 }

export function request (cid: CID): Uint8Array {
  return concat([varint(cid.bytes.length), cid.bytes])
}

export type Answer =
  | { status: Status.Ok, epoch: number, data: Uint8Array }
  | { status: Status.NotFound | Status.Busy }

export async function readAnswer (r: Reader, max: number): Promise<Answer> {
  const status = await r.byte()
  if (status > Status.Busy) throw new Error(`unknown status ${status}`)
  const epoch = status === Status.Ok ? await r.varint() : 0
  const len = await r.varint()
  if (status !== Status.Ok) return { status: status as Status.NotFound | Status.Busy }
  if (len > max) throw new Error(`block of ${len} bytes is over the limit`)
  return { status: Status.Ok, epoch, data: await r.exact(len) }
}
