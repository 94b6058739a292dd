import { generateKeyPairFromSeed, peerIdFromPrivateKey, sealReceipt } from '../dist/swarmseed.js'

const hex = (b) => Buffer.from(b).toString('hex')

/** The receipt vector both sides check: fixed key, fixed fields. */
export async function vector () {
  const seed = Uint8Array.from({ length: 32 }, (_, i) => i + 1)
  const key = await generateKeyPairFromSeed('Ed25519', seed)
  const provider = peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(7))).toString()
  const receipt = {
    v: 1,
    cid: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy',
    seq: 1763862000123456,
    bytes: 59220,
    epoch: 3,
    video: 'bafyvideo',
    time_ms: 1763862000123,
    provider,
    receiver: peerIdFromPrivateKey(key).toString()
  }
  const signed = await sealReceipt(key, receipt)
  return { seed_hex: hex(seed), receipt, signed_hex: hex(signed) }
}
