#!/usr/bin/env python3
"""Soak benchmark (issue 18): a stream with a 2-rung ladder survives 100 publisher joins.

One stream (`soak`, ladder of two H.264 rungs below a 1280x640@30 source) is published
by ffmpeg (-c copy, looped). SOAK_CYCLES (100) times, every SOAK_CYCLE_S (6) s, the
publisher goes away and another joins, alternating two ways:
  - killed (SIGKILL) and a new one started: the server sees the connection drop, then a
    reconnect within the stream's reconnect window;
  - frozen (SIGSTOP) and replaced: the new publisher takes the silent one over (which is
    then killed).
Meanwhile:
  - a playlist watcher polls the source and one rung media playlist every 0.4 s and
    records every segment it sees (media sequence number, EXT-X-DISCONTINUITY before
    it): the playlist must stay continuous (no gap in the sequence numbers, never
    EXT-X-ENDLIST) with one discontinuity per join;
  - a viewer (ffmpeg reading /hls/soak/index.m3u8, decoding to null) runs throughout;
    its decoded frames and error lines are counted, and it must not stop;
  - every 10 cycles the server's RSS, thread count and open file descriptors are
    printed; at the end they must have levelled off: the least-squares trend of RSS
    may not add more than 5 % over the second half (RSS_TREND_LIMIT), nor may threads
    and fds grow by more than a few.
At the end: one JSON line and a summary (exit status non-zero only when the bench
cannot run, never for a missed target).

Usage: benches/soak/run.sh (builds target/release/panocast unless PANOCAST_BIN is
set). Standard library only; everything listens on 127.0.0.1.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_server import BenchServer, rss_kib, push, test_source  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PANOCAST_BIN", os.path.join(REPO, "target/release/panocast"))
CYCLES = int(os.environ.get("SOAK_CYCLES", "100"))
CYCLE_S = float(os.environ.get("SOAK_CYCLE_S", "6"))
OUT = os.environ.get("BENCH_OUT", os.path.join(REPO, "bench-out"))
KEY = "soak-key-0001-abcdef"
CONFIG = f"""
[ladders.soak2]
preset = "ultrafast"
rungs = [
  {{ name = "r480", width = 960, height = 480, bitrate_kbps = 800 }},
  {{ name = "r320", width = 640, height = 320, bitrate_kbps = 400 }},
]

[[streams]]
slug = "soak"
key = "{KEY}"
ladder = "soak2"
"""
WATCHED = ["video", "r320"]



# RSS levels off when the least-squares trend of the samples after the first (start-up
# fills the windows and loads plugins) adds under this share of RSS over the second
# half. A trend, not two samples: RSS moves by +-10 MiB with what is in flight when a
# sample is taken, so one late sample decided the old endpoint rule either way.
RSS_TREND_LIMIT = 0.05


def rss_trend(samples):
    """(MiB per 100 cycles, growth over the second half as a share of the mean RSS) of
    the least-squares line through the samples after cycle 0; None with under 3."""
    points = [(c, r / 1024) for c, r, _, _ in samples if c > 0]
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(c for c, _ in points) / n
    my = sum(r for _, r in points) / n
    var = sum((c - mx) ** 2 for c, _ in points)
    if var == 0 or my == 0:
        return None
    slope = sum((c - mx) * (r - my) for c, r in points) / var
    span = points[-1][0] - points[0][0]
    return slope * 100, slope * span / 2 / my
def log(msg):
    print(f"[soak {time.strftime('%T')}] {msg}", file=sys.stderr, flush=True)


def source():
    return test_source(OUT, "soak-1280x640-20s.flv", "1280x640", "2M", 20, log)


def fetch(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read().decode()


def proc_counts(pid):
    """RSS (KiB), threads and open fds of `pid`."""
    threads = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    threads = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        fds = 0
    return rss_kib(pid), threads, fds


class PlaylistWatcher(threading.Thread):
    """Records every segment of one media playlist: msn -> preceded by a discontinuity."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.stop = url, threading.Event()
        self.segments, self.endlist, self.errors = {}, 0, 0

    def run(self):
        while not self.stop.is_set():
            try:
                self.read(fetch(self.url))
            except Exception:  # noqa: BLE001 - a failed poll is counted, not fatal
                self.errors += 1
            self.stop.wait(0.4)

    def read(self, text):
        msn, disc = None, False
        for line in text.splitlines():
            if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
                msn = int(line.split(":", 1)[1])
            elif line == "#EXT-X-DISCONTINUITY":
                disc = True
            elif line == "#EXT-X-ENDLIST":
                self.endlist += 1
            elif line and not line.startswith("#") and msn is not None:
                self.segments[msn] = self.segments.get(msn, False) or disc
                msn, disc = msn + 1, False

    def report(self):
        seen = sorted(self.segments)
        gaps = [m for m in range(seen[0], seen[-1] + 1) if m not in self.segments] if seen else []
        return {
            "segments_seen": len(seen),
            "msn_gaps": len(gaps),
            "discontinuities": sum(self.segments.values()),
            "endlist_polls": self.endlist,
            "failed_polls": self.errors,
        }


