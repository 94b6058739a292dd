// A hand-made p2p-media-loader peer: plain RTCPeerConnections and
// WebSockets speaking the tracker protocol and the data-channel commands byte
// by byte. tests/support/p2pml_raw.rs runs it in headless Chromium (the tests
// that must say what no library peer says); tools/p2pml_viewers.mjs runs it in
// Node.js over node-datachannel (the capacity benchmark's viewers).
//
// Sets `window.rawPeers`; see p2pml_raw.rs for what each call does.
const peers = []
const sockets = []
const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
const unb64 = (s) => Uint8Array.from(atob(s), c => c.charCodeAt(0))
const randomId = () => Array.from(crypto.getRandomValues(new Uint8Array(20)), b => String.fromCharCode(b)).join('')
function gathered(pc) {
  return new Promise(resolve => {
    if (pc.iceGatheringState === 'complete') return resolve()
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve()
    })
  })
}
function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.onopen = () => resolve(ws)
    ws.onerror = () => reject(new Error(`cannot open ${url}`))
  })
}
window.rawPeers = {
  async connect(tracker, infoHash, peerId, timeoutMs = 20000) {
    const ws = await open(tracker)
    const pc = new RTCPeerConnection({ iceServers: [] })
    const dc = pc.createDataChannel(randomId().slice(0, 8))
    dc.binaryType = 'arraybuffer'
    const peer = { ws, pc, dc, messages: [], bytes: 0, closed: false, tracker: [] }
    dc.onmessage = (e) => { peer.messages.push(b64(e.data)); peer.bytes += e.data.byteLength }
    dc.onclose = () => { peer.closed = true }
    await pc.setLocalDescription(await pc.createOffer())
    await gathered(pc)
    const offerId = randomId()
    const answered = new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no answer from the seeder')), timeoutMs)
      ws.onmessage = async (m) => {
        const msg = JSON.parse(m.data)
        peer.tracker.push(msg)
        if (msg.answer && msg.offer_id === offerId) {
          clearTimeout(t)
          await pc.setRemoteDescription(msg.answer)
          resolve()
        }
      }
    })
    ws.send(JSON.stringify({
      action: 'announce', info_hash: infoHash, peer_id: peerId, numwant: 1,
      uploaded: 0, downloaded: 0, event: 'started',
      offers: [{ offer: { type: 'offer', sdp: pc.localDescription.sdp }, offer_id: offerId }],
    }))
    await answered
    if (dc.readyState !== 'open') {
      await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('channel never opened')), timeoutMs)
        dc.onopen = () => { clearTimeout(t); resolve() }
      })
    }
    peers.push(peer)
    return peers.length - 1
  },
  // Announces with no offers of its own and answers the first offer
  // relayed to it: a peer that only the seeder's own offers can reach.
  async accept(tracker, infoHash, peerId, timeoutMs = 30000) {
    const ws = await open(tracker)
    const pc = new RTCPeerConnection({ iceServers: [] })
    const peer = { ws, pc, dc: null, messages: [], bytes: 0, closed: false, tracker: [], from: null }
    const channel = new Promise(resolve => { pc.ondatachannel = e => resolve(e.channel) })
    const offered = new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no offer relayed')), timeoutMs)
      ws.onmessage = (m) => {
        const msg = JSON.parse(m.data)
        peer.tracker.push(msg)
        if (msg.offer && !peer.from) { clearTimeout(t); peer.from = msg.peer_id; resolve(msg) }
      }
    })
    const announce = () => ws.send(JSON.stringify({
      action: 'announce', info_hash: infoHash, peer_id: peerId, numwant: 0,
      uploaded: 0, downloaded: 0, event: 'started', offers: [],
    }))
    announce()
    const offer = await offered
    await pc.setRemoteDescription(offer.offer)
    await pc.setLocalDescription(await pc.createAnswer())
    await gathered(pc)
    ws.send(JSON.stringify({
      action: 'announce', info_hash: infoHash, peer_id: peerId,
      to_peer_id: offer.peer_id, offer_id: offer.offer_id,
      answer: { type: 'answer', sdp: pc.localDescription.sdp },
    }))
    const dc = await channel
    dc.binaryType = 'arraybuffer'
    peer.dc = dc
    dc.onmessage = (e) => { peer.messages.push(b64(e.data)); peer.bytes += e.data.byteLength }
    dc.onclose = () => { peer.closed = true }
    if (dc.readyState !== 'open') await new Promise(r => { dc.onopen = r })
    peers.push(peer)
    return peers.length - 1
  },
  from(i) { return peers[i].from },
  send(i, message) { peers[i].dc.send(unb64(message)) },
  // A slice at a time: DevTools messages are bounded (16 MiB).
  messagesFrom(i, start, max = 64) { return peers[i].messages.slice(start, start + max) },
  count(i) { return peers[i].messages.length },
  bytes(i) { return peers[i].bytes },
  closed(i) { return peers[i].closed },
  close(i) { peers[i].pc.close(); peers[i].ws.close() },
  async ws(tracker) { sockets.push(await open(tracker)); return sockets.length - 1 },
  wsSend(i, text) { sockets[i].send(text) },
  wsState(i) { return sockets[i].readyState },
  // Requests `ids` one after another on peer i's channel, as a player
  // does (one request in flight per peer), and times them in the page
  // from the first request to the last SegmentDataSendingCompleted:
  // `{ms, bytes, sizes, stray}`, bytes being the data bytes received after
  // each header. The messages are counted, not kept (the `messages` log is
  // paused meanwhile), so the figure is the transfer's, not base64's.
  fetchSegments(i, ids, firstRequestId = 0, timeoutMs = 60000) {
    const peer = peers[i]
    const dc = peer.dc
    const saved = dc.onmessage
    const tag = (b, at) => String.fromCharCode(b[at], b[at + 1], b[at + 2], b[at + 3])
    // Fields of a command payload (after the code byte): ints only, which
    // is all SegmentData, SegmentDataSendingCompleted and SegmentAbsent hold.
    const ints = (p) => {
      const out = {}
      for (let at = 1; at < p.length;) {
        const name = String.fromCharCode(p[at]); const n = p[at + 1] & 0x0f
        if (p[at + 1] >> 4 !== 0) throw new Error(`field ${name}: not an int`)
        let v = p[at + 2] & 0x7f
        for (let k = 1; k < n; k++) v = v * 256 + p[at + 2 + k]
        out[name] = p[at + 2] & 0x80 ? -v : v
        at += 2 + n
      }
      return out
    }
    const int = (v) => {
      const b = []
      do { b.unshift(v % 256); v = Math.floor(v / 256) } while (v > 0)
      if (b[0] & 0x80) b.unshift(0)
      return [b.length, ...b]
    }
    const enc = (s) => [...s].map(c => c.charCodeAt(0))
    const request = (id, r) => new Uint8Array([
      ...enc('cstr'), 1, ...enc('i'), ...int(id), ...enc('r'), ...int(r), ...enc('cend'),
    ])
    return new Promise((resolve, reject) => {
      const sizes = []
      let bytes = 0
      let stray = 0
      let k = -1
      let cur = null
      let timer = null
      const t0 = performance.now()
      const fail = (e) => { clearTimeout(timer); dc.onmessage = saved; reject(e) }
      const next = () => {
        clearTimeout(timer)
        k++
        if (k === ids.length) {
          const ms = performance.now() - t0
          dc.onmessage = saved
          return resolve({ ms, bytes, sizes, stray })
        }
        cur = { id: ids[k], r: (firstRequestId + k) % 1000, size: null, got: 0 }
        timer = setTimeout(() => fail(new Error(`segment ${cur.id}: no completion in ${timeoutMs} ms (${cur.got} bytes)`)), timeoutMs)
        dc.send(request(cur.id, cur.r))
      }
      dc.onmessage = (e) => {
        const b = new Uint8Array(e.data)
        const n = b.length
        const head = n >= 8 ? tag(b, 0) : ''
        const tail = n >= 8 ? tag(b, n - 4) : ''
        const frame = (head === 'cstr' || head === 'dstr') && (tail === 'cend' || tail === 'dend')
        if (!frame) {
          if (cur && cur.size !== null) cur.got += n; else stray += n
          return
        }
        // Split commands are announcements only (ids lists): not ours.
        if (head !== 'cstr' || tail !== 'cend') return
        const p = b.subarray(4, n - 4)
        const code = p[0]
        if (code !== 2 && code !== 3 && code !== 4) return
        let f
        try { f = ints(p) } catch (err) { return fail(err) }
        if (!cur || f.i !== cur.id || f.r !== cur.r) return fail(new Error(`unexpected command ${code} ${JSON.stringify(f)}`))
        if (code === 4) return fail(new Error(`segment ${cur.id} absent`))
        if (code === 2) { cur.size = f.s; return }
        if (cur.size === null || cur.got !== cur.size) return fail(new Error(`segment ${cur.id}: ${cur.got} bytes, header said ${cur.size}`))
        sizes.push(cur.got)
        bytes += cur.got
        next()
      }
      next()
    })
  },
}
window.bridgeReady = true
