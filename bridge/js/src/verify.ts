/**
 * Checking bytes against CIDs (DESIGN §2): sha2-256 multihashes over raw
 * leaves (0x55) and dag-pb nodes (0x70).
 */
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as dagPb from '@ipld/dag-pb'
import * as raw from 'multiformats/codecs/raw'

export const RAW = raw.code
export const DAG_PB = dagPb.code
export const SHA2_256 = sha256.code
/** Leaves are 1 MiB; no block is over 2 MiB. */
export const CHUNK = 1024 * 1024
export const MAX_BLOCK = 2 * 1024 * 1024

export function parseCid (cid: string | CID): CID {
  return typeof cid === 'string' ? CID.parse(cid) : cid
}

/** Whether `bytes` are the block `cid` names. */
export async function verifyBlock (cid: CID, bytes: Uint8Array): Promise<boolean> {
  if (cid.multihash.code !== SHA2_256) return false
  if (cid.code !== RAW && cid.code !== DAG_PB) return false
  const digest = await sha256.digest(bytes)
  const want = cid.multihash.digest
  if (digest.digest.length !== want.length) return false
  for (let i = 0; i < want.length; i++) {
    if (digest.digest[i] !== want[i]) return false
  }
  return true
}

/** The links of a verified dag-pb block, in order. */
export function links (bytes: Uint8Array): CID[] {
  const node = dagPb.decode(bytes)
  return node.Links.map(l => l.Hash)
}

/** The CID a single-block file of `bytes` has (files up to 1 MiB). */
export async function rawCid (bytes: Uint8Array): Promise<CID> {
  return CID.createV1(RAW, await sha256.digest(bytes))
}
