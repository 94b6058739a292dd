// js-libp2p 3 and Helia 7 use Promise.withResolvers, which Node.js has
// from version 22; Debian's Node.js 20 runs them with this in place.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
