#!/usr/bin/env python3
"""Contribution-proofs benchmarks for swarmseed, called by bench/run.sh.

1. Takes the JSON of `proofs/examples/receipt_rate.rs` (receipts signed and
   verified per second, SHA-256 of a 1 MiB block as the same-run reference,
   Merkle roots and proofs over an epoch) from --rate-json.
2. Measures the cost of receipts on the peer fetch path: a seeder daemon seeds
   a playlist of 1 MiB random segments from the nginx origin run.sh runs; fresh
   viewer daemons, one per repetition, alternately with receipts on
   (`[proofs] send_receipts = true`, the default) and off, GET every segment
   through their gateway (each one a peer fetch from the seeder).
   Throughput on and off and their ratio, same bytes, same run.

Writes the "## Contribution proofs" section of RESULTS.md to --out (markdown)
and raw figures to --raw (JSON). Reuses bench/swarm.py's daemon and HTTP
helpers. Python 3.11 standard library only; everything on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

# Importing bench/swarm.py must not leave a __pycache__ in the repository.
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import swarm as sw  # noqa: E402  (bench/swarm.py)
from swarm import BenchError, Daemon, Http, log  # noqa: E402

SEGMENTS = int(os.environ.get("PROOFS_SEGMENTS", "64"))
SEGMENT_BYTES = 1 << 20
# Pairs of viewers (one with receipts on, one off), in ABBA order.
PAIRS = int(os.environ.get("PROOFS_PAIRS", "6"))
# The seeder's max_unreceipted_bytes: far above what a viewer with receipts
# off takes in one repetition, so it is never served last (default 32 MiB).
SEEDER_MAX_UNRECEIPTED = os.environ.get("PROOFS_MAX_UNRECEIPTED", "64 GiB")
DEFAULT_MAX_UNRECEIPTED_MIB = 32
# After the last GET: time for the receipts still lingering (50 ms) to reach
# the seeder before its ledger is read.
SETTLE_S = 0.5
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    """user + system ticks of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def machine_busy() -> int:
    """Busy ticks of the whole machine (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def with_proofs(d: Daemon, lines: list[str]) -> Daemon:
    """Appends a [proofs] table to the config swarm.py's Daemon wrote (its last table is [p2p])."""
    with open(d.config, "a") as f:
        f.write("[proofs]\n" + "".join(ln + "\n" for ln in lines))
    return d


def make_content(origin: sw.Origin) -> tuple[str, str, list[str]]:
    """SEGMENTS segments of 1 MiB random bytes, as swarm.py's peer-fetch
    content but under /proofs/: (media, master, segment URLs)."""
    return sw.make_random_vod(origin, "proofs/pf", SEGMENTS, SEGMENT_BYTES)


def ledger_of(seeder: Daemon, peer: str) -> dict:
    for line in seeder.http.json("/api/v1/proofs/peers"):
        if line["peer"] == peer:
            return line
    return {"peer": peer, "bytes_sent": 0, "bytes_receipted": 0, "bytes_unreceipted": 0,
            "receipts": 0, "receipts_refused": 0, "deprioritized": False}


