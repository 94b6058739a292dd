#!/usr/bin/env python3
"""Swarm benchmarks for swarmseed, called by bench/run.sh.

Starts swarmseed daemons on 127.0.0.1 against the nginx origin run.sh already
runs, and measures:

1. CDN offload: N viewers play a whole HLS video, with one seeder and without;
   the CDN's segment bytes (from nginx's access log) over one copy's bytes.
2. Peer fetch: 1 MiB segments through a viewer's gateway, each fetched from
   the seeder, against the same GETs straight from nginx.
3. Discovery: spawn of a fresh viewer to its first segment from a peer,
   against the same sequence with a viewer that trusts nobody (CDN).

Writes the RESULTS.md sections to --out (markdown) and raw figures to
--raw (JSON). Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

P2P_TIMEOUT_MS = 5000
START_GAP_S = 2.0
VOD_SECONDS = 60
# Peer fetch: (segment bytes, segments, goal as a ratio to nginx at p50 and p99).
PF_RUNS = ((1 << 20, 100, 3.0), (4 << 20, 50, 2.0))
DISCOVERY_RUNS = 3
# Extra offload runs with playback paced at this many times real time, so
# that viewers overlap (unpaced, a viewer plays the video in well under the
# 2 s between starts).
PACE = float(os.environ.get("SWARM_PACE", "4"))
PACED_VIEWERS = int(os.environ.get("SWARM_PACED_VIEWERS", "10"))
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log(msg: str) -> None:
    print(f"[swarm {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- HTTP
class Http:
    """One keep-alive connection to host:port; GETs return (status, body)."""

    def __init__(self, base: str, timeout: float = 60.0):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self.conn

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, bytes]:
        for attempt in range(2):
            conn = self._connect()
            try:
                conn.request(method, path, body=body, headers=headers or {})
                r = conn.getresponse()
                data = r.read()
                if r.will_close:
                    self.close()
                return r.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady):
                # A keep-alive connection the server closed: one retry on a new one.
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def get(self, path: str) -> bytes:
        status, data = self.request("GET", path)
        if status != 200:
            raise BenchError(f"GET {path} -> {status}: {data[:200]!r}")
        return data

    def json(self, path: str):
        return json.loads(self.get(path))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def hls_path(url: str) -> str:
    return "/hls?url=" + urllib.parse.quote(url, safe="")


def uri_lines(playlist: bytes) -> list[str]:
    return [ln.strip() for ln in playlist.decode().splitlines() if ln.strip() and not ln.startswith("#")]


def timed_media_paths(playlist: bytes) -> list[tuple[str, float]]:
    """Init sections and segments of a rewritten media playlist, in order,
    each with its duration (0 for init sections)."""
    out = []
    duration = 0.0
    for ln in playlist.decode().splitlines():
        ln = ln.strip()
        if ln.startswith("#EXT-X-MAP"):
            m = re.search(r'URI="([^"]+)"', ln)
            if m:
                out.append((m.group(1), 0.0))
        elif ln.startswith("#EXTINF:"):
            duration = float(ln[len("#EXTINF:"):].split(",")[0])
        elif ln and not ln.startswith("#"):
            out.append((ln, duration))
            duration = 0.0
    return out


def media_paths(playlist: bytes) -> list[str]:
    return [p for p, _ in timed_media_paths(playlist)]


def origin_url_of(path: str) -> str:
    """The origin URL inside /hls/seg/<range>/<token>/<file>: the token is
    base64url of a version byte, a 16-byte MAC, an 8-byte video tag and the
    URL."""
    token = path.split("/")[4]
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))[25:].decode()


# ---------------------------------------------------------------- daemons
class Daemon:
    """One swarmseed process with its own data dir; stderr goes to daemon.log."""

    all: list["Daemon"] = []
    pid_file: Path | None = None

    def __init__(self, bin_path: Path, root: Path, name: str, *, bootstrap=(), trusted=(),
                 prefetch: int = 6, p2p_timeout_ms: int = P2P_TIMEOUT_MS,
                 listen: str = "/ip4/127.0.0.1/tcp/0", p2p_extra: str = "", extra: str = ""):
        self.bin = bin_path
        self.name = name
        self.dir = root / name
        self.data = self.dir / "data"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = self.dir / "swarmseed.toml"
        q = lambda xs: "[" + ", ".join(json.dumps(x) for x in xs) + "]"  # noqa: E731
        self.config.write_text(
            f'data_dir = {json.dumps(str(self.data))}\n'
            "[gateway]\n"
            'listen = "127.0.0.1:0"\n'
            f"p2p_timeout_ms = {p2p_timeout_ms}\n"
            f"prefetch_segments = {prefetch}\n"
            "[p2p]\n"
            f"listen = {q([listen])}\n"
            "mdns = false\n"
            f"{p2p_extra}"
            f"bootstrap = {q(bootstrap)}\n"
            f"trusted_publishers = {q(trusted)}\n"
            "[webtorrent]\n"
            'listen = "127.0.0.1:0"\n'
            f"{extra}"
        )
        # What the p2p address the others dial looks like: its transport.
        self.transport = "/quic-v1" if "/quic-v1" in listen else "/tcp/"
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.peer_id = ""
        self.addr = ""
        self.spawned = 0.0
        self.http: Http | None = None

    def spawn(self) -> float:
        env = dict(os.environ)
        # swarmseed's debug lines name every segment fetched from peers and every
        # failed block stream; libp2p_stream's, the streams a serving side dropped.
        env.setdefault("RUST_LOG", os.environ.get(
            "SWARM_RUST_LOG", "info,swarmseed=debug,libp2p_stream=debug"))
        self.log_file = open(self.dir / "daemon.log", "ab")
        self.spawned = time.perf_counter()
        self.proc = subprocess.Popen([str(self.bin), "run", "--config", str(self.config)],
                                     stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=self.log_file, env=env)
        Daemon.all.append(self)
        if Daemon.pid_file is not None:
            with open(Daemon.pid_file, "a") as f:
                f.write(f"{self.proc.pid}\n")
        return self.spawned

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = (self.dir / "daemon.log").read_text(errors="replace")[-2000:]
            raise BenchError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")

    def wait_gateway(self, timeout: float = 20.0, poll: float = 0.002) -> None:
        """Until the health check answers (polling fast: discovery times it)."""
        addr_file = self.data / "gateway.addr"
        deadline = time.monotonic() + timeout
        while True:
            if addr_file.exists():
                addr = addr_file.read_text().strip()
                if addr:
                    break
            self._check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: no gateway.addr")
            time.sleep(poll)
        if not addr.startswith("127.0.0.1:"):
            raise BenchError(f"{self.name}: gateway bound to {addr}, not loopback")
        self.url = f"http://{addr}"
        self.http = Http(self.url)
        while True:
            try:
                status, _ = self.http.request("GET", "/api/v1/health")
                if status == 200:
                    return
            except OSError:
                self.http.close()
            self._check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: health check failed")
            time.sleep(poll)

    def wait_p2p(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            node = self.http.json("/api/v1/node")
            found = [a for a in node.get("addrs", [])
                     if a.startswith("/ip4/127.0.0.1/") and self.transport in a]
            if found:
                self.peer_id = node["peer_id"]
                self.addr = found[0] if "/p2p/" in found[0] else f"{found[0]}/p2p/{self.peer_id}"
                return
            self._check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: no {self.transport} listen address")
            time.sleep(0.05)

    def start(self) -> "Daemon":
        self.spawn()
        self.wait_gateway()
        self.wait_p2p()
        return self

    def stats(self) -> dict:
        return self.http.json("/api/v1/stats")

    def seed(self, master_url: str, timeout: float = 120.0) -> None:
        token = (self.data / "api.token").read_text().strip()
        status, body = self.http.request(
            "POST", "/api/v1/videos", body=json.dumps({"url": master_url}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        if status != 202:
            raise BenchError(f"{self.name}: seeding {master_url} -> {status}: {body[:200]!r}")
        deadline = time.monotonic() + timeout
        while True:
            videos = [v for v in self.http.json("/api/v1/videos") if v["url"] == master_url]
            if videos and videos[0]["state"] == "complete":
                return
            if videos and videos[0]["state"] == "failed":
                raise BenchError(f"{self.name}: seeding failed: {videos[0]}")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: seeding did not complete: {videos}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            log(f"{self.name} did not stop in 15 s; killing it")
            self.proc.kill()
            self.proc.wait()
        self.log_file.close()

    @classmethod
    def stop_all(cls, daemons=None) -> None:
        for d in list(daemons if daemons is not None else cls.all):
            try:
                d.stop()
            except Exception as e:  # keep stopping the others
                log(f"stopping {d.name}: {e}")


def fresh_root(work: Path, name: str) -> Path:
    """A directory no daemon has used, so every scenario starts from empty stores."""
    root, i = work / name, 1
    while root.exists():
        i += 1
        root = work / f"{name}.{i}"
    root.mkdir(parents=True)
    return root


def log_count(daemons, *needles: str) -> int:
    """Lines of the daemons' logs that hold every one of `needles`."""
    n = 0
    for d in daemons:
        p = d.dir / "daemon.log"
        if p.exists():
            n += sum(1 for ln in p.read_text(errors="replace").splitlines()
                     if all(x in ln for x in needles))
    return n


