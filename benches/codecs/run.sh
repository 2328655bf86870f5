#!/usr/bin/env bash
# HEVC against H.264 passthrough CPU (issue 16); see passthrough.py for what it prints.
# The HEVC ladder against ffmpeg is the ladder bench with an HEVC source:
#   BENCH_SOURCE_CODEC=hevc benches/ladder/run.sh
#
#   benches/codecs/run.sh            builds target/release/panocast first
#   PANOCAST_BIN=... benches/codecs/run.sh
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ -z "${PANOCAST_BIN:-}" ]]; then
    (cd "$repo" && cargo build --release --quiet)
fi
exec nice -n "${BENCH_NICE:-0}" python3 "$repo/benches/codecs/passthrough.py"
