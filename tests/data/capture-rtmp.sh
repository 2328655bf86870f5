#!/usr/bin/env bash
# Records the golden RTMP sessions in this folder: a real encoder publishes 3 s of a
# 320x180 test pattern and a sine tone to examples/rtmp_capture.rs, which answers as
# panocast would and keeps every byte the encoder sent. Files are named after the
# client and its version; src/ingest/rtmp/golden.rs replays them. OBS Studio's
# session is recorded by capture-obs.sh.
#
#   tests/data/capture-rtmp.sh            Debian's ffmpeg (H.264 + AAC) and ffmpeg 7
#                                         (enhanced RTMP HEVC + AAC, scripts/ffmpeg7.sh)
#
# Re-recording changes the files: update the counts in golden.rs with them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

nice -n 10 cargo build -q --example rtmp_capture
capture="${CARGO_TARGET_DIR:-target}/debug/examples/rtmp_capture"

# 3 s, 25 fps, a keyframe every second, no B-frames in H.264 (x264's "zerolatency"
# tune; OBS at its defaults does send them, see capture-obs.sh) but B-frames in HEVC
# (composition offsets exercised).
source=(-f lavfi -i "testsrc2=size=320x180:rate=25" -f lavfi -i "sine=frequency=440:sample_rate=48000"
    -t 3 -pix_fmt yuv420p -c:a aac -b:a 64k -ac 2)

record() { # NAME FFMPEG ARGS...
    local name="$1" ffmpeg="$2"
    shift 2
    local out="tests/data/$name" fifo
    fifo="$(mktemp -u)"
    mkfifo "$fifo"
    "$capture" "$out" >"$fifo" &
    local pid=$!
    local url
    read -r url <"$fifo"
    rm -f "$fifo"
    "$ffmpeg" -hide_banner -loglevel error -nostdin "${source[@]}" "$@" -f flv "$url/capture-key"
    wait "$pid"
}

ffmpeg5="$(command -v ffmpeg)"
v5="$("$ffmpeg5" -version | awk 'NR==1 {print $3}' | cut -d- -f1)"
record "ffmpeg-$v5-rtmp-h264-aac.bin" "$ffmpeg5" \
    -c:v libx264 -preset ultrafast -tune zerolatency -g 25 -b:v 150k

ffmpeg7="$(scripts/ffmpeg7.sh)"
v7="$("$ffmpeg7" -version | awk 'NR==1 {print $3}' | cut -d- -f1)"
record "ffmpeg-$v7-rtmp-enhanced-hevc-aac.bin" "$ffmpeg7" \
    -c:v libx265 -preset ultrafast -b:v 150k \
    -x265-params "keyint=25:min-keyint=25:bframes=2:log-level=error"

ls -l tests/data/*.bin
