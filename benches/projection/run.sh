#!/usr/bin/env bash
# Projection benchmark (issue 17): frames per second of dual fisheye 2x(1920x1920)
# -> 3840x1920 equirect, I420, bilinear, on BENCH_THREADS threads, two ways:
#   panoproject   appsrc ! panoproject ! fakesink, the same frame pushed again and
#                 again (`cargo bench -p gst-plugin-panocast --bench projection`);
#                 counted from its first output buffer to its last, so the lookup
#                 table's one-off build is left out (and printed apart)
#   ffmpeg v360   v360=input=dfisheye:output=e:interp=linear on the same frame
#                 (the loop filter repeats it), -filter_threads BENCH_THREADS; its
#                 own table build is left out the same way, by counting from its
#                 progress report after the first 10 frames to its last
# The two alternate BENCH_ROUNDS times; the summary gives each one's median and
# the ratio of the medians. Targets: panoproject >= 2x ffmpeg and >= 30 fps.
#
#   benches/projection/run.sh
#   BENCH_FRAMES=60 BENCH_ROUNDS=1 benches/projection/run.sh   # smoke run
#
# Environment (defaults in brackets):
#   BENCH_THREADS   threads for both [2]
#   BENCH_FRAMES    frames counted per run, each way [300]
#   BENCH_ROUNDS    alternating rounds [3]
#   BENCH_FOV       lens field of view, degrees [190]
#   BENCH_NICE      niceness of everything this script starts [0]
#   BENCH_OUT       cache for the source frame; results go to $BENCH_OUT/projection
#                   [<repo>/bench-out]
#   PANOCAST_PROJECTION_BENCH  run this bench binary instead of building it with
#                   `cargo bench --bench projection --no-run` (honours CARGO_TARGET_DIR)
#
# The machine is shared: the figures of one round are measured back to back, so
# their ratio is fairer than either alone. The exit status is non-zero only when
# something fails to run, never for a missed target.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

BENCH_THREADS="${BENCH_THREADS:-2}"
BENCH_FRAMES="${BENCH_FRAMES:-300}"
BENCH_ROUNDS="${BENCH_ROUNDS:-3}"
BENCH_FOV="${BENCH_FOV:-190}"
BENCH_NICE="${BENCH_NICE:-0}"
BENCH_OUT="${BENCH_OUT:-$repo/bench-out}"

W=3840
H=1920
# ffmpeg frames not counted: its start-up and table build.
FFMPEG_WARMUP_FRAMES=10

dir="$BENCH_OUT/projection"
src="$BENCH_OUT/projection-dfisheye-${W}x${H}-fov${BENCH_FOV}.yuv"
NICE=(nice -n "$BENCH_NICE")

