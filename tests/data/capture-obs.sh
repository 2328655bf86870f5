#!/usr/bin/env bash
# Records the golden OBS Studio session in this folder: Debian's OBS Studio, headless
# under Xvfb, streams 3 s of a moving test pattern with a tone to
# examples/rtmp_capture.rs, which answers as panocast would and keeps every byte OBS
# sent. The file is named after the client and its version; src/ingest/rtmp/golden.rs
# replays it.
#
#   apt-get install -y obs-studio xvfb libgl1-mesa-dri
#   tests/data/capture-obs.sh
#
# The same OBS set-up streams to a running server instead (a live check, nothing is
# recorded) with
#
#   OBS_SERVER=rtmp://127.0.0.1:1935/live OBS_KEY=KEY OBS_SECONDS=10 tests/data/capture-obs.sh
#
# OBS runs with a throwaway HOME holding one profile and one scene collection, so the
# user's own OBS settings are neither read nor touched. What it is set to:
#   service   Custom, server rtmp://127.0.0.1:PORT/live, stream key capture-key
#   output    Advanced mode, video 640x320 (base and output), 30 fps, NV12, 709 partial
#   video     obs_x264, CBR 250 kbps, keyframe interval 1 s, preset veryfast, profile
#             high, no tune: OBS's defaults otherwise, so x264 sends B-frames
#   audio     48 kHz stereo, track 1, AAC (ffmpeg_aac) 128 kbps
#   scene     one Media Source (ffmpeg_source) looping a generated 640x320 30 fps
#             testsrc2 clip with a 440 Hz sine: a picture that moves and real audio
#             without any sound device
#   stop      the Output Timer (frontend-tools) stops the stream 3 s (OBS_SECONDS)
#             after it starts, so OBS ends its publish itself (FCUnpublish,
#             deleteStream)
#
# Re-recording changes the file: update the counts in golden.rs and in
# tests/rtmp_ingest.rs with it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

for tool in obs xvfb-run ffmpeg; do
    command -v "$tool" >/dev/null || {
        echo "capture-obs.sh: $tool is missing (apt-get install -y obs-studio xvfb ffmpeg)" >&2
        exit 1
    }
done

seconds="${OBS_SECONDS:-3}"
if [[ -z "${OBS_SERVER:-}" ]]; then
    nice -n 10 cargo build -q --example rtmp_capture
    capture="${CARGO_TARGET_DIR:-target}/debug/examples/rtmp_capture"
fi

# `obs --version` prints "OBS Studio - 29.0.2.1-1+b1 (linux)" on Debian: the upstream
# version is the first three numbers.
version="$(obs --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1)"
out="tests/data/obs-studio-$version-rtmp-h264-aac.bin"

