"""A publisher with the wall clock drawn into every frame, for benches/latency.

Writes raw 1280x640 I420 frames at 30 fps, paced by the clock, into ffmpeg
(libx264 zerolatency, 1 s GOP) which publishes them over RTMP. The top two bands of
each frame carry the wall-clock milliseconds (mod 2^40) at the moment the frame was
handed to the encoder: band 1 as 40 black/white blocks (most significant bit first),
band 2 the same bits inverted, so a reader can tell a clean frame from a garbled one.
Below the bands a gradient moves, so the encoder has real work.

    python3 stamp_publisher.py RTMP_URL [--seconds N]
"""

import subprocess
import sys
import time

W, H, FPS = 1280, 640, 30
BITS, BLOCK, BAND = 40, 32, 64
WHITE, BLACK = 235, 16


def band(bits, invert):
    row = bytearray()
    for b in bits:
        on = b ^ invert
        row += bytes([WHITE if on else BLACK]) * BLOCK
    return bytes(row) * BAND


def main():
    url = sys.argv[1]
    seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 1e9
    ff = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
         "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{W}x{H}", "-r", str(FPS), "-i", "-",
         "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", str(FPS),
         "-keyint_min", str(FPS), "-sc_threshold", "0", "-b:v", "3M", "-maxrate", "3M",
         "-bufsize", "3M", "-pix_fmt", "yuv420p", "-an", "-f", "flv", url],
        stdin=subprocess.PIPE)
    # A gradient twice as tall as the picture below the bands; each frame shows a
    # window of it one row further down.
    rest = H - 2 * BAND
    rows = [bytes([(16 + (y * 3) % 220)]) * W for y in range(2 * rest)]
    gradient = b"".join(rows)
    chroma = bytes([128]) * (W * H // 2)
    start = time.monotonic()
    n = 0
    try:
        while time.monotonic() - start < seconds:
            due = start + n / FPS
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            stamp = int(time.time() * 1000) % (1 << BITS)
            bits = [(stamp >> (BITS - 1 - i)) & 1 for i in range(BITS)]
            off = (n % rest) * W
            frame = band(bits, 0) + band(bits, 1) + gradient[off:off + rest * W] + chroma
            ff.stdin.write(frame)
            ff.stdin.flush()
            n += 1
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        try:
            ff.stdin.close()
        except BrokenPipeError:
            pass
        ff.wait()


if __name__ == "__main__":
    main()