log() { printf '[projection %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in ffmpeg cargo python3 nice; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run ./scripts/deps.sh"
done
for n in "$BENCH_THREADS" "$BENCH_FRAMES" "$BENCH_ROUNDS"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "BENCH_THREADS, BENCH_FRAMES and BENCH_ROUNDS must be positive integers, got '$n'"
done

cd "$repo"
mkdir -p "$dir"
rm -f "$dir"/*.json "$dir"/*.log

# --- the source: one dual-fisheye frame, both lenses seeing the same scene ------

if [[ ! -s "$src" ]]; then
    log "generating $(basename "$src") (once)"
    "${NICE[@]}" ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc2=s=${W}x${H}" -frames:v 1 \
        -vf "v360=input=e:output=dfisheye:h_fov=$BENCH_FOV:v_fov=$BENCH_FOV:interp=linear" \
        -pix_fmt yuv420p -f rawvideo "$src.tmp"
    mv "$src.tmp" "$src"
fi

# --- panoproject ---------------------------------------------------------------

bench_bin="${PANOCAST_PROJECTION_BENCH:-}"
if [[ -n "$bench_bin" ]]; then
    [[ -x "$bench_bin" ]] || die "PANOCAST_PROJECTION_BENCH=$bench_bin is not executable"
else
    log "cargo bench -p gst-plugin-panocast --bench projection --no-run"
    cargo bench -p gst-plugin-panocast --bench projection --no-run \
        --message-format=json-render-diagnostics >"$dir/cargo.json" 2>"$dir/cargo.log" ||
        { tail -n 20 "$dir/cargo.log" >&2; die "building the bench failed (log: $dir/cargo.log)"; }
    bench_bin="$(python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "projection" and m.get("executable"):
        print(m["executable"])
' <"$dir/cargo.json" | tail -n 1)"
    [[ -n "$bench_bin" ]] || die "no projection bench in $dir/cargo.json"
fi

panoproject_fps() { # ROUND -> fps on stdout
    local out="$dir/panoproject-$1.json"
    "${NICE[@]}" "$bench_bin" --bench --input "$src" --width "$W" --height "$H" --fov "$BENCH_FOV" \
        --frames "$BENCH_FRAMES" --threads "$BENCH_THREADS" >"$out" 2>>"$dir/panoproject.log" ||
        { tail -n 20 "$dir/panoproject.log" >&2; die "the projection bench failed"; }
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["fps"])' "$out"
}

# --- ffmpeg v360 ---------------------------------------------------------------

# Steady-state frame rate from ffmpeg's own progress reports (every 0.25 s), taken
# from the first report with at least FFMPEG_WARMUP_FRAMES frames out (its table
# is built by then) to the last one.
ffmpeg_fps() {
    "${NICE[@]}" python3 -c '
import subprocess, sys, time
warmup, cmd = int(sys.argv[1]), sys.argv[2:]
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
seen = []
for line in p.stdout:
    if line.startswith("frame="):
        seen.append((time.monotonic(), int(line.split("=", 1)[1])))
if p.wait() != 0:
    sys.exit("ffmpeg failed")
steady = [s for s in seen if s[1] >= warmup]
if len(steady) < 2 or steady[-1][1] == steady[0][1]:
    sys.exit("too few progress reports: raise BENCH_FRAMES")
print("%.2f" % ((steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0])))
' "$FFMPEG_WARMUP_FRAMES" ffmpeg -nostdin -hide_banner -loglevel error \
        -f rawvideo -pix_fmt yuv420p -s "${W}x${H}" -i "$src" \
        -filter_threads "$BENCH_THREADS" -threads "$BENCH_THREADS" \
        -vf "loop=loop=$((BENCH_FRAMES + FFMPEG_WARMUP_FRAMES - 1)):size=1:start=0,v360=input=dfisheye:output=e:ih_fov=$BENCH_FOV:iv_fov=$BENCH_FOV:interp=linear" \
        -progress pipe:1 -stats_period 0.25 -f null - 2>>"$dir/ffmpeg.log" ||
        { tail -n 20 "$dir/ffmpeg.log" >&2; die "ffmpeg v360 failed"; }
}

# --- rounds --------------------------------------------------------------------

read -r load _ </proc/loadavg
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
    log "warning: load average $load before measuring; other work on this $(nproc)-core machine" \
        "lowers both figures (their ratio less so)"
fi

ours=()
theirs=()
for round in $(seq 1 "$BENCH_ROUNDS"); do
    log "round $round/$BENCH_ROUNDS: ffmpeg v360"
    theirs+=("$(ffmpeg_fps)")
    log "round $round/$BENCH_ROUNDS: panoproject"
    ours+=("$(panoproject_fps "$round")")
    log "round $round: panoproject ${ours[-1]} fps, ffmpeg v360 ${theirs[-1]} fps"
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ours_median="$(median "${ours[@]}")"
theirs_median="$(median "${theirs[@]}")"
tables_ms="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["tables_ms"])' "$dir/panoproject-1.json")"

echo
echo "dual fisheye 2x(1920x1920) -> ${W}x${H} equirect, I420, bilinear, lenses ${BENCH_FOV} deg," \
    "$BENCH_THREADS threads, $(nproc) cores; $BENCH_FRAMES frames a run, $BENCH_ROUNDS rounds"
echo
printf '%-14s %s\n' "round" "panoproject fps   ffmpeg v360 fps   ratio"
for i in "${!ours[@]}"; do
    printf '%-14s %15s %17s %7s\n' "$((i + 1))" "${ours[$i]}" "${theirs[$i]}" \
        "$(awk -v a="${ours[$i]}" -v b="${theirs[$i]}" 'BEGIN { printf "%.2fx", a / b }')"
done
ratio="$(awk -v a="$ours_median" -v b="$theirs_median" 'BEGIN { printf "%.2f", a / b }')"
printf '%-14s %15s %17s %7s\n' "median" "$ours_median" "$theirs_median" "${ratio}x"
echo
echo "panoproject lookup tables (once per caps/settings change): ${tables_ms} ms"
awk -v r="$ratio" -v f="$ours_median" 'BEGIN {
    printf "target >= 2x ffmpeg: %s; target >= 30 fps: %s\n", (r >= 2 ? "met" : "MISSED"), (f >= 30 ? "met" : "MISSED")
}'
echo "raw figures and logs: $dir/"
