/**
 * The CID a file gets under DESIGN §2: `ipfs add --cid-version=1
 * --raw-leaves --chunker=size-1048576`, balanced layout, at most 174 links
 * a node. A port of `daemon/src/store/unixfs.rs`, byte for byte (checked
 * against `tests/vectors/cid-vectors.json` by `npm test`). The client uses
 * it to check files that came from the CDN.
 */
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { CHUNK, DAG_PB, RAW } from './verify.js'
import { concat, varint } from './wire.js'

export const MAX_LINKS = 174

interface Link { cid: CID, tsize: number, fileSize: number }

function bytesField (tag: number, bytes: Uint8Array): Uint8Array {
  return concat([Uint8Array.of(tag), varint(bytes.length), bytes])
}

/** PBNode { Links, Data: UnixFS { Type: File, filesize, blocksizes } }. */
function fileNode (children: Link[]): Uint8Array {
  const parts: Uint8Array[] = []
  for (const c of children) {
    const link = concat([
      bytesField(0x0a, c.cid.bytes), // Hash
      bytesField(0x12, new Uint8Array(0)), // Name, present and empty
      Uint8Array.of(0x18), varint(c.tsize) // Tsize
    ])
    parts.push(bytesField(0x12, link))
  }
  const total = children.reduce((n, c) => n + c.fileSize, 0)
  const unixfs = [Uint8Array.of(0x08, 0x02, 0x18), varint(total)] // Type = File, filesize
  for (const c of children) unixfs.push(Uint8Array.of(0x20), varint(c.fileSize)) // blocksizes
  parts.push(bytesField(0x0a, concat(unixfs)))
  return concat(parts)
}

/** The root CID of `bytes` as a UnixFS file. */
export async function fileCid (bytes: Uint8Array): Promise<CID> {
  let level: Link[] = []
  for (let at = 0; at < bytes.length || level.length === 0; at += CHUNK) {
    const leaf = bytes.subarray(at, Math.min(at + CHUNK, bytes.length))
    level.push({ cid: CID.createV1(RAW, await sha256.digest(leaf)), tsize: leaf.length, fileSize: leaf.length })
  }
  while (level.length > 1) {
    const next: Link[] = []
    for (let i = 0; i < level.length; i += MAX_LINKS) {
      const children = level.slice(i, i + MAX_LINKS)
      const node = fileNode(children)
      next.push({
        cid: CID.createV1(DAG_PB, await sha256.digest(node)),
        tsize: node.length + children.reduce((n, c) => n + c.tsize, 0),
        fileSize: children.reduce((n, c) => n + c.fileSize, 0)
      })
    }
    level = next
  }
  return level[0].cid
}
