// A small IPFS DHT for the tests: three Helia nodes serving Kademlia on
// /ipfs/kad/1.0.0 over TCP on loopback, connected to each other. It prints
// one JSON line with their multiaddrs, then takes commands on stdin, one a
// line, and answers each with one JSON line:
//
//   find <cid>     a new Helia node that knows only the DHT nodes finds the
//                  providers of <cid> there and, if there are any, fetches
//                  it over Bitswap: {cid, providers, len, sha256}
//   provide <file> a new Helia node adds <file> as `ipfs add --cid-version=1
//                  --raw-leaves --chunker=size-1048576` does and provides it
//                  on the DHT, then stays up: {cid, peer}
//
//   node dht.mjs
import './node20.mjs'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { unixfs } from '@helia/unixfs'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { noise } from '@libp2p/noise'
import { peerIdFromCID } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createHeliaLight } from 'helia'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'

// A node on loopback with the IPFS DHT; `server` answers DHT queries.
async function node (server, bootstrap = []) {
  const helia = withBitswap(withLibp2pLight(createHeliaLight(), {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      ping: ping(),
      // Loopback addresses are kept: this whole DHT lives on loopback.
      dht: kadDHT({
        protocol: '/ipfs/kad/1.0.0',
        clientMode: !server,
        peerInfoMapper: passthroughMapper,
        allowQueryWithZeroPeers: true
      })
    },
    connectionGater: { denyDialMultiaddr: () => false }
  }))
  await helia.start()
  for (const addr of bootstrap) {
    await helia.libp2p.dial(addr, { signal: AbortSignal.timeout(30_000) })
  }
  // A query started before identify has filled the routing table asks no one.
  for (let i = 0; bootstrap.length > 0 && i < 200; i++) {
    if (helia.libp2p.services.dht.routingTable.size > 0) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return helia
}

const servers = []
for (let i = 0; i < 3; i++) {
  servers.push(await node(true, servers.map((s) => s.libp2p.getMultiaddrs()[0])))
}
const serverIds = new Set(servers.map((s) => s.libp2p.peerId.toString()))
const print = (o) => console.log(JSON.stringify(o))
print({ servers: servers.map((s) => s.libp2p.getMultiaddrs()[0].toString()) })
const bootstrap = [servers[0].libp2p.getMultiaddrs()[0]]

const kept = []
for await (const line of createInterface({ input: process.stdin })) {
  const [command, arg] = line.trim().split(/\s+/)
  try {
    if (command === 'find') {
      const finder = await node(false, bootstrap)
      kept.push(finder)
      const cid = CID.parse(arg)
      const signal = AbortSignal.timeout(60_000)
      const providers = []
      for await (const p of finder.routing.findProviders(cid, { signal })) {
        // Helia names providers by peer id or by its CID form.
        const id = (p.id.toMultihash == null ? peerIdFromCID(p.id) : p.id).toString()
        if (!serverIds.has(id)) providers.push(id)
        if (providers.length > 0) break
      }
      if (providers.length === 0) {
        print({ cid: arg, providers })
        continue
      }
      const hash = createHash('sha256')
      let len = 0
      for await (const chunk of unixfs(finder).cat(cid, { signal })) {
        hash.update(chunk)
        len += chunk.length
      }
      print({ cid: arg, providers, len, sha256: hash.digest('hex') })
    } else if (command === 'provide') {
      const provider = await node(false, bootstrap)
      kept.push(provider)
      const cid = await unixfs(provider).addBytes(await readFile(arg), {
        cidVersion: 1,
        rawLeaves: true,
        chunker: fixedSize({ chunkSize: 1048576 }),
        layout: balanced({ maxChildrenPerNode: 174 })
      })
      await provider.routing.provide(cid, { signal: AbortSignal.timeout(60_000) })
      print({ cid: cid.toString(), peer: provider.libp2p.peerId.toString() })
    } else {
      print({ error: `unknown command ${command}` })
    }
  } catch (e) {
    print({ error: String(e.message ?? e) })
  }
}
for (const h of [...kept, ...servers]) await h.stop()
process.exit(0)
