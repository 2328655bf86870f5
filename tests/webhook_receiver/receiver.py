"""A webhook receiver for panocast's tests (tests/notify_*.rs).

Listens on 127.0.0.1 (port 0: the kernel picks one) and prints `listening PORT` once
it does. Every POST to any path other than /_control is a delivery: it is verified with
the Standard Webhooks reference library (PyPI `standardwebhooks`) against the current
secret, and one JSON line per request is appended to the output file:

    {"webhook_id": ..., "answer": 204 | 500 | 400, "verified": bool, "payload": {...}}

POST /_control with a JSON body sets what the receiver does next:
    {"secret": "whsec_..."}      the secret to verify with
    {"fail_next": N}             answer 500 to the next N deliveries
    {"retry_after": "2"}         send this Retry-After with those 500s

Usage: receiver.py OUTPUT_FILE
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

state = {"secret": None, "fail_next": 0, "retry_after": None}
lock = threading.Lock()
out_path = sys.argv[1]


def record(entry):
    with lock:
        with open(out_path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
            out.flush()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path == "/_control":
            with lock:
                state.update(json.loads(body or b"{}"))
            self.answer(204)
            return
        webhook_id = self.headers.get("webhook-id")
        with lock:
            fail = state["fail_next"] > 0
            if fail:
                state["fail_next"] -= 1
            secret = state["secret"]
            retry_after = state["retry_after"]
        if fail:
            record({"webhook_id": webhook_id, "answer": 500, "verified": False, "payload": None})
            headers = [("Retry-After", retry_after)] if retry_after else []
            self.answer(500, headers)
            return
        try:
            payload = Webhook(secret).verify(body, dict(self.headers.items()))
            verified = True
        except (WebhookVerificationError, TypeError, ValueError) as e:
            payload, verified = {"error": str(e)}, False
        status = 204 if verified else 400
        record({"webhook_id": webhook_id, "answer": status, "verified": verified, "payload": payload})
        self.answer(status)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
