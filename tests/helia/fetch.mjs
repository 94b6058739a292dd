// An IPFS peer for the tests: Helia, with TCP only and no routers, dials
// one daemon and fetches each CID given over Bitswap with @helia/unixfs.
// Prints one JSON line: the protocols the daemon lists in identify, and per
// CID its length and sha-256.
//
//   node fetch.mjs <daemon multiaddr with /p2p/> <cid>...
import './node20.mjs'
import { createHash } from 'node:crypto'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { unixfs } from '@helia/unixfs'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createHeliaLight } from 'helia'
import { CID } from 'multiformats/cid'

const [addr, ...cids] = process.argv.slice(2)
if (addr === undefined || cids.length === 0) {
  console.error('usage: node fetch.mjs <multiaddr> <cid>...')
  process.exit(2)
}

// No bootstrap, no delegated routing, no HTTP gateways: only the daemon.
const helia = withBitswap(withLibp2pLight(createHeliaLight(), {
  addresses: { listen: [] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { identify: identify() },
  // The daemon is on loopback, which libp2p refuses to dial by default.
  connectionGater: { denyDialMultiaddr: () => false }
}))
await helia.start()
const signal = AbortSignal.timeout(60_000)
// What the daemon lists in identify over TCP, as js-libp2p reads it.
const identified = new Promise((resolve) => {
  helia.libp2p.addEventListener('peer:identify', (e) => resolve(e.detail.protocols))
})
await helia.libp2p.dial(multiaddr(addr), { signal })
const protocols = await Promise.race([identified, new Promise((resolve) => setTimeout(() => resolve(null), 20_000))])
const fs = unixfs(helia)
const files = []
for (const c of cids) {
  const hash = createHash('sha256')
  let len = 0
  for await (const chunk of fs.cat(CID.parse(c), { signal })) {
    hash.update(chunk)
    len += chunk.length
  }
  files.push({ cid: c, len, sha256: hash.digest('hex') })
}
console.log(JSON.stringify({ peer: helia.libp2p.peerId.toString(), protocols, files }))
await helia.stop()
