// What every headless viewer (viewers.mjs, p2pml_viewers.mjs) does around
// its own protocol: play a list of segments in real time, count stalls, and
// start many viewers spread over time as bench/capacity.py's Python players
// are.

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
export const now = () => performance.now() / 1000

/**
 * Plays `cfg.segments` with `fetchOne(segment, k)`, which resolves with the
 * bytes received. Playback starts when segment 0 is in and runs in real
 * time (`cfg.seg_s` a segment; 0: no pacing); no segment is asked for more
 * than `cfg.ahead` beyond the playhead. Adds to `out`: startup_s (from
 * `t0`), stalls and stalled_s, fetched and bytes.
 */
export async function play (cfg, out, t0, fetchOne) {
  let started = null
  for (const [k, seg] of cfg.segments.entries()) {
    if (started !== null) {
      const wait = started + (k - cfg.ahead) * cfg.seg_s - now()
      if (wait > 0) await sleep(wait * 1000)
    }
    out.bytes += await fetchOne(seg, k)
    out.fetched++
    const t = now()
    if (started === null) {
      started = t
      out.startup_s = t - t0
    } else if (t > started + k * cfg.seg_s) {
      out.stalls++
      out.stalled_s += t - (started + k * cfg.seg_s)
    }
  }
}

/**
 * Runs `cfg.viewers` viewers, `viewer(n)` each, their starts spread over
 * `cfg.spread_s` as the Python players' are (from a fixed seed); prints
 * one JSON line of their results and exits.
 */
export async function runAll (cfg, viewer) {
  let seed = cfg.viewers
  const random = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
  const results = await Promise.all(Array.from({ length: cfg.viewers }, async (_, n) => {
    await sleep(random() * cfg.spread_s * 1000)
    return await viewer(n)
  }))
  process.stdout.write(JSON.stringify(results) + '\n')
  process.exit(0)
}
