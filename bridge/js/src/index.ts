/**
 * swarmseed's browser client library. See `client.ts`.
 */
export { SwarmseedClient, NoProviderError } from './client.js'
export type { ClientOptions, FetchOptions, Stats } from './client.js'
export { sealReceipt, encodeBody, SeqCounter, VERDICTS } from './receipts.js'
export type { Receipt, Verdict } from './receipts.js'
export { verifyBlock, rawCid, links } from './verify.js'
export { fileCid } from './unixfs.js'
export * as wire from './wire.js'
export * as blocks from './blocks.js'
export { HeldBlocks, BlockServer } from './serve.js'
export { generateKeyPair, generateKeyPairFromSeed, privateKeyFromRaw, privateKeyToProtobuf, privateKeyFromProtobuf } from '@libp2p/crypto/keys'
export { peerIdFromPrivateKey } from '@libp2p/peer-id'
export * from './loader.js'
