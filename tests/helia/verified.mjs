// An HTTP client of the daemon's trustless gateway, for the tests:
// @helia/verified-fetch, with the daemon as its only gateway and no
// routers or network of its own, reads each CID given; @ipld/car parses
// the CAR the daemon sends for it, and every block is hashed against its
// CID. Then the same reads go through a proxy that alters one byte of every
// body, and verified-fetch must refuse them.
// Prints one JSON line: per CID, what each reader got.
//
//   node verified.mjs <gateway URL> <cid>...
import './node20.mjs'
import { createHash } from 'node:crypto'
import http from 'node:http'
import { fallbackRouter } from '@helia/fallback-router'
import { trustlessGatewayBlockBroker } from '@helia/trustless-gateway-client'
import { createVerifiedFetch } from '@helia/verified-fetch'
import { CarBlockIterator } from '@ipld/car'
import { createHeliaLight } from 'helia'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

const [gateway, ...cids] = process.argv.slice(2)
if (gateway === undefined || cids.length === 0) {
  console.error('usage: node verified.mjs <gateway URL> <cid>...')
  process.exit(2)
}

const hex = (bytes) => createHash('sha256').update(bytes).digest('hex')

// verified-fetch over a Helia node whose only source is `url`. The router
// names the gateway as a provider of every CID. It is not marked as a
// fallback router: Helia 7 waits for ever on its default routers when there
// are none.
async function verifiedFetchFrom (url) {
  const gateways = fallbackRouter({ gateways: [url], shuffle: false })
  const helia = await createHeliaLight({
    blockBrokers: [trustlessGatewayBlockBroker({ allowInsecure: true, allowLocal: true })],
    routers: [{
      name: 'daemon-gateway',
      findProviders: (cid, options) => gateways.findProviders(cid, options)
    }]
  })
  await helia.start()
  return { helia, fetch: await createVerifiedFetch(helia) }
}

// The bytes of ipfs://cid, or why there are none.
async function read (fetch, cid, ms) {
  try {
    const res = await fetch(`ipfs://${cid}`, { signal: AbortSignal.timeout(ms) })
    if (!res.ok) return { status: res.status }
    const body = new Uint8Array(await res.arrayBuffer())
    return { status: res.status, len: body.length, sha256: hex(body) }
  } catch (e) {
    return { error: String(e.message ?? e) }
  }
}

// The CAR of `cid` with duplicates kept: its raw leaves in depth-first
// order are the file's bytes. Every block must hash to its CID.
async function readCar (cid) {
  const res = await fetch(`${gateway}/ipfs/${cid}?format=car&car-dups=y`, {
    headers: { accept: 'application/vnd.ipld.car; version=1; order=dfs; dups=y' }
  })
  if (!res.ok) return { status: res.status }
  const iterator = await CarBlockIterator.fromIterable(res.body)
  const roots = (await iterator.getRoots()).map(String)
  const leaves = []
  let blocks = 0
  let verified = 0
  for await (const { cid: c, bytes } of iterator) {
    blocks++
    const digest = await sha256.digest(bytes)
    if (c.multihash.code === sha256.code && equal(digest.digest, c.multihash.digest)) verified++
    if (c.code === 0x55) leaves.push(bytes)
  }
  const file = Buffer.concat(leaves)
  return {
    status: res.status,
    content_type: res.headers.get('content-type'),
    roots,
    blocks,
    verified,
    len: file.length,
    sha256: hex(file)
  }
}

function equal (a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

// A gateway that lies: it forwards to the daemon and flips one byte in the
// middle of every body it returns. It counts the bodies it altered.
async function lyingProxy () {
  const upstream = new URL(gateway)
  const altered = { count: 0 }
  const server = http.createServer((req, res) => {
    const out = http.request({
      host: upstream.hostname,
      port: upstream.port,
      path: req.url,
      method: req.method,
      headers: { ...req.headers, host: upstream.host }
    }, (up) => {
      const chunks = []
      up.on('data', (c) => chunks.push(c))
      up.on('end', () => {
        const body = Buffer.concat(chunks)
        if (body.length > 0) {
          body[body.length >> 1] ^= 0x01
          altered.count++
        }
        const headers = { ...up.headers, 'content-length': body.length }
        delete headers['transfer-encoding']
        res.writeHead(up.statusCode, headers)
        res.end(body)
      })
    })
    out.on('error', () => { res.writeHead(502); res.end() })
    req.pipe(out)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, altered, url: `http://127.0.0.1:${server.address().port}` }
}

const honest = await verifiedFetchFrom(gateway)
const proxy = await lyingProxy()
const liar = await verifiedFetchFrom(proxy.url)
const files = []
for (const c of cids) {
  CID.parse(c)
  files.push({
    cid: c,
    verified_fetch: await read(honest.fetch, c, 30_000),
    car: await readCar(c),
    // A client that refuses every body retries until it gives up.
    through_liar: await read(liar.fetch, c, 5_000)
  })
}
console.log(JSON.stringify({ files, liar_altered: proxy.altered.count }))
await honest.helia.stop()
await liar.helia.stop()
proxy.server.close()
process.exit(0)
