#!/usr/bin/env bash
# Flood benchmark (issue 18); see floods.py for what it does and prints.
#   benches/floods/run.sh                                  builds target/release/panocast first
#   PANOCAST_BIN=target/debug/panocast benches/floods/run.sh
#   FLOOD_BASE_S=5 FLOOD_S=10 FLOOD_IDLE=200 FLOOD_GUESSES=100 benches/floods/run.sh  a short run
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ -z "${PANOCAST_BIN:-}" ]]; then
    (cd "$repo" && cargo build --release --quiet)
fi
exec python3 "$repo/benches/floods/floods.py"
