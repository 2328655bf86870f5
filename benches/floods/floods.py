#!/usr/bin/env python3
"""Flood benchmark (issue 18): do idle-connection floods, slow headers and key guessing
hurt a legitimate publisher and viewer?

The server runs with its default limits. A real ffmpeg publisher (from 127.0.0.1, -re,
looped 1920x960@30 H.264+AAC) feeds stream `cam`; an LL-HLS viewer on 127.0.0.2 follows
it part by part with blocking playlist reloads (`_HLS_msn`/`_HLS_part`) and fetches
every part. After a baseline of FLOOD_BASE_S (15) s, for FLOOD_S (30) s:
  - 127.0.0.3 keeps FLOOD_IDLE (1000) idle TCP connections open on each port (HTTP and
    RTMP), reopening each one the server closes;
  - 127.0.0.4 runs FLOOD_SLOW (50) slow-header HTTP clients (one header byte every
    500 ms, never finished);
  - 127.0.0.5 makes FLOOD_GUESSES (1000) RTMP publish attempts with wrong keys
    (handshake, connect, createStream, publish);
  - halfway, a second ffmpeg publisher (127.0.0.1) starts stream `late`; its video
    playlist must answer 200 (live) while the floods go on.
It prints one JSON line and a table:
  - the viewer's part lateness in each phase: arrival of each new part against the
    media clock of the first part seen (p50/p99 above the earliest);
  - panocast_part_latency_seconds p99 (server-added, cumulative since start) after
    each phase, against the target: part target (200 ms) + 30 ms;
  - what the floods got: connections held and refused per port, how the slow clients
    ended, how the wrong keys were answered, the server's refusal counters.

Usage: benches/floods/run.sh (builds target/release/panocast unless PANOCAST_BIN is
set). Standard library only; everything is on loopback (all of 127.0.0.0/8 is loopback
on Linux, so each role gets its own address as on the internet).
"""

import http.client
import json
import os
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_server import BenchServer, push, test_source  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PANOCAST_BIN", os.path.join(REPO, "target/release/panocast"))
BASE_S = float(os.environ.get("FLOOD_BASE_S", "15"))
FLOOD_S = float(os.environ.get("FLOOD_S", "30"))
IDLE = int(os.environ.get("FLOOD_IDLE", "1000"))
# Closed idle connections are opened again at most this fast (per port): a flood of
# held connections, not a connection-rate storm.
REOPEN_PER_S = int(os.environ.get("FLOOD_REOPEN_PER_S", "100"))
SLOW = int(os.environ.get("FLOOD_SLOW", "50"))
GUESSES = int(os.environ.get("FLOOD_GUESSES", "1000"))
OUT = os.environ.get("BENCH_OUT", os.path.join(REPO, "bench-out"))
PART_TARGET_MS = 200
SOURCE_S = int(BASE_S + FLOOD_S + 20)
KEYS = {"cam": "floods-key-0001-abcdef", "late": "floods-key-0002-abcdef"}
CONFIG = "".join(f'[[streams]]\nslug = "{s}"\nkey = "{k}"\n\n' for s, k in KEYS.items())
VIEWER, IDLE_FROM, SLOW_FROM, GUESS_FROM = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"


def log(msg):
    print(f"[floods {time.strftime('%T')}] {msg}", file=sys.stderr, flush=True)


def source():
    # Long enough that the looped publisher never wraps while anything is measured
    # (ffmpeg -re stalls briefly at each wrap, which would read as lateness).
    return test_source(OUT, f"floods-1920x960-{SOURCE_S}s.flv", "1920x960", "4M", SOURCE_S, log)


def host_port(url):
    m = re.match(r"\w+://([0-9.]+):(\d+)", url)
    return m.group(1), int(m.group(2))


