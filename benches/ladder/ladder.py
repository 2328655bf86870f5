#!/usr/bin/env python3
"""Measurement helpers for benches/ladder/run.sh (Python standard library only).

Every child is reaped with wait4(2), so a CPU figure is exactly that child's
user+sys time (all its threads, plus any children it waited for), whatever
else runs on the machine at the same time.

Subcommands (results as JSON files, errors on stderr with a non-zero exit):

  run OUT.json [--progress FILE] -- CMD...
        run CMD; write {"cpu_s", "wall_s", "frames"}, frames being the last
        "frame=" of the ffmpeg -progress FILE (null without one)
  pipe OUT.json [--progress FILE] -- PRODUCER... '|' CONSUMER...
        run PRODUCER | CONSUMER; write the figures of the CONSUMER alone
  bench OUT.json -- CMD...
        run the panocast ladder bench (contract below); check its JSON line
        and write it, plus "rusage_cpu_s", our own wait4 figure for the
        whole process, as a cross-check of the "cpu_s" it measured inside
  executable NAME
        read `cargo ... --message-format=json` on stdin and print the path of
        the bench target NAME's executable
  realtime RT.json
        exit 0 if the real-time run kept up (see kept_up)
  report DIR FPS
        print the tables from the result files run.sh left in DIR

The ladder bench (`cargo bench --bench ladder -- ARGS`) takes
  --input FILE.flv --rung WxH:KBPS... --preset P [--realtime] [--seconds N]
and prints one line of JSON on stdout when it ends:
  {"media_s":60.0,"wall_s":41.2,"cpu_s":95.3,"frames_in":1800,
   "rungs":[{"name":"2560x1280","frames_out":1800,"dropped":0,
             "latency_ms_p50":180.0,"latency_ms_p99":260.0}, ...]}
"""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

# A real-time run may end this much later than the media it was fed lasts
# (start-up, pipeline drain) and still count as keeping up.
REALTIME_SLACK = 1.05
TARGET_VS_FFMPEG = 0.9
TARGET_VS_FLOOR = 1.1

# Children not reaped yet: stopped on any exit, so that run.sh stopping this
# helper stops what it runs.
live = []


def die(msg):
    print(f"ladder.py: {msg}", file=sys.stderr)
    sys.exit(1)


def on_signal(signum, _frame):
    # Raised inside os.wait4 (PEP 475 does not retry when a handler raises),
    # so `finally` in main stops the children.
    sys.exit(128 + signum)


def spawn(cmd, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    try:
        p = subprocess.Popen(cmd, **kw)
    except OSError as e:
        die(f"cannot run {cmd[0]}: {e}")
    live.append(p)
    return p


def reap(p):
    """Wait for p with wait4: (exit code, user+sys CPU seconds)."""
    _, status, ru = os.wait4(p.pid, 0)
    # Tell Popen the child is gone; it must not wait for it again.
    p.returncode = os.waitstatus_to_exitcode(status)
    live.remove(p)
    return p.returncode, ru.ru_utime + ru.ru_stime


def stop_children():
    for p in live:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 5
    for p in live:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def describe(cmd):
    return " ".join(cmd[:3]) + (" ..." if len(cmd) > 3 else "")


def progress_frames(path):
    """The last frame= that ffmpeg wrote to its -progress file."""
    if not path:
        return None
    try:
        with open(path) as f:
            found = re.findall(r"^frame=(\d+)$", f.read(), re.M)
    except OSError:
        return None
    return int(found[-1]) if found else None


def write_json(path, doc):
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f)
        f.write("\n")
    os.replace(path + ".tmp", path)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def split_opts(args):
    """OUT [--progress FILE] -- CMD... -> (out, progress, cmd)"""
    if "--" not in args:
        die("missing -- before the command")
    i = args.index("--")
    opts, cmd = args[:i], args[i + 1 :]
    if not opts or not cmd:
        die("usage: OUT.json [--progress FILE] -- CMD...")
    out, progress = opts[0], None
    if opts[1:2] == ["--progress"] and len(opts) == 3:
        progress = opts[2]
    elif len(opts) != 1:
        die(f"unexpected options {opts[1:]}")
    return out, progress, cmd


