#!/usr/bin/env bash
# Glass-to-glass latency in real players (issue 14, item 3); see bench.mjs for what it
# prints and how.
#   benches/latency/run.sh                        uses target/release/panocast (build it first)
#   PANOCAST_BIN=target/debug/panocast benches/latency/run.sh
#   BENCH_SETUPS="h1:200 h2:200 h1:100 h1:200:2"  proto:part_ms[:hold_back_parts]
#   BENCH_PLAYERS="hls.js hls.js-catchup shaka panocast"
#   BENCH_WARMUP_S=8 BENCH_MEASURE_S=25           per player
#   BENCH_PLAYER_DIST=player/dist                 serve the built-in player from this
#                                                 build, not the server's embedded copy
#                                                 (try player changes without rebuilding)
# Not part of CI: it runs a 30 fps encoder, the server and Chromium for minutes, and
# its figures want a quiet machine.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${PANOCAST_BIN:-$repo/target/release/panocast}"
[[ -x "$bin" ]] || { echo "benches/latency/run.sh: $bin missing; cargo build --release first" >&2; exit 1; }
[[ -f "$repo/player/dist/player.js" ]] || "$repo/scripts/build-player.sh"
[[ -d "$repo/tests/players/node_modules" ]] || (cd "$repo/tests/players" && npm ci --no-audit --no-fund --loglevel=error)
[[ -d "$repo/player/node_modules" ]] || (cd "$repo/player" && npm ci --no-audit --no-fund --loglevel=error)
PANOCAST_BIN="$bin" exec node "$repo/benches/latency/bench.mjs"
