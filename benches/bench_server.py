"""The release server for the Python benchmarks: started on free loopback ports with a
config of the bench's own in a temporary directory, its printed addresses read, its
stdout drained (a full pipe would stall it), and stopped with SIGTERM on exit.

    with BenchServer(BIN, config_toml, {"PANOCAST_ADMIN_PASSWORD": ...}) as server:
        server.http   # http://127.0.0.1:PORT
        server.rtmp   # rtmp://127.0.0.1:PORT/live
        server.pid
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time


class BenchServer:
    def __init__(self, binary, config, env=None, prefix="panocast-bench."):
        self.binary, self.config, self.prefix = binary, config, prefix
        self.env = dict(os.environ, RUST_LOG="warn", NO_COLOR="1", **(env or {}))
        self.http = self.rtmp = None

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix=self.prefix)
        config = os.path.join(self.dir, "panocast.toml")
        with open(config, "w") as f:
            f.write(self.config)
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--config", config, "--http", "127.0.0.1:0",
             "--rtmp", "127.0.0.1:0", "--data-dir", os.path.join(self.dir, "data")],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.env, text=True,
        )
        self.pid = self.proc.pid
        deadline = time.monotonic() + 30
        while (self.http is None or self.rtmp is None) and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
            m = re.search(r"http://([0-9.]+:\d+)/api/v1", line)
            if m:
                self.http = "http://" + m.group(1)
            m = re.search(r"rtmp://([0-9.]+:\d+)/live", line)
            if m:
                self.rtmp = "rtmp://" + m.group(1) + "/live"
        if not self.http or not self.rtmp:
            self.__exit__(None, None, None)
            sys.exit("the server did not print its addresses")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


def rss_kib(pid, field="VmRSS"):
    """`field` (VmRSS, VmHWM) of process `pid` in KiB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def test_source(out_dir, name, size, bitrate, seconds, log):
    """An FLV of testsrc2 at `size` (H.264 at `bitrate`, 2 s GOP, AAC 128k) for
    `seconds`, encoded once into `out_dir`/media/`name` and reused afterwards."""
    path = os.path.join(out_dir, "media", name)
    if os.path.exists(path) and os.path.getsize(path) > 0:
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    log("encoding the input once (cached in bench-out/media)")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", str(seconds), "-map", "0:v", "-map", "1:a",
         "-c:v", "libx264", "-preset", "veryfast", "-b:v", bitrate, "-g", "60",
         "-keyint_min", "60", "-sc_threshold", "0", "-c:a", "aac", "-b:a", "128k",
         "-f", "flv", path + ".tmp"],
        check=True,
    )
    os.rename(path + ".tmp", path)
    return path


def push(src, url):
    """ffmpeg publishing `src` in a loop at its own pace, copied, to `url`."""
    return subprocess.Popen(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "quiet", "-re",
         "-stream_loop", "-1", "-i", src, "-c", "copy", "-f", "flv", url],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
