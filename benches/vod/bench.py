"""On-demand benchmarks of issue 11 (run by run.sh; see there for the settings).

1. transcode: a 60 s 3840x1920 equirect MP4 uploaded to a release server with
   `[vod] ladder = "360"`; the server's CPU seconds from the upload's answer until
   its HLS rendition is ready, against one ffmpeg doing the same ladder (split,
   scale, three libx264 encodes with the server's x264 settings, the 48 kb/s mono
   AAC rung) with its threads at their defaults, as the server's are.
2. mp3: the server's extraction passes (probe + MP3 render, benches/vod/mp3.rs, in
   a process of their own, twice: the first job after a start loads GStreamer's
   plugins, later jobs find them loaded) against `ffmpeg -vn -c:a libmp3lame -b:a 192k`
   (one process, its startup included).
3. upload: a 2 GB file through tus in 64 MiB PATCHes over loopback: MB/s, and the
   server's resident memory growth (peak VmRSS sampled every 50 ms, and VmHWM).

Each figure is measured BENCH_RUNS times (the machine is shared) and each run is
printed. The exit status is non-zero only when something fails to run.
"""

import base64
import http.client
import json
import os
import resource
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench_server import BenchServer, rss_kib  # noqa: E402

BIN = os.environ["PANOCAST_BIN"]
MP3_BIN = os.environ["PANOCAST_VOD_MP3"]
SRC = os.environ["BENCH_SRC"]
OUT = os.environ["BENCH_OUT_DIR"]
RUNS = int(os.environ.get("BENCH_RUNS", "2"))
PARTS = os.environ.get("BENCH_PARTS", "transcode mp3 upload").split()
UPLOAD_BYTES = int(os.environ.get("BENCH_UPLOAD_BYTES", str(2 * 1000**3)))
CHUNK = 64 << 20
PASSWORD = "vod-bench-admin-1"
LADDER = [("2560x1280", 8000), ("1920x960", 5000), ("1280x640", 2500)]
PRESET = "veryfast"
TICK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(f"[vod {time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def cpu_s(pid):
    """utime + stime of every thread of `pid`, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def child_cpu(cmd):
    """Runs `cmd`; (CPU seconds of it and its children, wall seconds)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    err = proc.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed: {err[-2000:]}")
    return usage.ru_utime + usage.ru_stime, wall


class Api:
    def __init__(self, base):
        u = urllib.parse.urlparse(base)
        self.host, self.port = u.hostname, u.port
        self.token = None

    def call(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection(self.host, self.port, timeout=600)
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), data

    def login(self):
        s, _, d = self.call("POST", "/api/v1/auth/login", {"username": "admin", "password": PASSWORD})
        assert s == 200, d
        self.token = json.loads(d)["access_token"]


def tus_upload(api, path, size, title):
    """Creates a tus upload of `path` and PATCHes it in CHUNK pieces; the asset id."""
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}"
                    for k, v in [("filename", os.path.basename(path)), ("title", title)])
    s, h, d = api.call("POST", "/api/v1/uploads", headers={
        "Tus-Resumable": "1.0.0", "Upload-Length": str(size), "Upload-Metadata": meta})
    assert s == 201, (s, d)
    location = h.get("Location") or h.get("location")
    path_part = urllib.parse.urlparse(location).path if "://" in location else location
    offset = 0
    with open(path, "rb") as f:
        while offset < size:
            n = min(CHUNK, size - offset)
            c = http.client.HTTPConnection(api.host, api.port, timeout=600)
            c.putrequest("PATCH", path_part)
            for k, v in {"Authorization": f"Bearer {api.token}", "Tus-Resumable": "1.0.0",
                         "Upload-Offset": str(offset), "Content-Length": str(n),
                         "Content-Type": "application/offset+octet-stream"}.items():
                c.putheader(k, v)
            c.endheaders()
            left = n
            while left:
                block = f.read(min(1 << 20, left))
                c.send(block)
                left -= len(block)
            r = c.getresponse()
            r.read()
            c.close()
            assert r.status == 204, r.status
            offset += n
    return path_part