def connect_from(src, addr, timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(addr)
    return s


class Watched(dict):
    """Sockets (to the time they opened) in one epoll set: a flood holds more
    descriptors than select() can take, and re-registering them all every round would
    spend the attacker's CPU, which the server shares."""

    def __init__(self):
        super().__init__()
        self.sel = selectors.DefaultSelector()

    def add(self, s):
        self[s] = time.monotonic()
        self.sel.register(s, selectors.EVENT_READ)

    def drop(self, s):
        self.sel.unregister(s)
        s.close()
        return time.monotonic() - self.pop(s)


def readable(socks, timeout):
    """The sockets of `socks` with something to read (or closed)."""
    if not socks:
        time.sleep(timeout)
        return []
    return [key.fileobj for key, _ in socks.sel.select(timeout)]


def quantile(values, q):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# --- the legitimate viewer ------------------------------------------------------------


class Viewer(threading.Thread):
    """Follows /hls/cam/video.m3u8 part by part from VIEWER with blocking reloads."""

    def __init__(self, http_addr):
        super().__init__(daemon=True)
        self.addr, self.stop = http_addr, threading.Event()
        self.phase = "warmup"
        self.arrivals = []  # (phase, msn, part, arrival monotonic, media seconds so far)
        self.errors = 0
        self.parts_fetched = 0

    def conn(self):
        return http.client.HTTPConnection(*self.addr, timeout=10, source_address=(VIEWER, 0))

    @staticmethod
    def newest(text):
        """(msn, part, duration of that part) of the newest part, and every part's
        (msn, part, duration) in the playlist."""
        seq, parts, msn, index = 0, [], None, 0
        for line in text.splitlines():
            if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
                seq = int(line.split(":", 1)[1])
                msn = seq
            elif line.startswith("#EXT-X-PART:"):
                d = float(re.search(r"DURATION=([0-9.]+)", line).group(1))
                uri = re.search(r'URI="([^"]+)"', line).group(1)
                parts.append((msn, index, d, uri))
                index += 1
            elif line and not line.startswith("#"):
                msn, index = msn + 1, 0
        return parts

    def run(self):
        c = self.conn()
        seen = {}
        first = None  # (arrival, media seconds) of the first part
        media = 0.0
        want = None
        while not self.stop.is_set():
            try:
                path = "/hls/cam/video.m3u8"
                if want:
                    path += f"?_HLS_msn={want[0]}&_HLS_part={want[1]}"
                c.request("GET", path)
                r = c.getresponse()
                body = r.read().decode()
                now = time.monotonic()
                if r.status != 200:
                    self.errors += 1
                    time.sleep(0.1)
                    continue
                parts = self.newest(body)
                for msn, idx, d, uri in parts:
                    if (msn, idx) in seen:
                        continue
                    seen[(msn, idx)] = True
                    if want is None:
                        continue  # the parts already there at the start
                    if first is None:
                        first = (now, media)
                    self.arrivals.append((self.phase, msn, idx, now, media))
                    media += d
                    c.request("GET", "/hls/cam/" + uri)
                    pr = c.getresponse()
                    pr.read()
                    self.parts_fetched += pr.status == 200
                if parts:
                    msn, idx = parts[-1][0], parts[-1][1]
                    want = (msn, idx + 1)
            except (OSError, http.client.HTTPException):
                self.errors += 1
                c.close()
                c = self.conn()
                time.sleep(0.1)

    def lateness(self, phase):
        """Lateness of each part of `phase` against the media clock (ms above the
        earliest lateness of the whole run)."""
        if not self.arrivals:
            return []
        t0, m0 = self.arrivals[0][3], self.arrivals[0][4]
        late = [((t - t0) - (m - m0)) * 1000 for _, _, _, t, m in self.arrivals]
        floor = min(late)
        return [l - floor for (p, *_), l in zip(self.arrivals, late) if p == phase]


# --- the floods -------------------------------------------------------------------------


class IdleFlood(threading.Thread):
    """Keeps `count` idle connections from IDLE_FROM open to `addr`, reopening closed ones."""

    def __init__(self, name, addr, count):
        super().__init__(daemon=True)
        self.name_, self.addr, self.count, self.stop = name, addr, count, threading.Event()
        self.opened = self.closed_by_server = self.connect_failures = 0
        self.lifetimes = []
        self.open_now = 0
        self.max_open = 0

    def run(self):
        socks = Watched()
        budget, last = float(self.count), time.monotonic()
        while not self.stop.is_set():
            # The first `count` at once, then reopened at REOPEN_PER_S.
            now = time.monotonic()
            budget = min(float(self.count), budget + (now - last) * REOPEN_PER_S)
            last = now
            for _ in range(min(int(budget), self.count - len(socks))):
                budget -= 1
                try:
                    s = connect_from(IDLE_FROM, self.addr, timeout=1)
                    s.setblocking(False)
                    socks.add(s)
                    self.opened += 1
                except OSError:
                    self.connect_failures += 1
                    break
            self.open_now = len(socks)
            self.max_open = max(self.max_open, self.open_now)
            for s in readable(socks, 0.2):
                try:
                    data = s.recv(4096)
                    if data:  # a refusal's answer: the close follows it
                        data = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.lifetimes.append(socks.drop(s))
                    self.closed_by_server += 1
            time.sleep(0.05)
        for s in socks:
            s.close()

    def report(self):
        quick = sum(1 for l in self.lifetimes if l < 0.5)
        return {
            "opened": self.opened,
            "closed_by_server": self.closed_by_server,
            "closed_within_500ms": quick,
            "held_at_most": self.max_open - 0,
            "connect_failures": self.connect_failures,
            "median_life_s": round(quantile(self.lifetimes, 0.5) or 0, 2),
        }


class SlowHeaders(threading.Thread):
    """`count` HTTP clients that send one header byte every 500 ms and never finish."""

    def __init__(self, addr, count):
        super().__init__(daemon=True)
        self.addr, self.count, self.stop = addr, count, threading.Event()
        self.closed_after, self.answers, self.failed = [], {}, 0

    def run(self):
        socks = Watched()
        for _ in range(self.count):
            try:
                s = connect_from(SLOW_FROM, self.addr)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                s.setblocking(False)
                socks.add(s)
            except OSError:
                self.failed += 1
        while socks and not self.stop.is_set():
            for s in list(socks):
                try:
                    s.send(b"a")
                except OSError:
                    pass
            for s in readable(socks, 0.5):
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if data:
                    status = data.split(b"\r\n", 1)[0].decode(errors="replace")
                    self.answers[status] = self.answers.get(status, 0) + 1
                self.closed_after.append(socks.drop(s))
        for s in socks:
            s.close()
        self.still_open = len(socks)

    def report(self):
        return {
            "clients": self.count,
            "closed_by_server": len(self.closed_after),
            "still_open_at_end": getattr(self, "still_open", None),
            "closed_after_s_median": round(quantile(self.closed_after, 0.5) or 0, 2),
            "closed_after_s_max": round(max(self.closed_after or [0]), 2),
            "answers": self.answers,
            "connect_failures": self.failed,
        }


def amf_string(s):
    b = s.encode()
    return b"\x02" + struct.pack(">H", len(b)) + b


def amf_number(n):
    return b"\x00" + struct.pack(">d", n)


def amf_object(d):
    out = b"\x03"
    for k, v in d.items():
        out += struct.pack(">H", len(k)) + k.encode() + amf_string(v)
    return out + b"\x00\x00\x09"


def chunked(csid, msg_type, stream_id, payload):
    """One RTMP message in 128-byte chunks (the default chunk size)."""
    out = bytes([csid]) + b"\x00\x00\x00" + struct.pack(">I", len(payload))[1:]
    out += bytes([msg_type]) + struct.pack("<I", stream_id)
    for i in range(0, len(payload), 128):
        if i:
            out += bytes([0xC0 | csid])
        out += payload[i:i + 128]
    return out


def guess_once(addr, tc_url, key):
    """One publish attempt with a wrong key; how the server answered it."""
    try:
        s = connect_from(GUESS_FROM, addr, timeout=5)
    except OSError:
        return "connect_failed"
    try:
        s.sendall(b"\x03" + b"\x00" * 8 + os.urandom(1528))
        got = b""
        while len(got) < 1 + 1536 * 2:
            data = s.recv(8192)
            if not data:
                return "closed_in_handshake"
            got += data
        s.sendall(got[1:1537])  # C2 echoes S1
        connect = amf_string("connect") + amf_number(1) + amf_object(
            {"app": "live", "type": "nonprivate", "flashVer": "FMLE/3.0", "tcUrl": tc_url})
        s.sendall(chunked(3, 20, 0, connect))
        s.sendall(chunked(3, 20, 0, amf_string("createStream") + amf_number(2) + b"\x05"))
        publish = amf_string("publish") + amf_number(3) + b"\x05" + amf_string(key) + amf_string("live")
        s.sendall(chunked(8, 20, 1, publish))
        seen = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            seen += data
        if b"BadName" in seen or b"error" in seen.lower():
            return "refused_with_status"
        return "closed"
    except socket.timeout:
        return "left_open"
    except OSError:
        return "reset"
    finally:
        s.close()


class Guesser(threading.Thread):
    def __init__(self, addr, tc_url, count, workers=8):
        super().__init__(daemon=True)
        self.addr, self.tc_url, self.count, self.workers = addr, tc_url, count, workers
        self.results, self.lock, self.next = {}, threading.Lock(), 0
        self.durations = []

    def work(self):
        while True:
            with self.lock:
                if self.next >= self.count:
                    return
                i = self.next
                self.next += 1
            t = time.monotonic()
            r = guess_once(self.addr, self.tc_url, f"wrong-key-{i:05d}")
            with self.lock:
                self.results[r] = self.results.get(r, 0) + 1
                self.durations.append(time.monotonic() - t)

    def run(self):
        ts = [threading.Thread(target=self.work, daemon=True) for _ in range(self.workers)]
        started = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.seconds = time.monotonic() - started

    def report(self):
        return {
            "attempts": self.count,
            "answers": self.results,
            "seconds": round(getattr(self, "seconds", 0), 1),
            "attempt_s_median": round(quantile(self.durations, 0.5) or 0, 3),
            "attempt_s_p99": round(quantile(self.durations, 0.99) or 0, 3),
        }


# --- the run --------------------------------------------------------------------------


def metrics(http_base):
    c = http.client.HTTPConnection(*host_port(http_base), timeout=10, source_address=(VIEWER, 0))
    c.request("GET", "/metrics")
    return c.getresponse().read().decode()


def metric(text, line_start):
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.split()[-1])
    return None