work="$(mktemp -d)"
obs_pid=""
cleanup() {
    [[ -n "$obs_pid" ]] && kill -- "-$obs_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

clip="$work/clip.mp4"
ffmpeg -hide_banner -loglevel error -nostdin -f lavfi -i "testsrc2=size=640x320:rate=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 10 -pix_fmt yuv420p \
    -c:v libx264 -preset ultrafast -g 30 -c:a aac -b:a 128k -ac 2 "$clip"

if [[ -n "${OBS_SERVER:-}" ]]; then
    url="$OBS_SERVER" key="${OBS_KEY:?OBS_KEY: the stream key}"
else
    fifo="$work/url"
    mkfifo "$fifo"
    "$capture" "$out" >"$fifo" &
    capture_pid=$!
    read -r url <"$fifo"
    key=capture-key
fi

config="$work/config/obs-studio"
profile="$config/basic/profiles/panocast"
mkdir -p "$profile" "$config/basic/scenes"

# FirstRun and LastVersion (29.0.2 as MAJOR<<24 | MINOR<<16 | PATCH) keep the
# auto-configuration wizard and the what's-new dialog away.
cat >"$config/global.ini" <<'EOF'
[General]
FirstRun=true
LastVersion=486539266
Pre19Defaults=false
Pre21Defaults=false
Pre23Defaults=false
Pre24.1Defaults=false
ConfirmOnExit=false

[Basic]
Profile=panocast
ProfileDir=panocast
SceneCollection=panocast
SceneCollectionFile=panocast
ConfigOnNewProfile=false

[BasicWindow]
WarnBeforeStartingStream=false
WarnBeforeStoppingStream=false
SysTrayEnabled=false
EOF

cat >"$profile/basic.ini" <<'EOF'
[General]
Name=panocast

[Output]
Mode=Advanced

[AdvOut]
TrackIndex=1
Encoder=obs_x264
ApplyServiceSettings=true
Track1Bitrate=128

[Video]
BaseCX=640
BaseCY=320
OutputCX=640
OutputCY=320
FPSType=0
FPSCommon=30
ScaleType=bicubic
ColorFormat=NV12
ColorSpace=709
ColorRange=Partial

[Audio]
SampleRate=48000
ChannelSetup=Stereo
EOF

cat >"$profile/streamEncoder.json" <<'EOF'
{"rate_control": "CBR", "bitrate": 250, "keyint_sec": 1, "preset": "veryfast", "profile": "high"}
EOF

cat >"$profile/service.json" <<EOF
{"type": "rtmp_custom", "settings": {"server": "$url", "key": "$key", "use_auth": false}}
EOF

cat >"$config/basic/scenes/panocast.json" <<EOF
{
  "name": "panocast",
  "current_scene": "Scene",
  "current_program_scene": "Scene",
  "scene_order": [{"name": "Scene"}],
  "sources": [
    {
      "id": "scene", "versioned_id": "scene", "name": "Scene",
      "settings": {"id_counter": 1, "custom_size": false, "items": [{
        "name": "clip", "id": 1, "visible": true, "locked": false, "rot": 0.0,
        "pos": {"x": 0.0, "y": 0.0}, "scale": {"x": 1.0, "y": 1.0}, "align": 5,
        "bounds_type": 0, "bounds_align": 0, "bounds": {"x": 0.0, "y": 0.0},
        "crop_left": 0, "crop_top": 0, "crop_right": 0, "crop_bottom": 0
      }]}
    },
    {
      "id": "ffmpeg_source", "versioned_id": "ffmpeg_source", "name": "clip",
      "enabled": true, "muted": false, "volume": 1.0, "mixers": 63, "monitoring_type": 0,
      "settings": {"is_local_file": true, "local_file": "$clip", "looping": true,
                   "restart_on_activate": true, "close_when_inactive": false}
    }
  ],
  "transitions": [],
  "current_transition": "Fade",
  "transition_duration": 300,
  "modules": {
    "output-timer": {
      "streamTimerHours": 0, "streamTimerMinutes": 0, "streamTimerSeconds": $seconds,
      "recordTimerHours": 0, "recordTimerMinutes": 0, "recordTimerSeconds": 0,
      "autoStartStreamTimer": true, "autoStartRecordTimer": false, "pauseRecordTimer": false
    }
  }
}
EOF

# OBS and its Xvfb get a process group of their own, so cleanup ends exactly them.
HOME="$work" XDG_CONFIG_HOME="$work/config" LIBGL_ALWAYS_SOFTWARE=1 \
    setsid xvfb-run -a -s "-screen 0 1280x800x24" \
    obs --multi --profile panocast --collection panocast --scene Scene \
    --startstreaming --disable-missing-files-check >"$work/obs.out" 2>&1 &
obs_pid=$!

if [[ -n "${OBS_SERVER:-}" ]]; then
    for _ in $(seq 1 $((2 * seconds + 120))); do
        grep -q "==== Streaming Stop" "$work/obs.out" && break
        sleep 0.5
    done
    grep -E "rtmp stream|Streaming (Start|Stop)" "$work/obs.out" >&2 || true
    grep -q "==== Streaming Stop" "$work/obs.out"
    exit
fi

# rtmp_capture exits when OBS ends its publish; OBS itself is stopped after that.
for _ in $(seq 1 120); do
    kill -0 "$capture_pid" 2>/dev/null || break
    sleep 0.5
done
if kill -0 "$capture_pid" 2>/dev/null; then
    kill "$capture_pid"
    echo "capture-obs.sh: OBS did not finish a publish within 60 s; its log:" >&2
    cat "$work/obs.out" "$work"/config/obs-studio/logs/*.txt >&2 2>/dev/null || true
    exit 1
fi
wait "$capture_pid"
ls -l "$out"