def multipart_upload(api, path):
    """`curl -F` (the one-shot upload): the asset id."""
    out = subprocess.run(
        ["curl", "-sS", "-H", f"Authorization: Bearer {api.token}", "-F", f"file=@{path}",
         "-F", "title=bench", "-F", "projection=equirect",
         f"http://{api.host}:{api.port}/api/v1/assets"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)["id"]


def rendition_state(api, aid, kind):
    s, _, d = api.call("GET", f"/api/v1/assets/{aid}")
    assert s == 200, d
    a = json.loads(d)
    for r in a.get("renditions", []):
        if r["kind"] == kind:
            return r["state"], a
    return None, a


def config():
    return ('[vod]\nladder = "360"\n[uploads]\nmax_bytes = 4000000000\n'
            '[analytics]\nenabled = false\n')


def transcode_server():
    with BenchServer(BIN, config(), {"PANOCAST_ADMIN_PASSWORD": PASSWORD}) as server:
        api = Api(server.http)
        api.login()
        aid = multipart_upload(api, SRC)
        start = cpu_s(server.pid)
        t0 = time.monotonic()
        while True:
            state, asset = rendition_state(api, aid, "hls")
            if state == "ready":
                break
            if state == "errored" or asset["state"] == "errored":
                sys.exit(f"transcode failed: {asset}")
            if time.monotonic() - t0 > 1800:
                sys.exit("transcode took over 30 min")
            time.sleep(0.1)
        return cpu_s(server.pid) - start, time.monotonic() - t0


def transcode_ffmpeg():
    graph = f"[0:v]split={len(LADDER)}" + "".join(f"[s{i}]" for i in range(len(LADDER)))
    for i, (size, _) in enumerate(LADDER):
        w, h = size.split("x")
        graph += f";[s{i}]scale={w}:{h}[r{i}]"
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", SRC,
           "-filter_complex", graph]
    for i, (_, kbps) in enumerate(LADDER):
        cmd += ["-map", f"[r{i}]", "-an", "-fps_mode", "passthrough", "-c:v", "libx264",
                "-preset", PRESET, "-tune", "zerolatency", "-bf", "0",
                "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{kbps}k",
                "-force_key_frames", "source", "-x264-params", "scenecut=0:keyint=infinite",
                "-f", "mp4", "-movflags", "+frag_keyframe+empty_moov", os.path.join(OUT, f"ff-{i}.mp4")]
    cmd += ["-map", "0:a", "-c:a", "aac", "-b:a", "48k", "-ac", "1", "-f", "mp4",
            "-movflags", "+frag_keyframe+empty_moov", os.path.join(OUT, "ff-audio.mp4")]
    return child_cpu(cmd)


def mp3_panocast():
    """(first job's CPU s, a later job's CPU s, wall s of both): the bench binary runs
    the extraction twice in one process and reports each pass's own CPU seconds."""
    t0 = time.monotonic()
    out = subprocess.run([MP3_BIN, "--input", SRC, "--output", os.path.join(OUT, "panocast.mp3"),
                          "--bench"], capture_output=True, text=True)
    wall = time.monotonic() - t0
    if out.returncode != 0:
        sys.exit(f"{MP3_BIN} failed: {out.stderr[-2000:]}")
    f = json.loads(out.stdout.strip().splitlines()[-1])
    return f["cold_probe_s"] + f["cold_render_s"], f["warm_probe_s"] + f["warm_render_s"], wall


def mp3_ffmpeg():
    return child_cpu(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", SRC,
                      "-vn", "-c:a", "libmp3lame", "-b:a", "192k", os.path.join(OUT, "ffmpeg.mp3")])


def upload_run(blob):
    with BenchServer(BIN, config(), {"PANOCAST_ADMIN_PASSWORD": PASSWORD}) as server:
        api = Api(server.http)
        api.login()
        time.sleep(1)
        base = rss_kib(server.pid)
        peak = [base]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kib(server.pid))
                time.sleep(0.05)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        t0 = time.monotonic()
        tus_upload(api, blob, UPLOAD_BYTES, "bench upload")
        wall = time.monotonic() - t0
        done.set()
        t.join()
        hwm = rss_kib(server.pid, "VmHWM")
        return UPLOAD_BYTES / 1e6 / wall, (peak[0] - base) / 1024, (hwm - base) / 1024, wall


def main():
    lines = []
    if "transcode" in PARTS:
        for run in range(RUNS):
            log(f"transcode run {run + 1}: panocast")
            p, pw = transcode_server()
            log(f"transcode run {run + 1}: ffmpeg")
            f, fw = transcode_ffmpeg()
            lines.append(f"transcode run {run + 1}: panocast {p:.1f} CPU s ({pw:.0f} s wall), "
                         f"ffmpeg {f:.1f} CPU s ({fw:.0f} s wall): {p / f:.2f}x (target <= 0.9x)")
            print(lines[-1], flush=True)
    if "mp3" in PARTS:
        for run in range(RUNS):
            log(f"mp3 run {run + 1}")
            cold, warm, pw = mp3_panocast()
            f, fw = mp3_ffmpeg()
            lines.append(f"mp3 run {run + 1}: panocast first job after start {cold:.2f} CPU s, "
                         f"later jobs {warm:.2f} CPU s ({pw:.1f} s wall for both); "
                         f"ffmpeg libmp3lame {f:.2f} CPU s ({fw:.1f} s wall): "
                         f"{cold / f:.2f}x first, {warm / f:.2f}x later (target <= 1.0x)")
            print(lines[-1], flush=True)
    if "upload" in PARTS:
        blob = os.path.join(OUT, "upload-blob.bin")
        # Sparse: reading it costs the client nothing; the server writes every byte.
        with open(blob, "wb") as f:
            f.truncate(UPLOAD_BYTES)
        try:
            for run in range(RUNS):
                log(f"upload run {run + 1}: {UPLOAD_BYTES / 1e9:.1f} GB")
                mbs, peak, hwm, wall = upload_run(blob)
                lines.append(f"upload run {run + 1}: {UPLOAD_BYTES / 1e9:.1f} GB in {wall:.1f} s = {mbs:.0f} MB/s; "
                             f"server RSS growth {peak:.1f} MiB sampled peak, {hwm:.1f} MiB VmHWM (target < 50 MB)")
                print(lines[-1], flush=True)
        finally:
            os.remove(blob)
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
