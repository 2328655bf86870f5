#!/usr/bin/env bash
# Live-state SSE fan-out benchmark (issue 12); see bench.py for what it prints.
#   benches/sse/run.sh                      uses target/release/panocast (build it first)
#   PANOCAST_BIN=target/debug/panocast benches/sse/run.sh
#   BENCH_CLIENTS=1000 BENCH_CYCLES=10 ...  (defaults)
# Not part of CI: it holds 1,000 connections and runs ffmpeg for about a minute.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${PANOCAST_BIN:-$repo/target/release/panocast}"
[[ -x "$bin" ]] || { echo "benches/sse/run.sh: $bin missing; cargo build --release first" >&2; exit 1; }
# Each client is a socket; leave room for them.
ulimit -n "$(( $(ulimit -Hn) < 65536 ? $(ulimit -Hn) : 65536 ))"
PANOCAST_BIN="$bin" exec python3 "$repo/benches/sse/bench.py"
