/**
 * Batches receipts per daemon and sends them on `/swarmseed/receipts/1.0.0`
 * (`daemon/src/receipts/wire.rs`): a varint count, then per receipt a varint
 * length and the signed bytes; the daemon answers one verdict byte each.
 * Receipts for blocks taken from a daemon's trustless gateway go back to
 * that gateway over HTTP instead (`gateways.ts`).
 *
 * Batches to one daemon go one after another, so the daemon sees seq
 * numbers in order.
 */
import type { Stream } from '@libp2p/interface'
import { MAX_BATCH, PROTOCOL, SeqCounter, VERDICTS, sealReceipt, type Receipt, type Signer } from './receipts.js'
import type { Stats } from './client.js'
import { Reader, concat, varint, write } from './wire.js'
import { postReceipts } from './gateways.js'

export interface Delivery {
  cid: string
  bytes: number
  epoch: number
  provider: string
  video: string
  /** The trustless gateway the block came from, if it came over HTTP. */
  gateway?: string
}

export interface SenderInit {
  key: Signer
  receiver: string
  lingerMs: number
  open: (peer: string, protocol: string) => Promise<Stream>
  stats: Stats
  emit: (type: string, detail: unknown) => void
}

export class ReceiptSender {
  private readonly seq = new SeqCounter()
  private readonly pending = new Map<string, Receipt[]>()
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>()
  /** The last batch sent to each daemon; the next waits for it. */
  private readonly chains = new Map<string, Promise<void>>()
  /** Daemons reached over their trustless gateway: where their receipts go. */
  private readonly gateways = new Map<string, string>()

  constructor (private readonly init: SenderInit) {}

  /** Queues a receipt for a verified block. */
  record (d: Delivery): void {
    const r: Receipt = {
      v: 1,
      cid: d.cid,
      seq: this.seq.next(),
      bytes: d.bytes,
      epoch: d.epoch,
      video: d.video,
      time_ms: Date.now(),
      provider: d.provider,
      receiver: this.init.receiver
    }
    if (d.gateway !== undefined) this.gateways.set(d.provider, d.gateway)
    const queue = this.pending.get(d.provider) ?? []
    queue.push(r)
    this.pending.set(d.provider, queue)
    if (queue.length >= MAX_BATCH) {
      this.send(d.provider)
    } else if (!this.timers.has(d.provider)) {
      this.timers.set(d.provider, setTimeout(() => { this.send(d.provider) }, this.init.lingerMs))
    }
  }

  /** Sends what waits for `peer` now, after the batch before it. */
  private send (peer: string): void {
    const timer = this.timers.get(peer)
    if (timer !== undefined) clearTimeout(timer)
    this.timers.delete(peer)
    const batch = this.pending.get(peer) ?? []
    this.pending.delete(peer)
    if (batch.length === 0) return
    const before = this.chains.get(peer) ?? Promise.resolve()
    const done = before.then(async () => { await this.deliver(peer, batch) })
    this.chains.set(peer, done)
  }

  private async deliver (peer: string, batch: Receipt[]): Promise<void> {
    const { stats, emit } = this.init
    try {
      const signed = await Promise.all(batch.map(async r => await sealReceipt(this.init.key, r)))
      const gateway = this.gateways.get(peer)
      if (gateway !== undefined) {
        stats.receiptsSent += batch.length
        const verdicts = await postReceipts(gateway, signed)
        this.count(verdicts)
        emit('receipts', { peer, count: batch.length, verdicts })
        return
      }
      const msg = concat([varint(signed.length), ...signed.flatMap(s => [varint(s.length), s])])
      const stream = await this.init.open(peer, PROTOCOL)
      const reader = new Reader(stream)
      try {
        await write(stream, msg)
        stats.receiptsSent += batch.length
        const answer = await reader.exact(batch.length)
        this.count(Array.from(answer, b => VERDICTS[b] ?? 'unknown'))
        emit('receipts', { peer, count: batch.length, verdicts: Array.from(answer, b => VERDICTS[b] ?? 'unknown') })
      } finally {
        reader.release()
        // All verdicts are in; no FIN_ACK comes from rust-libp2p, so do not wait.
        stream.close().catch(() => {})
      }
    } catch (e) {
      stats.receiptsLost += batch.length
      emit('receipts-error', { peer, count: batch.length, error: String(e) })
    }
  }

  private count (verdicts: string[]): void {
    const { stats } = this.init
    for (const v of verdicts) {
      stats.verdicts[v] = (stats.verdicts[v] ?? 0) + 1
      if (v === 'accepted') stats.receiptsAccepted++
      else stats.receiptsRefused++
    }
  }

  /** Sends everything queued and waits for every answer. */
  async flush (): Promise<void> {
    for (const peer of [...this.pending.keys()]) this.send(peer)
    await Promise.all([...this.chains.values()])
  }
}
