// An IPFS peer that holds content, for the tests: Helia with TCP only and
// no routers adds each file given as `ipfs add --cid-version=1
// --raw-leaves --chunker=size-1048576` does, dials one daemon, and serves
// the blocks over Bitswap until its stdin closes.
// Prints one JSON line once connected: its peer id and per file the CID.
//
//   node provide.mjs <daemon multiaddr with /p2p/> <file>...
import './node20.mjs'
import { readFile } from 'node:fs/promises'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { unixfs } from '@helia/unixfs'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createHeliaLight } from 'helia'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'

const [addr, ...files] = process.argv.slice(2)
if (addr === undefined || files.length === 0) {
  console.error('usage: node provide.mjs <multiaddr> <file>...')
  process.exit(2)
}

const helia = withBitswap(withLibp2pLight(createHeliaLight(), {
  addresses: { listen: [] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { identify: identify() },
  connectionGater: { denyDialMultiaddr: () => false }
}))
await helia.start()
const fs = unixfs(helia)
const cids = []
for (const f of files) {
  const cid = await fs.addBytes(await readFile(f), {
    cidVersion: 1,
    rawLeaves: true,
    chunker: fixedSize({ chunkSize: 1048576 }),
    layout: balanced({ maxChildrenPerNode: 174 })
  })
  cids.push(cid.toString())
}
await helia.libp2p.dial(multiaddr(addr), { signal: AbortSignal.timeout(60_000) })
console.log(JSON.stringify({ peer: helia.libp2p.peerId.toString(), cids }))
process.stdin.resume()
process.stdin.on('end', async () => {
  await helia.stop()
  process.exit(0)
})
