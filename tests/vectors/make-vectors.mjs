// Generates cid-vectors.json with the reference IPFS JS importer
// (ipfs-unixfs-importer), configured like
//   ipfs add --cid-version=1 --raw-leaves --chunker=size-1048576
//
// Usage: npm ci && node make-vectors.mjs
//
// The content of every vector is the byte pattern: byte at offset i is i % 251.

import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import * as dagPb from '@ipld/dag-pb'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import * as raw from 'multiformats/codecs/raw'

const MiB = 1048576
const CHUNK_SIZE = MiB
const MAX_CHILDREN_PER_NODE = 174
const PATTERN_MODULUS = 251

const SIZES = [
  0,
  1,
  MiB,
  MiB + 1,
  5 * MiB,
  174 * MiB,
  174 * MiB + 1,
  175 * MiB
]

// Options passed to the importer (documented verbatim in the output header).
const OPTION_VALUES = {
  cidVersion: 1,
  rawLeaves: true,
  reduceSingleLeafToSelf: true,
  wrapWithDirectory: false,
  fieldOrder: 'links-first'
}

function importerOptions () {
  return {
    ...OPTION_VALUES,
    chunker: fixedSize({ chunkSize: CHUNK_SIZE }),
    layout: balanced({ maxChildrenPerNode: MAX_CHILDREN_PER_NODE })
  }
}

function pkgVersion (name) {
  const url = new URL(`./node_modules/${name}/package.json`, import.meta.url)
  return JSON.parse(readFileSync(url, 'utf8')).version
}

// PATTERN[j] = j % 251, long enough that any 1 MiB window starting at an
// offset < 251 fits: bytes [o, o + len) of the file are
// PATTERN[(o % 251) ... (o % 251) + len).
const PATTERN = new Uint8Array(MiB + PATTERN_MODULUS)
for (let j = 0; j < PATTERN.length; j++) PATTERN[j] = j % PATTERN_MODULUS

// Streams `size` bytes of the pattern in chunks of at most 1 MiB.
// Also feeds every byte into `hash` so the whole-file sha256 is recorded.
function * patternContent (size, hash) {
  let offset = 0
  while (offset < size) {
    const len = Math.min(MiB, size - offset)
    const start = offset % PATTERN_MODULUS
    const chunk = PATTERN.subarray(start, start + len)
    // sanity: chunk really is bytes [offset, offset+len) of the pattern
    if (chunk[0] !== offset % PATTERN_MODULUS ||
        chunk[len - 1] !== (offset + len - 1) % PATTERN_MODULUS) {
      throw new Error(`pattern bug at offset ${offset}`)
    }
    hash.update(chunk)
    yield chunk
    offset += len
  }
}

// Blockstore that keeps dag-pb blocks (small) and only counts raw leaves.
class CountingBlockstore {
  constructor () {
    this.dagPbBlocks = new Map() // cid string -> bytes
    this.rawLeafPuts = 0
    this.rawLeafBytes = 0
  }

  put (cid, bytes) {
    if (!(bytes instanceof Uint8Array)) throw new Error('unexpected non-Uint8Array block')
    // every block must hash to its CID
    const digest = createHash('sha256').update(bytes).digest()
    if (cid.multihash.code !== 0x12 || !Buffer.from(cid.multihash.digest).equals(digest)) {
      throw new Error(`block does not match CID ${cid}`)
    }
    if (cid.code === raw.code) {
      this.rawLeafPuts++
      this.rawLeafBytes += bytes.length
    } else if (cid.code === dagPb.code) {
      this.dagPbBlocks.set(cid.toString(), Uint8Array.from(bytes))
    } else {
      throw new Error(`unexpected codec 0x${cid.code.toString(16)}`)
    }
    return cid
  }
}

const hex = (bytes) => Buffer.from(bytes).toString('hex')

// Walks the DAG below `cid`: returns { leaves, depth } (depth 0 = raw leaf).
function walk (store, cid) {
  if (cid.code === raw.code) return { leaves: 1, depth: 0 }
  const bytes = store.dagPbBlocks.get(cid.toString())
  if (bytes == null) throw new Error(`missing dag-pb block ${cid}`)
  const node = dagPb.decode(bytes)
  let leaves = 0
  let depth = 0
  for (const link of node.Links) {
    const r = walk(store, link.Hash)
    leaves += r.leaves
    depth = Math.max(depth, r.depth + 1)
  }
  return { leaves, depth }
}