class Viewer(threading.Thread):
    """ffmpeg decoding the multivariant playlist to null for the whole run."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.stop = url, threading.Event()
        self.frames, self.error_lines, self.restarts, self.proc = 0, [], 0, None
        self.done_frames = 0

    def run(self):
        while not self.stop.is_set():
            self.proc = subprocess.Popen(
                ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
                 "-i", self.url, "-f", "null", "-", "-progress", "pipe:1", "-nostats"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True,
            )
            errs = threading.Thread(target=self.read_errors, args=(self.proc.stderr,), daemon=True)
            errs.start()
            for line in self.proc.stdout:
                if line.startswith("frame="):
                    self.frames = self.done_frames + int(line.split("=", 1)[1])
            self.proc.wait()
            self.done_frames = self.frames
            if not self.stop.is_set():
                self.restarts += 1
                log(f"viewer stopped (exit {self.proc.returncode}); restarting it")
                self.stop.wait(1)

    def read_errors(self, stream):
        for line in stream:
            self.error_lines.append(line.rstrip())

    def end(self):
        self.stop.set()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


MIB = 1024
ARENA = 64 * MIB  # glibc's thread arenas: 64 MiB reservations on 64 MiB boundaries (KiB)


def smaps(pid):
    """The mappings of `pid`: [(start, size KiB, rss KiB, perms, name)] in address order."""
    maps, current = [], None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                head = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)", line)
                if head:
                    start, end = int(head[1], 16), int(head[2], 16)
                    current = [start, (end - start) // 1024, 0, head[3], head[4].strip()]
                    maps.append(current)
                elif line.startswith("Rss:") and current is not None:
                    current[2] = int(line.split()[1])
    except OSError:
        return []
    return maps


def rss_by_kind(maps):
    """RSS (KiB) by who most likely owns the memory, so a step in RSS can be traced to
    glibc's arenas (GStreamer, x264, libav), mimalloc (Rust) or something else."""
    kinds = {}
    for i, (start, size, rss, perms, name) in enumerate(maps):
        after = maps[i + 1] if i + 1 < len(maps) else None
        before = maps[i - 1] if i > 0 else None
        if name == "[heap]":
            kind = "glibc main heap"
        elif name.startswith("[stack"):
            kind = "stacks"
        elif name and not name.startswith("["):
            kind = "files"
        elif (start // 1024) % ARENA == 0 and perms.startswith("rw") and size <= ARENA and (
                size == ARENA or (after and after[3].startswith("---")
                                  and after[0] == start + size * 1024
                                  and size + after[1] == ARENA)):
            kind = "glibc arenas"
        elif perms.startswith("rw") and before and before[3].startswith("---") and before[1] <= 64 \
                and size in (8 * MIB - before[1], 8 * MIB, 2 * MIB, 2 * MIB - before[1]):
            kind = "stacks"
        elif perms.startswith("rw") and size >= 256 * MIB:
            kind = "mimalloc arenas"
        else:
            kind = "other anon"
        kinds[kind] = kinds.get(kind, 0) + rss
    return kinds


def describe_kinds(now, before=None):
    """'glibc arenas 61.2 (+3.1), ...' in MiB, the change since `before` when given."""
    parts = []
    for kind in sorted(now, key=lambda k: -now[k]):
        text = f"{kind} {now[kind] / 1024:.1f}"
        if before is not None:
            text += f" ({(now[kind] - before.get(kind, 0)) / 1024:+.1f})"
        parts.append(text)
    return ", ".join(parts)


def metric_lines(http_base, prefix):
    return [l for l in fetch(f"{http_base}/metrics").splitlines() if l.startswith(prefix)]


def main():
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} not built")
    src = source()
    with BenchServer(BIN, CONFIG, prefix="panocast-soak.") as server:
        run(src, server)


