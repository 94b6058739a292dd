// fileCid gives the CIDs the IPFS JS importer gave for tests/vectors.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileCid } from '../dist/swarmseed.js'

const vectors = JSON.parse(readFileSync(new URL('../../../tests/vectors/cid-vectors.json', import.meta.url), 'utf8'))

test('file CIDs match the reference importer', async () => {
  for (const v of vectors.vectors) {
    const bytes = new Uint8Array(v.size)
    for (let i = 0; i < v.size; i++) bytes[i] = i % 251
    assert.equal((await fileCid(bytes)).toString(), v.cid, `size ${v.size}`)
  }
})