def one_viewer(args, origin: sw.Origin, root: Path, seeder: Daemon, master: str, name: str,
               receipts: bool) -> dict:
    """A fresh viewer fetches every segment from the seeder through its gateway."""
    v = Daemon(args.bin, root, name, bootstrap=[seeder.addr], trusted=[seeder.peer_id], prefetch=0)
    if not receipts:
        with_proofs(v, ["send_receipts = false"])
    v.start()
    try:
        h = Http(v.url)
        # The master joins the video's room and waits for the seeder's map.
        media = sw.uri_lines(h.get(sw.hls_path(master)))
        paths = sw.media_paths(h.get(media[0]))
        if len(paths) != SEGMENTS:
            raise BenchError(f"{name}: playlist names {len(paths)} segments")
        s0 = v.stats()
        seeder0 = seeder.stats()
        c0 = (cpu_ticks(v.proc.pid), cpu_ticks(seeder.proc.pid))
        bodies, times = [], []
        t_all = time.perf_counter()
        for p in paths:
            t = time.perf_counter()
            bodies.append(h.get(p))
            times.append(time.perf_counter() - t)
        wall = time.perf_counter() - t_all
        c1 = (cpu_ticks(v.proc.pid), cpu_ticks(seeder.proc.pid))
        # Checked after the clock stops, so the client's hashing leaves no
        # idle gaps in which the daemons could catch up on receipts.
        for p, body in zip(paths, bodies):
            origin.check(p, body)
        time.sleep(SETTLE_S)
        c2 = (cpu_ticks(v.proc.pid), cpu_ticks(seeder.proc.pid))
        s1 = v.stats()
        seeder1 = seeder.stats()
        ledger = ledger_of(seeder, v.peer_id)
        h.close()
    finally:
        v.stop()
    nbytes = sum(len(b) for b in bodies)
    r = {
        "name": name, "receipts": receipts, "bytes": nbytes, "seconds": wall,
        "mib_per_s": nbytes / 1048576 / wall,
        "get_ms": [x * 1000 for x in times],
        "get_p50_ms": statistics.median(times) * 1000,
        "get_max_ms": max(times) * 1000,
        "p2p_delta": s1["bytes_from_p2p"] - s0["bytes_from_p2p"],
        "cdn_delta": s1["bytes_from_cdn"] - s0["bytes_from_cdn"],
        # CPU of each daemon over the GETs, and over the GETs plus the settle time.
        "viewer_cpu_ms": (c1[0] - c0[0]) * 1000 / CLK_TCK,
        "seeder_cpu_ms": (c1[1] - c0[1]) * 1000 / CLK_TCK,
        "viewer_cpu_ms_settled": (c2[0] - c0[0]) * 1000 / CLK_TCK,
        "seeder_cpu_ms_settled": (c2[1] - c0[1]) * 1000 / CLK_TCK,
        "seeder_receipts_accepted": seeder1.get("receipts_accepted", 0) - seeder0.get("receipts_accepted", 0),
        "seeder_receipts_refused": seeder1.get("receipts_refused", 0) - seeder0.get("receipts_refused", 0),
        "seeder_peers_deprioritized": seeder1.get("peers_deprioritized"),
        "ledger": ledger,
        "receipt_batches": sw.log_count([v], "receipts delivered"),
        "warn_error_lines": sw.warn_count([v]),
    }
    log(f"{name}: {r['mib_per_s']:.1f} MiB/s ({nbytes} B in {wall * 1000:.0f} ms, GET p50 "
        f"{r['get_p50_ms']:.2f} ms); p2p +{r['p2p_delta']}, cdn +{r['cdn_delta']}; seeder ledger: "
        f"sent {ledger['bytes_sent']}, receipted {ledger['bytes_receipted']} in "
        f"{ledger['receipts']} receipts ({r['receipt_batches']} batches), deprioritized "
        f"{ledger['deprioritized']}; CPU ms viewer {r['viewer_cpu_ms']:.0f} seeder {r['seeder_cpu_ms']:.0f}")
    if r["p2p_delta"] != SEGMENTS * SEGMENT_BYTES or r["cdn_delta"] != 0:
        raise BenchError(f"{name}: not every segment came from the seeder: p2p +{r['p2p_delta']}, "
                         f"cdn +{r['cdn_delta']}")
    return r


def nginx_reference(origin: sw.Origin, media: str, urls: list[str]) -> dict:
    """The same client code, the same files, straight from nginx."""
    n = Http(origin.base)
    n.get(urllib.parse.urlsplit(media).path)  # opens the keep-alive connection
    times = []
    t_all = time.perf_counter()
    total = 0
    for u in urls:
        t = time.perf_counter()
        total += len(n.get(urllib.parse.urlsplit(u).path))
        times.append(time.perf_counter() - t)
    wall = time.perf_counter() - t_all
    n.close()
    return {"bytes": total, "seconds": wall, "mib_per_s": total / 1048576 / wall,
            "get_p50_ms": statistics.median(times) * 1000}


