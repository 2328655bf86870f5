#!/usr/bin/env bash
# Transcoding benchmark (issue 2). The same 3840x1920@30 H.264 source goes to
# the same "360" ladder three ways, and each prints CPU seconds per media second:
#   panocast pipeline   panocast's FLV parser feeding its GStreamer ladder
#                       (`cargo bench --bench ladder`, offline: as fast as it can)
#   ffmpeg split+scale  one ffmpeg: decode, split, scale, three libx264 encodes
#   x264 floor          each rung's bare libx264 encode of raw frames, alone;
#                       the decode and scale feeding it run in a producer
#                       process that is not counted
# and, for reference, what decoding the source alone costs (ffmpeg), which the
# floor leaves out and every real transcoder pays.
# Targets: panocast <= 0.9x ffmpeg and <= 1.1x the floor. Then, with panocast
# paced at media rate (--realtime), the largest source this machine transcodes
# to the ladder in real time, and the latency each transcoded rung adds against
# the passthrough rung.
#
#   benches/ladder/run.sh
#   BENCH_SRC_SECONDS=6 BENCH_SECONDS=5 BENCH_RT_SECONDS=5 benches/ladder/run.sh  # smoke run
#
# Ladder: 2560x1280 @ 8000, 1920x960 @ 5000, 1280x640 @ 2500 kb/s; x264 preset
# $BENCH_PRESET, tune zerolatency, no B-frames, VBV maxrate = bitrate and
# bufsize = 1 s of it, keyframes on the source's keyframes (every 60 frames),
# scenecut off. The server never upscales: a real-time run of a smaller source
# gets only the rungs strictly smaller than it.
#
# Environment (defaults in brackets):
#   BENCH_PARTS        what to run [cpu realtime]
#   BENCH_WAYS         (cpu) ways to measure [panocast ffmpeg floor decode]
#   BENCH_SECONDS      (cpu) media seconds transcoded by each way [60]
#   BENCH_RT_SECONDS   (realtime) media seconds per real-time run [30]
#   BENCH_SRC_SECONDS  length of the generated sources; must cover the two above [60]
#   BENCH_PRESET       x264 speed preset, every way [veryfast]
#   BENCH_SOURCE_CODEC h264, or hevc: the same sources in HEVC (x265, 3 B-frames),
#                      sent as Enhanced RTMP FLV; every ffmpeg way then runs the
#                      static ffmpeg 7 of scripts/ffmpeg7.sh, which reads it [h264]
#   BENCH_NICE         niceness of everything this script starts [10]
#   BENCH_OUT          cache for the sources (generated once, slow); results and
#                      logs go to $BENCH_OUT/ladder [<repo>/bench-out]
#   PANOCAST_LADDER_BENCH  run this ladder bench binary instead of building it
#                      with `cargo bench --bench ladder --no-run` (which honours
#                      CARGO_TARGET_DIR)
#
# No sockets are opened; every child process is stopped on exit. The exit
# status is non-zero only when something fails to run, never for a missed target.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

BENCH_PARTS="${BENCH_PARTS:-cpu realtime}"
BENCH_WAYS="${BENCH_WAYS:-panocast ffmpeg floor decode}"
BENCH_SECONDS="${BENCH_SECONDS:-60}"
BENCH_RT_SECONDS="${BENCH_RT_SECONDS:-30}"
BENCH_SRC_SECONDS="${BENCH_SRC_SECONDS:-60}"
BENCH_PRESET="${BENCH_PRESET:-veryfast}"
BENCH_NICE="${BENCH_NICE:-10}"
BENCH_OUT="${BENCH_OUT:-$repo/bench-out}"
BENCH_SOURCE_CODEC="${BENCH_SOURCE_CODEC:-h264}"
case "$BENCH_SOURCE_CODEC" in
h264) FFMPEG=ffmpeg ;;
hevc) FFMPEG="$("$repo/scripts/ffmpeg7.sh")" ;;
*) echo "BENCH_SOURCE_CODEC must be h264 or hevc" >&2; exit 1 ;;
esac

