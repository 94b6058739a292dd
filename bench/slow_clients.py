#!/usr/bin/env python3
"""Health latency while slow clients hold the gateway: the same probes with
and without 2,000 connections that never finish their headers, one daemon,
one run. Writes JSON for bench/run.sh (SLOW_ONLY=1).

    python3 bench/slow_clients.py --bin target/release/swarmseed --out bench/out/slow.json

Everything is on 127.0.0.1. A probe is a fresh TCP connection, one
`GET /api/v1/health`, the whole answer read: what a monitor or a new player
sees. The reference is the same probes against the same daemon with no slow
client connected.
"""

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SLOW = 2000
PROBES = 200
GAP = 0.02
HEADER_TIMEOUT_MS = 10_000


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def probe(port):
    """Milliseconds for one health request on a fresh connection."""
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"health answered {data[:40]!r}")
    return (time.perf_counter() - t) * 1000


def probes(port, n):
    out = []
    for _ in range(n):
        out.append(probe(port))
        time.sleep(GAP)
    return out


def summary(xs):
    xs = sorted(xs)
    return {
        "n": len(xs),
        "p50_ms": statistics.median(xs),
        "p99_ms": xs[min(len(xs) - 1, int(len(xs) * 0.99))],
        "max_ms": xs[-1],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < SLOW + 500:
        raise SystemExit(f"open file limit {hard} is too low for {SLOW} connections")
    work = tempfile.mkdtemp(prefix="swarmseed-slow.")
    port = free_port()
    config = os.path.join(work, "config.toml")
    with open(config, "w") as f:
        f.write(
            f'data_dir = "{work}/data"\n[gateway]\nlisten = "127.0.0.1:{port}"\n'
            f"header_timeout_ms = {HEADER_TIMEOUT_MS}\n[p2p]\nlisten = []\nmdns = false\n"
            "[webtorrent]\nenabled = false\n"
        )
    log = open(os.path.join(work, "daemon.log"), "w")
    daemon = subprocess.Popen([args.bin, "run", "--config", config], stdout=log, stderr=log)
    try:
        deadline = time.time() + 30
        while True:
            try:
                probe(port)
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("the daemon never answered")
                time.sleep(0.1)
        idle = probes(port, PROBES)

        opened = []
        t0 = time.perf_counter()
        for _ in range(SLOW):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            opened.append((s, time.perf_counter()))
        open_s = time.perf_counter() - t0
        loaded = probes(port, PROBES)
        # How long after its own opening each slow connection was closed.
        lifetimes = []
        for s, at in opened:
            s.settimeout(60)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
            lifetimes.append(time.perf_counter() - at)
            s.close()
        after = probes(port, 20)
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        log.close()
    result = {
        "slow_connections": SLOW,
        "header_timeout_ms": HEADER_TIMEOUT_MS,
        "open_seconds": open_s,
        "idle": summary(idle),
        "loaded": summary(loaded),
        "after": summary(after),
        "closed": len(lifetimes),
        "closed_after_s": {
            "min": min(lifetimes),
            "p50": statistics.median(lifetimes),
            "max": max(lifetimes),
        },
    }
    result["ratio_p50"] = result["loaded"]["p50_ms"] / result["idle"]["p50_ms"]
    result["ratio_p99"] = result["loaded"]["p99_ms"] / result["idle"]["p99_ms"]
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
