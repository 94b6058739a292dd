// Writes tests/vectors/receipt-js.json: a receipt signed by this library
// with a fixed Ed25519 seed. The Rust side (proofs/src/receipt.rs tests)
// opens it and signs the same receipt to the same bytes; test/receipt.test.mjs
// checks this library still produces them. Run after `npm run build`.
import { writeFileSync } from 'node:fs'
import { vector } from '../test/vector.mjs'

const v = await vector()
writeFileSync(new URL('../../../tests/vectors/receipt-js.json', import.meta.url), JSON.stringify(v, null, 2) + '\n')
console.log(v.signed_hex)