def run(src, server):
    url = f"{server.rtmp}/{KEY}"
    publisher = push(src, url)
    frozen = []
    watchers, viewer = [], None
    samples = []
    try:
        # Live (and the ladder's rungs listed) before anything is watched.
        deadline = time.monotonic() + 60
        while True:
            try:
                if "r320" in fetch(f"{server.http}/hls/soak/index.m3u8"):
                    break
            except Exception:  # noqa: BLE001 - not live yet
                pass
            if time.monotonic() > deadline:
                sys.exit("the stream never went live with its ladder")
            time.sleep(0.5)
        watchers = [PlaylistWatcher(f"{server.http}/hls/soak/{name}.m3u8") for name in WATCHED]
        for w in watchers:
            w.start()
        viewer = Viewer(f"{server.http}/hls/soak/index.m3u8")
        viewer.start()
        samples.append((0, *proc_counts(server.pid)))
        kinds = [(0, rss_by_kind(smaps(server.pid)))]
        log(f"cycle   0: rss {samples[-1][1] / 1024:.1f} MiB, threads {samples[-1][2]}, fds {samples[-1][3]}")
        log("          " + describe_kinds(kinds[-1][1]))
        started = time.monotonic()
        for cycle in range(1, CYCLES + 1):
            time.sleep(CYCLE_S)
            if cycle % 2:
                publisher.kill()
                publisher.wait()
                publisher = push(src, url)
            else:
                publisher.send_signal(signal.SIGSTOP)
                time.sleep(0.5)
                frozen.append(publisher)
                publisher = push(src, url)
                # The takeover closes the frozen one's connection; then it goes.
                time.sleep(1)
                old = frozen.pop()
                old.kill()
                old.wait()
            if cycle % 10 == 0:
                samples.append((cycle, *proc_counts(server.pid)))
                c, rss, threads, fds = samples[-1]
                kinds.append((cycle, rss_by_kind(smaps(server.pid))))
                log(f"cycle {c:3d}: rss {rss / 1024:.1f} MiB, threads {threads}, fds {fds}, "
                    f"viewer frames {viewer.frames}")
                log("          " + describe_kinds(kinds[-1][1], kinds[-2][1]))
        time.sleep(CYCLE_S)
        elapsed = time.monotonic() - started
        for w in watchers:
            w.stop.set()
        for w in watchers:
            w.join()
        frames_before_end = viewer.frames
        viewer_alive = viewer.proc is not None and viewer.proc.poll() is None
        viewer.end()
        latency = metric_lines(server.http, 'panocast_stream_part_latency_seconds{stream="soak",track="video",quantile="0.99"}')
        memory = metric_lines(server.http, 'panocast_stream_memory_peak_bytes{stream="soak"}')
        half = samples[len(samples) // 2]
        last = samples[-1]
        rss_growth = (last[1] - half[1]) / half[1] if half[1] else None
        trend = rss_trend(samples)
        playlists = {name: w.report() for name, w in zip(WATCHED, watchers)}
        result = {
            "bench": "soak",
            "binary": BIN,
            "cycles": CYCLES,
            "cycle_s": CYCLE_S,
            "seconds": round(elapsed, 1),
            "joins": CYCLES,
            "playlists": playlists,
            "viewer_frames": frames_before_end,
            "viewer_expected_frames": round(elapsed * 30),
            "viewer_restarts": viewer.restarts,
            "viewer_running_at_end": viewer_alive,
            "viewer_error_lines": len(viewer.error_lines),
            "viewer_first_errors": viewer.error_lines[:5],
            "samples": [{"cycle": c, "rss_mib": round(r / 1024, 1), "threads": t, "fds": f,
                         "rss_mib_by_kind": {k: round(v / 1024, 1) for k, v in sorted(by.items())}}
                        for (c, r, t, f), (_, by) in zip(samples, kinds)],
            "rss_growth_second_half": None if rss_growth is None else round(rss_growth, 3),
            "rss_trend_mib_per_100_cycles": None if trend is None else round(trend[0], 1),
            "rss_trend_growth_second_half": None if trend is None else round(trend[1], 3),
            "threads_growth_second_half": last[2] - half[2],
            "fds_growth_second_half": last[3] - half[3],
            "video_part_latency_p99_s": float(latency[0].split()[-1]) if latency else None,
            "memory_peak_bytes": int(memory[0].split()[-1]) if memory else None,
        }
        print(json.dumps(result))
        print()
        for name, p in playlists.items():
            ok = p["msn_gaps"] == 0 and p["endlist_polls"] == 0 and p["discontinuities"] == CYCLES
            print(f"{name}.m3u8: {p['segments_seen']} segments, {p['msn_gaps']} gaps, "
                  f"{p['discontinuities']} discontinuities for {CYCLES} joins, "
                  f"EXT-X-ENDLIST seen {p['endlist_polls']} times: {'ok' if ok else 'MISSED'}")
        print(f"viewer: {frames_before_end} frames decoded of ~{result['viewer_expected_frames']}, "
              f"{len(viewer.error_lines)} error lines, {viewer.restarts} restarts, "
              f"running at the end: {viewer_alive}")
        for s in result["samples"]:
            print(f"  cycle {s['cycle']:3d}: rss {s['rss_mib']} MiB, threads {s['threads']}, fds {s['fds']}; "
                  + ", ".join(f"{k} {v}" for k, v in s["rss_mib_by_kind"].items()))
        level = (trend is not None and trend[1] < RSS_TREND_LIMIT
                 and result["threads_growth_second_half"] <= 4 and result["fds_growth_second_half"] <= 8)
        print(f"second half: rss {100 * (rss_growth or 0):+.1f} % from sample to sample, "
              f"trend {result['rss_trend_mib_per_100_cycles']} MiB per 100 cycles "
              f"({100 * (trend[1] if trend else 0):+.1f} % over the second half, limit "
              f"{100 * RSS_TREND_LIMIT:.0f} %), threads "
              f"{result['threads_growth_second_half']:+d}, fds {result['fds_growth_second_half']:+d}: "
              f"{'levelled off' if level else 'STILL GROWING'}")
    finally:
        if viewer:
            viewer.end()
        for p in [publisher, *frozen]:
            if p.poll() is None:
                p.kill()
                p.wait()


if __name__ == "__main__":
    main()
