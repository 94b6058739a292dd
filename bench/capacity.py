#!/usr/bin/env python3
"""Capacity: how many viewers of a 4 Mbit/s stream one seeder feeds on this
machine before any of them stalls, called by bench/run.sh.

Rows, each against the nginx origin run.sh already runs:

- nginx: the reference. Each viewer GETs the segments straight from nginx.
- webrtc-direct: each viewer is the browser client of bridge/js, headless
  in Node.js (bridge/js/tools/viewers.mjs: one js-libp2p node per viewer,
  WebRTC-direct by node-datachannel, every block checked and receipted),
  all in one Node process; Chromium itself would eat the cores.
- p2pml: each viewer is a hand-made p2p-media-loader 2.3 peer
  (bridge/js/tools/p2pml_viewers.mjs running p2pml_peer.js, the raw peer of
  the tests, over node-datachannel), all in one Node process, announcing in
  the video's swarm on the seeder's own tracker and asking the seeder for
  each segment by id over a WebRTC data channel.
- tcp, quic: each viewer is a swarmseed daemon whose libp2p listens and
  dials on that transport alone, bootstrapped to the seeder and trusting
  it, with one connection allowed (the seeder's), so viewers do not feed
  each other, and its store on a tmpfs (/dev/shm) holding one run's video;
  the viewer's player GETs segments through that daemon's gateway, and the
  daemon fetches them from the seeder. A segment any viewer daemon
  takes from the CDN instead fails the run: the seeder did not feed it.

A viewer plays a fresh video of 2,000,000-byte, 4-second segments (4
Mbit/s): playback starts when segment 0 is in and runs in real time; the
player keeps at most AHEAD segments beyond the playhead. A stall is a
segment that arrives after the playhead reached it; a start slower than
STARTUP_S also fails. Viewers start spread over one segment's time. For
each row, the viewer count doubles from START until a run fails, then is
bisected. All viewers of a run are played by one asyncio process.

Writes the RESULTS.md section to --out and raw figures to --raw (JSON).
Python 3.11 standard library only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import swarm as sw  # noqa: E402  (bench/swarm.py)
from swarm import MASTER_BANDWIDTH, BenchError, Daemon, Origin, log  # noqa: E402

SEG_BYTES = 2_000_000
VIEWER_STORE = ('[store]\nmax_bytes = "40MiB"\nmin_free_bytes = "0B"\n'
                'memory_cache = "8MiB"\nblock_cache = "4MiB"\n')
VIEWERS_JS = Path(__file__).resolve().parent.parent / "bridge/js/tools/viewers.mjs"
VIEWERS_JS_CLIENT = Path(__file__).resolve().parent.parent / "bridge/js/dist/node/client.js"
P2PML_VIEWERS_JS = Path(__file__).resolve().parent.parent / "bridge/js/tools/p2pml_viewers.mjs"
SEG_S = 4.0
SEGMENTS = int(os.environ.get("CAPACITY_SEGMENTS", "8"))
AHEAD = 2
STARTUP_S = 8.0
START = int(os.environ.get("CAPACITY_START", "8"))
# nginx stops at its 2 x 1024 worker connections (run.sh's config), halved for
# an uneven spread; the daemon rows where the viewer daemons would fill
# this machine's memory.
MAX_VIEWERS = {"nginx": 1024, "tcp": 256, "quic": 256, "webrtc-direct": 512, "p2pml": 512}
# Bisection stops when the bracket is this narrow, relative to its low end.
RESOLUTION = 0.2
CLK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- playing
async def get(reader, writer, host: str, path: str) -> bytes:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    if length is None:
        raise BenchError(f"GET {path}: no Content-Length")
    body = await reader.readexactly(length)
    if status != 200:
        raise BenchError(f"GET {path} -> {status}: {body[:200]!r}")
    return body


async def viewer(base: str, paths: list[str], digests: list[str], delay: float,
                 master: str | None) -> dict:
    """Plays one video; `master` is fetched first through a daemon's gateway."""
    await asyncio.sleep(delay)
    u = urllib.parse.urlsplit(base)
    host = u.netloc
    out = {"stalls": 0, "stalled_s": 0.0, "error": None}
    t0 = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(u.hostname, u.port, limit=1 << 20)
        try:
            if master is not None:
                child = sw.uri_lines(await get(reader, writer, host, master))[0]
                paths = sw.media_paths(await get(reader, writer, host, child))
            started = None
            for i, p in enumerate(paths):
                if started is not None:
                    # Fetch no further ahead of the playhead than a player's buffer.
                    wait = started + (i - AHEAD) * SEG_S - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                body = await get(reader, writer, host, p)
                if hashlib.sha256(body).hexdigest() != digests[i]:
                    raise BenchError(f"segment {i}: bytes differ from the origin's")
                now = time.monotonic()
                if started is None:
                    started = now
                    out["startup_s"] = now - t0
                elif now > started + i * SEG_S:
                    out["stalls"] += 1
                    out["stalled_s"] += now - (started + i * SEG_S)
        finally:
            writer.close()
    except Exception as e:  # reported per viewer
        out["error"] = f"{type(e).__name__}: {e}"
    return out


