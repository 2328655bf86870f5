#!/usr/bin/env bash
# Search latency over 10,000 indexed items (issue 13 item 5); see latency.py for what
# it prints. Uses target/debug/panocast (build it first) unless PANOCAST_BIN is set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
exec python3 benches/search/latency.py "$@"
