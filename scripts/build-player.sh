#!/usr/bin/env bash
# Build the 360 player bundle (player/dist) that the server embeds: install the
# locked packages, then vite build. Skipped when player/dist is newer than every source file, the
# lockfile and the build config. Needs Node.js >= 20 and npm (scripts/deps.sh checks).
#
#   scripts/build-player.sh           build if stale
#   scripts/build-player.sh --force   always build
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../player"

force=0
case "${1:-}" in
    --force) force=1 ;;
    "") ;;
    *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

outputs=(dist/player.js dist/player.js.gz dist/player.css dist/player.css.gz)
inputs=(package.json package-lock.json vite.config.js)
while IFS= read -r -d '' f; do inputs+=("$f"); done < <(find src -type f -print0)

stale=$force
for out in "${outputs[@]}"; do
    [[ -f "$out" ]] || stale=1
done
if ((!stale)); then
    # The oldest output must be newer than the newest input.
    oldest=$(stat -c %Y "${outputs[@]}" | sort -n | head -1)
    newest=$(stat -c %Y "${inputs[@]}" | sort -n | tail -1)
    ((newest < oldest)) || stale=1
fi
# node_modules must match the lockfile (npm writes node_modules/.package-lock.json).
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
    stale=1
fi
if ((!stale)); then
    echo "build-player.sh: player/dist is up to date" >&2
    exit 0
fi

for tool in node npm; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "build-player.sh: $tool not found; install Node.js >= 20 with npm (see scripts/deps.sh)" >&2
        exit 1
    }
done
echo "build-player.sh: installing player/package-lock.json and building player/dist" >&2
# `npm ci` refuses a lockfile without entries for every platform's optional
# package, and rollup's non-Linux builds are not on the registry we reach, so the
# lockfile can't have them. `npm install --no-save` installs exactly the locked
# versions (checked against their integrity hashes) and never rewrites the lockfile.
npm install --no-save --no-audit --no-fund --loglevel=error
npm run build --silent
