// The receipt this library signs is byte for byte the one in
// tests/vectors/receipt-js.json, which the Rust side opens and reproduces.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { vector } from './vector.mjs'

test('receipts encode and sign as the committed vector', async () => {
  const want = JSON.parse(readFileSync(new URL('../../../tests/vectors/receipt-js.json', import.meta.url), 'utf8'))
  assert.deepEqual(await vector(), want)
})
