#!/usr/bin/env bash
# Everything CI checks: formatting, lints (warnings are errors), all tests.
# The integration tests drive the server with ffmpeg/ffprobe from PATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/deps.sh
if ! command -v cargo >/dev/null 2>&1; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
for tool in ffmpeg ffprobe; do
    command -v "$tool" >/dev/null 2>&1 || { echo "test.sh: $tool not on PATH" >&2; exit 1; }
done

step() { printf '\n==> %s\n' "$*" >&2; }

step cargo fmt --check
cargo fmt --check
step cargo clippy --all-targets -- -D warnings
cargo clippy --all-targets -- -D warnings
step cargo test --all-targets
cargo test --all-targets
