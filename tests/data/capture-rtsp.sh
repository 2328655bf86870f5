#!/usr/bin/env bash
# Records the golden RTSP exchange in this folder: the test camera of tests/rtsp_camera
# (gst-rtsp-server, 320x160 H.264 at 25 fps with a keyframe every second, 48 kHz AAC)
# played for 3 s over RTSP-over-TCP by Debian's ffmpeg, through tests/data/rtsp_capture.py,
# which keeps every byte both ways. The file is named after the camera's server and
# its version; src/ingest/rtsp/golden.rs replays it through the RTSP ingest.
#
#   tests/data/capture-rtsp.sh
#
# Re-recording changes the file: update the counts in golden.rs with it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

exe="$(nice -n 10 cargo test --test rtsp_ingest --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "rtsp_ingest" and m.get("executable"):
        print(m["executable"])')"
version="$(gst-inspect-1.0 --version | awk 'NR==1 {print $3}')"
out="tests/data/gst-rtsp-server-$version-h264-aac.bin"

fifo="$(mktemp -u)"
mkfifo "$fifo"
PANOCAST_TEST_CAMERA_PORT=0 PANOCAST_TEST_CAMERA_CODEC=h264-small \
    "$exe" --exact rtsp_camera_process --ignored --nocapture >"$fifo" &
camera=$!
trap 'kill $camera 2>/dev/null || true; rm -f "$fifo"' EXIT
port=""
while read -r line; do
    case "$line" in "camera listening on port "*) port="${line##* }"; break ;; esac
done <"$fifo"
(cat "$fifo" >/dev/null &)

fifo2="$(mktemp -u)"
mkfifo "$fifo2"
python3 tests/data/rtsp_capture.py "$out" "$port" >"$fifo2" &
proxy=$!
read -r url <"$fifo2"
rm -f "$fifo2"
ffmpeg -hide_banner -loglevel error -nostdin -rtsp_transport tcp -i "$url/cam" -t 3 -f null -
wait "$proxy"
echo "$out: $(stat -c %s "$out") bytes"
