#!/usr/bin/env bash
# Webhook delivery throughput (issue 12); see bench.py for what it prints.
#   benches/webhooks/run.sh                      uses target/release/panocast (build it first)
#   PANOCAST_BIN=target/debug/panocast benches/webhooks/run.sh
#   BENCH_MESSAGES=2000 BENCH_ENDPOINTS=1 ...    (defaults)
# Not part of CI: it creates thousands of events and takes about a minute.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${PANOCAST_BIN:-$repo/target/release/panocast}"
[[ -x "$bin" ]] || { echo "benches/webhooks/run.sh: $bin missing; cargo build --release first" >&2; exit 1; }
PANOCAST_BIN="$bin" exec python3 "$repo/benches/webhooks/bench.py"