def attack(http_url, rtmp_url):
    """The attacker's process: every flood at once for FLOOD_S; prints its report."""
    http_addr, rtmp_addr = host_port(http_url), host_port(rtmp_url)
    floods = [IdleFlood("http", http_addr, IDLE), IdleFlood("rtmp", rtmp_addr, IDLE),
              SlowHeaders(http_addr, SLOW), Guesser(rtmp_addr, rtmp_url, GUESSES)]
    for f in floods:
        f.start()
    time.sleep(FLOOD_S)
    for f in floods:
        if hasattr(f, "stop"):
            f.stop.set()
    for f in floods:
        f.join(timeout=30)
    print(json.dumps({"idle_http": floods[0].report(), "idle_rtmp": floods[1].report(),
                      "slow_headers": floods[2].report(), "wrong_keys": floods[3].report()}))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--attack":
        return attack(sys.argv[2], sys.argv[3])
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} not built")
    src = source()
    with BenchServer(BIN, CONFIG, prefix="panocast-floods.") as server:
        run(src, server)


def phase_figures(viewer, phase, text):
    late = viewer.lateness(phase)
    return {
        "parts": len(late),
        "viewer_lateness_p50_ms": round(quantile(late, 0.5) or 0, 1),
        "viewer_lateness_p99_ms": round(quantile(late, 0.99) or 0, 1),
        "viewer_lateness_max_ms": round(max(late or [0]), 1),
        "server_video_part_latency_p99_ms": round(1000 * (metric(text, 'panocast_part_latency_seconds{track="video",quantile="0.99"}') or 0), 1),
        "server_audio_part_latency_p99_ms": round(1000 * (metric(text, 'panocast_part_latency_seconds{track="audio",quantile="0.99"}') or 0), 1),
    }


