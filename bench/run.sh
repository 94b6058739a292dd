#!/usr/bin/env bash
# Benchmarks the swarmseed gateway against nginx on this machine, then the
# swarm (bench/swarm.py: CDN offload, peer fetch, discovery), then the
# contribution proofs (proofs/examples/receipt_rate.rs: receipts signed and
# verified per second against SHA-256 of the block they cover; bench/receipts.py:
# peer fetch throughput with receipts on and off), the browser paths, and the
# capacity (bench/capacity.py), and writes bench/RESULTS.md.
# All traffic stays on 127.0.0.1.
#
#   bash bench/run.sh
#   SWARM_ONLY=1 bash bench/run.sh    # swarm part only (about 3 minutes)
#   PROOFS_ONLY=1 bash bench/run.sh   # contribution proofs only (about 1 minute)
#   BROWSER_ONLY=1 bash bench/run.sh  # WebRTC-direct and WebSocket to Chromium vs HTTP (about 2 minutes after the build)
#   P2PML_ONLY=1 bash bench/run.sh    # p2p-media-loader seeder: engine, throughput, CDN offload (about 5 minutes after the build)
#   GATEWAY_ONLY=1 bash bench/run.sh  # the gateway against nginx: hit path, trustless gateway and cold miss (about 3 minutes after the build)
#   SLOW_ONLY=1 bash bench/run.sh     # health latency while 2,000 slow clients hold the gateway (about 1 minute after the build)
#   CAPACITY_ONLY=1 bash bench/run.sh # 4 Mbit/s viewers one seeder feeds over TCP, QUIC and WebRTC-direct, against nginx (about 30 minutes)
#
# Knobs (environment): DURATION (wrk seconds per run, default 10),
# CONNS (wrk connection counts, default "32 4"), N (cold-miss samples, default 30),
# KEEP_TMP=1 keeps the temp dir (origin files, logs, data dir),
# PERF=1 profiles the server during the 2 MiB runs at the first connection
# count (perf record, report in bench/out/perf-*.txt; adds a little overhead).
# SWARM_ONLY=1 skips the gateway benchmarks and rewrites only the swarm
# sections of an existing RESULTS.md, keeping the rest (and its analysis).
# PROOFS_ONLY=1 skips the gateway and swarm benchmarks and rewrites only the
# "## Contribution proofs" section of an existing RESULTS.md (appending it if
# missing), keeping everything else, its "## Proofs analysis" included.
# BROWSER_ONLY=1 runs only tests/browser_bench.rs (release, `--ignored`):
# a daemon sends 8 segments of 4 MiB to headless Chromium over WebRTC-direct
# (the bridge/js client, by CID) and the same bytes over HTTP from its
# gateway, and rewrites only the "## Browser transfer" section of an existing
# RESULTS.md (appending it if missing), keeping everything else, its
# hand-written "## Browser transfer analysis" included. It needs Chromium and
# bridge/js/dist/swarmseed.js (`npm ci && npm run build` in bridge/js).
# BROWSER_PROFILE=debug runs that test in a debug build instead (faster to build).
# GATEWAY_ONLY=1 runs only the gateway's hit-path and cold-miss benchmarks and
# rewrites the head of an existing RESULTS.md up to "## Swarm offload" (its
# "## Analysis" left for a hand-written one), keeping everything after it.
# CAPACITY_ONLY=1 runs only bench/capacity.py (how many 4 Mbit/s viewers one
# seeder feeds over TCP, QUIC and WebRTC-direct, against nginx; about 30
# minutes; the WebRTC-direct row needs node and builds bridge/js/dist/node) and
# rewrites only the "## Capacity" section of an existing RESULTS.md
# (appending it if missing), its hand-written "## Capacity analysis" kept.
# CAPACITY_ROWS (default "nginx tcp quic webrtc-direct") picks rows, CAPACITY_START (default
# 8) and CAPACITY_MAX bound the viewer counts tried.
# P2PML_ONLY=1 runs only the benchmarks of the browser swarm seeder (release,
# `--ignored`): tests/rtc_engine.rs `throughput` (the bare str0m engine to
# Chromium over one data channel, against HTTP and Chromium to itself) and
# both tests of tests/p2pml_bench.rs (`throughput`: the daemon's p2pml
# serving path to a p2pml peer in Chromium against HTTP from its gateway;
# `offload`: CDN copies with 1, 3 and 5 unmodified p2p-media-loader players,
# with and without a seeding daemon). It writes bench/out/rtc.json and
# bench/out/p2pml.json and rewrites only the "## Browser swarms
# (p2p-media-loader)" section of an existing RESULTS.md (appending it if
# missing), keeping everything else, its hand-written "## Browser swarms
# analysis" included. It needs Chromium, node and npm (the tests run `npm ci`
# in tests/p2pml) and ffmpeg. P2PML_PROFILE=debug runs them in a debug build.
# Proofs knobs: RATE_SECS (receipt_rate seconds per figure, default 3),
# PROOFS_PAIRS (on/off viewer pairs, default 6), PROOFS_SEGMENTS (1 MiB
# segments per viewer, default 64); see bench/receipts.py.
# SWARMSEED_BIN=path uses that swarmseed binary instead of building one.
# Raw wrk output, CPU snapshots and the swarm's and proofs' raw figures
# (swarm.json, receipt_rate.json, proofs.json) go to bench/out/ (not committed).
set -euo pipefail

