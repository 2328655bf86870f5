#!/usr/bin/env python3
"""Records one RTSP client-camera exchange for the golden replay (tests/data/capture-rtsp.sh).

    rtsp_capture.py OUT CAMERA_PORT

Listens on 127.0.0.1 (a free port, printed as `rtsp://127.0.0.1:PORT` on stdout),
takes one client, connects it to the camera on CAMERA_PORT and passes every byte
both ways, keeping them in OUT as records in arrival order:

    direction (1 byte: b"C" client to camera, b"S" camera to client)
    milliseconds since the client connected (u32, big-endian)
    length (u32, big-endian), then that many bytes

Ends when either side closes. src/ingest/rtsp/golden.rs replays the file.
"""

import socket
import struct
import sys
import threading
import time


def main():
    out, camera_port = sys.argv[1], int(sys.argv[2])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    print(f"rtsp://127.0.0.1:{listener.getsockname()[1]}", flush=True)
    client, _ = listener.accept()
    camera = socket.create_connection(("127.0.0.1", camera_port))
    started = time.monotonic()
    records, lock = [], threading.Lock()

    def pump(src, dst, direction):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            with lock:
                records.append((direction, int((time.monotonic() - started) * 1000), data))
            try:
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    threads = [threading.Thread(target=pump, args=(client, camera, b"C")),
               threading.Thread(target=pump, args=(camera, client, b"S"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(out, "wb") as f:
        for direction, ms, data in records:
            f.write(direction + struct.pack(">II", ms, len(data)) + data)


if __name__ == "__main__":
    main()
