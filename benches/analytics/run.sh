#!/usr/bin/env bash
# Audience analytics cost benchmark (issue 13); see bench.py for what it prints.
#   benches/analytics/run.sh                     uses target/release/panocast (build it first)
#   PANOCAST_BIN=target/debug/panocast benches/analytics/run.sh
#   BENCH_VIEWERS=2000 BENCH_MEASURE_S=20 ...   (defaults)
# Not part of CI: it runs 2,000 LL-HLS viewer loops and ffmpeg, twice.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${PANOCAST_BIN:-$repo/target/release/panocast}"
[[ -x "$bin" ]] || { echo "benches/analytics/run.sh: $bin missing; cargo build --release first" >&2; exit 1; }
# Each viewer holds a socket; leave room for them.
ulimit -n "$(( $(ulimit -Hn) < 65536 ? $(ulimit -Hn) : 65536 ))"
PANOCAST_BIN="$bin" exec python3 "$repo/benches/analytics/bench.py"
