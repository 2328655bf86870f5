#!/usr/bin/env bash
# Print the path of a static ffmpeg 7 (PyPI imageio-ffmpeg) whose FLV muxer writes
# Enhanced RTMP (HEVC/AV1 with FourCC video tags); Debian 12's ffmpeg 5.1 cannot.
# Installed once into a venv under the build tree: ${CARGO_TARGET_DIR:-target}/venv-ffmpeg7.
# Idempotent: a second run only prints the path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target="${CARGO_TARGET_DIR:-target}"
venv="$target/venv-ffmpeg7"
version="0.6.0"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c "import imageio_ffmpeg" 2>/dev/null; then
    "$venv/bin/pip" install -q "imageio-ffmpeg==$version" >&2
fi
"$venv/bin/python" -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"