DURATION=${DURATION:-10}
CONNS=${CONNS:-"32 4"}
N=${N:-30}
THREADS=2
SWARM_ONLY=${SWARM_ONLY:-0}
PROOFS_ONLY=${PROOFS_ONLY:-0}
BROWSER_ONLY=${BROWSER_ONLY:-0}
BROWSER_PROFILE=${BROWSER_PROFILE:-release}
P2PML_ONLY=${P2PML_ONLY:-0}
P2PML_PROFILE=${P2PML_PROFILE:-release}
GATEWAY_ONLY=${GATEWAY_ONLY:-0}
SLOW_ONLY=${SLOW_ONLY:-0}
CAPACITY_ONLY=${CAPACITY_ONLY:-0}
[ $((SWARM_ONLY + PROOFS_ONLY + BROWSER_ONLY + P2PML_ONLY + GATEWAY_ONLY + SLOW_ONLY + CAPACITY_ONLY)) -le 1 ] || { echo "SWARM_ONLY, PROOFS_ONLY, BROWSER_ONLY, P2PML_ONLY, GATEWAY_ONLY, SLOW_ONLY and CAPACITY_ONLY exclude each other" >&2; exit 2; }

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
FIXTURES=$REPO/tests/fixtures/ts
OUT=$BENCH_DIR/out
RESULTS=$BENCH_DIR/RESULTS.md

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# Strips trailing blank lines.
trim_tail() { sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'; }

# splice_section HEADING FILE [PLACEHOLDER]: replaces the "## HEADING"
# section of RESULTS.md with FILE (appending it if missing) and keeps the
# rest. With PLACEHOLDER (whose first line is the analysis heading), the
# hand-written analysis after the section is kept, or the placeholder put
# in its place.
splice_section() {
    local heading="## $1" file=$2 placeholder=${3:-} tmp analysis
    tmp=$(mktemp -d /tmp/swarmseed-splice.XXXXXX)
    if [ -f "$RESULTS" ]; then
        awk -v h="$heading" '$0 == h { exit } { print }' "$RESULTS" | trim_tail >"$tmp/head.md"
        awk -v h="$heading" 'in_s && /^## / { tail = 1 } $0 == h { in_s = 1 } tail { print }' "$RESULTS" |
            trim_tail >"$tmp/tail.md"
    else
        printf '# swarmseed gateway benchmark\n\nProduced by `bench/run.sh`.\n' >"$tmp/head.md"
        : >"$tmp/tail.md"
    fi
    if [ -n "$placeholder" ]; then
        analysis=${placeholder%%$'\n'*}
        if grep -qxF "$analysis" "$tmp/tail.md"; then
            log "kept the hand-written '$analysis' of $RESULTS: check it against the new figures"
        else
            { printf '%s\n' "$placeholder"; if [ -s "$tmp/tail.md" ]; then echo; cat "$tmp/tail.md"; fi; } >"$tmp/tail.new"
            mv "$tmp/tail.new" "$tmp/tail.md"
        fi
    fi
    { cat "$tmp/head.md"; echo; cat "$file"; if [ -s "$tmp/tail.md" ]; then echo; cat "$tmp/tail.md"; fi; } >"$RESULTS.new"
    mv "$RESULTS.new" "$RESULTS"
    rm -rf "$tmp"
}

# ---------------------------------------------------------------- 1. tools
install_tools() {
    local missing=()
    command -v curl >/dev/null || missing+=(curl)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v nginx >/dev/null || missing+=(nginx)
    command -v ffmpeg >/dev/null || missing+=(ffmpeg)
    command -v python3 >/dev/null || missing+=(python3)
    [ ${#missing[@]} -eq 0 ] && return
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    log "installing: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    local pkgs=()
    for m in "${missing[@]}"; do
        if [ "$m" = nginx ]; then
            # nginx-light is enough (static files, sendfile); fall back to nginx.
            if apt-cache policy nginx-light 2>/dev/null | grep -q 'Candidate: [0-9]'; then
                pkgs+=(nginx-light)
            else
                pkgs+=(nginx)
            fi
        else
            pkgs+=("$m")
        fi
    done
    # RUNLEVEL=1 keeps the package's init script from starting a system nginx.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}
# ---------------------------------------------------------------- browser
# tests/browser_bench.rs prints one line "BROWSER_BENCH {json}"; the section
# goes to $1.
# The browser client bundle, built from the locked npm packages when a
# fresh clone has none yet.
build_js() {
    [ -f "$REPO/bridge/js/dist/swarmseed.js" ] && return 0
    command -v npm >/dev/null || return 0
    log "building bridge/js/dist/swarmseed.js (npm ci, npm run build)"
    (cd "$REPO/bridge/js" && npm ci --no-audit --no-fund && npm run build) >"$OUT/js_build.log" 2>&1 ||
        { tail -20 "$OUT/js_build.log" >&2; die "the browser client bundle did not build"; }
}

run_browser() {
    local out=$1 profile_flag=--release line
    [ "$BROWSER_PROFILE" = release ] || profile_flag=
    command -v "${CHROMIUM:-chromium}" >/dev/null || die "no Chromium (apt-get install -y chromium, or set CHROMIUM)"
    build_js
    [ -f "$REPO/bridge/js/dist/swarmseed.js" ] || die "no bridge/js/dist/swarmseed.js: run npm ci && npm run build in bridge/js"
    log "browser transfer: cargo test $profile_flag --test browser_bench -- --ignored --nocapture"
    (cd "$REPO" && cargo test $profile_flag -p swarmseed --test browser_bench -- --ignored --nocapture) \
        >"$OUT/browser_bench.txt" 2>"$OUT/browser_bench.log" || { tail -40 "$OUT/browser_bench.log" >&2; die "browser benchmark failed"; }
    line=$(sed -n 's/^BROWSER_BENCH //p' "$OUT/browser_bench.txt" | tail -1)
    [ -n "$line" ] || die "no BROWSER_BENCH line in $OUT/browser_bench.txt"
    printf '%s\n' "$line" >"$OUT/browser.json"
    local rev
    rev=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
    python3 - "$OUT/browser.json" "$rev" >"$out" <<'PYEOF'
import json, sys, time
r = json.load(open(sys.argv[1]))
rev = sys.argv[2]
mib = r["segment_bytes"] / 1048576
fmt = lambda xs: ", ".join(f"{x:.1f}" for x in xs)
print("## Browser transfer\n")
print(f"Browser section run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, swarmseed {rev}, "
      f"{r['build']} build (daemon and test), {r['chromium']}.\n")
print(f"Method: `tests/browser_bench.rs` (`cargo test --release --test browser_bench -- --ignored --nocapture`). "
      f"A daemon seeds a VOD playlist of {r['segments']} segments of {mib:g} MiB random bytes from a loopback CDN "
      f"(each segment a dag-pb root over 1 MiB raw leaves). Headless Chromium opens a page on the gateway's own "
      f"origin, imports the `bridge/js` client bundle, and two clients dial the daemon (127.0.0.1), one over "
      f"WebRTC-direct and one over WebSocket. "
      f"Per pass, the page fetches all {r['segments']} segments one after another, timed with `performance.now()` "
      f"from the first request to the last byte: *WebRTC-direct* and *WebSocket* with `client.fetchFile(cid)` "
      f"(every block checked against its CID, four blocks in flight, a receipt signed per block), *HTTP* with "
      f"`fetch()` of the gateway's `/hls/seg/...` paths for the same segments (store hits, one keep-alive connection), "
      f"and *trustless gateway* with a third client whose only source is the gateway's `/ipfs/` (same origin). "
      f"One unmeasured pass of each first, then {r['reps']} repetitions of each; medians shown. "
      f"Cores: CPU seconds per wall second during a pass, of the daemon process and of Chromium's whole "
      f"process group.\n")
print("| path | bytes per pass | **Mbit/s (median)** | runs' Mbit/s | daemon cores | Chromium cores |")
print("| --- | --- | --- | --- | --- | --- |")
print(f"| WebRTC-direct, by CID (bridge/js) | {r['bytes_per_pass']} | **{r['p2p_median_mbit_s']:.1f}** | {fmt(r['p2p_mbit_s'])} | {r['p2p_daemon_cores']:.2f} | {r['p2p_browser_cores']:.2f} |")
print(f"| WebSocket, by CID (bridge/js) | {r['bytes_per_pass']} | **{r['ws_median_mbit_s']:.1f}** | {fmt(r['ws_mbit_s'])} | {r['ws_daemon_cores']:.2f} | {r['ws_browser_cores']:.2f} |")
print(f"| HTTP from the gateway | {r['bytes_per_pass']} | **{r['http_median_mbit_s']:.1f}** | {fmt(r['http_mbit_s'])} | {r['http_daemon_cores']:.2f} | {r['http_browser_cores']:.2f} |")
if "gw_median_mbit_s" in r:
    print(f"| HTTP from the trustless gateway, by CID (bridge/js) | {r['bytes_per_pass']} | **{r['gw_median_mbit_s']:.1f}** | {fmt(r['gw_mbit_s'])} | {r['gw_daemon_cores']:.2f} | {r['gw_browser_cores']:.2f} |")
print()
if "gw_median_mbit_s" in r:
    print(f"The client over HTTP from the trustless gateway (`/ipfs/{{cid}}?format=raw`, every block checked, a receipt per "
          f"block posted back): **{r['ratio_gw_p2p']:.3f}×** WebRTC-direct's rate and **{r['ratio_gw_http']:.3f}×** plain HTTP's; "
          f"the daemon accepted {r['gw_receipts_accepted']} receipts for its {r['gw_blocks']} blocks.\n")
goal = "reached" if r["p2p_median_mbit_s"] >= 300 else "not reached"
per100s = sorted(x["daemon_cores"] / max(x["mbit_s"], 1e-9) * 100 for x in r["runs"] if x["how"] == "p2p")
per100 = per100s[len(per100s) // 2]
cost = "reached" if per100 <= 0.2 else "not reached"
print(f"Ratio WebRTC-direct / HTTP: **{r['ratio_p2p_http']:.3f}**; WebSocket / HTTP: **{r['ratio_ws_http']:.3f}**. Goals (issue 14): "
      f"≥ 300 Mbit/s over WebRTC-direct: **{goal}** ({r['p2p_median_mbit_s']:.1f} Mbit/s); ≤ 0.2 daemon cores per 100 Mbit/s: "
      f"**{cost}** ({per100:.2f}, the median over the passes). The client took {r['blocks_from_p2p']} blocks over WebRTC "
      f"in the whole run, and the daemon accepted {r['receipts_accepted']} receipts for them ({r['ws_receipts_accepted']} "
      f"for the blocks over WebSocket). Block streams that "
      f"failed (reset by the daemon, or refused by js-libp2p) and were asked again: {r['stream_errors']}; segments "
      f"fetched again after the client gave up on a block: {r['segment_retries']}. Raw figures: "
      f"`bench/out/browser.json`.")
PYEOF
}
BROWSER_ANALYSIS_PLACEHOLDER='## Browser transfer analysis

(filled in by hand after the run)'

# ---------------------------------------------------------------- browser swarms
# tests/rtc_engine.rs `throughput` prints "RTC_BENCH {json}", and both tests
# of tests/p2pml_bench.rs print "P2PML_BENCH {json}"; the section goes to $1.
run_p2pml() {
    local out=$1 profile_flag=--release line
    [ "$P2PML_PROFILE" = release ] || profile_flag=
    command -v "${CHROMIUM:-chromium}" >/dev/null || die "no Chromium (apt-get install -y chromium, or set CHROMIUM)"
    command -v node >/dev/null || die "no node (apt-get install -y nodejs npm)"
    command -v ffmpeg >/dev/null || die "no ffmpeg"
    log "browser swarms: cargo test $profile_flag --test rtc_engine -- --ignored --exact throughput"
    (cd "$REPO" && cargo test $profile_flag -p swarmseed --test rtc_engine -- --ignored --exact throughput --nocapture) \
        >"$OUT/rtc_bench.txt" 2>"$OUT/rtc_bench.log" || { tail -40 "$OUT/rtc_bench.log" >&2; die "WebRTC engine benchmark failed"; }
    # libtest may print the line after "test throughput ... " on the same line.
    line=$(sed -n 's/^.*RTC_BENCH //p' "$OUT/rtc_bench.txt" | tail -1)
    [ -n "$line" ] || die "no RTC_BENCH line in $OUT/rtc_bench.txt"
    printf '%s\n' "$line" >"$OUT/rtc.json"
    # One test at a time: each wants the machine's two cores to itself.
    log "browser swarms: cargo test $profile_flag --test p2pml_bench -- --ignored --test-threads=1 (about 3 minutes)"
    (cd "$REPO" && cargo test $profile_flag -p swarmseed --test p2pml_bench -- --ignored --test-threads=1 --nocapture) \
        >"$OUT/p2pml_bench.txt" 2>"$OUT/p2pml_bench.log" || { tail -40 "$OUT/p2pml_bench.log" >&2; die "p2pml benchmark failed"; }
    sed -n 's/^.*P2PML_BENCH //p' "$OUT/p2pml_bench.txt" >"$OUT/p2pml.lines"
    [ "$(wc -l <"$OUT/p2pml.lines")" -ge 2 ] || die "not both P2PML_BENCH lines in $OUT/p2pml_bench.txt"
    python3 -c '
import json, sys
out = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    out[r["test"]] = r
json.dump(out, open(sys.argv[2], "w"), indent=1)
' "$OUT/p2pml.lines" "$OUT/p2pml.json"
    rm -f "$OUT/p2pml.lines"
    local rev
    rev=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
    python3 - "$OUT/rtc.json" "$OUT/p2pml.json" "$rev" >"$out" <<'PYEOF'
import json, sys, time
rtc = json.load(open(sys.argv[1]))
p = json.load(open(sys.argv[2]))
rev = sys.argv[3]
t, o = p["throughput"], p["offload"]
fmt = lambda xs: ", ".join(f"{x:.1f}" for x in xs)
print("## Browser swarms (p2p-media-loader)\n")
print(f"Browser swarms section run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, swarmseed {rev}, "
      f"{t['build']} build (daemon and tests), {t['chromium']}, p2p-media-loader {o['p2pml']}. "
      f"Raw figures: `bench/out/rtc.json`, `bench/out/p2pml.json`.\n")

print("### WebRTC engine to Chromium\n")
print(f"Method: `tests/rtc_engine.rs` `throughput` (`cargo test --release --test rtc_engine -- --ignored --exact throughput`). "
      f"The daemon's WebRTC engine (`bridge/src/rtc`, on str0m), alone in the test process, answers a plain "
      f"`RTCPeerConnection` in headless Chromium and writes {rtc['bytes'] >> 20} MiB into one data channel in "
      f"{rtc['message_bytes'] >> 10} KiB messages; the page times it from the channel's opening to the last byte. "
      f"References in the same run: the same bytes over HTTP from an axum server in the same process (`fetch()`, one "
      f"response), and Chromium sending them to itself between two of its own `RTCPeerConnection`s (64 KiB "
      f"messages, `bufferedAmount` kept under 4 MiB). One warm-up pass of each, then {rtc['reps']} repetitions "
      f"interleaved; medians. Server cores: CPU seconds per wall second of the test process (engine or HTTP server); "
      f"Chromium cores: its whole process group.\n")
print("| path | **Mbit/s (median)** | runs' Mbit/s | ratio to HTTP | server cores | Chromium cores |")
print("| --- | --- | --- | --- | --- | --- |")
print(f"| str0m engine → Chromium, one data channel | **{rtc['rtc_median_mbit_s']:.1f}** | {fmt(rtc['rtc_mbit_s'])} | {rtc['ratio_rtc_http']:.3f} | {rtc['rtc_server_cores']:.2f} | {rtc['rtc_browser_cores']:.2f} |")
print(f"| HTTP (axum) → Chromium | **{rtc['http_median_mbit_s']:.1f}** | {fmt(rtc['http_mbit_s'])} | 1 | {rtc['http_server_cores']:.2f} | {rtc['http_browser_cores']:.2f} |")
print(f"| Chromium → itself, one data channel | **{rtc['loopback_median_mbit_s']:.1f}** | {fmt(rtc['loopback_mbit_s'])} | {rtc['loopback_median_mbit_s'] / rtc['http_median_mbit_s']:.3f} | – | {rtc['loopback_browser_cores']:.2f} |")
print()
pct = lambda d, n: d * 100 / n if n else 0.0
print(f"Engine / Chromium-to-itself: **{rtc['ratio_rtc_loopback']:.3f}**; engine / HTTP: **{rtc['ratio_rtc_http']:.3f}**. "
      f"UDP datagrams the kernel dropped at a full receive buffer (`/proc/net/snmp` RcvbufErrors, machine-wide) "
      f"during the measured passes: engine → Chromium {rtc['rtc_udp_rcvbuf_drops']} of {rtc['rtc_udp_sent']} sent "
      f"({pct(rtc['rtc_udp_rcvbuf_drops'], rtc['rtc_udp_sent']):.2f}%; sent counts both directions, data and "
      f"acknowledgements).\n")

print("### p2pml seeder throughput\n")
mib = t["segment_bytes"] / 1048576
print(f"Method: `tests/p2pml_bench.rs` `throughput`. A daemon seeds a VOD of {t['segments']} segments of {mib:g} MiB "
      f"random bytes from a loopback CDN. Headless Chromium opens a page on the gateway's own origin and makes a "
      f"p2p-media-loader peer there by hand (plain `RTCPeerConnection`, announced to the daemon's own tracker at "
      f"`/announce` under the stream's 2.3 info_hash). Per pass, the page asks the daemon for the {t['segments']} "
      f"segments one after another with `SegmentRequest` frames over one data channel, one request in flight as a "
      f"player has, and the daemon answers on its real serving path (store read and verified, `SegmentData` header, "
      f"{t['chunk_bytes']}-byte chunks, `SegmentDataSendingCompleted`); timed with `performance.now()` from the first "
      f"request to the last completion, data bytes counted and checked against each header and each segment's size. "
      f"Reference: *HTTP*, `fetch()` of the same segments at the gateway's `/hls/seg/...` paths (its rewritten "
      f"playlist's), in the same page. One warm-up pass each, then {t['reps']} repetitions interleaved; medians. "
      f"Cores: CPU seconds per wall second during a pass, of the daemon (its threads' run time) and of Chromium's "
      f"process group; *other*: the rest of the machine's busy time then. CPU per 100 Mbit: the daemon's CPU seconds "
      f"per 100 Mbit sent, which is also the cores it needs to sustain 100 Mbit/s.\n")
print("| path | bytes per pass | **Mbit/s (median)** | runs' Mbit/s | ratio to HTTP | daemon cores | **daemon CPU s per 100 Mbit** | Chromium cores | other cores |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
print(f"| p2pml framing, one data channel from the daemon | {t['bytes_per_pass']} | **{t['p2p_median_mbit_s']:.1f}** | {fmt(t['p2p_mbit_s'])} | {t['ratio_p2p_http']:.3f} | {t['p2p_daemon_cores']:.2f} | **{t['p2p_daemon_cpu_s_per_100mbit']:.3f}** | {t['p2p_browser_cores']:.2f} | {t['p2p_other_cores']:.2f} |")
print(f"| HTTP from the same gateway | {t['bytes_per_pass']} | **{t['http_median_mbit_s']:.1f}** | {fmt(t['http_mbit_s'])} | 1 | {t['http_daemon_cores']:.2f} | **{t['http_daemon_cpu_s_per_100mbit']:.4f}** | {t['http_browser_cores']:.2f} | {t['http_other_cores']:.2f} |")
print()
goal = "reached" if t["p2p_median_mbit_s"] >= 300 else "not reached"
cost = t["p2p_daemon_cpu_s_per_100mbit"] / t["http_daemon_cpu_s_per_100mbit"] if t["http_daemon_cpu_s_per_100mbit"] > 0 else float("nan")
print(f"Goal ≥ 300 Mbit/s over the data channel: **{goal}** ({t['p2p_median_mbit_s']:.1f} Mbit/s, "
      f"{t['ratio_p2p_http']:.3f} of HTTP). The daemon's CPU per byte over the data channel is {cost:.1f}× its CPU per "
      f"byte over HTTP. Its `bytes_uploaded_p2pml` counter rose by {t['daemon_counted_bytes']} bytes over the "
      f"{t['reps'] + 1} data-channel passes, exactly what the page received. UDP datagrams the kernel dropped at a "
      f"full receive buffer (machine-wide) during the measured data-channel passes: {t['p2p_udp_rcvbuf_drops']} of "
      f"{t['p2p_udp_sent']} sent, both directions ({pct(t['p2p_udp_rcvbuf_drops'], t['p2p_udp_sent']):.2f}%).\n")

print("### CDN offload\n")
runs = o["runs"]
copy_kib = o["one_copy_bytes"] / 1024
print(f"Method: `tests/p2pml_bench.rs` `offload`. A {o['video_seconds']} s MPEG-TS VOD (`make_ts_video`, 2 s segments); "
      f"the players play its lower rendition alone as a media playlist (`{o['playlist']}`, {o['segments']} segments, "
      f"{o['one_copy_bytes']} bytes: **one copy**), so one copy is one rendition, and a seeding daemon seeds that "
      f"playlist (fetching one copy from the CDN before the players start). N unmodified players (hls.js + "
      f"p2p-media-loader {o['p2pml']}, each in its own headless Chromium) start {o['stagger_s']:g} s apart, with the "
      f"npm `bittorrent-tracker` (interval {o['tracker_interval_s']} s, so re-announces every 2 s); a fresh CDN, "
      f"tracker and daemon per run. Counted: the CDN's media-segment bytes (`.ts` paths; a TS playlist has no init "
      f"sections; a response cut off by a player counts whole), from the CDN's start (*incl. the seeder's fetch*) "
      f"and from the first player's start (*during viewing*), until every player holds every segment "
      f"(distinct segments loaded == {o['segments']}) or {o['bound_s']:g} s pass. *Default*: the library's settings "
      f"(2 HTTP downloads at once, the first 15 s of playback ahead, its high-demand window, over HTTP); "
      f"*P2P-first*: `simultaneousHttpDownloads: 0`. Offload = 1 − CDN bytes / (N copies), the saving against N "
      f"players each fetching its copy; without a seeder p2p-media-loader alone is bounded by (N−1)/N (someone "
      f"fetches every segment once).\n")
print("| N | settings | seeder | **CDN copies incl. seeder's fetch** | CDN copies during viewing | **offload incl. seeder** | offload during viewing | bound without seeder (N−1)/N | all held, after the first launch | players' bytes from seeder / other players / CDN |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in runs:
    held = f"{r['seconds']:.1f} s" if r["complete"] else f"**not within {o['bound_s']:g} s** ({min(v['held'] for v in r['viewers'])}/{r['segments']} at least)"
    sd = sum(v["bytes_from_seeder"] for v in r["viewers"])
    pv = sum(v["bytes_from_viewers"] for v in r["viewers"])
    hp = sum(v["bytes_from_http"] for v in r["viewers"])
    tot = sd + pv + hp or 1
    print(f"| {r['n']} | {r['settings']} | {'yes' if r['seeder'] else 'no'} | **{r['cdn_copies_total']:.3f}** | {r['cdn_copies_viewing']:.3f} | "
          f"**{r['offload_total'] * 100:.1f}%** | {r['offload_viewing'] * 100:.1f}% | {r['bound_alone'] * 100:.1f}% | {held} | "
          f"{sd * 100 / tot:.0f}% / {pv * 100 / tot:.0f}% / {hp * 100 / tot:.0f}% |")
print("| any | P2P-first | no | – | – | – | – | – | not run: no player may fetch over HTTP and none holds a segment, so playback cannot start | – |")
print()
goal_runs = [r for r in runs if r["seeder"] and r["settings"] == "p2p-first"]
ok = all(r["complete"] and r["cdn_copies_total"] <= 1.05 for r in goal_runs)
worst = max((r["cdn_copies_total"] for r in goal_runs), default=float("nan"))
print(f"Goal with a seeder and P2P-first, ≤ 1.05 CDN copies incl. the seeder's fetch: **{'reached' if ok else 'not reached'}** "
      f"(at most {worst:.3f} copies over N = {', '.join(str(r['n']) for r in goal_runs)}).")
PYEOF
}
P2PML_ANALYSIS_PLACEHOLDER='## Browser swarms analysis

(filled in by hand after the run)'
P2PML_HEADING='## Browser swarms (p2p-media-loader)'

if [ "$P2PML_ONLY" = 1 ]; then
    mkdir -p "$OUT"
    PTMP=$(mktemp -d /tmp/swarmseed-bench.XXXXXX)
    trap 'rm -rf "$PTMP"' EXIT
    log "P2PML_ONLY=1: only the browser swarm benchmarks ($P2PML_PROFILE build)"
    run_p2pml "$PTMP/p2pml.md"
    splice_section "${P2PML_HEADING#"## "}" "$PTMP/p2pml.md" "$P2PML_ANALYSIS_PLACEHOLDER"
    log "wrote the browser swarms section of $RESULTS"
    cat "$PTMP/p2pml.md"
    exit 0
fi

# SLOW_ONLY=1: bench/slow_clients.py against a release daemon; rewrites
# only the "## Slow clients" section (appended if missing).
if [ "$SLOW_ONLY" = 1 ]; then
    mkdir -p "$OUT"
    STMP=$(mktemp -d /tmp/swarmseed-bench.XXXXXX)
    trap 'rm -rf "$STMP"' EXIT
    log "SLOW_ONLY=1: health latency under slow clients (release build)"
    (cd "$REPO" && cargo build --release -p swarmseed --quiet)
    python3 "$BENCH_DIR/slow_clients.py" --bin "$REPO/target/release/swarmseed" --out "$OUT/slow.json" >&2
    rev=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
    python3 - "$OUT/slow.json" "$rev" >"$STMP/slow.md" <<'PYEOF'
import json, sys, time
r = json.load(open(sys.argv[1]))
print("## Slow clients\n")
print(f"Slow clients section run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, swarmseed {sys.argv[2]}, release build. "
      "Raw figures: `bench/out/slow.json`.\n")
print(f"Method: `bench/slow_clients.py`. One daemon on loopback (`header_timeout_ms = {r['header_timeout_ms']}`). "
      f"A probe is a fresh connection and one `GET /api/v1/health`, read whole, {r['idle']['n']} in a row 20 ms apart. "
      f"*Idle*: the probes with nothing else connected (the reference). *Loaded*: the same probes while "
      f"{r['slow_connections']} connections that sent half a request's headers and nothing more are held "
      f"(opened in {r['open_seconds']:.1f} s beforehand). *After*: 20 probes once they were all closed.\n")
print("| phase | probes | p50 ms | p99 ms | max ms | p50 / idle | p99 / idle |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for name in ("idle", "loaded", "after"):
    x = r[name]
    print(f"| {name} | {x['n']} | {x['p50_ms']:.2f} | {x['p99_ms']:.2f} | {x['max_ms']:.2f} | "
          f"{x['p50_ms'] / r['idle']['p50_ms']:.2f} | {x['p99_ms'] / r['idle']['p99_ms']:.2f} |")
print()
c = r["closed_after_s"]
goal = "reached" if r["loaded"]["max_ms"] < 100 else "not reached"
print(f"All {r['closed']} of {r['slow_connections']} slow connections were closed by the daemon, "
      f"{c['min']:.1f} to {c['max']:.1f} s after each was opened (median {c['p50']:.1f} s; as read by the client, "
      f"one after another). Goal, health within 100 ms throughout: **{goal}** (worst {r['loaded']['max_ms']:.1f} ms "
      f"loaded, {r['ratio_p99']:.2f}× the idle p99).")
PYEOF
    splice_section "Slow clients" "$STMP/slow.md"
    log "wrote the slow clients section of $RESULTS"
    cat "$STMP/slow.md"
    exit 0
fi

if [ "$BROWSER_ONLY" = 1 ]; then
    mkdir -p "$OUT"
    BTMP=$(mktemp -d /tmp/swarmseed-bench.XXXXXX)
    trap 'rm -rf "$BTMP"' EXIT
    log "BROWSER_ONLY=1: only the browser transfer ($BROWSER_PROFILE build)"
    run_browser "$BTMP/browser.md"
    splice_section "Browser transfer" "$BTMP/browser.md" "$BROWSER_ANALYSIS_PLACEHOLDER"
    log "wrote the browser transfer section of $RESULTS"
    cat "$BTMP/browser.md"
    exit 0
fi

install_tools
for t in curl wrk nginx awk base64 ffmpeg python3; do command -v "$t" >/dev/null || die "$t not found"; done

if [ -n "${SWARMSEED_BIN:-}" ]; then
    # A binary built elsewhere (e.g. from another checkout); RESULTS.md names it.
    BIN=$SWARMSEED_BIN
    log "using $BIN (SWARMSEED_BIN); not building swarmseed"
else
    log "building swarmseed (release)"
    (cd "$REPO" && cargo build --release -p swarmseed --quiet)
    BIN=$REPO/target/release/swarmseed
fi
[ -x "$BIN" ] || die "no $BIN"
if [ "$SWARM_ONLY" != 1 ] && [ "$GATEWAY_ONLY" != 1 ] && [ "$CAPACITY_ONLY" != 1 ]; then
    log "building the receipt_rate example (release)"
    (cd "$REPO" && cargo build --release -p swarmseed-proofs --example receipt_rate --quiet)
fi

# ---------------------------------------------------------------- setup
TMP=$(mktemp -d /tmp/swarmseed-bench.XXXXXX)
# nginx workers drop root (to nobody/www-data): they must reach the origin files.
chmod 755 "$TMP"
NGINX_PID=
DAEMON_PID=
SWARM_PID=
PROOFS_PID=
CAPACITY_PID=
cleanup() {
    local rc=$? p
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    # swarm.py stops its daemons on SIGTERM; any it left behind are in daemon.pids.
    if [ -n "$SWARM_PID" ] && kill -0 "$SWARM_PID" 2>/dev/null; then
        kill -TERM "$SWARM_PID" 2>/dev/null || true
        wait "$SWARM_PID" 2>/dev/null || true
    fi
    for p in "$PROOFS_PID" "$CAPACITY_PID"; do
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    for f in "$TMP/swarm/daemon.pids" "$TMP/proofs/daemon.pids" "$TMP/capacity/daemon.pids"; do
        [ -f "$f" ] || continue
        while read -r p; do
            if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = swarmseed ]; then
                kill -KILL "$p" 2>/dev/null || true
            fi
        done <"$f"
    done
    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    if [ "${KEEP_TMP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# SWARM_ONLY, PROOFS_ONLY and CAPACITY_ONLY keep the other runs' raw output
# (RESULTS.md refers to it).
[ "$SWARM_ONLY" = 1 ] || [ "$PROOFS_ONLY" = 1 ] || [ "$CAPACITY_ONLY" = 1 ] || rm -rf "$OUT"
mkdir -p "$OUT"

# nginx's master and workers.
nginx_pids() { echo "$NGINX_PID" $(ps -o pid= --ppid "$NGINX_PID"); }

# A loopback port nothing listens on.
free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    die "no free port"
}

# Origin content: fixture segments, a 2 MiB random segment, and for the
# cold-miss runs N distinct objects of each size (distinct bytes, so each miss
# imports, hashes and fsyncs new blocks rather than finding them by CID).
ORIGIN=$TMP/origin
mkdir -p "$ORIGIN/bench" "$ORIGIN/cold"
cp "$FIXTURES"/v0/*.ts "$ORIGIN/bench/"
chmod 755 "$ORIGIN" "$ORIGIN/bench" "$ORIGIN/cold"
SMALL=seg_002.ts
head -c 2097152 /dev/urandom >"$ORIGIN/bench/seg_big.ts"
{
    printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n'
    printf '#EXTINF:2.0,\n%s\n#EXTINF:2.0,\nseg_big.ts\n#EXT-X-ENDLIST\n' "$SMALL"
} >"$ORIGIN/bench/index.m3u8"
chmod 644 "$ORIGIN"/bench/*
SMALL_BYTES=$(stat -c %s "$ORIGIN/bench/$SMALL")
BIG_BYTES=$(stat -c %s "$ORIGIN/bench/seg_big.ts")
for i in $(seq 1 "$N"); do
    head -c 2097152 /dev/urandom >"$ORIGIN/cold/big_$i.ts"
    # The fixture segment with a unique tail.
    cp "$ORIGIN/bench/$SMALL" "$ORIGIN/cold/small_$i.ts"
    printf '%016d' "$i" | dd of="$ORIGIN/cold/small_$i.ts" bs=1 seek=$((SMALL_BYTES - 16)) conv=notrunc status=none
done
chmod 644 "$ORIGIN"/cold/*

# ---------------------------------------------------------------- 2. nginx
NGINX_PORT=$(free_port)
# nginx also proxies to itself: the cold-miss reference for what any proxy
# in front of the origin costs on this machine (kept-alive upstream,
# unbuffered, as the gateway streams a miss).
NGINX_PROXY_PORT=$(free_port)
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log $TMP/nginx/access.log combined buffer=256k flush=5s;
    # The swarm benchmarks count the CDN's bytes per request, as they happen.
    log_format swarm '\$request_uri \$status \$body_bytes_sent';
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    types {
        video/mp2t ts;
        application/vnd.apple.mpegurl m3u8;
    }
    default_type application/octet-stream;
    upstream origin { server 127.0.0.1:$NGINX_PORT; keepalive 16; }
    server {
        listen 127.0.0.1:$NGINX_PROXY_PORT;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $ORIGIN;
        location /swarm/ {
            access_log $TMP/nginx/swarm.log swarm;
        }
    }
}
EOF
log "starting nginx on 127.0.0.1:$NGINX_PORT"
nginx -e "$TMP/nginx/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" &
NGINX_PID=$!
NG=http://127.0.0.1:$NGINX_PORT
NGP=http://127.0.0.1:$NGINX_PROXY_PORT
for _ in $(seq 1 100); do
    curl -sf -o /dev/null "$NG/bench/index.m3u8" && break
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$TMP/nginx/error.log" >&2; die "nginx exited"; }
    sleep 0.1
done
curl -sf -o /dev/null "$NG/bench/index.m3u8" || die "nginx not answering"

# ---------------------------------------------------------------- swarm
# bench/swarm.py against the same nginx (origin files under $ORIGIN/swarm/);
# it writes its sections to $TMP/swarm.md, which go after the gateway's in
# RESULTS.md, and stops every daemon it started.
run_swarm() {
    log "swarm benchmarks (bench/swarm.py)"
    python3 "$BENCH_DIR/swarm.py" --bin "$BIN" --origin-dir "$ORIGIN" --origin-url "$NG" \
        --access-log "$TMP/nginx/swarm.log" --work "$TMP/swarm" \
        --out "$TMP/swarm.md" --raw "$OUT/swarm.json" &
    SWARM_PID=$!
    wait "$SWARM_PID" || die "swarm benchmarks failed (KEEP_TMP=1 keeps the daemons' logs)"
    SWARM_PID=
}

# ---------------------------------------------------------------- proofs
# proofs/examples/receipt_rate.rs (CPU only, before any daemon runs), then
# bench/receipts.py against the same nginx (origin files under
# $ORIGIN/proofs/); the section goes to $TMP/proofs.md.
run_proofs() {
    log "contribution proofs: receipt_rate (cargo run --release -p swarmseed-proofs --example receipt_rate)"
    (cd "$REPO" && cargo run --release --quiet -p swarmseed-proofs --example receipt_rate) \
        >"$OUT/receipt_rate.json" || die "receipt_rate failed"
    log "contribution proofs: peer fetch with receipts on and off (bench/receipts.py)"
    python3 -B "$BENCH_DIR/receipts.py" --bin "$BIN" --origin-dir "$ORIGIN" --origin-url "$NG" \
        --work "$TMP/proofs" --rate-json "$OUT/receipt_rate.json" \
        --out "$TMP/proofs.md" --raw "$OUT/proofs.json" &
    PROOFS_PID=$!
    wait "$PROOFS_PID" || die "proofs benchmarks failed (KEEP_TMP=1 keeps the daemons' logs)"
    PROOFS_PID=
}
# ---------------------------------------------------------------- capacity
# bench/capacity.py against the same nginx (origin files under
# $ORIGIN/swarm/capacity/); the section goes to $TMP/capacity.md.
run_capacity() {
    # The WebRTC-direct row's headless viewers are the Node.js build of the
    # browser client; without node the row is left out.
    if [ -z "${CAPACITY_ROWS:-}" ] && ! command -v node >/dev/null; then
        log "no node: the capacity's WebRTC-direct row is left out"
        export CAPACITY_ROWS="nginx tcp quic"
    fi
    if command -v node >/dev/null && [ ! -f "$REPO/bridge/js/dist/node/client.js" ]; then
        log "building bridge/js/dist/node (npm ci, npm run build:node)"
        (cd "$REPO/bridge/js" && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build:node) \
            >"$OUT/js_node_build.log" 2>&1 || { tail -20 "$OUT/js_node_build.log" >&2; die "the Node.js client build failed"; }
    fi
    log "capacity: 4 Mbit/s viewers one seeder feeds, per transport, against nginx (bench/capacity.py)"
    python3 -B "$BENCH_DIR/capacity.py" --bin "$BIN" --origin-dir "$ORIGIN" --origin-url "$NG" \
        --access-log "$TMP/nginx/swarm.log" --nginx-pids "$(nginx_pids)" --work "$TMP/capacity" \
        --out "$TMP/capacity.md" --raw "$OUT/capacity.json" &
    CAPACITY_PID=$!
    wait "$CAPACITY_PID" || die "capacity benchmark failed (KEEP_TMP=1 keeps the daemons' logs)"
    CAPACITY_PID=
}
CAPACITY_ANALYSIS_PLACEHOLDER='## Capacity analysis

(filled in by hand after the run)'

PROOFS_ANALYSIS_PLACEHOLDER='## Proofs analysis

(filled in by hand after the run)'

if [ "$CAPACITY_ONLY" = 1 ]; then
    log "CAPACITY_ONLY=1: only the capacity benchmark"
    run_capacity
    splice_section "Capacity" "$TMP/capacity.md" "$CAPACITY_ANALYSIS_PLACEHOLDER"
    log "wrote the capacity section of $RESULTS"
    cat "$TMP/capacity.md"
    exit 0
fi

if [ "$PROOFS_ONLY" = 1 ]; then
    log "PROOFS_ONLY=1: skipping the gateway and swarm benchmarks"
    run_proofs
    splice_section "Contribution proofs" "$TMP/proofs.md" "$PROOFS_ANALYSIS_PLACEHOLDER"
    log "wrote the contribution proofs section of $RESULTS"
    cat "$TMP/proofs.md"
    exit 0
fi

if [ "$SWARM_ONLY" = 1 ]; then
    log "SWARM_ONLY=1: skipping the gateway benchmarks"
    run_swarm
    # Keep what RESULTS.md holds before its swarm sections, and its
    # contribution proofs sections (from "## Contribution proofs" on).
    : >"$TMP/results-proofs.md"
    if [ -f "$RESULTS" ]; then
        awk '/^## Swarm offload$/ { exit } { print }' "$RESULTS" | trim_tail >"$TMP/results-head.md"
        awk '/^## Contribution proofs$/ { p = 1 } p { print }' "$RESULTS" | trim_tail >"$TMP/results-proofs.md"
    else
        printf '# swarmseed gateway benchmark\n\nProduced by `bench/run.sh`.\n' >"$TMP/results-head.md"
    fi
    {
        cat "$TMP/results-head.md"; echo; cat "$TMP/swarm.md"
        if [ -s "$TMP/results-proofs.md" ]; then echo; cat "$TMP/results-proofs.md"; fi
    } >"$RESULTS"
    log "wrote the swarm sections of $RESULTS"
    cat "$TMP/swarm.md"
    exit 0
fi

# ---------------------------------------------------------------- 3. daemon
DATA=$TMP/data
cat >"$TMP/swarmseed.toml" <<EOF
data_dir = "$DATA"
[gateway]
listen = "127.0.0.1:0"
[p2p]
listen = []
mdns = false
[webtorrent]
listen = "127.0.0.1:0"
EOF
log "starting swarmseed"
"$BIN" run --config "$TMP/swarmseed.toml" 2>"$TMP/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 1 100); do
    [ -s "$DATA/gateway.addr" ] && break
    kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$TMP/daemon.log" >&2; die "daemon exited"; }
    sleep 0.1
done
GW_ADDR=$(cat "$DATA/gateway.addr")
case $GW_ADDR in 127.0.0.1:*) ;; *) die "gateway bound to $GW_ADDR, not loopback" ;; esac
GW=http://$GW_ADDR
for _ in $(seq 1 100); do
    curl -sf -o /dev/null "$GW/api/v1/health" && break
    sleep 0.1
done
curl -sf -o /dev/null "$GW/api/v1/health" || die "gateway health check failed"
log "gateway at $GW"
sleep 2
# Resident memory (KiB): idle after start, and the peak at the end.
RSS_IDLE=$(awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status")

# The gateway's paths carry tokens only it can mint, so they are read from
# its rewritten playlist: the segment path ending in the file name.
PLAYLIST=$(curl -sf "$GW/hls?url=$NG/bench/index.m3u8") || die "playlist through the gateway failed"
seg_path() {
    grep -m1 "^/hls/seg/all/.*/$1\$" <<<"$PLAYLIST" || die "rewritten playlist names no path for $1:
$PLAYLIST"
}
SMALL_PATH=$(seg_path "$SMALL")
BIG_PATH=$(seg_path seg_big.ts)

# ---------------------------------------------------------------- helpers
# CPU ticks (user+system) of a process and its children's live processes.
ticks_of() {
    local total=0 p t
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        t=$(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')
        total=$((total + t))
    done
    echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)
NPROC=$(nproc)

# wrk output -> "reqs_per_s mib_per_s p50_ms p99_ms errors"
parse_wrk() {
    awk '
    function tomib(v,   n, u) {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "B") return n / 1048576
        if (u == "KB") return n / 1024
        if (u == "MB") return n
        if (u == "GB") return n * 1024
        if (u == "TB") return n * 1048576
        return n
    }
    function toms(v,   n, u) {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") return n / 1000
        if (u == "ms") return n
        if (u == "s") return n * 1000
        if (u == "m") return n * 60000
        return n
    }
    /Requests\/sec:/ { rps = $2 }
    /Transfer\/sec:/ { mib = tomib($2) }
    /^ +50%/ { p50 = toms($2) }
    /^ +99%/ { p99 = toms($2) }
    /Socket errors:/ { err += $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { err += $5 }
    END { printf "%.1f %.1f %.3f %.3f %d\n", rps, mib, p50, p99, err + 0 }'
}

# Busy and total CPU ticks of the whole machine, from /proc/stat.
machine_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
# CPU ticks of a shell's reaped children (cutime + cstime).
children_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $14 + $15}'; }

# "pid comm ticks" for every process and kernel thread.
all_ticks() {
    local f
    for f in /proc/[0-9]*/stat; do cat "$f" 2>/dev/null; echo; done |
        awk 'NF { c = $0; sub(/^[0-9]+ \(/, "", c); sub(/\) .*$/, "", c); gsub(/ /, "_", c)
                  r = $0; sub(/^.*\) /, "", r); split(r, a, " "); print $1, c, a[12] + a[13] }'
}

# run_wrk NAME URL CONNS PIDS...
# -> "rps mib p50 p99 errors server_cores us_per_req wrk_cores other_cores"
# Cores are CPU seconds per wall second: the server's processes, wrk, and
# everything else on the machine (other sessions, kernel threads).
run_wrk() {
    local name=$1 url=$2 c=$3
    shift 3
    local t0 t1 w0 w1 m0 m1 k0 k1 raw top_pid= me=$BASHPID
    if [ "$c" = "${CONNS%% *}" ] && [ "${name#gw}" != "$name" ]; then
        # One process snapshot mid-run, for the write-up.
        (sleep "$((DURATION / 2))"; top -b -n2 -d1 -w 200 | awk '/^top -/{n++} n==2' | head -20 >"$OUT/top-$name.txt") &
        top_pid=$!
    fi
    local perf_pid=
    if [ "${PERF:-0}" = 1 ] && [ "$c" = "${CONNS%% *}" ] && [ "${name%-big-*}" != "$name" ] && command -v perf >/dev/null; then
        perf record -q -F 499 -g -o "$OUT/perf-$name.data" -p "$(echo "$@" | tr ' ' ',')" -- sleep "$((DURATION - 2))" \
            >/dev/null 2>&1 &
        perf_pid=$!
    fi
    all_ticks >"$OUT/.procs0"
    k0=$(children_ticks "$me")
    t0=$(ticks_of "$@")
    m0=$(machine_busy)
    w0=$(date +%s.%N)
    wrk -t"$THREADS" -c"$c" -d"${DURATION}s" --latency "$url" >"$OUT/wrk-$name.txt" 2>&1
    w1=$(date +%s.%N)
    m1=$(machine_busy)
    t1=$(ticks_of "$@")
    k1=$(children_ticks "$me")
    all_ticks >"$OUT/.procs1"
    # Who else used the CPU during the run (ticks of $CLK_TCK/s), for "other load".
    awk 'NR == FNR { t[$1] = $3; next } { d = $3 - t[$1]; if (d > 0) print d, $1, $2 }' \
        "$OUT/.procs0" "$OUT/.procs1" | sort -rn | head -8 >"$OUT/cpu-$name.txt"
    rm -f "$OUT/.procs0" "$OUT/.procs1"
    [ -z "$top_pid" ] || wait "$top_pid" 2>/dev/null || true
    if [ -n "$perf_pid" ]; then
        wait "$perf_pid" 2>/dev/null || true
        perf report -i "$OUT/perf-$name.data" --stdio --no-children --sort dso,sym --percent-limit 1 \
            >"$OUT/perf-$name.txt" 2>/dev/null || true
    fi
    raw=$(parse_wrk <"$OUT/wrk-$name.txt")
    awk -v raw="$raw" -v w0="$w0" -v w1="$w1" -v srv="$((t1 - t0))" -v wrk="$((k1 - k0))" \
        -v all="$((m1 - m0))" -v hz="$CLK_TCK" 'BEGIN {
        split(raw, r, " ")
        dt = w1 - w0
        cores = srv / hz / dt
        usreq = (r[1] > 0) ? srv / hz * 1e6 / (r[1] * dt) : 0
        other = (all - srv - wrk) / hz / dt
        if (other < 0) other = 0
        printf "%s %.2f %.0f %.2f %.2f\n", raw, cores, usreq, wrk / hz / dt, other }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# Other work on the machine skews every figure: wait a while for it to calm.
idle_load() { # cores busy over 2 s
    local a b
    a=$(machine_busy); sleep 2; b=$(machine_busy)
    awk -v d="$((b - a))" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", d / hz / 2 }'
}
QUIET_WAIT=${QUIET_WAIT:-60}
BG_LOAD=$(idle_load)
waited=0
while awk -v l="$BG_LOAD" 'BEGIN { exit !(l > 0.25) }' && [ "$waited" -lt "$QUIET_WAIT" ]; do
    log "machine busy with other work ($BG_LOAD cores); waiting"
    sleep 8
    waited=$((waited + 10))
    BG_LOAD=$(idle_load)
done
log "background load before the runs: $BG_LOAD cores"

# ---------------------------------------------------------------- 4. hit path
declare -A HIT
for size in small big; do
    if [ $size = small ]; then gp=$SMALL_PATH; np=/bench/$SMALL; else gp=$BIG_PATH; np=/bench/seg_big.ts; fi
    # Warm: the first GET is the miss that stores the segment; check the bytes.
    curl -sf -o "$TMP/warm" "$GW$gp" || die "warm GET $gp failed"
    cmp -s "$TMP/warm" "$ORIGIN$np" || die "gateway served different bytes for $np"
    curl -sf -o /dev/null "$NG$np"
    for c in $CONNS; do
        log "hit path: $size, $c connections: gateway"
        HIT[gw,$size,$c]=$(run_wrk "gw-$size-c$c" "$GW$gp" "$c" "$DAEMON_PID")
        log "hit path: $size, $c connections: nginx"
        HIT[ng,$size,$c]=$(run_wrk "nginx-$size-c$c" "$NG$np" "$c" $(nginx_pids))
    done
done

# ------------------------------------------------- 4b. trustless gateway
# The 2 MiB segment as IPFS serves it: one of its 1 MiB leaves as a raw
# block, and its whole DAG as a CAR, each against nginx serving the same
# bytes from a file. The CAR is fetched once through the gateway to make
# that file, and its blocks are checked against their CIDs.
BIG_CID=$(curl -sfI "$GW$BIG_PATH" | awk 'tolower($1) == "etag:" { gsub(/[\r"]/, "", $2); print $2 }')
[ -n "$BIG_CID" ] || die "no CID (ETag) for the 2 MiB segment"
curl -sf -o "$ORIGIN/bench/seg_big.car" "$GW/ipfs/$BIG_CID?format=car" || die "no CAR for $BIG_CID"
LEAF_CID=$(python3 "$REPO/bench/car.py" "$ORIGIN/bench/seg_big.car" "$ORIGIN/bench/seg_big.ts" "$ORIGIN/bench/leaf.bin") \
    || die "the CAR of $BIG_CID does not check out"
curl -sf -o "$TMP/leaf" "$GW/ipfs/$LEAF_CID?format=raw" && cmp -s "$TMP/leaf" "$ORIGIN/bench/leaf.bin" \
    || die "the raw block $LEAF_CID differs"
declare -A IPFS
for c in $CONNS; do
    log "trustless gateway: raw block, $c connections"
    IPFS[gw,raw,$c]=$(run_wrk "gw-ipfs-raw-c$c" "$GW/ipfs/$LEAF_CID?format=raw" "$c" "$DAEMON_PID")
    IPFS[ng,raw,$c]=$(run_wrk "nginx-ipfs-raw-c$c" "$NG/bench/leaf.bin" "$c" $(nginx_pids))
    log "trustless gateway: CAR, $c connections"
    IPFS[gw,car,$c]=$(run_wrk "gw-ipfs-car-c$c" "$GW/ipfs/$BIG_CID?format=car" "$c" "$DAEMON_PID")
    IPFS[ng,car,$c]=$(run_wrk "nginx-ipfs-car-c$c" "$NG/bench/seg_big.car" "$c" $(nginx_pids))
done

# ---------------------------------------------------------------- 5. cold miss
# Time to first and to last byte, one fresh curl (new connection) per GET.
ttlb() { curl -sf -o /dev/null -w '%{time_starttransfer} %{time_total}\n' "$1"; }
declare -A COLD
cold_series() { # name gw|proxy|direct url-template(with @)
    local name=$1 where=$2 tmpl=$3 i url f=$OUT/cold-$1-$2.txt pl paths=()
    : >"$f"
    if [ "$where" = gw ]; then
        # A playlist naming the series, so the gateway mints its paths; reading
        # it fetches no segment.
        pl=$ORIGIN/cold/series-$name.m3u8
        { printf '#EXTM3U\n#EXT-X-TARGETDURATION:2\n'
          for i in $(seq 1 "$N"); do printf '#EXTINF:2.0,\n%s\n' "${tmpl//@/$i}"; done
          printf '#EXT-X-ENDLIST\n'; } >"$pl"
        chmod 644 "$pl"
        mapfile -t paths < <(curl -sf "$GW/hls?url=$NG/cold/series-$name.m3u8" | grep '^/hls/seg/')
        [ "${#paths[@]}" -eq "$N" ] || die "the gateway's playlist for $name names ${#paths[@]} of $N segments"
    fi
    for i in $(seq 1 "$N"); do
        url=${tmpl//@/$i}
        if [ "$where" = gw ]; then
            ttlb "$GW${paths[$((i - 1))]}" >>"$f" || die "cold GET via gateway failed: $url"
        elif [ "$where" = proxy ]; then
            ttlb "$NGP${url#"$NG"}" >>"$f" || die "GET via the nginx proxy failed: $url"
        else
            ttlb "$url" >>"$f" || die "direct GET failed: $url"
        fi
    done
    # p50 and p90 by nearest rank, in ms: to the last byte, then the first
    pct() { awk -v c="$1" '{ print $c }' "$f" | sort -g | awk '{ v[NR] = $1 } END {
        i50 = int(NR * 0.5); if (i50 < NR * 0.5) i50++
        i90 = int(NR * 0.9); if (i90 < NR * 0.9) i90++
        printf "%.2f %.2f", v[i50] * 1000, v[i90] * 1000 }'; }
    COLD[$name,$where]="$(pct 2) $(pct 1)"
}
for spec in "small|$NG/cold/small_@.ts" "big|$NG/cold/big_@.ts" "big-samebytes|$NG/bench/seg_big.ts?v=@"; do
    name=${spec%%|*}
    tmpl=${spec#*|}
    log "cold miss: $name ($N objects)"
    cold_series "$name" gw "$tmpl"
    cold_series "$name" direct "$tmpl"
    cold_series "$name" proxy "$tmpl"
done

STATS=$(curl -sf "$GW/api/v1/stats" || echo '{}')
RSS_PEAK=$(awk '/^VmHWM:/ { print $2 }' "/proc/$DAEMON_PID/status")
RSS_END=$(awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status")
WARNINGS=$(grep -ciE ' (WARN|ERROR) ' "$TMP/daemon.log" || true)
cp "$TMP/daemon.log" "$OUT/daemon.log"
cp "$TMP/nginx/error.log" "$OUT/nginx-error.log" 2>/dev/null || true

# ---------------------------------------------------------------- 6. report
fmt_bytes() { awk -v b="$1" 'BEGIN { if (b >= 1048576) printf "%.1f MiB", b/1048576; else printf "%.1f KiB", b/1024 }'; }
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
NGINX_V=$(nginx -v 2>&1 | sed 's/^nginx version: //')
WRK_V=$({ wrk -v 2>&1 || true; } | awk 'NR == 1 {print $2}')
RUSTC_V=$(rustc -V)
GIT_REV=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
GIT_DIRTY=$(cd "$REPO" && { git diff --quiet HEAD -- daemon gateway Cargo.toml Cargo.lock 2>/dev/null && echo "" || echo " (with uncommitted changes in daemon/ or gateway/)"; })

{
    echo "# swarmseed gateway benchmark"
    echo
    echo "Produced by \`bench/run.sh\`; every run overwrites this file."
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Machine: $NPROC CPUs, $CPU_MODEL, Linux $(uname -r)"
    echo "- Versions: swarmseed $GIT_REV$GIT_DIRTY, $RUSTC_V, $NGINX_V, wrk $WRK_V"
    echo
    echo "## Method"
    echo
    echo "Everything runs on this one machine over 127.0.0.1: nginx (\`worker_processes auto\`, sendfile on,"
    echo "buffered access log) serves a temp origin directory, and swarmseed (release build, default store"
    echo "settings, 256 MiB memory cache) runs with a fresh data dir. The load generator shares the $NPROC CPUs"
    echo "with the server under test, so absolute figures are machine-bound; compare the ratios."
    echo
    echo "*Hit path*: each segment is fetched once through the gateway (the miss that stores it; its bytes are"
    echo "compared with the origin file), then \`wrk -t$THREADS -c<conns> -d${DURATION}s\` GETs the same gateway path"
    echo "over keep-alive connections, and then nginx's URL for the same file. Sizes: a fixture TS segment"
    echo "($SMALL, $SMALL_BYTES B) and a 2 MiB random segment. \"Server cores\" is the CPU time (user+system) of the"
    echo "server's processes during the run divided by wall time; CPU µs/req is that time per request. When"
    echo "wrk is the bottleneck (it reads every byte, on the same CPUs), req/s ratios hide the server's cost:"
    echo "compare CPU µs/req then."
    echo
    echo "*Cold miss*: $N distinct objects per row, each requested once with a fresh \`curl\` (new connection),"
    echo "timed to the first byte (\`%{time_starttransfer}\`) and to the last (\`%{time_total}\`). Through the"
    echo "gateway this is the miss path: a segment no trusted source names goes to the player as nginx sends it,"
    echo "while it is hashed into blocks and stored (fsync of blocks and index) behind it. *Direct* is a fresh GET of the same"
    echo "kind of object from nginx. Rows \`small\` and \`big\` use distinct bytes per object (new blocks written);"
    echo "\`big-samebytes\` uses \`seg_big.ts?v=i\`: new gateway objects whose blocks already exist by CID, so no"
    echo "block is written (only re-read and verified) and only the index entry is new."
    echo
    echo "## Hit path (store hits, keep-alive, wrk)"
    echo
    echo "| size | conns | gateway req/s | nginx req/s | req/s ratio gw/nginx | gateway MiB/s | nginx MiB/s | gw p50 / p99 ms | nginx p50 / p99 ms | server cores gw / nginx | CPU µs/req gw / nginx | wrk cores gw / nginx run | other load gw / nginx run |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    MAX_OTHER=0
    for size in small big; do
        if [ $size = small ]; then bytes=$SMALL_BYTES; else bytes=$BIG_BYTES; fi
        for c in $CONNS; do
            read -r g_rps g_mib g_p50 g_p99 g_err g_cores g_us g_wrk g_oth <<<"${HIT[gw,$size,$c]}"
            read -r n_rps n_mib n_p50 n_p99 n_err n_cores n_us n_wrk n_oth <<<"${HIT[ng,$size,$c]}"
            MAX_OTHER=$(awk -v a="$MAX_OTHER" -v b="$g_oth" -v c="$n_oth" 'BEGIN { m = a; if (b > m) m = b; if (c > m) m = c; print m }')
            note=""
            [ "$g_err" -gt 0 ] && note=" (gw: $g_err errors)"
            [ "$n_err" -gt 0 ] && note="$note (nginx: $n_err errors)"
            echo "| $(fmt_bytes "$bytes") | $c | $g_rps | $n_rps | **$(ratio "$g_rps" "$n_rps")**$note | $g_mib | $n_mib | $g_p50 / $g_p99 | $n_p50 / $n_p99 | $g_cores / $n_cores | $g_us / $n_us | $g_wrk / $n_wrk | $g_oth / $n_oth |"
        done
    done
    echo
    echo "Cores are CPU seconds per wall second over the run, out of $NPROC: the server under test, wrk, and"
    echo "everything else on the machine (\"other load\"; background load before the runs: $BG_LOAD cores)."
    if awk -v m="$MAX_OTHER" 'BEGIN { exit !(m > 0.25) }'; then
        echo
        echo "**Warning:** other work used up to $MAX_OTHER cores during a run, so the hit-path figures may be"
        echo "skewed by it (bench/out/cpu-*.txt names who used the CPU during each run)."
    fi
    echo
    echo "## Trustless gateway (/ipfs/, store hits, keep-alive, wrk)"
    echo
    echo "A 1 MiB leaf of the 2 MiB segment as a raw block (\`/ipfs/{leaf}?format=raw\`), and the segment's"
    echo "whole DAG as a CARv1 (\`/ipfs/{root}?format=car\`, $(fmt_bytes "$(stat -c %s "$ORIGIN/bench/seg_big.car")")), each against nginx serving the"
    echo "same bytes from a file, with the same wrk runs as the hit path."
    echo
    echo "| response | conns | gateway req/s | nginx req/s | req/s ratio gw/nginx | gateway MiB/s | nginx MiB/s | gw p50 / p99 ms | nginx p50 / p99 ms | CPU µs/req gw / nginx |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    for kind in raw car; do
        for c in $CONNS; do
            read -r g_rps g_mib g_p50 g_p99 g_err g_cores g_us g_wrk g_oth <<<"${IPFS[gw,$kind,$c]}"
            read -r n_rps n_mib n_p50 n_p99 n_err n_cores n_us n_wrk n_oth <<<"${IPFS[ng,$kind,$c]}"
            label=$([ "$kind" = raw ] && echo "raw block, 1 MiB" || echo "CAR, 2 MiB segment")
            echo "| $label | $c | $g_rps | $n_rps | **$(ratio "$g_rps" "$n_rps")** | $g_mib | $n_mib | $g_p50 / $g_p99 | $n_p50 / $n_p99 | $g_us / $n_us |"
        done
    done
    echo
    echo "## Cold miss (ms)"
    echo
    echo "| objects | n | to | gateway p50 | nginx proxy p50 | direct p50 | p50 ratio gw/direct | p50 ratio proxy/direct | gateway p90 | nginx proxy p90 | direct p90 | p90 ratio gw/direct | p90 ratio proxy/direct |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    for name in small big big-samebytes; do
        read -r gp50 gp90 gf50 gf90 <<<"${COLD[$name,gw]}"
        read -r pp50 pp90 pf50 pf90 <<<"${COLD[$name,proxy]}"
        read -r dp50 dp90 df50 df90 <<<"${COLD[$name,direct]}"
        case $name in
            small) label="$SMALL_BYTES B, distinct bytes" ;;
            big) label="2 MiB, distinct bytes" ;;
            big-samebytes) label="2 MiB, same bytes (\`?v=i\`)" ;;
        esac
        echo "| $label | $N | first byte | $gf50 | $pf50 | $df50 | **$(ratio "$gf50" "$df50")** | $(ratio "$pf50" "$df50") | $gf90 | $pf90 | $df90 | **$(ratio "$gf90" "$df90")** | $(ratio "$pf90" "$df90") |"
        echo "| $label | $N | last byte | $gp50 | $pp50 | $dp50 | **$(ratio "$gp50" "$dp50")** | $(ratio "$pp50" "$dp50") | $gp90 | $pp90 | $dp90 | **$(ratio "$gp90" "$dp90")** | $(ratio "$pp90" "$dp90") |"
    done
    echo
    echo "Goals: first byte ≤ 1.2× direct, last byte ≤ 1.3× direct. *nginx proxy* is nginx in front of itself"
    echo "(kept-alive upstream, \`proxy_buffering off\`): what any proxy between player and origin costs here."
    echo
    echo "Daemon memory (resident, \`/proc/<pid>/status\`): **$(awk -v k="$RSS_IDLE" 'BEGIN { printf "%.1f", k / 1024 }') MiB idle** two seconds after start; **$(awk -v k="$RSS_PEAK" 'BEGIN { printf "%.1f", k / 1024 }') MiB at its peak** (VmHWM) over the hit-path and cold-miss runs, $(awk -v k="$RSS_END" 'BEGIN { printf "%.1f", k / 1024 }') MiB at the end. Goals: ≤ 40 MB idle, ≤ 200 MB under load."
    echo
    echo "Daemon stats after the run: \`$STATS\`; WARN/ERROR lines in its log: $WARNINGS."
    echo
    echo "## Analysis"
    echo
    echo "(filled in by hand after the run)"
} >"$TMP/gateway.md"
if [ "$GATEWAY_ONLY" = 1 ]; then
    # Everything from the swarm sections on stays as it was.
    { cat "$TMP/gateway.md"
      if [ -f "$RESULTS" ] && grep -q '^## Swarm offload' "$RESULTS"; then
          echo
          sed -n '/^## Swarm offload/,$p' "$RESULTS"
      fi; } >"$TMP/results.md"
    mv "$TMP/results.md" "$RESULTS"
    log "wrote the gateway sections of $RESULTS"
    exit 0
fi
cp "$TMP/gateway.md" "$RESULTS"

# The gateway's daemon is done; the swarm part starts its own.
kill -TERM "$DAEMON_PID" 2>/dev/null || true
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=
run_swarm
{ echo; cat "$TMP/swarm.md"; } >>"$RESULTS"
run_proofs
{ echo; cat "$TMP/proofs.md"; echo; printf '%s\n' "$PROOFS_ANALYSIS_PLACEHOLDER"; } >>"$RESULTS"
command -v "${CHROMIUM:-chromium}" >/dev/null && build_js
if command -v "${CHROMIUM:-chromium}" >/dev/null && [ -f "$REPO/bridge/js/dist/swarmseed.js" ]; then
    run_browser "$TMP/browser.md"
    { echo; cat "$TMP/browser.md"; echo; printf '%s\n' "$BROWSER_ANALYSIS_PLACEHOLDER"; } >>"$RESULTS"
else
    log "no Chromium or no bridge/js/dist/swarmseed.js: skipping the browser transfer (BROWSER_ONLY=1 runs it later)"
fi
if command -v "${CHROMIUM:-chromium}" >/dev/null && command -v node >/dev/null; then
    run_p2pml "$TMP/p2pml.md"
    { echo; cat "$TMP/p2pml.md"; echo; printf '%s\n' "$P2PML_ANALYSIS_PLACEHOLDER"; } >>"$RESULTS"
else
    log "no Chromium or no node: skipping the browser swarms (P2PML_ONLY=1 runs them later)"
fi
run_capacity
{ echo; cat "$TMP/capacity.md"; echo; printf '%s\n' "$CAPACITY_ANALYSIS_PLACEHOLDER"; } >>"$RESULTS"

log "wrote $RESULTS"
cat "$RESULTS"