def cmd_run(args):
    out, progress, cmd = split_opts(args)
    t0 = time.monotonic()
    rc, cpu = reap(spawn(cmd))
    wall = time.monotonic() - t0
    if rc != 0:
        die(f"{describe(cmd)} exited with {rc}")
    write_json(out, {"cpu_s": cpu, "wall_s": wall, "frames": progress_frames(progress)})


def cmd_pipe(args):
    out, progress, cmd = split_opts(args)
    if "|" not in cmd:
        die("pipe: missing '|' between producer and consumer")
    i = cmd.index("|")
    producer, consumer = cmd[:i], cmd[i + 1 :]
    t0 = time.monotonic()
    prod = spawn(producer, stdout=subprocess.PIPE)
    cons = spawn(consumer, stdin=prod.stdout)
    # Only the consumer may hold the read end, or the producer would not see
    # EPIPE if the consumer died.
    prod.stdout.close()
    rc, cpu = reap(cons)
    wall = time.monotonic() - t0
    prc, _ = reap(prod)
    if rc != 0:
        die(f"consumer {describe(consumer)} exited with {rc}")
    if prc != 0:
        die(f"producer {describe(producer)} exited with {prc}")
    write_json(out, {"cpu_s": cpu, "wall_s": wall, "frames": progress_frames(progress)})


def rungs_asked(cmd):
    """The rung names (WxH) that the bench command line asks for."""
    return [cmd[i + 1].split(":")[0] for i, a in enumerate(cmd[:-1]) if a == "--rung"]


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_bench(stdout, asked):
    """The bench's JSON line, checked against the contract; raises ValueError."""
    lines = [line for line in stdout.splitlines() if line.lstrip().startswith("{")]
    if not lines:
        raise ValueError("no JSON line on stdout")
    if len(lines) > 1:
        print(f"ladder.py: {len(lines)} JSON-looking lines on stdout, using the last", file=sys.stderr)
    try:
        doc = json.loads(lines[-1])
    except json.JSONDecodeError as e:
        raise ValueError(f"bad JSON ({e}): {lines[-1][:200]}") from None
    if not isinstance(doc, dict):
        raise ValueError("the JSON line is not an object")
    for key in ("media_s", "wall_s", "cpu_s", "frames_in"):
        if not is_num(doc.get(key)):
            raise ValueError(f"{key!r} missing or not a number")
    if doc["media_s"] <= 0:
        raise ValueError(f"media_s is {doc['media_s']}")
    rungs = doc.get("rungs")
    if not isinstance(rungs, list):
        raise ValueError("'rungs' missing or not a list")
    for r in rungs:
        if not isinstance(r, dict) or not isinstance(r.get("name"), str):
            raise ValueError(f"rung without a name: {r!r}")
        for key in ("frames_out", "dropped"):
            if not is_num(r.get(key)):
                raise ValueError(f"rung {r['name']}: {key!r} missing or not a number")
        for key in ("latency_ms_p50", "latency_ms_p99"):
            if r.get(key) is not None and not is_num(r[key]):
                raise ValueError(f"rung {r['name']}: {key!r} is not a number")
    names = [r["name"] for r in rungs]
    if sorted(names) != sorted(asked):
        raise ValueError(f"rungs {names} in the output, {asked} asked for")
    return doc


def cmd_bench(args):
    out, _, cmd = split_opts(args)
    t0 = time.monotonic()
    p = spawn(cmd, stdout=subprocess.PIPE)
    # The bench prints one line at the very end: reading to EOF first cannot
    # fill the pipe, and keeps wait4 for the rusage.
    stdout = p.stdout.read().decode(errors="replace")
    p.stdout.close()
    rc, cpu = reap(p)
    wall = time.monotonic() - t0
    if rc != 0:
        die(f"{describe(cmd)} exited with {rc}")
    try:
        doc = parse_bench(stdout, rungs_asked(cmd))
    except ValueError as e:
        die(f"{describe(cmd)}: {e}")
    doc["rusage_cpu_s"] = cpu
    doc["rusage_wall_s"] = wall
    write_json(out, doc)