def warn_count(daemons) -> int:
    n = 0
    for d in daemons:
        p = d.dir / "daemon.log"
        if p.exists():
            n += sum(1 for ln in p.read_text(errors="replace").splitlines()
                     if re.search(r"\b(WARN|ERROR)\b", ln))
    return n


# ---------------------------------------------------------------- origin
class Origin:
    def __init__(self, root: Path, base_url: str, access_log: Path):
        self.root = root            # nginx root
        self.base = base_url        # http://127.0.0.1:PORT
        self.access_log = access_log
        self.sha: dict[str, tuple[int, str]] = {}   # origin URL -> (size, sha256)

    def file_of(self, url: str) -> Path:
        path = urllib.parse.urlsplit(url).path
        return self.root / path.lstrip("/")

    def remember(self, url: str) -> None:
        data = self.file_of(url).read_bytes()
        self.sha[url] = (len(data), hashlib.sha256(data).hexdigest())

    def check(self, path: str, body: bytes) -> None:
        url = origin_url_of(path)
        if url not in self.sha:
            self.remember(url)
        size, digest = self.sha[url]
        if len(body) != size or hashlib.sha256(body).hexdigest() != digest:
            raise BenchError(f"{path}: {len(body)} B that differ from the origin's {size} B")

    def log_offset(self) -> int:
        return self.access_log.stat().st_size if self.access_log.exists() else 0

    def cdn_segments_since(self, offset: int) -> tuple[int, int, int]:
        """(segment bytes, segment requests, playlist bytes) logged after offset."""
        seg_bytes = seg_reqs = pl_bytes = 0
        with open(self.access_log, "rb") as f:
            f.seek(offset)
            for ln in f.read().decode(errors="replace").splitlines():
                parts = ln.split()
                if len(parts) != 3:
                    continue
                uri, status, sent = parts
                path = uri.split("?", 1)[0]
                if path.endswith((".m3u8", ".json")):
                    pl_bytes += int(sent)
                else:
                    seg_bytes += int(sent)
                    seg_reqs += 1
        return seg_bytes, seg_reqs, pl_bytes


