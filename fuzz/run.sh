#!/usr/bin/env bash
# Fuzzes every target for SECONDS each and writes fuzz/RESULTS.md.
#
#   fuzz/run.sh SECONDS            # e.g. nice -n 19 fuzz/run.sh 300
#   TARGETS="dag_pb config" fuzz/run.sh 60
#   SANITIZER=none fuzz/run.sh 60      # default: address (see RESULTS.md)
#   REPORT_ONLY=1 fuzz/run.sh 300      # table from the logs in work/logs
#
# Builds all targets once (release, debug assertions and overflow checks
# on), then runs each binary over a scratch copy of its seed corpus
# (fuzz/work/<target>/, gitignored) so the committed corpus stays small.
# Crash inputs land in fuzz/artifacts/<target>/ and are copied to
# fuzz/regressions/<target>/, which tests/fuzz_regressions.rs replays.
# REPORT_ONLY=1 skips building and fuzzing and writes the table from the
# logs already in work/logs/, so a run that was stopped part-way can be
# finished with TARGETS=... and reported whole.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); on a stable
# toolchain RUSTC_BOOTSTRAP=1 lets it pass its -Z flags.
set -euo pipefail

if [ $# -ne 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SECONDS" >&2
  exit 2
fi
secs=$1
cd "$(dirname "$0")"
fuzz=$PWD

export RUSTC_BOOTSTRAP=1
sanitizer=${SANITIZER:-address}
all_targets="blocks_wire receipts_wire bitswap dag_pb cidmap proofs tracker_wire p2pml_command config gateway_paths fork sha256_list peertube webrtc_framing"
targets=${TARGETS:-$all_targets}

# Largest input per target: a few times the largest seed.
max_len() {
  case $1 in
    blocks_wire | tracker_wire | webrtc_framing) echo 4096 ;;
    receipts_wire | bitswap | dag_pb | cidmap | p2pml_command | peertube) echo 8192 ;;
    proofs | config | gateway_paths | fork | sha256_list) echo 32768 ;;
    *) echo 4096 ;;
  esac
}

mkdir -p work/logs artifacts regressions
if [ -z "${REPORT_ONLY:-}" ]; then
  cargo fuzz build -O -a -s "$sanitizer" --codegen-units 4
fi
bin_dir=$fuzz/target/x86_64-unknown-linux-gnu/release

for t in $targets; do
  [ -z "${REPORT_ONLY:-}" ] || break
  rm -rf "work/$t" "artifacts/$t"
  mkdir -p "work/$t" "artifacts/$t"
  cp -r "corpus/$t/." "work/$t/"
  echo "== $t: ${secs}s" >&2
  # A crash ends the run early with a non-zero status; it is counted below.
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0:detect_leaks=0} \
    "$bin_dir/$t" "work/$t" \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
    -timeout=10 -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
    >"work/logs/$t.log" 2>&1 || true
done

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain -- .. 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes)"
fi
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //' || true)

{
  echo "# Fuzzing results"
  echo
  echo "Written by \`fuzz/run.sh $secs\`; rerun it to refresh."
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- commit: $commit"
  echo "- machine: $(nproc) cores${cpu:+, $cpu}, $(rustc --version)"
  echo "- seconds per target: $secs (\`-max_total_time\`), one process each, \`-rss_limit_mb=2048\`"
  echo "- sanitizer: $sanitizer"
  echo
  echo "| target | executions | exec/s | cov (edges) | ft (features) | corpus (inputs) | peak RSS (MB) | crashes |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for t in $targets; do
    log=work/logs/$t.log
    final_stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
    field() { sed -n "s|.* $1 \([0-9]*\).*|\1|p" <<<"$last"; }
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
    crashes=0
    for a in artifacts/"$t"/*; do
      [ -f "$a" ] || continue
      case $(basename "$a") in
        crash-* | leak-* | timeout-* | oom-*)
          crashes=$((crashes + 1))
          mkdir -p "regressions/$t"
          cp "$a" "regressions/$t/"
          ;;
      esac
    done
    echo "| $t | $(final_stat number_of_executed_units) | $(field exec/s:) | $(field cov:) | $(field ft:) | ${corp:-?} | $(final_stat peak_rss_mb) | $crashes |"
  done
  cat <<'EOF'

## How to run

```sh
cargo install cargo-fuzz --locked
nice -n 19 fuzz/run.sh 300              # every target, 300 s each
TARGETS=p2pml_command fuzz/run.sh 60    # some targets
cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a dag_pb   # one, by hand, until stopped
cd fuzz && cargo test --test fuzz_regressions       # replay corpora and crash inputs
cd fuzz && cargo test --test seeds -- --ignored     # rewrite the seed corpora
```

The seeds in `corpus/<target>/` are written by `tests/seeds.rs` with the
project's own encoders; `run.sh` fuzzes a scratch copy in `work/` (not
committed). Every crash input is copied to `regressions/<target>/` and
replayed by `tests/fuzz_regressions.rs` in the daemon's test suite, through
the same `fuzz_api` function the target calls.

The machine has gcc/g++ and no clang, and needs none: libfuzzer-sys
builds libFuzzer with g++, and AddressSanitizer's runtime
ships with rustc's standard library for x86_64-unknown-linux-gnu, so
cargo-fuzz's default `-s address` works; the sanitizer line above says
which one this run used (`SANITIZER=none fuzz/run.sh N` for speed: coverage
instrumentation, debug assertions and overflow checks only).
EOF
} >RESULTS.md
echo "wrote $fuzz/RESULTS.md" >&2