async function makeVector (size) {
  const store = new CountingBlockstore()
  const hash = createHash('sha256')
  const results = []
  for await (const entry of importer([{ content: patternContent(size, hash) }], store, importerOptions())) {
    results.push(entry)
  }
  if (results.length !== 1) throw new Error(`expected 1 import result, got ${results.length}`)
  const root = results[0].cid

  const v = {
    size,
    content_sha256: hash.digest('hex'),
    cid: root.toString(),
    codec: root.code === raw.code ? 'raw' : 'dag-pb',
    leaves: 0,
    depth: 0
  }

  const expectedLeaves = Math.max(1, Math.ceil(size / CHUNK_SIZE))
  if (store.rawLeafPuts !== expectedLeaves) {
    throw new Error(`size ${size}: ${store.rawLeafPuts} raw leaves written, expected ${expectedLeaves}`)
  }
  if (store.rawLeafBytes !== size) throw new Error(`size ${size}: leaf bytes ${store.rawLeafBytes}`)

  const { leaves, depth } = walk(store, root)
  if (leaves !== expectedLeaves) throw new Error(`size ${size}: DAG has ${leaves} leaves`)
  v.leaves = leaves
  v.depth = depth

  if (root.code === dagPb.code) {
    const rootBytes = store.dagPbBlocks.get(root.toString())
    const node = dagPb.decode(rootBytes)
    v.root_tsize = Number(results[0].size) // cumulative: block + sum of link Tsizes
    v.root_block_len = rootBytes.length
    v.root_links = node.Links.length
    v.root_block_hex = hex(rootBytes)
    if (depth >= 2) {
      v.children = node.Links.map((l) => l.Hash.toString())
      v.children_tsize = node.Links.map((l) => l.Tsize)
      v.children_block_hex = node.Links.map((l) => hex(store.dagPbBlocks.get(l.Hash.toString())))
    }
  } else {
    // single raw block: the CID is sha256 of the file itself
    const expected = createHash('sha256').update(PATTERN.subarray(0, size)).digest()
    if (!Buffer.from(root.multihash.digest).equals(expected)) throw new Error('raw root mismatch')
  }
  return v
}

const vectors = []
for (const size of SIZES) {
  const v = await makeVector(size)
  console.error(`${String(size).padStart(10)}  ${v.cid}  leaves=${v.leaves} depth=${v.depth}`)
  vectors.push(v)
}

const out = {
  description: 'CIDs of files whose byte at offset i is i % 251, as produced by the IPFS JS importer ' +
    'configured like `ipfs add --cid-version=1 --raw-leaves --chunker=size-1048576` ' +
    '(balanced layout, max 174 links per node). Regenerate: npm ci && node make-vectors.mjs',
  pattern: 'byte[i] = i % 251',
  importer: {
    package: 'ipfs-unixfs-importer',
    version: pkgVersion('ipfs-unixfs-importer'),
    dependencies: {
      '@ipld/dag-pb': pkgVersion('@ipld/dag-pb'),
      'ipfs-unixfs': pkgVersion('ipfs-unixfs'),
      multiformats: pkgVersion('multiformats')
    },
    options: {
      ...OPTION_VALUES,
      chunker: `fixedSize({ chunkSize: ${CHUNK_SIZE} })`,
      layout: `balanced({ maxChildrenPerNode: ${MAX_CHILDREN_PER_NODE} })`
    }
  },
  fields: {
    size: 'file size in bytes',
    content_sha256: 'sha256 of the whole file content (hex)',
    cid: 'root CID (CIDv1, sha2-256, base32)',
    codec: 'root codec: raw (0x55) or dag-pb (0x70)',
    leaves: 'number of raw leaf blocks',
    depth: '0 = root is the raw leaf, 1 = root links raw leaves, 2 = root links intermediate nodes',
    root_tsize: 'cumulative DAG size reported by the importer (root block length + sum of root link Tsizes)',
    root_block_len: 'length of the root dag-pb block',
    root_links: 'number of links in the root block',
    root_block_hex: 'exact bytes of the root dag-pb block',
    children: 'CIDs of the root links, in order (only when depth >= 2)',
    children_tsize: 'Tsize of each root link (only when depth >= 2)',
    children_block_hex: 'exact bytes of each child dag-pb block (only when depth >= 2)'
  },
  vectors
}

const path = new URL('./cid-vectors.json', import.meta.url)
writeFileSync(path, JSON.stringify(out, null, 2) + '\n')
console.error(`wrote ${path.pathname}`)