def make_vod(origin: Origin, seconds: int) -> tuple[str, int, int]:
    """A 2-rendition TS HLS VOD: (master URL, bytes of one copy, segment count)."""
    d = origin.root / "swarm" / "vod"
    for v in ("v0", "v1"):
        (d / v).mkdir(parents=True, exist_ok=True)
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=960x540:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-filter_complex", "[0:v]split=2[a][b];[b]scale=640:360[b2]",
        "-map", "[a]", "-map", "1:a", "-map", "[b2]", "-map", "1:a", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
        "-b:v:0", "1500k", "-maxrate:v:0", "1500k", "-bufsize:v:0", "3000k",
        "-b:v:1", "600k", "-maxrate:v:1", "600k", "-bufsize:v:1", "1200k",
        "-c:a", "aac", "-b:a", "64k",
        "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_type", "mpegts",
        "-master_pl_name", "master.m3u8", "-var_stream_map", "v:0,a:0 v:1,a:1",
        "-hls_segment_filename", str(d / "v%v" / "seg_%03d.ts"), str(d / "v%v" / "index.m3u8"),
    ]
    subprocess.run(cmd, check=True)
    copy = count = 0
    for p in sorted(d.rglob("*")):
        p.chmod(0o755 if p.is_dir() else 0o644)
        if p.is_file() and p.suffix not in (".m3u8", ".json"):
            copy += p.stat().st_size
            count += 1
    d.chmod(0o755)
    (origin.root / "swarm").chmod(0o755)
    return f"{origin.base}/swarm/vod/master.m3u8", copy, count


# The one variant's BANDWIDTH in make_random_vod's masters (p2p-media-loader
# swarms are named after it).
MASTER_BANDWIDTH = 2_200_000