def cmd_executable(args):
    if len(args) != 1:
        die("usage: executable NAME < cargo-messages.json")
    found = None
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        target = msg.get("target") or {}
        if (
            msg.get("reason") == "compiler-artifact"
            and target.get("name") == args[0]
            and "bench" in target.get("kind", [])
            and msg.get("executable")
        ):
            found = msg["executable"]
    if not found:
        die(f"cargo built no bench named {args[0]!r}")
    print(found)


def kept_up(doc):
    """(ok, why): no rung dropped a frame and the run took at most
    REALTIME_SLACK x the media time."""
    dropped = {r["name"]: r["dropped"] for r in doc["rungs"] if r["dropped"]}
    late = doc["wall_s"] > doc["media_s"] * REALTIME_SLACK
    why = []
    if dropped:
        why.append("dropped " + ", ".join(f"{n}: {d}" for n, d in dropped.items()))
    if late:
        why.append(f"took {doc['wall_s']:.1f} s for {doc['media_s']:.1f} media s")
    return not why, "; ".join(why) or "kept up"


def cmd_realtime(args):
    ok, _ = kept_up(read_json(args[0]))
    sys.exit(0 if ok else 1)


# --- report ------------------------------------------------------------------


def size_of(path):
    """The WxH in a result file's name (cpu-floor-WxH.json, rt-WxH.json)."""
    return re.search(r"-(\d+x\d+)\.json$", path).group(1)


def size_key(name):
    w, h = (int(x) for x in name.split("x"))
    return w * h


def fmt_ms(v):
    return "-" if v is None else f"{v:.1f}"


def report_cpu(d, fps):
    """Print the three-way table; return {way: cpu s per media s}."""
    per = {}
    details = []

    path = os.path.join(d, "cpu-panocast.json")
    if os.path.exists(path):
        doc = read_json(path)
        per["panocast"] = doc["cpu_s"] / doc["media_s"]
        details.append(
            f"  panocast: {doc['cpu_s']:.2f} CPU s (wait4 on the process: {doc['rusage_cpu_s']:.2f}) "
            f"for {doc['media_s']:.2f} media s, wall {doc['wall_s']:.2f} s, "
            f"frames in {doc['frames_in']}, out "
            + ", ".join(f"{r['name']} {r['frames_out']}" for r in doc["rungs"])
        )
        short = [r["name"] for r in doc["rungs"] if r["frames_out"] < doc["frames_in"]]
        if short:
            details.append(f"  warning: panocast rungs {short} put out fewer frames than went in")

    path = os.path.join(d, "cpu-ffmpeg.json")
    if os.path.exists(path):
        doc = read_json(path)
        media = doc["frames"] / fps
        per["ffmpeg"] = doc["cpu_s"] / media
        details.append(
            f"  ffmpeg: {doc['cpu_s']:.2f} CPU s for {doc['frames']} frames ({media:.2f} media s), "
            f"wall {doc['wall_s']:.2f} s"
        )

    floors = sorted(glob.glob(os.path.join(d, "cpu-floor-*.json")), key=lambda p: -size_key(size_of(p)))
    if floors:
        total = 0.0
        for path in floors:
            doc = read_json(path)
            name = size_of(path)
            media = doc["frames"] / fps
            total += doc["cpu_s"] / media
            details.append(
                f"  floor {name}: {doc['cpu_s']:.2f} CPU s for {doc['frames']} frames ({media:.2f} media s), "
                f"{doc['cpu_s'] / media:.3f} per media s"
            )
        per["floor"] = total

    decode = None
    path = os.path.join(d, "cpu-decode.json")
    if os.path.exists(path):
        doc = read_json(path)
        decode = doc["cpu_s"] / (doc["frames"] / fps)
        details.append(
            f"  for reference, decoding the source alone (ffmpeg): {doc['cpu_s']:.2f} CPU s for "
            f"{doc['frames']} frames, {decode:.3f} per media s"
            + (f"; floor + decode = {per['floor'] + decode:.3f}" if "floor" in per else "")
        )

    if not per:
        if details:
            print("\n".join(details))
        return per
    rows = [
        ("panocast", "panocast pipeline"),
        ("ffmpeg", "ffmpeg split+scale"),
        ("floor", "x264 floor"),
    ]

    def ratio(a, b):
        return f"{per[a] / per[b]:.2f}x" if a in per and b in per and per[b] > 0 else "-"

    print(f"{'way':<20}{'cpu s / media s':<18}{'vs ffmpeg':<12}{'vs floor'}")
    for key, label in rows:
        value = f"{per[key]:.3f}" if key in per else "-"
        print(f"{label:<20}{value:<18}{ratio(key, 'ffmpeg'):<12}{ratio(key, 'floor')}")
    print()
    print("\n".join(details))
    print()
    for other, limit in (("ffmpeg", TARGET_VS_FFMPEG), ("floor", TARGET_VS_FLOOR)):
        if "panocast" in per and other in per:
            r = per["panocast"] / per[other]
            verdict = "target met" if r <= limit else "target missed"
            print(f"{verdict}: panocast {r:.2f}x {other} (target <= {limit:.2f}x)")
    print()
    return per