FPS=30
GOP=60 # frames: 2 s, the source's keyframe interval
TOP=3840x1920
TOP_KBPS=12000
# Real-time search order, largest first.
SOURCES=("$TOP" 2880x1440 2560x1280 1920x960)
# The "360" profile: WxH:kb/s.
LADDER=(2560x1280:8000 1920x960:5000 1280x640:2500)

dir="$BENCH_OUT/ladder"
[[ "$BENCH_SOURCE_CODEC" == hevc ]] && dir="$BENCH_OUT/ladder-hevc"
NICE=(nice -n "$BENCH_NICE")

ladder() { python3 "$here/ladder.py" "$@"; }
log() { printf '[ladder %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
has() { [[ " $1 " == *" $2 "* ]]; }
width() { echo "${1%%x*}"; }
height() { local s="${1%%:*}"; echo "${s#*x}"; }

# --- child processes and cleanup ---------------------------------------------

child=""

# run_bg LOG CMD...: run CMD niced, stderr appended to LOG, and wait for it.
# CMD runs in the background so that a signal reaches the trap at once (bash
# holds traps back until a foreground command ends).
run_bg() {
    local log="$1" rc=0
    shift
    "${NICE[@]}" "$@" 2>>"$log" &
    child=$!
    wait "$child" || rc=$?
    child=""
    return "$rc"
}

# step LOG WHAT CMD...: run_bg, and on failure show the log's tail and stop.
step() {
    local log="$1" what="$2"
    shift 2
    run_bg "$log" "$@" || { tail -n 20 "$log" >&2; die "$what failed (log: $log)"; }
}

cleanup() {
    trap - EXIT INT TERM
    if [[ -n "$child" ]]; then
        # The Python helper stops its own children on TERM.
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- checks ------------------------------------------------------------------

for tool in ffmpeg ffprobe python3 nice; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run ./scripts/deps.sh"
done
for n in "$BENCH_SECONDS" "$BENCH_RT_SECONDS" "$BENCH_SRC_SECONDS"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "BENCH_*SECONDS must be whole seconds, got '$n'"
done
if has "$BENCH_PARTS" cpu && ((BENCH_SECONDS > BENCH_SRC_SECONDS)); then
    die "BENCH_SECONDS ($BENCH_SECONDS) is longer than the sources (BENCH_SRC_SECONDS=$BENCH_SRC_SECONDS)"
fi
if has "$BENCH_PARTS" realtime && ((BENCH_RT_SECONDS > BENCH_SRC_SECONDS)); then
    die "BENCH_RT_SECONDS ($BENCH_RT_SECONDS) is longer than the sources (BENCH_SRC_SECONDS=$BENCH_SRC_SECONDS)"
fi

cd "$repo"
mkdir -p "$dir"
rm -f "$dir"/*.json "$dir"/*.log "$dir"/*.progress

# --- sources: generated once, cached in $BENCH_OUT ---------------------------

src_file() {
    local codec=""
    [[ "$BENCH_SOURCE_CODEC" == hevc ]] && codec="hevc-"
    echo "$BENCH_OUT/ladder-src-$codec$1-${BENCH_SRC_SECONDS}s.flv"
}

# The source's video settings: H.264 High, B-frames at x264's defaults, CBR-ish
# with a 2 s buffer, a keyframe every GOP frames and nowhere else (closed GOPs).
# veryfast, because generating the top source on 2 cores takes minutes even so.
# In HEVC: x265 ultrafast (3 B-frames), the same GOP and VBV.
source_x264() { # KBPS
    if [[ "$BENCH_SOURCE_CODEC" == hevc ]]; then
        echo -c:v libx265 -preset ultrafast -pix_fmt yuv420p \
            -b:v "${1}k" -maxrate "${1}k" -bufsize "$((2 * $1))k" \
            -x265-params "keyint=$GOP:min-keyint=$GOP:scenecut=0:open-gop=0:log-level=error"
        return
    fi
    echo -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p \
        -b:v "${1}k" -maxrate "${1}k" -bufsize "$((2 * $1))k" \
        -g "$GOP" -keyint_min "$GOP" -sc_threshold 0 -flags +cgop
}

# Test content: testsrc2 alone is too easy (x264 skips ~80% of its macroblocks),
# and white noise over it only adds residual that x264 quantises away at these
# bitrates. Like a 360 camera instead: the whole picture pans (scroll wraps
# around horizontally, as an equirectangular frame does), over a detailed
# texture (Conway's life at 1/4 size, scaled up, changing 6 times a second)
# with testsrc2's moving objects on top and mild sensor noise. At the ladder's
# bits per pixel x264 then skips ~60% of P macroblocks, mostly motion-predicting
# the rest, at a higher CPU cost per frame than testsrc2 with or without noise.
content_graph() { # W H
    local w="$1" h="$2"
    printf '%s' \
        "testsrc2=s=${w}x${h}:r=$FPS,format=yuv420p[fg];" \
        "life=s=$((w / 4))x$((h / 4)):r=6:seed=7:ratio=0.35:mold=24:" \
        "life_color=#e0d0a0:death_color=#103050:mold_color=#507030," \
        "fps=$FPS,scale=${w}x${h}:flags=bicubic,format=yuv420p[tex];" \
        "[fg][tex]blend=all_mode=average,scroll=horizontal=0.002,noise=alls=6:allf=t[v]"
}

describe() { # FILE: one line of what is in it
    [[ "$BENCH_SOURCE_CODEC" == hevc ]] && { log "$(basename "$1"): HEVC + AAC, Enhanced RTMP FLV"; return; }
    local v a dur size
    v="$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,profile,width,height,r_frame_rate \
        -of csv=p=0 "$1")"
    a="$(ffprobe -v error -select_streams a:0 -show_entries stream=codec_name,sample_rate,channels -of csv=p=0 "$1")"
    dur="$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$1")"
    size="$(stat -c %s "$1")"
    log "$(printf '%s: video %s, audio %s, %.1f s, %.1f Mb/s' "$(basename "$1")" "$v" "$a" "$dur" \
        "$(awk -v s="$size" -v d="$dur" 'BEGIN { print s * 8 / d / 1e6 }')")"
}

make_top_source() {
    local out w h x264
    out="$(src_file "$TOP")"
    [[ -s "$out" ]] && return 0
    w="$(width "$TOP")" h="$(height "$TOP")"
    read -r -a x264 <<<"$(source_x264 "$TOP_KBPS")"
    log "generating $(basename "$out") (once; minutes on 2 cores)"
    step "$dir/source.log" "generating $(basename "$out")" \
        "$FFMPEG" -nostdin -hide_banner -loglevel error -y \
        -filter_complex "$(content_graph "$w" "$h")" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000" \
        -map '[v]' -map 0:a -t "$BENCH_SRC_SECONDS" \
        "${x264[@]}" -c:a aac -b:a 128k -ac 2 -f flv "$out.tmp"
    mv "$out.tmp" "$out"
}

# The smaller sources are the top one scaled, so the content is the same; the
# bitrate scales with the pixel count.
make_source() { # WxH
    local out top kbps x264
    out="$(src_file "$1")" top="$(src_file "$TOP")"
    [[ -s "$out" ]] && return 0
    kbps=$((TOP_KBPS * $(width "$1") * $(height "$1") / ($(width "$TOP") * $(height "$TOP"))))
    read -r -a x264 <<<"$(source_x264 "$kbps")"
    log "generating $(basename "$out") from $(basename "$top") at ${kbps} kb/s (once)"
    step "$dir/source.log" "generating $(basename "$out")" \
        "$FFMPEG" -nostdin -hide_banner -loglevel error -y -i "$top" \
        -map 0:v -map 0:a -vf "scale=$(width "$1"):$(height "$1")" \
        "${x264[@]}" -c:a copy -f flv "$out.tmp"
    mv "$out.tmp" "$out"
}

# --- the ladder's encoder settings, the same for every way -------------------

ladder_x264() { # KBPS
    echo -c:v libx264 -preset "$BENCH_PRESET" -tune zerolatency -bf 0 \
        -b:v "${1}k" -maxrate "${1}k" -bufsize "${1}k"
}

# --- panocast ------------------------------------------------------------------

bench_bin=""

build_bench() {
    if [[ -n "${PANOCAST_LADDER_BENCH:-}" ]]; then
        [[ -x "$PANOCAST_LADDER_BENCH" ]] || die "PANOCAST_LADDER_BENCH=$PANOCAST_LADDER_BENCH is not executable"
        bench_bin="$PANOCAST_LADDER_BENCH"
        return 0
    fi
    log "cargo bench --bench ladder --no-run"
    # Artifacts as JSON on stdout (to find the executable); diagnostics on stderr.
    step "$dir/cargo.log" "cargo bench --bench ladder --no-run" \
        cargo bench --bench ladder --no-run --message-format=json-render-diagnostics >"$dir/cargo.json"
    bench_bin="$(ladder executable ladder <"$dir/cargo.json")" || die "no ladder bench in $dir/cargo.json"
}

# panocast_run OUT SOURCE SECONDS MODE RUNG...: MODE is offline or realtime.
panocast_run() {
    local out="$1" src="$2" secs="$3" mode="$4" rung
    shift 4
    local args=(--input "$src" --preset "$BENCH_PRESET" --seconds "$secs")
    for rung in "$@"; do args+=(--rung "$rung"); done
    [[ "$mode" == realtime ]] && args+=(--realtime)
    # As `cargo bench` would run it: it appends --bench.
    step "$dir/$(basename "$out" .json).log" "the ladder bench ($(basename "$out" .json))" \
        python3 "$here/ladder.py" bench "$out" -- "$bench_bin" "${args[@]}" --bench
}

# --- (1) CPU: three ways -------------------------------------------------------

cpu_panocast() {
    log "panocast pipeline: ${BENCH_SECONDS}s of $TOP, offline"
    panocast_run "$dir/cpu-panocast.json" "$(src_file "$TOP")" "$BENCH_SECONDS" offline "${LADDER[@]}"
}

cpu_ffmpeg() {
    local src graph="" i rung x264 args
    src="$(src_file "$TOP")"
    graph="[0:v]split=${#LADDER[@]}"
    for i in "${!LADDER[@]}"; do graph+="[s$i]"; done
    for i in "${!LADDER[@]}"; do
        rung="${LADDER[$i]%%:*}"
        graph+=";[s$i]scale=$(width "$rung"):$(height "$rung")[r$i]"
    done
    # -t before -i: stop decoding, not only encoding, after BENCH_SECONDS.
    args=("$FFMPEG" -nostdin -hide_banner -loglevel error -y -t "$BENCH_SECONDS" -i "$src"
        -filter_complex "$graph" -progress "$dir/ffmpeg.progress")
    for i in "${!LADDER[@]}"; do
        read -r -a x264 <<<"$(ladder_x264 "${LADDER[$i]#*:}")"
        # fps_mode passthrough: encode each decoded frame once; the default for
        # some muxers (cfr) duplicates frames on FLV's millisecond timestamps.
        # The keyframes come from the source alone: x264's own keyint is off.
        args+=(-map "[r$i]" -an -fps_mode passthrough "${x264[@]}"
            -force_key_frames source -x264-params scenecut=0:keyint=infinite -f null /dev/null)
    done
    log "ffmpeg split+scale: ${BENCH_SECONDS}s of $TOP"
    step "$dir/cpu-ffmpeg.log" "ffmpeg split+scale" \
        python3 "$here/ladder.py" run "$dir/cpu-ffmpeg.json" --progress "$dir/ffmpeg.progress" -- "${args[@]}"
}

cpu_floor() {
    local src rung size w h x264 producer consumer
    src="$(src_file "$TOP")"
    for rung in "${LADDER[@]}"; do
        size="${rung%%:*}" w="$(width "$rung")" h="$(height "$rung")"
        read -r -a x264 <<<"$(ladder_x264 "${rung#*:}")"
        producer=("$FFMPEG" -nostdin -hide_banner -loglevel error -t "$BENCH_SECONDS" -i "$src"
            -map 0:v -vf "scale=$w:$h,format=yuv420p" -fps_mode passthrough -f rawvideo -)
        # No source here to take keyframes from: a fixed GOP, the source's.
        consumer=("$FFMPEG" -nostdin -hide_banner -loglevel error -y
            -f rawvideo -pix_fmt yuv420p -s "${w}x$h" -r "$FPS" -i -
            "${x264[@]}" -g "$GOP" -keyint_min "$GOP" -x264-params scenecut=0
            -progress "$dir/floor-$size.progress" -f null /dev/null)
        log "x264 floor: ${BENCH_SECONDS}s at $size"
        step "$dir/cpu-floor-$size.log" "x264 floor $size" \
            python3 "$here/ladder.py" pipe "$dir/cpu-floor-$size.json" --progress "$dir/floor-$size.progress" \
            -- "${producer[@]}" '|' "${consumer[@]}"
    done
}

cpu_decode() {
    local src
    src="$(src_file "$TOP")"
    log "decode alone: ${BENCH_SECONDS}s of $TOP"
    step "$dir/cpu-decode.log" "decode alone" \
        python3 "$here/ladder.py" run "$dir/cpu-decode.json" --progress "$dir/decode.progress" -- \
        "$FFMPEG" -nostdin -hide_banner -loglevel error -t "$BENCH_SECONDS" -i "$src" \
        -map 0:v -fps_mode passthrough -progress "$dir/decode.progress" -f null /dev/null
}

# --- (2) real time ---------------------------------------------------------------

rungs_below() { # WxH: the ladder's rungs strictly smaller than WxH, one a line
    local rung
    for rung in "${LADDER[@]}"; do
        if (($(width "$rung") < $(width "$1") && $(height "$rung") < $(height "$1"))); then
            echo "$rung"
        fi
    done
}

realtime_search() {
    local size rungs
    for size in "${SOURCES[@]}"; do
        mapfile -t rungs < <(rungs_below "$size")
        ((${#rungs[@]})) || continue
        log "real time: ${BENCH_RT_SECONDS}s of $size -> ${rungs[*]%%:*}"
        panocast_run "$dir/rt-$size.json" "$(src_file "$size")" "$BENCH_RT_SECONDS" realtime "${rungs[@]}"
        if ladder realtime "$dir/rt-$size.json"; then
            return 0
        fi
    done
}

# --- main ------------------------------------------------------------------------

need_panocast=""
has "$BENCH_PARTS" realtime && need_panocast=1
has "$BENCH_PARTS" cpu && has "$BENCH_WAYS" panocast && need_panocast=1
# Build first: a compile error should not wait for the sources.
[[ -n "$need_panocast" ]] && build_bench

make_top_source
describe "$(src_file "$TOP")"
if has "$BENCH_PARTS" realtime; then
    for size in "${SOURCES[@]:1}"; do
        make_source "$size"
        describe "$(src_file "$size")"
    done
fi

read -r load _ </proc/loadavg
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
    log "warning: load average $load before measuring; other work on this $(nproc)-core machine" \
        "skews the CPU figures a little and the real-time search a lot"
fi

if has "$BENCH_PARTS" cpu; then
    has "$BENCH_WAYS" panocast && cpu_panocast
    has "$BENCH_WAYS" ffmpeg && cpu_ffmpeg
    has "$BENCH_WAYS" floor && cpu_floor
    has "$BENCH_WAYS" decode && cpu_decode
fi
has "$BENCH_PARTS" realtime && realtime_search

echo
echo "transcoding a $BENCH_SOURCE_CODEC source to the 360 ladder (${LADDER[*]} kb/s), x264 $BENCH_PRESET, tune zerolatency, no B-frames"
echo "source $(basename "$(src_file "$TOP")"); CPU part: ${BENCH_SECONDS} media s per way;" \
    "real-time part: ${BENCH_RT_SECONDS} media s per run; $(nproc) cores"
echo
ladder report "$dir" "$FPS"
echo
echo "raw figures and logs: $dir/"