def make_random_vod(origin: Origin, sub: str, segments: int, segment_bytes: int) -> tuple[str, str, list[str]]:
    """`segments` segments of exactly `segment_bytes` random bytes under
    /<sub>/, behind a one-line master: (media URL, master URL, segment URLs).

    The master names the one media playlist: a viewer joins a video's room
    (and waits for its trusted map) only when it opens a master playlist.
    """
    d = origin.root / sub
    d.mkdir(parents=True, exist_ok=True)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:4",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"]
    urls = []
    for i in range(segments):
        name = f"seg_{i:03d}.ts"
        (d / name).write_bytes(os.urandom(segment_bytes))
        lines += ["#EXTINF:4,", name]
        urls.append(f"{origin.base}/{sub}/{name}")
    lines.append("#EXT-X-ENDLIST")
    (d / "index.m3u8").write_text("\n".join(lines) + "\n")
    (d / "master.m3u8").write_text(
        f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH={MASTER_BANDWIDTH}\nindex.m3u8\n")
    for p in d.iterdir():
        p.chmod(0o644)
    # Every directory down from the origin's root, for nginx's worker.
    for p in [d, *d.relative_to(origin.root).parents]:
        (origin.root / p).chmod(0o755)
    return f"{origin.base}/{sub}/index.m3u8", f"{origin.base}/{sub}/master.m3u8", urls


def make_pf(origin: Origin, size: int, n: int) -> tuple[str, str, list[str]]:
    """Peer-fetch content: n segments of exactly `size` random bytes."""
    return make_random_vod(origin, f"swarm/pf{size >> 20}m", n, size)


# ---------------------------------------------------------------- playing
def play(viewer: Daemon, master_url: str, origin: Origin, result: dict, pace: float | None) -> None:
    """Plays the whole video through the viewer, as a player would: master,
    every media playlist, then every init section and segment in order; as
    fast as they come, or each no earlier than its place in the video / pace."""
    t0 = time.perf_counter()
    try:
        h = Http(viewer.url)
        children = uri_lines(h.get(hls_path(master_url)))
        paths = []
        for c in children:
            paths += timed_media_paths(h.get(c))
        result["master_s"] = time.perf_counter() - t0
        n = total = 0
        position = 0.0
        t_play = time.perf_counter()
        for p, duration in paths:
            if pace:
                time.sleep(max(0.0, t_play + position / pace - time.perf_counter()))
                position += duration
            body = h.get(p)
            origin.check(p, body)
            n += 1
            total += len(body)
        h.close()
        result.update(ok=True, segments=n, bytes=total)
    except Exception as e:  # reported by the caller
        result.update(ok=False, error=f"{type(e).__name__}: {e}")
    result["seconds"] = time.perf_counter() - t0


def cdn_fetches(daemon: Daemon) -> dict[str, int]:
    """The daemon's segment fetches from the CDN, by the reason it logged."""
    reasons: dict[str, int] = {}
    p = daemon.dir / "daemon.log"
    if p.exists():
        for ln in p.read_text(errors="replace").splitlines():
            ln = ANSI.sub("", ln)
            # Whole, or passed through to the player as it arrived.
            if "fetched segment from CDN" in ln or "passed a segment through from the CDN" in ln:
                m = re.search(r'reason="?([^"]+?)"?$', ln.strip())
                reason = m.group(1) if m else "?"
                reasons[reason] = reasons.get(reason, 0) + 1
    return reasons


def peer_fetches(daemon: Daemon) -> tuple[int, int]:
    """(segment fetches from peers, distinct CIDs among them), from the debug log."""
    cids = []
    p = daemon.dir / "daemon.log"
    if p.exists():
        for ln in p.read_text(errors="replace").splitlines():
            if "segment from peers" in ln:
                m = re.search(r"cid=(\w+)", ANSI.sub("", ln))
                if m:
                    cids.append(m.group(1))
    return len(cids), len(set(cids))


def offload(args, origin: Origin, vod_url: str, copy: int, seeded: bool, n: int,
            pace: float | None = None) -> dict:
    name = f"offload-{'seeder' if seeded else 'noseeder'}-{n}" + (f"-paced{pace:g}x" if pace else "")
    root = fresh_root(args.work, name)
    log(f"{name}: starting")
    offset = origin.log_offset()
    daemons: list[Daemon] = []
    try:
        seeder = None
        if seeded:
            seeder = Daemon(args.bin, root, "seeder").start()
            daemons.append(seeder)
            t = time.perf_counter()
            seeder.seed(vod_url)
            log(f"{name}: seeded in {time.perf_counter() - t:.1f} s")
        viewers: list[Daemon] = []
        results: list[dict] = []
        threads = []
        t0 = time.monotonic()
        for i in range(n):
            time.sleep(max(0.0, t0 + START_GAP_S * i - time.monotonic()))
            if seeded:
                boot = [seeder.addr] + ([viewers[-1].addr] if viewers else [])
                trust = [seeder.peer_id]
            else:
                boot = [viewers[0].addr] if viewers else []
                if len(viewers) > 1:
                    boot.append(viewers[-1].addr)
                trust = [v.peer_id for v in viewers]
            v = Daemon(args.bin, root, f"viewer{i + 1}", bootstrap=boot, trusted=trust).start()
            daemons.append(v)
            viewers.append(v)
            r = {"viewer": i + 1, "started_s": round(time.monotonic() - t0, 2)}
            results.append(r)
            th = threading.Thread(target=play, args=(v, vod_url, origin, r, pace), daemon=True)
            th.start()
            threads.append(th)
        for th in threads:
            th.join(timeout=300)
        failed = [r for r in results if not r.get("ok")]
        if failed:
            raise BenchError(f"{name}: playback failed: {failed}")
        for v, r in zip(viewers, results):
            s = v.stats()
            r.update(p2p_ratio=s["p2p_ratio"], bytes_from_p2p=s["bytes_from_p2p"],
                     bytes_from_cdn=s["bytes_from_cdn"], bytes_uploaded=s["bytes_uploaded"],
                     peers_connected=s["peers_connected"])
        seeder_stats = seeder.stats() if seeder else None
    finally:
        Daemon.stop_all(daemons)
    for v, r in zip(viewers, results):
        r["cdn_fetches"] = cdn_fetches(v)
        r["peer_fetches"], r["peer_cids"] = peer_fetches(v)
    seg_bytes, seg_reqs, pl_bytes = origin.cdn_segments_since(offset)
    ratios = [r["p2p_ratio"] for r in results]
    reasons: dict[str, int] = {}
    for r in results:
        for k, c in r["cdn_fetches"].items():
            reasons[k] = reasons.get(k, 0) + c
    out = {
        "name": name, "seeded": seeded, "viewers": n, "copy_bytes": copy, "pace": pace,
        "viewer_cdn_fetches": reasons,
        "peer_fetches": sum(r["peer_fetches"] for r in results),
        "peer_cids": sum(r["peer_cids"] for r in results),
        "cdn_segment_bytes": seg_bytes, "cdn_segment_requests": seg_reqs,
        "cdn_playlist_bytes": pl_bytes, "offload": seg_bytes / copy,
        "mean_p2p_ratio": statistics.mean(ratios),
        "mean_p2p_ratio_after_first": statistics.mean(ratios[1:]) if n > 1 else None,
        "play_seconds_mean": statistics.mean(r["seconds"] for r in results),
        "play_seconds_max": max(r["seconds"] for r in results),
        "viewer_p2p_bytes_mean": statistics.mean(r["bytes_from_p2p"] for r in results),
        "viewer_cdn_bytes": [r["bytes_from_cdn"] for r in results],
        "seeder": seeder_stats, "per_viewer": results,
        "warn_error_lines": warn_count(daemons), "logs": str(root),
        # A block stream the serving side's libp2p-stream accept queue (one
        # slot) had no room for is dropped; the fetcher sees it closed.
        "streams_dropped": log_count(daemons, "Channel is full, dropping inbound stream"),
        "stream_failures": log_count(viewers, "block stream failed"),
        "peer_gave_up": log_count(viewers, "peer did not deliver block", "connection is closed"),
    }
    log(f"{name}: offload {out['offload']:.3f} (CDN {seg_bytes} B in {seg_reqs} requests, "
        f"copy {copy} B), mean p2p_ratio {out['mean_p2p_ratio']:.3f}, "
        f"viewer CDN bytes {out['viewer_cdn_bytes']}, viewers' CDN fetches {reasons}, "
        f"peer fetches {out['peer_fetches']} of {out['peer_cids']} distinct segments, "
        f"{out['streams_dropped']} inbound block streams dropped")
    return out


# ---------------------------------------------------------------- latency
def pct(xs: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(xs)
    k = max(1, -(-len(s) * p // 100))
    return s[int(k) - 1]


def peer_fetch(args, origin: Origin, seeder: Daemon, size: int, goal: float, pf_media: str,
               pf_master: str, pf_urls: list[str], bare_check: bool) -> dict:
    mib = size >> 20
    log(f"peer fetch: {mib} MiB segments via a viewer's gateway, then from nginx")
    root = fresh_root(args.work, f"peerfetch{mib}m")
    v = Daemon(args.bin, root, "viewer", bootstrap=[seeder.addr], trusted=[seeder.peer_id],
               prefetch=0).start()
    try:
        h = Http(v.url)
        # Opening the bare media playlist never joins the video's room, so a
        # viewer could not learn the map that way; open the master.
        media = uri_lines(h.get(hls_path(pf_master)))
        paths = media_paths(h.get(media[0]))
        if len(paths) != len(pf_urls):
            raise BenchError(f"peer fetch: playlist names {len(paths)} segments")
        s0 = v.stats()
        gw = []
        for p in paths:
            t = time.perf_counter()
            body = h.get(p)
            gw.append(time.perf_counter() - t)
            origin.check(p, body)
        time.sleep(0.2)
        s1 = v.stats()
        h.close()
        # The reference: the same GETs, same client code, straight from nginx.
        n = Http(origin.base)
        n.get(urllib.parse.urlsplit(pf_media).path)  # opens the keep-alive connection
        ng = []
        for u in pf_urls:
            path = urllib.parse.urlsplit(u).path
            t = time.perf_counter()
            body = n.get(path)
            ng.append(time.perf_counter() - t)
            if len(body) != size:
                raise BenchError(f"nginx sent {len(body)} B for {path}")
        n.close()
        bare_stats = None
        if bare_check:
            # Bare media playlist: where do segments come from?
            bare = Daemon(args.bin, root, "viewer-bare-media", bootstrap=[seeder.addr],
                          trusted=[seeder.peer_id], prefetch=0).start()
            hb = Http(bare.url)
            bpaths = media_paths(hb.get(hls_path(pf_media)))
            hb.get(bpaths[0])
            bare_stats = bare.stats()
            hb.close()
    finally:
        Daemon.stop_all([d for d in Daemon.all if d.dir.parent == root])
    seg_bytes = size * len(pf_urls)
    out = {
        "n": len(gw), "segment_bytes": size, "goal": goal,
        "gw_ms": [x * 1000 for x in gw], "nginx_ms": [x * 1000 for x in ng],
        "gw_p50": pct(gw, 50) * 1000, "gw_max": max(gw) * 1000,
        "nginx_p50": pct(ng, 50) * 1000, "nginx_max": max(ng) * 1000,
        "gw_p99": pct(gw, 99) * 1000, "nginx_p99": pct(ng, 99) * 1000,
        "p2p_delta": s1["bytes_from_p2p"] - s0["bytes_from_p2p"],
        "cdn_delta": s1["bytes_from_cdn"] - s0["bytes_from_cdn"],
        "expected_p2p": seg_bytes,
        "bare_media_first_segment": bare_stats and {
            k: bare_stats[k] for k in ("bytes_from_p2p", "bytes_from_cdn")},
        "logs": str(root),
    }
    log(f"peer fetch {mib} MiB: gateway p50 {out['gw_p50']:.2f} ms p99 {out['gw_p99']:.2f}; nginx p50 "
        f"{out['nginx_p50']:.2f} p99 {out['nginx_p99']:.2f}; p2p +{out['p2p_delta']} "
        f"(expected {seg_bytes}), cdn +{out['cdn_delta']}; bare media: {out['bare_media_first_segment']}")
    return out


def discovery_once(args, root: Path, name: str, seeder: Daemon, vod_url: str, trusting: bool) -> dict:
    v = Daemon(args.bin, root, name, bootstrap=[seeder.addr],
               trusted=[seeder.peer_id] if trusting else [])
    try:
        t0 = v.spawn()
        v.wait_gateway()
        t_health = time.perf_counter()
        h = Http(v.url)
        children = uri_lines(h.get(hls_path(vod_url)))
        t_master = time.perf_counter()
        first = media_paths(h.get(children[0]))[0]
        t_media = time.perf_counter()
        body = h.get(first)
        t_seg = time.perf_counter()
        origin_check = args.origin_obj.check
        origin_check(first, body)
        h.close()
        s = v.stats()
    finally:
        v.stop()
    r = {
        "trusting": trusting, "total_ms": (t_seg - t0) * 1000,
        "health_ms": (t_health - t0) * 1000, "master_ms": (t_master - t_health) * 1000,
        "media_ms": (t_media - t_master) * 1000, "segment_ms": (t_seg - t_media) * 1000,
        "bytes_from_p2p": s["bytes_from_p2p"], "bytes_from_cdn": s["bytes_from_cdn"],
        "segment_bytes": len(body),
    }
    if trusting and s["bytes_from_p2p"] <= 0:
        raise BenchError(f"discovery {name}: first segment not from a peer: {s}")
    if not trusting and s["bytes_from_p2p"] != 0:
        raise BenchError(f"discovery {name}: the reference viewer got peer bytes: {s}")
    log(f"discovery {name}: {r['total_ms']:.0f} ms (health {r['health_ms']:.0f}, master "
        f"{r['master_ms']:.0f}, media {r['media_ms']:.0f}, segment {r['segment_ms']:.0f}); "
        f"p2p {s['bytes_from_p2p']} B, cdn {s['bytes_from_cdn']} B")
    return r


def discovery(args, seeder: Daemon, vod_url: str) -> dict:
    root = fresh_root(args.work, "discovery")
    runs = {"peer": [], "cdn": []}
    for i in range(DISCOVERY_RUNS):
        for trusting in (True, False):
            key = "peer" if trusting else "cdn"
            runs[key].append(discovery_once(args, root, f"{key}{i + 1}", seeder, vod_url, trusting))
            # Rooms announce to new members at most once a second.
            time.sleep(1.5)
    out = {k: {"runs": v, "median_ms": statistics.median(r["total_ms"] for r in v),
               "median_master_ms": statistics.median(r["master_ms"] for r in v),
               "median_segment_ms": statistics.median(r["segment_ms"] for r in v),
               "median_health_ms": statistics.median(r["health_ms"] for r in v)}
           for k, v in runs.items()}
    out["logs"] = str(root)
    return out


# ---------------------------------------------------------------- report
def bench_args(doc: str, access_log: bool = True) -> argparse.ArgumentParser:
    """The arguments every bench script takes from run.sh."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--bin", type=Path, required=True)
    ap.add_argument("--origin-dir", type=Path, required=True, help="nginx root")
    ap.add_argument("--origin-url", required=True, help="http://127.0.0.1:PORT")
    if access_log:
        ap.add_argument("--access-log", type=Path, required=True,
                        help="nginx log for /swarm/: '$request_uri $status $body_bytes_sent', unbuffered")
    ap.add_argument("--work", type=Path, required=True, help="temp dir for data dirs and logs")
    ap.add_argument("--out", type=Path, required=True, help="markdown sections")
    ap.add_argument("--raw", type=Path, help="raw figures, JSON")
    return ap


def prepare(args) -> None:
    """The work dir, the pid file run.sh cleans up from, and SIGTERM as an exit
    that stops the daemons (through the callers' `finally`)."""
    args.work.mkdir(parents=True, exist_ok=True)
    Daemon.pid_file = args.work / "daemon.pids"

    def on_term(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)


def git_rev() -> str:
    repo = Path(__file__).resolve().parent.parent
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip() or "unknown"


def finish(args, r: dict, report) -> int:
    """Writes the raw figures (`--raw`) and the report (`--out`)."""
    if args.raw:
        args.raw.write_text(json.dumps(r, indent=1, default=str) + "\n")
    args.out.write_text(report(r))
    log(f"done in {r['seconds']:.0f} s")
    return 0


def run(main) -> None:
    """Runs a bench script's main, a BenchError ending it with status 1."""
    try:
        sys.exit(main())
    except BenchError as e:
        log(f"error: {e}")
        sys.exit(1)


def mib(b: float) -> str:
    return f"{b / 1048576:.1f} MiB"


def report(r: dict) -> str:
    L = []
    a = L.append
    copy = r["copy_bytes"]
    a("## Swarm offload")
    a("")
    a(f"Swarm sections run: {r['date']}, swarmseed {r['rev']}.")
    a("")
    a(f"Method: `bench/swarm.py`. A {VOD_SECONDS} s HLS VOD made by ffmpeg at bench time (testsrc2 + sine, "
      "x264 ultrafast, TS segments of 2 s, two renditions: 960x540 at 1.5 Mbit/s and 640x360 at "
      f"600 kbit/s, 64 kbit/s AAC each; {r['vod_segments']} segments, one copy = {copy} B = {mib(copy)}) "
      "is served by the same nginx. Every daemon is a fresh process with a fresh data dir, p2p on "
      f"127.0.0.1/tcp, mDNS off, `p2p_timeout_ms = {P2P_TIMEOUT_MS}`, `prefetch_segments = 6`. "
      "*With seeder*: the seeder seeds the video through the API first (the one copy), then viewer i "
      f"starts {START_GAP_S:.0f} s after viewer i-1 (bootstrap: the seeder and the previous viewer; "
      "trusted: the seeder) and, once its gateway answers, plays the whole video in its own thread: "
      "master, both media playlists, then every segment of both renditions in order, as fast as "
      "they come, each checked byte for byte against the origin. *No seeder*: viewer 1 trusts "
      "nobody and plays from the CDN; viewers 2..N bootstrap to viewer 1 and the previous viewer "
      "and trust every earlier viewer (each announces a signed map of what it holds). CDN bytes "
      "are nginx's `$body_bytes_sent` for the run's requests other than `.m3u8`; offload = CDN "
      "segment bytes / one copy. p2p_ratio is each viewer's `/api/v1/stats` figure "
      "(p2p / (p2p + CDN) bytes, playlists included).")
    a("")
    a(f"*Paced* rows repeat N = {PACED_VIEWERS} with each segment fetched no earlier than its place in "
      f"the video divided by {PACE:g} (both renditions back to back: {2 * VOD_SECONDS} s of media in "
      f"{2 * VOD_SECONDS / PACE:.0f} s), so that viewers overlap; unpaced, a viewer plays the video in "
      "well under the 2 s between starts, and each newcomer finds the earlier ones done. "
      "Goals: offload ≤ 1.05 with a seeder, ≤ 1.3 without.")
    a("")
    a("| scenario | viewers | playback | CDN segment bytes | CDN segment requests | one copy | **offload** (CDN / copy) | goal | met | mean viewer p2p_ratio | viewers' segment fetches: from peers (distinct) / from CDN | play time mean / max s |")
    a("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for o in r["offload"]:
        goal = 1.05 if o["seeded"] else 1.3
        met = "yes" if o["offload"] <= goal else "**no**"
        ratio = f"{o['mean_p2p_ratio']:.3f}"
        if not o["seeded"]:
            ratio += f" (viewers 2..N: {o['mean_p2p_ratio_after_first']:.3f})"
        playback = f"paced {o['pace']:g}×" if o["pace"] else "unpaced"
        cdn = sum(o["viewer_cdn_fetches"].values())
        a(f"| {'one seeder' if o['seeded'] else 'no seeder'} | {o['viewers']} | {playback} "
          f"| {o['cdn_segment_bytes']} | {o['cdn_segment_requests']} | {copy} | **{o['offload']:.3f}** "
          f"| ≤ {goal} | {met} | {ratio} | {o['peer_fetches']} ({o['peer_cids']}) / {cdn} "
          f"| {o['play_seconds_mean']:.1f} / {o['play_seconds_max']:.1f} |")
    a("")
    a("Segment fetches are counted from the viewers' logs (`segment from peers`, player and prefetch "
      "alike; `fetched segment from CDN` and `passed a segment through from the CDN`, whose reasons were: " + "; ".join(
          f"{o['name']}: " + (", ".join(f"{k} × {c}" for k, c in sorted(o["viewer_cdn_fetches"].items())) or "none")
          for o in r["offload"]) + "). The seeder's own fetch of the copy is not among them.")
    a("Block streams dropped by the serving side (libp2p-stream's `Channel is full, dropping inbound "
      "stream`) / failed block streams the fetcher retried / blocks given up on that peer after the "
      "retry (stream closed again), per run: " + ", ".join(
          f"{o['name']} {o['streams_dropped']} / {o['stream_failures']} / {o['peer_gave_up']}"
          for o in r["offload"]) + ".")
    a("WARN/ERROR lines in the daemons' logs per run: " + ", ".join(
        f"{o['name']} {o['warn_error_lines']}" for o in r["offload"]) + ".")
    a("")

    pfs = r["peer_fetch"]
    a("## Peer fetch (1 MiB and 4 MiB segments)")
    a("")
    a("Method: per size, a media playlist of segments of exactly that many random bytes "
      "(`#EXT-X-TARGETDURATION:4`, `#EXTINF:4,`, `#EXT-X-ENDLIST`) behind a one-line master: "
      + ", ".join(f"{p['n']} of {p['segment_bytes'] >> 20} MiB" for p in pfs) + ". One fresh "
      "seeder seeds both; per size a fresh viewer (`prefetch_segments = 0`, trusting and "
      "bootstrapping to the seeder) opens the master through its gateway (which waits for the "
      "seeder's map), then GETs each segment path once, sequentially, on one keep-alive "
      "connection, timed with `time.perf_counter` to the last byte. None is in its store, so each "
      "is a peer fetch (gateway → block protocol → seeder's store or hot-block cache → CID check "
      "→ answer; 4 MiB segments are a dag-pb root over four 1 MiB leaves, the leaves asked for "
      "at once). Reference: the same client code GETs the same files straight from nginx on one "
      "keep-alive connection. p99 is nearest-rank (for n = 50 it is the max). Goals from issue 14: "
      "≤ 3× nginx for 1 MiB, ≤ 2× for 4 MiB.")
    a("")
    a("| segment | n | gateway p50 / p99 ms | nginx p50 / p99 ms | **p50 ratio** | **p99 ratio** | goal | met |")
    a("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for p in pfs:
        r50 = p["gw_p50"] / p["nginx_p50"]
        r99 = p["gw_p99"] / p["nginx_p99"]
        met = "yes" if max(r50, r99) <= p["goal"] else "no"
        a(f"| {p['segment_bytes'] >> 20} MiB | {p['n']} | {p['gw_p50']:.2f} / {p['gw_p99']:.2f} | "
          f"{p['nginx_p50']:.2f} / {p['nginx_p99']:.2f} | **{r50:.2f}** | **{r99:.2f}** | "
          f"≤ {p['goal']:g}× | {met} |")
    a("")
    for p in pfs:
        ok = ("as expected" if p["p2p_delta"] == p["expected_p2p"] and p["cdn_delta"] == 0
              else "**not as expected**")
        a(f"Viewer stats over the {p['segment_bytes'] >> 20} MiB GETs: `bytes_from_p2p` "
          f"+{p['p2p_delta']} (expected {p['expected_p2p']}), `bytes_from_cdn` "
          f"+{p['cdn_delta']}: {ok}.")
        b = p["bare_media_first_segment"]
        if b:
            a("A further fresh viewer that opened the bare media playlist (no master) and then "
              f"fetched its first segment had `bytes_from_p2p` = {b['bytes_from_p2p']} and "
              f"`bytes_from_cdn` = {b['bytes_from_cdn']} (playlist included): the room is joined, "
              "and the map awaited, only when a master playlist is opened.")
    a("")

    d = r["discovery"]
    a("## Discovery")
    a("")
    a("Method: against a running seeder that has seeded the bench video, spawn a fresh viewer "
      "(fresh data dir and identity, bootstrap = the seeder, trusted = the seeder), poll its "
      "`gateway.addr` and `/api/v1/health` every 2 ms, GET the master through it (the gateway "
      f"joins the video's room and waits up to `p2p_timeout_ms` = {P2P_TIMEOUT_MS} ms for a trusted "
      "map), GET the first media playlist, GET its first segment; the figure is spawn to the "
      "segment's last byte, and the viewer's `bytes_from_p2p` must then be > 0. Reference: "
      "the same sequence with a fresh viewer that trusts nobody (bootstrap = the seeder), whose "
      f"first segment comes from the CDN (`bytes_from_p2p` = 0). {DISCOVERY_RUNS} runs each, "
      "alternating, median shown. Goal: none set; reported as a ratio to the reference.")
    a("")
    a("| viewer | runs (ms) | **median ms** | ratio to reference | median: spawn → health | master | first segment |")
    a("| --- | --- | --- | --- | --- | --- | --- |")
    for k, label in (("peer", "trusts the seeder (first segment from a peer)"),
                     ("cdn", "trusts nobody (first segment from the CDN), reference")):
        x = d[k]
        runs = ", ".join(f"{q['total_ms']:.0f}" for q in x["runs"])
        a(f"| {label} | {runs} | **{x['median_ms']:.0f}** | **{x['median_ms'] / d['cdn']['median_ms']:.2f}** "
          f"| {x['median_health_ms']:.0f} | {x['median_master_ms']:.0f} | {x['median_segment_ms']:.0f} |")
    a("")
    a(f"Swarm part: {r['seconds']:.0f} s wall time. Daemon logs: `KEEP_TMP=1` keeps them under the "
      "temp dir's `swarm/` (one dir per daemon, `daemon.log` = its stderr).")
    a("")
    a("## Swarm analysis")
    a("")
    a("(filled in by hand after the run)")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- main
def main() -> int:
    ap = bench_args(__doc__)
    ap.add_argument("--viewers", default=os.environ.get("SWARM_VIEWERS", "5 10"),
                    help="viewer counts for the offload runs (env SWARM_VIEWERS)")
    args = ap.parse_args()
    prepare(args)

    started = time.monotonic()
    origin = Origin(args.origin_dir, args.origin_url.rstrip("/"), args.access_log)
    args.origin_obj = origin
    repo = Path(__file__).resolve().parent.parent
    rev = git_rev()
    dirty = subprocess.run(["git", "-C", str(repo), "diff", "--quiet", "HEAD", "--",
                            "daemon", "gateway", "Cargo.toml", "Cargo.lock"]).returncode != 0
    r: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "rev": rev + (" (with uncommitted changes in daemon/ or gateway/)" if dirty else "")}
    try:
        log("making the bench video (ffmpeg)")
        vod_url, copy, nseg = make_vod(origin, VOD_SECONDS)
        pf = [(size, n, goal, *make_pf(origin, size, n)) for size, n, goal in PF_RUNS]
        r.update(vod_url=vod_url, copy_bytes=copy, vod_segments=nseg, offload=[])
        for seeded in (True, False):
            for n in [int(x) for x in args.viewers.split()]:
                r["offload"].append(offload(args, origin, vod_url, copy, seeded, n))
        if PACE > 0 and PACED_VIEWERS > 0:
            for seeded in (True, False):
                r["offload"].append(offload(args, origin, vod_url, copy, seeded, PACED_VIEWERS, PACE))
        seeder = Daemon(args.bin, fresh_root(args.work, "latency"), "seeder").start()
        seeder.seed(vod_url)
        for _, _, _, _, master, _ in pf:
            seeder.seed(master)
        r["peer_fetch"] = [
            peer_fetch(args, origin, seeder, size, goal, media, master, urls, bare_check=i == 0)
            for i, (size, _, goal, media, master, urls) in enumerate(pf)]
        r["discovery"] = discovery(args, seeder, vod_url)
        r["seconds"] = time.monotonic() - started
    finally:
        Daemon.stop_all()
    return finish(args, r, report)


if __name__ == "__main__":
    run(main)