def report_realtime(d):
    runs = sorted(glob.glob(os.path.join(d, "rt-*.json")), key=lambda p: -size_key(size_of(p)))
    if not runs:
        return
    best = None
    print(f"{'source':<12}{'rungs':<32}{'media s':>9}{'wall s':>9}{'CPU s':>9}  verdict")
    for path in runs:
        size = size_of(path)
        doc = read_json(path)
        ok, why = kept_up(doc)
        rungs = " ".join(r["name"] for r in doc["rungs"])
        print(
            f"{size:<12}{rungs:<32}{doc['media_s']:>9.1f}{doc['wall_s']:>9.1f}{doc['cpu_s']:>9.1f}  "
            f"{'real time' if ok else 'not real time'} ({why})"
        )
        if ok and best is None:
            best = (size, doc)
    print()
    if best is None:
        smallest = size_of(runs[-1])
        print(f"largest source transcoded in real time: none (down to {smallest})")
        size, doc = smallest, read_json(runs[-1])
        note = " (from the smallest source, which did NOT keep up)"
    else:
        size, doc = best
        print(f"largest source transcoded in real time: {size}")
        note = ""
    print()
    print(f"added latency of a transcoded rung against the passthrough rung, source {size}{note}:")
    print(f"  {'rung':<12}{'p50 ms':>9}{'p99 ms':>9}")
    for r in sorted(doc["rungs"], key=lambda r: -size_key(r["name"])):
        print(f"  {r['name']:<12}{fmt_ms(r.get('latency_ms_p50')):>9}{fmt_ms(r.get('latency_ms_p99')):>9}")
    print(
        f"  (the passthrough rung, {size} itself, adds ~0: the server packages source units as they\n"
        "   arrive, so each figure above, source frame pushed -> that rung's encoded frame of the\n"
        "   same pts, is what the rung adds over passthrough)"
    )


def cmd_report(args):
    if len(args) != 2:
        die("usage: report DIR FPS")
    d, fps = args[0], float(args[1])
    report_cpu(d, fps)
    report_realtime(d)


COMMANDS = {
    "run": cmd_run,
    "pipe": cmd_pipe,
    "bench": cmd_bench,
    "executable": cmd_executable,
    "realtime": cmd_realtime,
    "report": cmd_report,
}


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        die(__doc__)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        COMMANDS[argv[1]](argv[2:])
    finally:
        stop_children()


if __name__ == "__main__":
    main(sys.argv)