async def play_all(targets: list[tuple[str, str | None]], paths: list[str],
                   digests: list[str]) -> list[dict]:
    """targets: (base URL, master path or None) per viewer."""
    rnd = random.Random(len(targets))
    return await asyncio.gather(*(
        viewer(base, paths, digests, rnd.uniform(0, SEG_S), master)
        for base, master in targets))


# ---------------------------------------------------------------- measuring
def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except (OSError, IndexError):
            pass
    return total


def peak_rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Row:
    """One transport: what viewers play from, set up for n viewers at a time."""

    def __init__(self, args, origin: Origin, name: str):
        self.args, self.origin, self.name = args, origin, name
        self.seeder: Daemon | None = None
        self.viewers: list[Daemon] = []
        self.root = sw.fresh_root(args.work, f"capacity-{name}")
        shm = Path("/dev/shm")
        self.viewer_root = (Path(tempfile.mkdtemp(prefix="swarmseed-capacity-", dir=shm))
                            if shm.is_dir() else self.root)
        self.listen = {"tcp": "/ip4/127.0.0.1/tcp/0",
                       "quic": "/ip4/127.0.0.1/udp/0/quic-v1"}.get(name)
        self.browser_addrs: list[str] = []
        # Viewers in one Node.js process rather than daemons or Python players.
        self.node_viewers = name in ("webrtc-direct", "p2pml")
        if self.listen:
            # A super-seeder's operator lets every viewer connect.
            self.seeder = Daemon(args.bin, self.root, "seeder", listen=self.listen,
                                 p2p_extra="max_connections = 4096\n").start()
        elif name == "webrtc-direct":
            if not VIEWERS_JS_CLIENT.exists():
                raise BenchError(f"no {VIEWERS_JS_CLIENT}: npm ci && npm run build:node in bridge/js")
            self.seeder = Daemon(args.bin, self.root, "seeder",
                                 listen="/ip4/127.0.0.1/udp/0/webrtc-direct",
                                 p2p_extra="max_connections = 4096\n")
            self.seeder.spawn()
            self.seeder.wait_gateway()
            self.browser_addrs = self.wait_browser_addrs()
        elif name == "p2pml":
            # Its own tracker, and no other: the swarm is the seeder's.
            self.seeder = Daemon(args.bin, self.root, "seeder",
                                 extra="trackers = []\ntracker = true\n").start()

    def wait_browser_addrs(self) -> list[str]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            node = self.seeder.http.json("/api/v1/node")
            addrs = [a for a in node.get("browser_addrs", []) if "/webrtc-direct/" in a]
            if addrs:
                return addrs
            time.sleep(0.1)
        raise BenchError("the seeder has no WebRTC-direct address")

    def cid_map(self, master: str) -> tuple[str, list[dict]]:
        """The seeded video's id and its segments' CIDs and sizes."""
        videos = [v for v in self.seeder.http.json("/api/v1/videos") if v["url"] == master]
        vid = videos[0]["id"]
        m = self.seeder.http.json(f"/api/v1/videos/{vid}/cidmap")
        segs = [{"cid": x["cid"], "size": x["size"]}
                for r in m["renditions"] for x in r["segments"]]
        return vid, segs

    def node_config(self, n: int, master: str) -> tuple[Path, dict]:
        """The Node viewers' script and config for n viewers of `master`."""
        common = {"viewers": n, "seg_s": SEG_S, "ahead": AHEAD, "spread_s": SEG_S}
        if self.name == "p2pml":
            # A VOD's segment ids are their positions.
            return P2PML_VIEWERS_JS, {
                **common, "tracker": self.seeder.url.replace("http://", "ws://") + "/announce",
                "info_hash": p2pml_info_hash(master, MASTER_BANDWIDTH),
                "segments": [{"id": i, "size": SEG_BYTES} for i in range(SEGMENTS)]}
        vid, segs = self.cid_map(master)
        return VIEWERS_JS, {**common, "addrs": self.browser_addrs, "video": vid,
                            "segments": segs}

    def run_node(self, n: int, master: str, step: int,
                 servers: list[int]) -> tuple[list[dict], float, list[float]]:
        """Runs n headless browser viewers in one Node process: (results,
        seconds, cores of the seeder, of the Node process, and of this
        process)."""
        script, config = self.node_config(n, master)
        cfg = self.root / f"viewers-{step}.json"
        cfg.write_text(json.dumps(config))
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        c0 = (cpu_ticks(servers), cpu_ticks([os.getpid()]))
        t0 = time.monotonic()
        with open(self.root / f"viewers-{step}.log", "wb") as err:
            # Node.js 20 has WebSocket behind this flag; later ones by default.
            proc = subprocess.run(["node", "--experimental-websocket", str(script), str(cfg)],
                                  stdout=subprocess.PIPE, stderr=err,
                                  timeout=SEGMENTS * SEG_S * 4 + 120)
        dt = time.monotonic() - t0
        c1 = (cpu_ticks(servers), cpu_ticks([os.getpid()]))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        node_s = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        if proc.returncode != 0:
            raise BenchError(f"{script.name} exited with {proc.returncode}; see {self.root}")
        played = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        cores = [(c1[0] - c0[0]) / CLK / dt, node_s / dt, (c1[1] - c0[1]) / CLK / dt]
        return played, dt, cores

    def grow(self, n: int) -> None:
        """Viewer daemons up to n, spawned together."""
        if not self.listen or len(self.viewers) >= n:
            return
        # One connection each, to the seeder: viewers do not feed each other,
        # so every byte a viewer plays is the seeder's. Their stores are on
        # a tmpfs and hold one run's video: the durable writes of a
        # viewer's own disk would take the seeder's cores here.
        fresh = [Daemon(self.args.bin, self.viewer_root, f"viewer{i + 1}", listen=self.listen,
                        bootstrap=[self.seeder.addr], trusted=[self.seeder.peer_id],
                        p2p_extra="max_connections = 1\n", extra=VIEWER_STORE)
                 for i in range(len(self.viewers), n)]
        for d in fresh:
            d.spawn()
        for d in fresh:
            d.wait_gateway(timeout=120, poll=0.05)
            d.wait_p2p(timeout=120)
        self.viewers += fresh

    def server_pids(self) -> list[int]:
        if self.seeder:
            return [self.seeder.proc.pid]
        return [int(p) for p in self.args.nginx_pids.split()]

    def run(self, n: int, step: int) -> dict:
        self.grow(n)
        sub = f"swarm/capacity/{self.name}-{step}"
        media, master, urls = sw.make_random_vod(self.origin, sub, SEGMENTS, SEG_BYTES)
        digests = [hashlib.sha256(self.origin.file_of(u).read_bytes()).hexdigest()
                   for u in urls]
        if self.seeder:
            self.seeder.seed(master)
            targets = [(v.url, sw.hls_path(master)) for v in self.viewers[:n]]
            paths: list[str] = []
        if self.node_viewers:
            targets = []
        elif not self.seeder:
            targets = [(self.origin.base, None)] * n
            paths = [urllib.parse.urlsplit(u).path for u in urls]
        offset = self.origin.log_offset()
        servers = self.server_pids()
        viewer_pids = [v.proc.pid for v in self.viewers[:n]]
        if self.node_viewers:
            # The Node process is sampled from outside while it runs.
            played, dt, cores = self.run_node(n, master, step, servers)
        else:
            c0 = (cpu_ticks(servers), cpu_ticks(viewer_pids), cpu_ticks([os.getpid()]))
            t0 = time.monotonic()
            played = asyncio.run(play_all(targets, paths, digests))
            dt = time.monotonic() - t0
            c1 = (cpu_ticks(servers), cpu_ticks(viewer_pids), cpu_ticks([os.getpid()]))
            cores = [(b - a) / CLK / dt for a, b in zip(c0, c1)]
        cdn_bytes, cdn_reqs, _ = self.origin.cdn_segments_since(offset)
        if not self.seeder:
            cdn_bytes = cdn_reqs = 0  # nginx is the source here, not a fallback
        errors = [p["error"] for p in played if p["error"]]
        stalled = [p for p in played if p["stalls"]]
        startups = sorted(p.get("startup_s", float("inf")) for p in played)
        slow = [s for s in startups if s > STARTUP_S]
        ok = not errors and not stalled and not slow and cdn_reqs == 0
        block_errors = [b for p in played for b in p.get("block_errors", [])]
        r = {"viewers": n, "ok": ok, "errors": errors[:3], "error_count": len(errors),
             "block_errors": len(block_errors), "block_error_kinds": sorted(
                 {b["error"][:120] for b in block_errors}),
             "stalled_viewers": len(stalled),
             "stalled_s": round(sum(p["stalled_s"] for p in played), 2),
             "slow_starts": len(slow),
             "startup_p50_s": round(startups[len(startups) // 2], 2),
             "startup_max_s": round(startups[-1], 2),
             "cdn_fallback_requests": cdn_reqs, "cdn_fallback_bytes": cdn_bytes,
             "server_cores": round(cores[0], 3), "viewer_cores": round(cores[1], 3),
             "player_cores": round(cores[2], 3), "seconds": round(dt, 1)}
        log(f"capacity {self.name}: {n} viewers -> {'ok' if ok else 'FAILED'} "
            f"(stalled {len(stalled)}, errors {len(errors)}, slow starts {len(slow)}, "
            f"CDN fallbacks {cdn_reqs}; server {cores[0]:.2f} cores, viewers "
            f"{cores[1]:.2f}, players {cores[2]:.2f})")
        if errors:
            log(f"capacity {self.name}: first error: {errors[0]}")
        if not ok:
            self.reset_viewers()
        return r

    def reset_viewers(self) -> None:
        """After a failed run: viewers that saw the seeder stall keep
        penalties against it for a while, which would fail the next run
        for them, so the next run starts with fresh ones."""
        for v in self.viewers:
            if v.proc.poll() is None:
                v.proc.send_signal(signal.SIGTERM)
        Daemon.stop_all(self.viewers)
        for v in self.viewers:
            shutil.rmtree(v.dir, ignore_errors=True)
        self.viewers = []

    def close(self) -> dict:
        peak = peak_rss_mib(self.seeder.proc.pid) if self.seeder else None
        # The caches only grow within their bounds, so what they hold at the
        # end is their most over the row: the part of the peak RSS that an
        # operator sizes (store.memory_cache, store.block_cache).
        caches = None
        if self.seeder:
            try:
                s = self.seeder.stats()
                caches = (s["memory_cache_bytes"] + s["block_cache_bytes"]) / 1048576
            except Exception as e:  # a figure missing, not a failed row
                log(f"capacity {self.name}: no cache figures from the seeder: {e}")
        Daemon.stop_all([*self.viewers, *([self.seeder] if self.seeder else [])])
        if self.viewer_root != self.root:
            shutil.rmtree(self.viewer_root, ignore_errors=True)
        return {"seeder_peak_rss_mib": round(peak, 1) if peak else None,
                "seeder_caches_mib": round(caches, 1) if caches is not None else None}


def capacity(args, origin: Origin, name: str) -> dict:
    """Doubles, then bisects, the viewer count until the largest that plays."""
    row = Row(args, origin, name)
    runs: list[dict] = []
    try:
        n, good, bad = START, 0, None
        top = min(MAX_VIEWERS[name], int(os.environ.get("CAPACITY_MAX", "100000")))
        while n <= top:
            r = row.run(n, len(runs))
            runs.append(r)
            if not r["ok"]:
                bad = n
                break
            good, n = n, n * 2
        while bad is not None and bad - good > max(1, good * RESOLUTION):
            n = (good + bad) // 2
            r = row.run(n, len(runs))
            runs.append(r)
            if r["ok"]:
                good = n
            else:
                bad = n
    finally:
        closed = row.close()
    return {"row": name, "capacity": good, "first_failure": bad,
            "capped": bad is None, "runs": runs, **closed}


def p2pml_info_hash(master_url: str, bandwidth: int) -> str:
    """The info_hash a p2p-media-loader 2.3 page announces for the one
    variant of `master_url` that declares BANDWIDTH alone, as
    bridge/src/p2pml/stream.rs computes it for any stream: the stream index
    is the Base64 SHA-1 of the variant's nine attributes joined by dashes,
    the swarm id "v2-<master>-main-<index>", and the info_hash the first 15
    bytes of that swarm id's SHA-1, in Base64."""
    fields = [str(bandwidth)] + [""] * 8
    index = base64.b64encode(hashlib.sha1("-".join(fields).encode()).digest()).decode()
    swarm_id = f"v2-{master_url.split('?')[0]}-main-{index}"
    return base64.b64encode(hashlib.sha1(swarm_id.encode()).digest()[:15]).decode()


# ---------------------------------------------------------------- report
LABELS = {"nginx": "nginx over HTTP (reference)",
          "tcp": "swarmseed daemons over TCP",
          "quic": "swarmseed daemons over QUIC",
          "webrtc-direct": "browser clients (bridge/js in Node) over WebRTC-direct",
          "p2pml": "p2p-media-loader peers (in Node) over WebRTC"}


def report(r: dict) -> str:
    out: list[str] = []
    a = out.append
    rows = {x["row"]: x for x in r["rows"]}
    ref = rows.get("nginx")
    a("## Capacity")
    a("")
    a(f"- Date: {r['date']} (swarmseed {r['rev']})")
    a(f"- `bench/capacity.py`: viewers of a {SEG_BYTES * 8 / SEG_S / 1e6:g} Mbit/s stream "
      f"({SEG_BYTES:,}-byte, {SEG_S:g} s segments, {SEGMENTS} per run, fresh content each run) "
      f"on this machine ({os.cpu_count()} cores); playback in real time from the first "
      f"segment, at most {AHEAD} segments buffered ahead; a run fails on any stall, any "
      f"start slower than {STARTUP_S:g} s, any error, or (daemon rows) any segment a "
      "viewer took from the CDN. The count doubles from "
      f"{START} until a run fails, then is bisected to within {RESOLUTION:.0%}.")
    a("- Viewers of the daemon rows are swarmseed daemons on the same cores as the "
      "seeder, each played by a paced HTTP client on its gateway, with one connection "
      "allowed (the seeder's) and its store on a tmpfs (the durable writes of each viewer's "
      "own disk would otherwise take the shared cores); the nginx row's clients GET from nginx; all those players run "
      "in one Python asyncio process. The WebRTC-direct row's viewers are the browser "
      "client of bridge/js in one Node.js process (`bridge/js/tools/viewers.mjs`), each with "
      "its own js-libp2p node, checking every block and signing a receipt for it. The "
      "p2p-media-loader row's viewers are the raw p2p-media-loader 2.3 peer of the tests "
      "(`bridge/js/tools/p2pml_peer.js`) over node-datachannel, in one Node.js process "
      "(`bridge/js/tools/p2pml_viewers.mjs`), announcing on the seeder's own tracker and "
      "asking it for each segment by id. "
      "*Viewers' cores*: the viewer daemons, or the Node process; *players' cores*: the "
      "Python process. *Seeder peak RSS*: its resident memory's high-water mark over the "
      "row, and in brackets what its two memory caches (segments for players, blocks for "
      "peers) held at the row's end, which is what they held at most.")
    a("")
    a("| row | viewers fed | first failure | ratio to nginx | seeder/server cores at capacity | **server cores per 100 viewers** | viewers' cores | players' cores | seeder peak RSS |")
    a("|---|---|---|---|---|---|---|---|---|")
    for name in LABELS:
        x = rows.get(name)
        if not x:
            continue
        at = next((run for run in x["runs"] if run["viewers"] == x["capacity"]), None)
        cap = f"≥ {x['capacity']}" if x["capped"] else str(x["capacity"])
        ratio = "—"
        if ref and name != "nginx" and ref["capacity"]:
            ratio = f"{x['capacity'] / ref['capacity']:.2f}×" + (" (nginx capped)" if ref["capped"] else "")
        rss = f"{x['seeder_peak_rss_mib']} MiB" if x.get("seeder_peak_rss_mib") else "—"
        if x.get("seeder_caches_mib") is not None:
            rss += f" ({x['seeder_caches_mib']} in caches)"
        per100 = f"**{at['server_cores'] * 100 / at['viewers']:.3f}**" if at else "—"
        a(f"| {LABELS[name]} | {cap} | {x['first_failure'] or '—'} | {ratio} | "
          f"{at['server_cores'] if at else '—'} | {per100} | {at['viewer_cores'] if at else '—'} | "
          f"{at['player_cores'] if at else '—'} | {rss} |")
    a("")
    a("Every run:")
    a("")
    a("| row | viewers | result | stalled viewers | slow starts | errors | CDN fallbacks | blocks asked again | start p50 / max | server cores | viewers' cores | players' cores |")
    a("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for x in r["rows"]:
        for run in x["runs"]:
            a(f"| {x['row']} | {run['viewers']} | {'ok' if run['ok'] else 'failed'} | "
              f"{run['stalled_viewers']} | {run['slow_starts']} | {run['error_count']} | "
              f"{run['cdn_fallback_requests']} | {run.get('block_errors', '—')} | "
              f"{run['startup_p50_s']} / {run['startup_max_s']} s | "
              f"{run['server_cores']} | {run['viewer_cores']} | {run['player_cores']} |")
    a("")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = sw.bench_args(__doc__)
    ap.add_argument("--nginx-pids", required=True, help="nginx's processes, space-separated")
    ap.add_argument("--rows", default=os.environ.get("CAPACITY_ROWS", " ".join(LABELS)))
    args = ap.parse_args()
    sw.prepare(args)
    # A socket per viewer here, and the daemons inherit the limit.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # Viewer daemons by the hundred: their logs stay quiet.
    os.environ.setdefault("RUST_LOG", "warn")

    started = time.monotonic()
    origin = Origin(args.origin_dir, args.origin_url.rstrip("/"), args.access_log)
    r: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "rev": sw.git_rev(), "rows": []}
    try:
        for name in args.rows.split():
            log(f"capacity: {LABELS[name]}")
            r["rows"].append(capacity(args, origin, name))
        r["seconds"] = time.monotonic() - started
    finally:
        Daemon.stop_all()
    return sw.finish(args, r, report)


if __name__ == "__main__":
    sw.run(main)