def run(src, server):
    http_addr, rtmp_addr = host_port(server.http), host_port(server.rtmp)
    procs = [push(src, f"{server.rtmp}/{KEYS['cam']}")]
    floods = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                c = http.client.HTTPConnection(*http_addr, timeout=5, source_address=(VIEWER, 0))
                c.request("GET", "/hls/cam/video.m3u8")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit("stream cam never went live")
            time.sleep(0.5)
        viewer = Viewer(http_addr)
        viewer.start()
        time.sleep(5)
        viewer.phase = "baseline"
        log(f"baseline {BASE_S:.0f} s")
        time.sleep(BASE_S)
        base = phase_figures(viewer, "baseline", metrics(server.http))
        viewer.phase = "flood"
        log(f"flooding {FLOOD_S:.0f} s: {IDLE} idle connections per port, {SLOW} slow headers, "
            f"{GUESSES} wrong keys")
        # The attacker is another process: its threads must not share the viewer's
        # interpreter (and its timing).
        attacker = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--attack", server.http, server.rtmp],
            stdout=subprocess.PIPE, text=True)
        floods.append(attacker)
        time.sleep(FLOOD_S / 2)
        late_started = time.monotonic()
        procs.append(push(src, f"{server.rtmp}/{KEYS['late']}"))
        late_live, late_status = None, None
        while time.monotonic() - late_started < FLOOD_S / 2:
            if late_live is None:
                try:
                    c = http.client.HTTPConnection(*http_addr, timeout=5, source_address=(VIEWER, 0))
                    c.request("GET", "/hls/late/video.m3u8")
                    r = c.getresponse()
                    r.read()
                    c.close()
                    late_status = r.status
                    if r.status == 200:
                        late_live = time.monotonic() - late_started
                except (OSError, http.client.HTTPException) as e:
                    late_status = repr(e)
            time.sleep(0.2)
        text = metrics(server.http)
        flood = phase_figures(viewer, "flood", text)
        attack_report = json.loads(attacker.communicate(timeout=60)[0] or "{}")
        viewer.stop.set()
        text = metrics(server.http)
        refused = {m.group(1): float(m.group(2)) for m in re.finditer(
            r'^(panocast_connections_refused_total\{[^}]*\}) ([0-9.e+]+)', text, re.M)}
        result = {
            "bench": "floods",
            "binary": BIN,
            "baseline": base,
            "flood": flood,
            "part_latency_target_ms": PART_TARGET_MS + 30,
            "viewer_errors": viewer.errors,
            "viewer_parts_fetched": viewer.parts_fetched,
            "publisher_running": procs[0].poll() is None,
            "late_publisher_live_after_s": None if late_live is None else round(late_live, 2),
            "late_publisher_last_answer": late_status,
            **attack_report,
            "server_refusals": refused,
            "publish_blocks_total": metric(text, "panocast_publish_blocks_total"),
            "publish_blocked_connections_total": metric(text, "panocast_publish_blocked_connections_total"),
        }
        print(json.dumps(result))
        print()
        target = PART_TARGET_MS + 30
        for name, p in [("baseline", base), ("flood", flood)]:
            print(f"{name:9s}: viewer lateness p50 {p['viewer_lateness_p50_ms']} ms, p99 "
                  f"{p['viewer_lateness_p99_ms']} ms over {p['parts']} parts; server part latency "
                  f"p99 video {p['server_video_part_latency_p99_ms']} ms, audio "
                  f"{p['server_audio_part_latency_p99_ms']} ms (target {target} ms)")
        if base["viewer_lateness_p99_ms"]:
            print(f"flood / baseline viewer p99: {flood['viewer_lateness_p99_ms'] / base['viewer_lateness_p99_ms']:.2f}x")
        print(f"publisher still running: {result['publisher_running']}; second publisher live "
              f"after {result['late_publisher_live_after_s']} s")
        for k in ["idle_http", "idle_rtmp", "slow_headers", "wrong_keys"]:
            print(f"{k}: {json.dumps(result.get(k))}")
        print(f"server refusals: {json.dumps(refused)}")
    finally:
        for f in floods:
            if f.poll() is None:
                f.kill()
                f.wait()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