def fetch_path(args, origin: sw.Origin) -> dict:
    b0 = machine_busy()
    time.sleep(2)
    idle_load = (machine_busy() - b0) / CLK_TCK / 2
    log(f"background load before the runs: {idle_load:.2f} cores")
    media, master, urls = make_content(origin)
    root = sw.fresh_root(args.work, "receipts")
    seeder = with_proofs(Daemon(args.bin, root, "seeder"),
                         [f"max_unreceipted_bytes = {json.dumps(SEEDER_MAX_UNRECEIPTED)}"])
    seeder.start()
    t = time.perf_counter()
    seeder.seed(master)
    log(f"seeder seeded {SEGMENTS} × 1 MiB in {time.perf_counter() - t:.1f} s")
    busy0, t0 = machine_busy(), time.monotonic()
    runs: list[dict] = []
    warm: list[dict] = []
    nginx: list[dict] = []
    # One of each first, not counted: the seeder's caches and the page cache warm up.
    for on in (True, False):
        warm.append(one_viewer(args, origin, root, seeder, master, f"warm-{'on' if on else 'off'}", on))
    for i in range(PAIRS):
        order = (True, False) if i % 2 == 0 else (False, True)
        for on in order:
            runs.append(one_viewer(args, origin, root, seeder, master,
                                   f"{'on' if on else 'off'}{i + 1}", on))
        nginx.append(nginx_reference(origin, media, urls))
    load = (machine_busy() - busy0) / CLK_TCK / (time.monotonic() - t0)
    seeder_ledger = seeder.http.json("/api/v1/proofs/peers")
    seeder_stats = seeder.stats()
    seeder_warn = sw.warn_count([seeder])
    Daemon.stop_all([seeder])
    on = [r for r in runs if r["receipts"]]
    off = [r for r in runs if not r["receipts"]]
    med = lambda rs, k: statistics.median(r[k] for r in rs)  # noqa: E731
    pair_ratios = []
    for i in range(PAIRS):
        a, b = runs[2 * i], runs[2 * i + 1]
        ron, roff = (a, b) if a["receipts"] else (b, a)
        pair_ratios.append(ron["mib_per_s"] / roff["mib_per_s"])
    out = {
        "segments": SEGMENTS, "segment_bytes": SEGMENT_BYTES, "pairs": PAIRS,
        "seeder_max_unreceipted_bytes": SEEDER_MAX_UNRECEIPTED,
        "runs": runs, "warmup": warm, "nginx": nginx,
        "on_mib_per_s": med(on, "mib_per_s"), "off_mib_per_s": med(off, "mib_per_s"),
        "nginx_mib_per_s": statistics.median(x["mib_per_s"] for x in nginx),
        "on_get_p50_ms": med(on, "get_p50_ms"), "off_get_p50_ms": med(off, "get_p50_ms"),
        "pair_ratios": pair_ratios,
        "on_viewer_cpu_ms": med(on, "viewer_cpu_ms_settled"),
        "off_viewer_cpu_ms": med(off, "viewer_cpu_ms_settled"),
        "on_seeder_cpu_ms": med(on, "seeder_cpu_ms_settled"),
        "off_seeder_cpu_ms": med(off, "seeder_cpu_ms_settled"),
        "seeder_ledger": seeder_ledger, "seeder_stats": seeder_stats,
        "seeder_warn_error_lines": seeder_warn, "logs": str(root),
        "background_load_cores": idle_load, "machine_busy_cores_during": load,
        "cpus": os.cpu_count(),
    }
    out["ratio_on_off"] = out["on_mib_per_s"] / out["off_mib_per_s"]
    log(f"receipts on {out['on_mib_per_s']:.1f} MiB/s, off {out['off_mib_per_s']:.1f} MiB/s: "
        f"ratio {out['ratio_on_off']:.3f} (pairs: {', '.join(f'{x:.3f}' for x in pair_ratios)}); "
        f"nginx {out['nginx_mib_per_s']:.1f} MiB/s")
    return out


# ---------------------------------------------------------------- report
def report(r: dict) -> str:
    L: list[str] = []
    a = L.append
    a("## Contribution proofs")
    a("")
    a(f"Proofs section run: {r['date']}, swarmseed {r['rev']}.")
    a("")
    x = r.get("rate")
    a("### Receipts signed and verified per second")
    a("")
    if x is None:
        a("(not measured: the receipt_rate example did not run)")
    else:
        sha = x["sha256_1mib_block"]
        a("Method: `cargo run --release -p swarmseed-proofs --example receipt_rate` "
          f"(`proofs/examples/receipt_rate.rs`), one thread, each figure counted over "
          f"{x['seconds_per_measurement']:g} s. A realistic receipt ({x['receipt_bytes']} B signed "
          "DAG-CBOR): provider and receiver peer ids of `Keypair::generate_ed25519()` keys, the CIDv1 "
          "(raw, sha2-256) of a 1 MiB block, a video id (a master playlist URL). *Sign*: build the "
          "`Receipt` and `.sign(&keypair)` it, as the receiver's sender does per block. *Verify*: "
          "`SignedReceipt::open` (decode, canonical re-encode, both peer ids, CID, Ed25519 signature), "
          "as the provider does per receipt. Reference, same run: SHA-256 of the 1 MiB block the "
          "receipt covers (`sha2`), the CID check a receiver already does for every block it takes "
          "from a peer (the daemon's own hash, `multihash-codetable`, measured alongside: "
          f"{x['sha256_1mib_block_multihash_codetable']['us_per_op']:.0f} µs). Epoch: "
          f"`merkle::Tree::new` + `root()` over {x['merkle_leaves']} receipt hashes; inclusion "
          f"proofs (`Tree::proof`, {x['merkle_proof_hashes']} hashes each) made and checked "
          "(`merkle::verify`) on that tree.")
        a("")
        a("| operation | per second | µs each | **ratio to SHA-256 of the 1 MiB block** |")
        a("| --- | --- | --- | --- |")
        rt = x["ratios"]
        rows = [
            ("SHA-256 of a 1 MiB block (reference)", sha, 1.0),
            ("receipt signed", x["sign"], rt["sign_over_sha256_block"]),
            ("receipt opened and verified", x["verify"], rt["verify_over_sha256_block"]),
            (f"Merkle root over {x['merkle_leaves']} receipt hashes", x["merkle_root"],
             x["merkle_root"]["us_per_op"] / sha["us_per_op"]),
            ("inclusion proof made", x["merkle_proof"], rt["merkle_proof_over_sha256_block"]),
            ("inclusion proof verified", x["merkle_proof_verify"],
             rt["merkle_proof_verify_over_sha256_block"]),
        ]
        for label, f, ratio in rows:
            a(f"| {label} | {f['per_sec']:,.1f} | {f['us_per_op']:,.2f} | **{ratio:.4f}** |")
        a("")
        a(f"Per receipt, signing costs {100 * rt['sign_over_sha256_block']:.1f}% and verifying "
          f"{100 * rt['verify_over_sha256_block']:.1f}% of hashing the block it covers; the epoch's "
          f"Merkle root costs {100 * rt['merkle_root_per_receipt_over_sha256_block']:.3f}% of it per "
          "receipt.")
    a("")
    p = r.get("fetch")
    a("### Receipts on the peer fetch path")
    a("")
    if p is None:
        a("(not measured)")
        return "\n".join(L) + "\n"
    mb = p["segments"] * p["segment_bytes"] / 1048576
    a(f"Method: `bench/receipts.py`. A media playlist of {p['segments']} segments of exactly 1 MiB "
      "random bytes (each one 1 MiB block, so one receipt) behind a one-line master, served by "
      "the same nginx. A fresh seeder seeds it. Then, per repetition, a fresh viewer (fresh data "
      "dir and identity, `prefetch_segments = 0`, trusting and bootstrapping to the seeder) opens "
      "the master through its gateway (which waits for the seeder's map) and GETs every segment "
      "path once, sequentially, on one keep-alive connection: each is a peer fetch "
      f"(gateway → block protocol → seeder → CID check → answer), {mb:.0f} MiB per viewer, "
      "timed with `time.perf_counter` from the first GET to the last byte of the last; the bytes "
      "are checked against the origin after the clock stops. *On*: the viewer has "
      "`[proofs] send_receipts = true` (the default) and signs and sends a receipt for every "
      "block (batched per provider, 50 ms linger); *off*: `send_receipts = false`. "
      f"{p['pairs']} pairs of viewers, alternating on/off in ABBA order, after one unmeasured "
      "viewer of each kind (warm-up); medians shown. The seeder runs with "
      f"`[proofs] max_unreceipted_bytes = \"{p['seeder_max_unreceipted_bytes']}\"` instead of the "
      f"default {DEFAULT_MAX_UNRECEIPTED_MIB} MiB: a viewer with receipts off owes the seeder "
      f"every byte it takes ({mb:.0f} MiB here), and past the limit it would be served last, one "
      "request at a time, which would measure that penalty instead of the cost of receipts. "
      "CPU is user+system time of each daemon from the first GET to "
      f"{SETTLE_S * 1000:.0f} ms after the last (so the last receipt batch is counted). "
      "Reference for scale: the same client GETs the same files straight from nginx after each pair.")
    a("")
    a("| viewer | runs | **MiB/s (median)** | runs' MiB/s | GET p50 ms | **ratio to receipts off** | CPU ms viewer / seeder | receipts accepted by the seeder per viewer |")
    a("| --- | --- | --- | --- | --- | --- | --- | --- |")
    on = [x for x in p["runs"] if x["receipts"]]
    off = [x for x in p["runs"] if not x["receipts"]]
    for label, rs, k in (("receipts on (default)", on, "on"), ("receipts off", off, "off")):
        acc = sorted({x["seeder_receipts_accepted"] for x in rs})
        a(f"| {label} | {len(rs)} | **{p[k + '_mib_per_s']:.1f}** | "
          f"{', '.join('%.0f' % x['mib_per_s'] for x in rs)} | {p[k + '_get_p50_ms']:.2f} | "
          f"**{p[k + '_mib_per_s'] / p['off_mib_per_s']:.3f}** | "
          f"{p[k + '_viewer_cpu_ms']:.0f} / {p[k + '_seeder_cpu_ms']:.0f} | "
          f"{', '.join(str(v) for v in acc)} |")
    a(f"| nginx direct (scale) | {len(p['nginx'])} | {p['nginx_mib_per_s']:.1f} | "
      f"{', '.join('%.0f' % x['mib_per_s'] for x in p['nginx'])} | "
      f"{statistics.median(x['get_p50_ms'] for x in p['nginx']):.2f} | "
      f"{p['nginx_mib_per_s'] / p['off_mib_per_s']:.3f} | | |")
    a("")
    a(f"Ratio on/off per pair: {', '.join(f'{x:.3f}' for x in p['pair_ratios'])} "
      f"(median {statistics.median(p['pair_ratios']):.3f}).")
    depri = [x["name"] for x in p["runs"] + p["warmup"] if x["ledger"].get("deprioritized")]
    unrec_off = max((x["ledger"]["bytes_unreceipted"] for x in off), default=0)
    unrec_on = max((x["ledger"]["bytes_unreceipted"] for x in on), default=0)
    sent = sorted({x["ledger"]["bytes_sent"] for x in p["runs"]})
    seg_total = p["segments"] * p["segment_bytes"]
    a(f"The seeder sent each viewer {', '.join(str(b) for b in sent)} B: the segments' {seg_total} B "
      f"plus {', '.join(str(b - seg_total) for b in sent)} B of other blocks, which earn receipts too.")
    a(f"Seeder's ledger after each viewer (`/api/v1/proofs/peers`): viewers with receipts off owed "
      f"up to {unrec_off} B unreceipted, with receipts on up to {unrec_on} B; deprioritized: "
      f"{', '.join(depri) if depri else 'none'}. Every viewer took all {p['segments']} segments "
      "from the seeder (`bytes_from_p2p` + exactly the segments' bytes, `bytes_from_cdn` + 0). "
      f"Receipt batches delivered per viewer with receipts on: "
      f"{', '.join(str(x['receipt_batches']) for x in on)}. WARN/ERROR lines: viewers "
      f"{sum(x['warn_error_lines'] for x in p['runs'] + p['warmup'])}, seeder "
      f"{p['seeder_warn_error_lines']}.")
    a("")
    a(f"Machine: {p['cpus']} CPUs; background load before the runs {p['background_load_cores']:.2f} "
      f"cores, whole machine busy {p['machine_busy_cores_during']:.2f} cores on average over the viewers' "
      "runs (daemons, client and anything else).")
    a(f"Proofs part: {r['seconds']:.0f} s wall time (receipt_rate not included). Daemon logs: "
      "`KEEP_TMP=1` keeps them under the temp dir's `proofs/`.")
    return "\n".join(L) + "\n"


def main() -> int:
    ap = sw.bench_args(__doc__, access_log=False)
    ap.add_argument("--rate-json", type=Path, help="receipt_rate's JSON output")
    args = ap.parse_args()
    if urllib.parse.urlsplit(args.origin_url).hostname != "127.0.0.1":
        raise BenchError(f"origin {args.origin_url} is not on 127.0.0.1")
    sw.prepare(args)

    started = time.monotonic()
    origin = sw.Origin(args.origin_dir, args.origin_url.rstrip("/"), args.work / "no-access-log")
    repo = Path(__file__).resolve().parent.parent
    rev = sw.git_rev()
    dirty = subprocess.run(["git", "-C", str(repo), "diff", "--quiet", "HEAD", "--",
                            "daemon", "gateway", "proofs", "Cargo.toml", "Cargo.lock"]).returncode != 0
    r: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "rev": rev + (" (with uncommitted changes in daemon/, gateway/ or proofs/)" if dirty else "")}
    if args.bin.resolve() != (repo / "target" / "release" / "swarmseed").resolve():
        r["rev"] += (f"; daemon binary {args.bin} built "
                     + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(args.bin.stat().st_mtime)))
    if args.rate_json and args.rate_json.exists():
        r["rate"] = json.loads(args.rate_json.read_text())
    try:
        r["fetch"] = fetch_path(args, origin)
        r["seconds"] = time.monotonic() - started
    finally:
        Daemon.stop_all()
    return sw.finish(args, r, report)


if __name__ == "__main__":
    sw.run(main)
